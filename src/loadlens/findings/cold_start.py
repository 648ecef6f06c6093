"""The first requests of a level far slower than the rest, reported with what they cost
and whether the statistics include them: a closed-loop level's first wave (its streams'
first requests sent together, queued behind each other's prefill), or a cold start
(a first compile, empty caches)."""

from __future__ import annotations

from typing import Any

from loadlens.config import format_seconds
from loadlens.findings.format import at_load, capitalised, format_load, format_loads
from loadlens.findings.model import Finding

KIND = "cold_start"
SECTION = "story"
ORDER = 36

CONFIDENCE = (
    "the longest run of first requests (by start, at most a fifth of the level) each "
    "slower than 3× the rest's median and than their p99"
)


def _span(lo: float, hi: float) -> str:
    a, b = format_seconds(lo), format_seconds(hi)
    return a if a == b else f"{a}–{b}"


def _what(metric: str) -> str:
    return "for a first token" if metric == "ttft_s" else "for a response"


def _policy(a: Any, run_ids: list[str]) -> str:
    left = sum(a.excluded.get(r, 0) for r in run_ids)
    if left:
        return (
            f" They are left out of the statistics ({left:,} requests, --exclude-warmup "
            f"{a.warmup})."
        )
    return " Every statistic includes them (--exclude-warmup auto leaves them out)."


def find(a: Any) -> list[Finding]:
    out = []
    waves: dict[tuple[str, str], list[tuple[dict[str, Any], Any]]] = {}
    for r in a.runs.iter_rows(named=True):
        c = a.cold_starts.get(r["run_id"])
        if c is None:
            continue
        if c.first_wave:
            waves.setdefault((r["deployment"], r["load_mode"]), []).append((r, c))
            continue
        n = "request" if c.n_slow == 1 else f"{c.n_slow} requests"
        where = capitalised(at_load(r["load_mode"], r["load_value"], r.get("num_requests")))
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=r["deployment"],
                sentence=(
                    f"{where}, {r['deployment']} started cold: the first {n} waited "
                    f"{_span(c.slow_lo, c.slow_hi)} {_what(c.metric)}; the other "
                    f"{c.n_rest:,}, {_span(c.rest_lo, c.rest_hi)}." + _policy(a, [r["run_id"]])
                ),
                evidence=_evidence(c, a.excluded.get(r["run_id"], 0)),
                confidence=CONFIDENCE,
            )
        )
    for (deployment, mode), found in waves.items():
        worst_row, worst = max(found, key=lambda rc: rc[1].slow_hi)
        loads = format_loads(mode, [r["load_value"] for r, _ in found])
        each = "each level" if len(found) > 1 else "the level"
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=deployment,
                sentence=(
                    f"At {loads}, {deployment} began {each} with a first wave: its streams' "
                    "first requests, sent together, queued behind each other's prefill (at "
                    f"{format_load(mode, worst_row['load_value'])}, the first "
                    f"{worst.n_slow:,} waited {_span(worst.slow_lo, worst.slow_hi)} "
                    f"{_what(worst.metric)}; the other {worst.n_rest:,}, "
                    f"{_span(worst.rest_lo, worst.rest_hi)})."
                    + _policy(a, [r["run_id"] for r, _ in found])
                ),
                evidence={
                    "levels": len(found),
                    **_evidence(worst, a.excluded.get(worst_row["run_id"], 0)),
                },
                confidence=CONFIDENCE,
            )
        )
    return out


def _evidence(c: Any, excluded: int) -> dict[str, float | int | str | None]:
    return {
        "metric": c.metric,
        "n_slow": c.n_slow,
        "n_rest": c.n_rest,
        "slow_lo_s": c.slow_lo,
        "slow_hi_s": c.slow_hi,
        "rest_median_s": c.rest_median,
        "excluded": excluded,
    }
