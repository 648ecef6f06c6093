"""Latency that becomes unpredictable before it becomes slow: a load that meets every SLO
but whose spread (p99 against the median, or a tail of slow requests) users feel."""

from __future__ import annotations

from typing import Any

from loadlens.findings.format import format_load
from loadlens.findings.model import Finding

KIND = "unpredictable"
SECTION = "story"
ORDER = 14


def find(a: Any) -> list[Finding]:
    out = []
    for u in a.unpredictable:
        parts = []
        if u.p99_over_p50 is not None:
            base = (
                f" ({u.base_p99_over_p50:.1f}× at {format_load(u.load_mode, u.base_load)})"
                if u.base_p99_over_p50
                else ""
            )
            parts.append(f"p99 E2E is {u.p99_over_p50:.1f}× the median{base}")
        if u.slow_share:
            parts.append(f"{u.slow_share:.0%} of requests take over twice the median")
        if u.stall_share:
            parts.append(f"{u.stall_share:.1%} of token gaps stall (over 5× the median gap)")
        out.append(
            Finding(
                kind=KIND,
                severity="warning",
                deployment=u.deployment,
                sentence=(
                    f"At {format_load(u.load_mode, u.load)} every SLO of {u.deployment} holds, "
                    "but its latency turns unpredictable before it turns slow: "
                    + "; ".join(parts)
                    + "."
                ),
                evidence={
                    "load": u.load,
                    "p99_over_p50": u.p99_over_p50,
                    "base_load": u.base_load,
                    "base_p99_over_p50": u.base_p99_over_p50,
                    "slow_share": u.slow_share,
                    "stall_share": u.stall_share,
                },
                confidence=(
                    "the level's own E2E distribution against the lightest load's; thresholds: "
                    "p99/p50 3× and twice the lightest load's, or 10% of requests over twice "
                    "the median"
                ),
            )
        )
    return out
