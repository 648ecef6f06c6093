"""The first requests of a level far slower than the rest: a cold start (a first compile,
empty caches), reported with what it cost and whether the statistics include it."""

from __future__ import annotations

from typing import Any

from loadlens.config import format_seconds
from loadlens.findings.format import at_load, capitalised
from loadlens.findings.model import Finding

KIND = "cold_start"
SECTION = "story"
ORDER = 36


def _span(lo: float, hi: float) -> str:
    a, b = format_seconds(lo), format_seconds(hi)
    return a if a == b else f"{a}–{b}"


def find(a: Any) -> list[Finding]:
    out = []
    for r in a.runs.iter_rows(named=True):
        c = a.cold_starts.get(r["run_id"])
        if c is None:
            continue
        what = "for a first token" if c.metric == "ttft_s" else "for a response"
        left_out = a.excluded.get(r["run_id"], 0)
        policy = (
            f" The first {left_out} requests are left out of this level's statistics "
            f"(--exclude-warmup {a.warmup})."
            if left_out
            else " Every statistic of the level includes them (--exclude-warmup auto leaves "
            "them out)."
        )
        n = "request" if c.n_slow == 1 else f"{c.n_slow} requests"
        sentence = (
            f"{capitalised(at_load(r['load_mode'], r['load_value'], r.get('num_requests')))}, "
            f"{r['deployment']} started cold: the first {n} waited "
            f"{_span(c.slow_lo, c.slow_hi)} {what}; the other {c.n_rest:,}, "
            f"{_span(c.rest_lo, c.rest_hi)}." + policy
        )
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=r["deployment"],
                sentence=sentence,
                evidence={
                    "metric": c.metric,
                    "n_slow": c.n_slow,
                    "n_rest": c.n_rest,
                    "slow_lo_s": c.slow_lo,
                    "slow_hi_s": c.slow_hi,
                    "rest_median_s": c.rest_median,
                    "excluded": left_out,
                },
                confidence=(
                    "the longest run of first requests (by start, at most a fifth of the "
                    "level) each slower than 3× the rest's median and than their p99"
                ),
            )
        )
    return out
