"""What change restores a breached SLO, predicted from what was measured.

- Shorter outputs (output length × k): each request's E2E becomes
  TTFT + (k × output tokens − 1) × TPOT'. At a fixed concurrency N the batch stays the
  same size, but requests finish (and new ones are admitted and prefilled) 1/k times as
  often, and each prefill stalls every running sequence's next token. That stall, per
  decode step, is about (N / n̄) × b × ī (admissions per step × prefill cost per prompt,
  b fitted at the lightest level, n̄ and ī the mean output and input tokens), so
  TPOT' = TPOT + stall × (1/k − 1). The KV cache freed by shorter outputs is ignored.
- Shorter prompts (input length × k): TTFT drops by the prefill cost of the removed
  tokens, b × (1 − k) × input, with b fitted at the lightest level (see drivers).
- Less load per replica (lower concurrency, or more replicas sharing the same load):
  the SLO statistic interpolated between measured levels, never extrapolated.

Each solution is the smallest change meeting every breached SLO; its basis is stated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from loadlens.analysis.drivers import prefill_fit
from loadlens.analysis.levels import request_metrics
from loadlens.analysis.saturation import SloBoundary, value_at
from loadlens.config import SLO


@dataclass(frozen=True)
class WhatIf:
    deployment: str
    load_mode: str
    load: float
    change: str  # "output_scale" | "input_scale" | "replicas"
    value: float  # k for scales, replica count for replicas
    predicted: dict[str, float]  # SLO column -> predicted value
    basis: str


def _quantile(values: pl.Series, q: float) -> float | None:
    values = values.drop_nulls()
    return float(values.quantile(q, "linear")) if values.len() else None  # type: ignore[arg-type]


def prefill_stall(requests: pl.DataFrame, concurrency: float, slope_s_per_token: float) -> float:
    """Seconds of prefill per decode step at one level: (N / n̄) × b × ī."""
    ok = requests.filter(pl.col("status") == "ok")
    steps = ok["output_tokens"].mean()
    prompt = ok["input_tokens"].mean()
    if not steps or prompt is None:
        return 0.0
    return concurrency / float(steps) * slope_s_per_token * float(prompt)  # type: ignore[arg-type]


def predict_output_scale(
    requests: pl.DataFrame, k: float, slos: tuple[SLO, ...], stall_s: float = 0.0
) -> dict[str, float]:
    """SLO statistics of one level's requests if every output were k times as long, with
    `stall_s` of prefill per decode step at the measured output length."""
    ok = request_metrics(requests.filter(pl.col("status") == "ok"))
    scaled = ok.with_columns(
        tokens=(pl.col("output_tokens") * k).round().clip(lower_bound=1),
        tpot_s=pl.col("tpot_s").fill_null(0.0) + stall_s * (1 / k - 1),
    ).with_columns(e2e_s=pl.col("ttft_s") + (pl.col("tokens") - 1) * pl.col("tpot_s"))
    return _slo_values(scaled, slos)


def predict_input_scale(
    requests: pl.DataFrame, k: float, slope_s_per_token: float, slos: tuple[SLO, ...]
) -> dict[str, float]:
    """SLO statistics if every prompt were k times as long (prefill cost b per token)."""
    ok = request_metrics(requests.filter(pl.col("status") == "ok"))
    saved = slope_s_per_token * (1 - k) * pl.col("input_tokens")
    scaled = ok.with_columns(
        ttft_s=(pl.col("ttft_s") - saved).clip(lower_bound=0.0),
        e2e_s=(pl.col("e2e_s") - saved).clip(lower_bound=0.0),
    )
    return _slo_values(scaled, slos)


def _slo_values(frame: pl.DataFrame, slos: tuple[SLO, ...]) -> dict[str, float]:
    out = {}
    for slo in slos:
        if slo.metric == "itl_s":
            continue  # gaps between tokens do not change with output or prompt length
        values = frame[slo.metric]
        v = _quantile(values, slo.quantile) if slo.quantile else values.drop_nulls().mean()
        if v is not None:
            out[slo.column] = float(v)  # type: ignore[arg-type]
    return out


def _meets(predicted: dict[str, float], slos: tuple[SLO, ...]) -> bool:
    return all(predicted.get(s.column, 0.0) <= s.threshold_s for s in slos)


def solve(
    levels: pl.DataFrame,
    requests: pl.DataFrame,
    runs: pl.DataFrame,
    binding: list[SloBoundary],
    slos: tuple[SLO, ...],
) -> list[WhatIf]:
    """At each deployment's first breach: the smallest output cap, prompt cut and replica
    count that meet every SLO (those that can)."""
    out: list[WhatIf] = []
    for b in binding:
        if b.first_breach is None:
            continue
        load = b.first_breach.load
        key = (pl.col("deployment") == b.deployment) & (pl.col("load_mode") == b.load_mode)
        run_ids = runs.filter(key & (pl.col("load_value") == load))["run_id"].to_list()
        reqs = requests.filter(pl.col("run_id").is_in(run_ids))
        if reqs.is_empty():
            continue
        lightest = runs.filter(key).sort("load_value")["run_id"][0]
        _, slope = prefill_fit(requests, lightest)
        level_row = levels.filter(key & (pl.col("load_value") == load))
        in_flight = level_row["achieved_concurrency"][0] if level_row.height else None
        stall = prefill_stall(reqs, in_flight or load, slope)
        # Output cut: the statistics fall as k falls; bisect for the largest k that meets.
        if _meets(predict_output_scale(reqs, 0.2, slos, stall), slos):
            lo, hi = 0.2, 1.0
            for _ in range(30):
                mid = (lo + hi) / 2
                ok = _meets(predict_output_scale(reqs, mid, slos, stall), slos)
                lo, hi = (mid, hi) if ok else (lo, mid)
            out.append(
                WhatIf(
                    b.deployment,
                    b.load_mode,
                    load,
                    "output_scale",
                    lo,
                    predict_output_scale(reqs, lo, slos, stall),
                    f"TTFT and TPOT as measured at this level, plus {stall * 1000:.1f} ms "
                    "of prefill per step growing as 1/k",
                )
            )
        if slope > 0 and _meets(predict_input_scale(reqs, 0.05, slope, slos), slos):
            lo, hi = 0.05, 1.0
            for _ in range(30):
                mid = (lo + hi) / 2
                ok = _meets(predict_input_scale(reqs, mid, slope, slos), slos)
                lo, hi = (mid, hi) if ok else (lo, mid)
            out.append(
                WhatIf(
                    b.deployment,
                    b.load_mode,
                    load,
                    "input_scale",
                    lo,
                    predict_input_scale(reqs, lo, slope, slos),
                    f"prefill cost {slope * 1e6:.0f} µs/token fitted at the lightest level",
                )
            )
        lv = levels.filter(key)
        for replicas in range(2, 17):
            share = load / replicas
            predicted = {}
            for slo in slos:
                points = (
                    sorted(
                        (x, y)
                        for x, y in zip(lv["load_value"], lv[slo.column], strict=True)
                        if x is not None and y is not None
                    )
                    if slo.column in lv.columns
                    else []
                )
                v = value_at(points, share)
                if v is not None:
                    predicted[slo.column] = v
            if len(predicted) < len([s for s in slos if s.column in lv.columns]):
                break  # below the lightest measured load: no prediction
            if _meets(predicted, slos):
                out.append(
                    WhatIf(
                        b.deployment,
                        b.load_mode,
                        load,
                        "replicas",
                        replicas,
                        predicted,
                        f"measured levels interpolated at {share:g} per replica",
                    )
                )
                break
    return out


def describe(w: WhatIf, output_mean: float | None = None) -> str:
    """The change in plain words, e.g. 'outputs 30% shorter (mean 256 → 179 tokens)'."""
    if w.change == "output_scale":
        mean = (
            f" (mean {output_mean:.0f} → {math.floor(output_mean * w.value)} tokens)"
            if output_mean
            else ""
        )
        return f"outputs {1 - w.value:.0%} shorter{mean}"
    if w.change == "input_scale":
        return f"trimming prompts by {1 - w.value:.0%}"
    return f"spreading the load over {w.value:g} replicas"
