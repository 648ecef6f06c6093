"""Why latency grew: the growth of mean E2E split into its causes, at the first breach."""

from __future__ import annotations

from typing import Any

import polars as pl

from loadlens.analysis.drivers import CAUSE_LABELS
from loadlens.config import format_seconds
from loadlens.findings.format import ci_label, format_load
from loadlens.findings.model import Finding

KIND = "drivers"
SECTION = "story"
ORDER = 40
MIN_GROWTH = 0.10  # mean E2E growth over the lightest level worth explaining
MIN_SHARE = 0.05  # causes below this share are not named
QUEUE_EMPTY = 0.05  # mean requests waiting below this: the server's queue stood empty


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def find(a: Any) -> list[Finding]:
    binding = {(b.deployment, b.load_mode): b for b in a.binding}
    out = []
    by_key: dict[tuple[str, str], list[Any]] = {}
    for d in a.drivers:
        by_key.setdefault((d.deployment, d.load_mode), []).append(d)
    for key, ds in by_key.items():
        b = binding.get(key)
        at = b.first_breach.load if b and b.first_breach else max(d.load for d in ds)
        d = next((d for d in ds if d.load == at), None)
        # Growth within run-to-run noise has no cause worth naming (shares of a tiny sum
        # can read 255%).
        if d is None or d.growth_s <= MIN_GROWTH * d.baseline_e2e_mean_s:
            continue
        ranked = [(c, share) for c, share in d.ranked() if share >= MIN_SHARE]
        labels = dict(CAUSE_LABELS)
        if d.waiting_mean is not None and d.waiting_mean < QUEUE_EMPTY:
            # TTFT beyond prefill while the server's own queue stood empty: requests did
            # not wait for a slot but for compute (prefills of others interleaved with
            # decode, as on llama.cpp on CPU), so it is not called queueing.
            labels["queueing"] = "first-token wait with the server's queue empty"
        causes = ", ".join(f"{labels[c]} {share:.0%}" for c, share in ranked)
        p95 = a.levels.filter(
            (pl.col("deployment") == d.deployment)
            & (pl.col("load_mode") == d.load_mode)
            & (pl.col("load_value") == d.load)
        )["p95_e2e_s"]
        signals = []
        if d.kv_cache_peak is not None:
            signals.append(f"KV-cache usage peaked at {d.kv_cache_peak:.0%}")
        if d.preemptions:
            signals.append(f"{d.preemptions:,.0f} preemptions")
        if d.waiting_mean is not None and d.waiting_mean >= 0.5:
            signals.append(f"{d.waiting_mean:.1f} requests waiting on average")
        per_token = ""
        if (
            d.per_output_token_s is not None
            and d.per_output_token_ci is not None
            and d.per_output_token_ci[0] > 0  # an interval reaching zero says nothing
        ):
            lo, hi = d.per_output_token_ci
            per_token = (
                f" Request by request, each output token added {_ms(d.per_output_token_s)} "
                f"to E2E there ({ci_label(a.confidence)} {_ms(lo)}–{_ms(hi)})"
                + (
                    f", against {_ms(d.baseline_per_output_token_s)} at "
                    f"{format_load(d.load_mode, d.baseline_load)}"
                    if d.baseline_per_output_token_s is not None
                    else ""
                )
                + "."
            )
        sentence = (
            f"At {format_load(d.load_mode, d.load)}, mean E2E of {d.deployment} grew from "
            f"{format_seconds(d.baseline_e2e_mean_s)} "
            f"(at {format_load(d.load_mode, d.baseline_load)}) to "
            f"{format_seconds(d.e2e_mean_s)}"
            + (f" (p95 {format_seconds(p95[0])})" if p95.len() and p95[0] is not None else "")
            + f": {causes} of the growth"
            + (f"; {', '.join(signals)}" if signals else "")
            + "."
            + per_token
        )
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=d.deployment,
                sentence=sentence,
                evidence=dict[str, float | int | str | None](
                    {f"{c}_s": v for c, v in d.contributions_s.items()}
                )
                | {
                    "growth_s": d.growth_s,
                    "load": d.load,
                    "confidence": a.confidence,
                    "baseline_load": d.baseline_load,
                    "baseline_e2e_mean_s": d.baseline_e2e_mean_s,
                    "e2e_mean_s": d.e2e_mean_s,
                    "p95_e2e_s": p95[0] if p95.len() else None,
                    **{f"{c}_share": share for c, share in ranked},
                    "per_output_token_ci_lo_s": d.per_output_token_ci[0]
                    if d.per_output_token_ci
                    else None,
                    "per_output_token_ci_hi_s": d.per_output_token_ci[1]
                    if d.per_output_token_ci
                    else None,
                    "kv_cache_peak": d.kv_cache_peak,
                    "preemptions": d.preemptions,
                    "waiting_mean": d.waiting_mean,
                    "per_output_token_s": d.per_output_token_s,
                    "baseline_per_output_token_s": d.baseline_per_output_token_s,
                },
                confidence=f"exact split of the mean over {d.n} requests; the light-load "
                "first-token time fitted at the lightest level"
                + (
                    "; per-token cost: least squares of E2E on input and output tokens"
                    if per_token
                    else ""
                ),
            )
        )
    return out
