"""What change restores the SLOs at the first breach: shorter outputs, shorter prompts,
more replicas — each predicted, with what it would cut. And, when asked for
(`--what-if rag=4x512+200ms`), what retrieved context would do to latency, capacity and
cost, or why the runs cannot tell."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from loadlens.analysis.rag import RagPrediction, capacity
from loadlens.analysis.saturation import SloBoundary
from loadlens.analysis.whatif import WhatIf, describe
from loadlens.config import SLO, format_seconds, parse_slos
from loadlens.findings.format import approx, format_load
from loadlens.findings.model import Finding

KIND = "whatif"
SECTION = "story"
ORDER = 50
AT_CAP = 0.9  # outputs at the length cap: then cutting outputs means lowering max_tokens
REASONING = 0.5  # reasoning tokens as a share of output: cutting outputs cuts thinking


def caveat(w: WhatIf) -> str:
    """What an output cut would really cut, where the workload says."""
    notes = []
    if w.at_cap_share is not None and w.at_cap_share >= AT_CAP:
        notes.append(
            f"{w.at_cap_share:.0%} of outputs ran to the length cap, so this means lowering "
            "max_tokens: answers would be cut short, not written shorter"
        )
    if w.reasoning_share is not None and w.reasoning_share >= REASONING:
        notes.append(
            f"{w.reasoning_share:.0%} of output tokens were reasoning, so shorter outputs "
            "mean less reasoning"
        )
    return f" ({'; '.join(notes)})" if notes else ""


def find(a: Any) -> list[Finding]:
    out = []
    by_key: dict[tuple[str, str, float], list[WhatIf]] = {}
    for w in a.whatifs:
        if w.rag is not None:
            out.append(rag_finding(a, w, w.rag))
            continue
        by_key.setdefault((w.deployment, w.load_mode, w.load), []).append(w)
    labels = {s.column: s for s in a.slos}
    for (deployment, mode, load), ws in by_key.items():
        row = a.levels.filter(
            (pl.col("deployment") == deployment)
            & (pl.col("load_mode") == mode)
            & (pl.col("load_value") == load)
        )
        mean_out = None
        if row.height and row["n_ok"][0] and row["request_throughput_rps"][0]:
            mean_out = row["output_throughput_tps"][0] / row["request_throughput_rps"][0]
        parts = []
        for w in ws:
            values = ", ".join(
                f"{labels[c].label} {labels[c].format(v)}" for c, v in w.predicted.items()
            )
            extra = caveat(w) if w.change == "output_scale" else ""
            parts.append(f"{describe(w, mean_out)} gives {values}{extra}")
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=deployment,
                sentence=(
                    f"To meet every latency SLO at {format_load(mode, load)} on {deployment}: "
                    + "; or ".join(parts)
                    + " (predicted)."
                ),
                evidence=dict[str, float | int | str | None]({w.change: w.value for w in ws})
                | {
                    "at_cap_share": next(
                        (w.at_cap_share for w in ws if w.change == "output_scale"), None
                    ),
                    "reasoning_share": next(
                        (w.reasoning_share for w in ws if w.change == "output_scale"), None
                    ),
                    "load": load,
                    "mean_output_tokens": mean_out,
                    **{
                        f"{w.change}_cut": 1 - w.value
                        for w in ws
                        if w.change in ("output_scale", "input_scale")
                    },
                    **{
                        f"{w.change}_mean_output_tokens": math.floor(mean_out * w.value)
                        for w in ws
                        if w.change == "output_scale" and mean_out
                    },
                    **{
                        f"{w.change}_predicted_{col}": v
                        for w in ws
                        for col, v in w.predicted.items()
                    },
                },
                confidence="; ".join(f"{w.change}: {w.basis}" for w in ws),
            )
        )
    return out


def _capacity_text(b: SloBoundary | None, mode: str) -> tuple[str, float | None]:
    """`concurrency 40`, `about concurrency 25`, `below concurrency 1 (the lightest
    measured)`, `more than concurrency 64 (the highest measured)`; and the number."""
    if b is None:
        return "unknown (no SLO)", None
    if b.status == "breached_at_lowest":
        low = b.min_load_measured or 0.0
        return f"below {format_load(mode, low)} (the lightest measured)", low
    if b.status == "never_breached":
        return f"more than {format_load(mode, b.max_load_measured)} (the highest measured)", (
            b.max_load_measured
        )
    cap = approx(mode, capacity(b) or 0.0)
    rng = ""
    if b.boundary_lo is not None and b.boundary_hi is not None:
        lo, hi = approx(mode, b.boundary_lo), approx(mode, b.boundary_hi)
        rng = f" (range {lo:g}–{hi:g})" if lo != hi else ""
    return f"about {format_load(mode, cap)}{rng}", cap


def _slo_for(slos: tuple[SLO, ...], metric: str) -> SLO:
    """The SLO on `metric` (its statistic is the one the reader judges), else p95."""
    return next(
        (s for s in slos if s.metric == metric and s.is_latency),
        parse_slos(f"p95_{metric.removesuffix('_s')}<1s")[0],
    )


def rag_finding(a: Any, w: WhatIf, pred: RagPrediction) -> Finding:
    spec = pred.spec
    change = (
        f"Adding {spec.chunks} retrieved chunk{'s' if spec.chunks > 1 else ''} of "
        f"{spec.chunk_tokens:,} tokens (+{spec.added_tokens:,} input tokens)"
        + (f" and {spec.retrieval_s * 1000:g} ms retrieval" if spec.retrieval_s else "")
    )
    evidence: dict[str, float | int | str | None] = {
        "chunks": spec.chunks,
        "chunk_tokens": spec.chunk_tokens,
        "added_tokens": spec.added_tokens,
        "retrieval_ms": spec.retrieval_s * 1000,
    }
    if pred.refused:
        evidence |= {"reason": pred.refused, **pred.refused_evidence}
        return Finding(
            kind=KIND,
            severity="info",
            deployment=w.deployment,
            sentence=(
                f"{change} cannot be predicted for {w.deployment}: {pred.refused}. To measure "
                "what a longer prompt costs, sweep with prompts of varied length (e.g. "
                "loadlens sweep --input-tokens MEAN:SD) or run the lightest load at two "
                "prompt lengths."
            ),
            evidence=evidence,
            confidence=w.basis,
        )
    level = pred.level(w.load)
    parts = []
    evidence["load"] = w.load
    for metric in ("ttft_s", "e2e_s"):
        slo = _slo_for(a.slos, metric)
        col = slo.column
        if level is None or col not in level.predicted or col not in level.measured:
            continue
        before, after = level.measured[col], level.predicted[col]
        lo, hi = level.lo.get(col, after), level.hi.get(col, after)
        evidence |= {f"{col}_before": before, f"{col}_after": after}
        evidence |= {f"{col}_lo": lo, f"{col}_hi": hi}
        parts.append(
            f"{slo.label} from {format_seconds(before)} to {format_seconds(after)} "
            f"(range {format_seconds(lo)}–{format_seconds(hi)})"
        )
    cap_before, n_before = _capacity_text(pred.before, w.load_mode)
    cap_after, n_after = _capacity_text(pred.after, w.load_mode)
    after_b = pred.after
    evidence |= {
        "capacity_before": n_before,
        "capacity_after": n_after,
        "capacity_after_lo": approx(w.load_mode, after_b.boundary_lo)
        if after_b and after_b.boundary_lo is not None
        else None,
        "capacity_after_hi": approx(w.load_mode, after_b.boundary_hi)
        if after_b and after_b.boundary_hi is not None
        else None,
        "kv_sequences": pred.kv_sequences,
    }
    text = f"{change} on {w.deployment}: at {format_load(w.load_mode, w.load)}, " + ", ".join(parts)
    text += f"; capacity within SLO from {cap_before.removeprefix('about ')} to {cap_after}"
    if level is not None and level.kv_bound and pred.kv_sequences:
        text += (
            f", as the KV cache holds only about {pred.kv_sequences:.0f} sequences of the new "
            "length"
        )
    moved = pred.usd_per_user
    if moved is not None:
        evidence |= {
            "usd_per_user_month_before": round(moved[0], 2),
            "usd_per_user_month_after": round(moved[1], 2),
        }
        text += f"; cost per user per month from ${moved[0]:.2f} to ${moved[1]:.2f}"
    return Finding(
        kind=KIND,
        severity="info",
        deployment=w.deployment,
        sentence=text + " (predicted).",
        evidence=evidence,
        confidence=w.basis,
    )
