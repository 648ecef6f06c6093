"""What change restores a breached SLO, predicted from what was measured.

- Shorter outputs (output length × k): each request's E2E becomes
  TTFT + (k × output tokens − 1) × TPOT'. At a fixed concurrency N the batch stays the
  same size, but requests finish (and new ones are admitted and prefilled) 1/k times as
  often, and each prefill stalls every running sequence's next token. That stall, per
  decode step, is about (N / n̄) × b × ī (admissions per step × prefill cost per prompt,
  b fitted at the lightest level, n̄ and ī the mean output and input tokens), so
  TPOT' = TPOT + stall × (1/k − 1). The KV cache freed by shorter outputs is ignored.
  Open loop (a rate sweep) is different: arrivals do not wait for completions, so
  shorter outputs leave fewer requests in flight. The new in-flight count N' solves
  Little's law, N' = λ × (TTFT(N') + (k × n̄ − 1) × TPOT(N')), with TTFT(N) and TPOT(N)
  the sweep's own mean curves against achieved concurrency (interpolated, never
  extrapolated); each request's TTFT and TPOT are scaled by the curve's ratio N' : N.
  The curve point N' was measured at a lower arrival rate λ' = N' / E2E(N'), with fewer
  prefills stalling each second of decode, so TPOT is raised by (1 − λ'·p) / (1 − λ·p),
  p = b × ī the prefill time of a mean prompt (b fitted at the lightest level).
- Shorter prompts (input length × k): TTFT drops by the prefill cost of the removed
  tokens, b × (1 − k) × input, with b fitted at the lightest level (see drivers).
- Less load per replica (lower concurrency, or more replicas sharing the same load):
  the SLO statistic interpolated between measured levels, never extrapolated.

Each solution is the smallest change meeting every breached SLO; its basis is stated.
- Retrieved context (`--what-if rag=4x512+200ms`, asked for, not searched): every prompt
  longer and a retrieval latency added, predicted per level (analysis/rag.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import polars as pl

from loadlens.analysis.drivers import prefill_fit
from loadlens.analysis.levels import request_metrics
from loadlens.analysis.rag import RagPrediction, RagSpec
from loadlens.analysis.rag import predict as rag_predict
from loadlens.analysis.saturation import SloBoundary, value_at
from loadlens.config import SLO
from loadlens.trace import stored_object


@dataclass(frozen=True)
class WhatIf:
    deployment: str
    load_mode: str
    load: float
    change: str  # "output_scale" | "input_scale" | "replicas" | "rag"
    value: float  # k for scales, replica count for replicas, tokens added for rag
    predicted: dict[str, float]  # SLO column -> predicted value
    basis: str
    at_cap_share: float | None = None  # share of outputs at the level's length cap
    reasoning_share: float | None = None  # share of output tokens that were reasoning
    rag: RagPrediction | None = None  # change "rag": the prediction per level, or why none


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


Curve = list[tuple[float, float, float]]  # (achieved concurrency, mean TTFT, mean TPOT)


def in_flight_curve(levels: pl.DataFrame) -> Curve:
    """One deployment's levels as (achieved concurrency, mean TTFT, mean TPOT)."""
    cols = ("achieved_concurrency", "mean_ttft_s", "mean_tpot_s")
    if not all(c in levels.columns for c in cols):
        return []
    rows = levels.select(cols).drop_nulls().sort("achieved_concurrency").rows()
    return [(float(n), float(t), float(p)) for n, t, p in rows]


def _on_curve(curve: Curve, n: float) -> tuple[float, float] | None:
    ttft = value_at([(c[0], c[1]) for c in curve], n)
    tpot = value_at([(c[0], c[2]) for c in curve], n)
    return None if ttft is None or tpot is None else (ttft, tpot)


def open_loop_in_flight(curve: Curve, rate: float, mean_steps: float) -> float | None:
    """N' with N' = rate × (TTFT(N') + mean_steps × TPOT(N')), by bisection on the
    measured curve; the lightest level's N if even that is more than needed; None when
    no measured point is stable (the queue would still grow)."""
    if len(curve) < 2:
        return None

    def excess(n: float) -> float:
        ttft, tpot = _on_curve(curve, n) or (math.inf, math.inf)
        return rate * (ttft + mean_steps * tpot) - n

    lo, hi = curve[0][0], curve[-1][0]
    if excess(lo) <= 0:
        return lo
    if excess(hi) > 0:
        return None
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if excess(mid) > 0 else (lo, mid)
    return hi


def predict_output_scale_open(
    requests: pl.DataFrame,
    k: float,
    slos: tuple[SLO, ...],
    curve: Curve,
    rate: float,
    prefill_s_per_token: float = 0.0,
) -> dict[str, float] | None:
    """SLO statistics of one open-loop level's requests if every output were k times as
    long; None when the shorter outputs would still not bring a stable load."""
    ok = request_metrics(requests.filter(pl.col("status") == "ok"))
    if ok.is_empty() or len(curve) < 2:
        return None
    steps = float(ok["output_tokens"].mean()) * k - 1  # type: ignore[arg-type]
    now = float(ok["ttft_s"].mean()), float(ok["tpot_s"].drop_nulls().mean() or 0.0)  # type: ignore[arg-type]
    n_new = open_loop_in_flight(curve, rate, max(steps, 0.0))
    at = _on_curve(curve, n_new) if n_new is not None else None
    if at is None or n_new is None or now[0] <= 0 or now[1] <= 0:
        return None
    prefill = prefill_s_per_token * float(ok["input_tokens"].mean())  # type: ignore[arg-type]
    # The sweep's requests had the measured output length: that is the rate it ran at.
    measured_steps = float(ok["output_tokens"].mean()) - 1  # type: ignore[arg-type]
    curve_rate = n_new / (at[0] + max(measured_steps, 0.0) * at[1])
    busy_now, busy_curve = rate * prefill, curve_rate * prefill
    stall = (1 - busy_curve) / (1 - busy_now) if busy_now < 1 else math.inf
    scaled = ok.with_columns(
        tokens=(pl.col("output_tokens") * k).round().clip(lower_bound=1),
        ttft_s=pl.col("ttft_s") * (at[0] / now[0]),
        tpot_s=pl.col("tpot_s").fill_null(0.0) * (at[1] / now[1] * max(stall, 1.0)),
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


def _output_caveats(reqs: pl.DataFrame, runs: pl.DataFrame) -> tuple[float | None, float | None]:
    """What cutting outputs would cut: the share of outputs that ran to the length cap (the
    run's max_tokens target, else the longest output when every output is that long), and
    the share of output tokens that were reasoning, where the file says."""
    ok = reqs.filter(pl.col("status") == "ok")["output_tokens"].drop_nulls()
    targets, reasoning = [], 0
    for text in runs["workload"].to_list() if "workload" in runs.columns else []:
        w = stored_object(text)
        if isinstance(w.get("output_tokens"), int | float):
            targets.append(w["output_tokens"])
        if isinstance(w.get("reasoning_tokens_in_output"), int | float):
            reasoning += w["reasoning_tokens_in_output"]
    at_cap = None
    if ok.len():
        cap = max(targets) if targets else None
        if cap is not None:
            at_cap = float((ok >= cap).mean())
        elif ok.min() == ok.max():
            at_cap = 1.0
    total = int(ok.sum()) if ok.len() else 0
    return at_cap, (reasoning / total if reasoning and total else None)


def solve(
    levels: pl.DataFrame,
    requests: pl.DataFrame,
    runs: pl.DataFrame,
    binding: list[SloBoundary],
    slos: tuple[SLO, ...],
) -> list[WhatIf]:
    """At each deployment's first breach: the smallest output cap, prompt cut and replica
    count that meet every latency SLO (those that can). A level over its error budget gets
    none: no change to lengths or replicas predicts fewer failures."""
    budget = next((s for s in slos if not s.is_latency), None)
    slos = tuple(s for s in slos if s.is_latency)
    out: list[WhatIf] = []
    for b in binding:
        if b.first_breach is None or not b.slo.is_latency:
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
        if budget and level_row.height and (level_row["error_rate"][0] or 0) > budget.threshold_s:
            continue
        in_flight = level_row["achieved_concurrency"][0] if level_row.height else None
        stall = prefill_stall(reqs, in_flight or load, slope)
        predict: Callable[[float], dict[str, float] | None]
        if b.load_mode == "rate":
            predict = partial(
                predict_output_scale_open,
                reqs,
                slos=slos,
                curve=in_flight_curve(levels.filter(key)),
                rate=load,
                prefill_s_per_token=slope,
            )
            basis = (
                "open loop: in-flight requests from Little's law on the sweep's own "
                "TTFT and TPOT curves against achieved concurrency, with prefill stalls "
                f"at {load:g} req/s"
            )
        else:
            predict = partial(predict_output_scale, reqs, slos=slos, stall_s=stall)
            basis = (
                f"TTFT and TPOT as measured at this level, plus {stall * 1000:.1f} ms "
                "of prefill per step growing as 1/k"
            )
        if (cut := _largest_k(predict, slos)) is not None:
            k, predicted = cut
            at_cap, reasoning = _output_caveats(reqs, runs.filter(pl.col("run_id").is_in(run_ids)))
            out.append(
                WhatIf(
                    b.deployment,
                    b.load_mode,
                    load,
                    "output_scale",
                    k,
                    predicted,
                    basis,
                    at_cap,
                    reasoning,
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


def _largest_k(
    predict: Callable[[float], dict[str, float] | None], slos: tuple[SLO, ...]
) -> tuple[float, dict[str, float]] | None:
    """The largest output scale k in [0.2, 1] whose prediction meets every SLO (the
    statistics fall as k falls: bisection), with that prediction; None if even 0.2 fails."""

    def meets(k: float) -> bool:
        p = predict(k)
        return p is not None and _meets(p, slos)

    if not meets(0.2):
        return None
    lo, hi = 0.2, 1.0
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if meets(mid) else (lo, mid)
    predicted = predict(lo)
    return None if predicted is None else (lo, predicted)


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


def priced(whatifs: list[WhatIf], zones: list[Any], costs: list[Any]) -> list[WhatIf]:
    """The RAG what-ifs with their cost per user where the deployment is priced: the
    operating load moves with the capacity within SLO (analysis/rag.cost_per_user)."""
    from loadlens.analysis.cost import HOURS_PER_MONTH
    from loadlens.analysis.rag import cost_per_user

    out = []
    for w in whatifs:
        if w.rag is None or w.rag.refused:
            out.append(w)
            continue
        zone = next(
            (z for z in zones if (z.deployment, z.load_mode) == (w.deployment, w.load_mode)),
            None,
        )
        cost = next((c for c in costs if c.deployment == w.deployment), None)
        per_user = (
            cost.replica_hour_usd * HOURS_PER_MONTH / cost.users_per_replica if cost else None
        )
        moved = cost_per_user(w.rag, zone, per_user)
        out.append(replace(w, rag=replace(w.rag, usd_per_user=moved)) if moved else w)
    return out


def rag_whatifs(
    levels: pl.DataFrame,
    requests: pl.DataFrame,
    runs: pl.DataFrame,
    samples: pl.DataFrame,
    slos: tuple[SLO, ...],
    spec: RagSpec | None,
    confidence: float = 0.95,
) -> list[WhatIf]:
    """The RAG what-if (analysis/rag.py) as one WhatIf per deployment and load mode, at
    the highest level meeting every SLO as measured (the lightest if none does, the highest
    if none breaks): `value` the tokens added, `rag` the whole prediction or why none."""
    if spec is None:
        return []
    out = []
    for pred in rag_predict(levels, requests, runs, samples, slos, spec, confidence):
        b = pred.before
        loads = [lv.load for lv in pred.levels]
        if b is None or b.status == "never_breached":
            load = max(loads) if loads else math.nan
        elif b.status == "breached_at_lowest" or b.last_ok is None:
            load = min(loads) if loads else math.nan
        else:
            load = b.last_ok.load
        level = pred.level(load)
        out.append(
            WhatIf(
                pred.deployment,
                pred.load_mode,
                load,
                "rag",
                float(spec.added_tokens),
                level.predicted if level else {},
                _rag_basis(pred),
                rag=pred,
            )
        )
    return out


def _rag_basis(pred: RagPrediction) -> str:
    if pred.refused or pred.slope is None:
        return "not predicted: the model needs a concurrency sweep whose prompts vary in length"
    s = pred.slope
    kv = (
        f"KV cache about {pred.kv_capacity_tokens:,.0f} tokens (from kv_cache_usage × running), "
        f"so about {pred.kv_sequences:.0f} sequences of the new length fit"
        if pred.kv_capacity_tokens and pred.kv_sequences
        else "KV-cache room not known (no kv_cache_usage scraped): requests may queue for it "
        "earlier than predicted"
    )
    return (
        f"prefill {s.b * 1e6:.0f} µs per prompt token (range {s.b_lo * 1e6:.0f}–"
        f"{s.b_hi * 1e6:.0f}), fitted on {s.n} requests at concurrency {s.load:g} with prompts "
        f"of {s.input_min:,.0f}–{s.input_max:,.0f} tokens, stalling every running sequence's "
        f"decode per prompt admitted; {kv}; not modelled: {'; '.join(pred.not_modelled)}"
    )
