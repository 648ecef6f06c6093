"""How findings, the CLI and every report say loads, ranges, intervals and excesses.

One module so that a load reads the same everywhere, and so that the words a brief must
never use ("at all 1 levels", "range 4–4", "by 1494%", a "95% CI" at another confidence)
have one place where they are avoided.
"""

from __future__ import annotations

import polars as pl

from loadlens.analysis.saturation import Level, SloBoundary
from loadlens.config import SLO, format_seconds


def format_load(mode: str, value: float | None) -> str:
    """A load as a noun: `concurrency 64`, `4 req/s`, `maximum throughput (...)`."""
    if value is None:
        # A throughput run (GuideLLM, vLLM rate=inf) sends everything at once.
        return (
            "maximum throughput (all requests at once)"
            if mode == "throughput"
            else "an unrecorded load"
        )
    number = f"{value:.3g}" if value < 100 else f"{value:,.0f}"
    if mode == "concurrency":
        return f"concurrency {number}"
    if mode == "rate":
        return f"{number} req/s"
    return f"load {number}"


def capitalised(text: str) -> str:
    """A phrase opening a sentence: `With all 500 requests sent at once, ...`."""
    return text[:1].upper() + text[1:]


def at_load(mode: str, value: float | None, n_requests: int | None = None) -> str:
    """A load as an adverbial: `at concurrency 64`, `with all 500 requests sent at once`,
    `at an unrecorded load`."""
    if value is None and mode == "throughput":
        return (
            f"with all {n_requests:,} requests sent at once"
            if n_requests
            else "with every request sent at once"
        )
    return "at " + format_load(mode, value)


def format_loads(mode: str, values: list[float]) -> str:
    """`concurrency 60, 80` or `4, 8 req/s`."""
    numbers = ", ".join(f"{v:g}" for v in values)
    return {"concurrency": f"concurrency {numbers}", "rate": f"{numbers} req/s"}.get(
        mode, f"load {numbers}"
    )


def loads_of(levels: pl.DataFrame, run_ids: list[str] | tuple[str, ...]) -> str:
    """`concurrency 64, 128` for the given runs, a mode at a time."""
    rows = levels.filter(pl.col("run_id").is_in(list(run_ids)))
    by_mode: dict[str, list[float | None]] = {}
    for mode, value in zip(rows["load_mode"], rows["load_value"], strict=True):
        by_mode.setdefault(mode, []).append(value)
    parts = []
    for mode, values in by_mode.items():
        known = sorted({v for v in values if v is not None})
        if known:
            parts.append(format_loads(mode, known))
        if None in values:
            parts.append(format_load(mode, None))
    return "; ".join(parts)


def where_levels(affected: int, total: int, mode: str, loads: list[float]) -> str:
    """`at its only level`, `at all 5 levels`, or `at concurrency 64, 128`."""
    if total == 1:
        return "at its only level"
    if affected == total:
        return f"at all {total} levels"
    known = [v for v in loads if v is not None]
    return "at " + format_loads(mode, known) if known else f"at {affected} of {total} levels"


def approx(mode: str, value: float) -> float:
    """An interpolated load, rounded as a reader would quote it: whole users, 2 digits of rate."""
    return float(round(value)) if mode == "concurrency" else float(f"{value:.2g}")


def boundary_range(b: SloBoundary) -> str:
    """`range 64–78`, `range 33 to more than 40` where the samples leave a side open, or
    `range about 4` where both ends round alike."""
    if b.last_ok is None or b.first_breach is None:
        return "range unknown"
    mode = b.load_mode
    if b.boundary_lo is not None and b.boundary_hi is not None:
        lo, hi = approx(mode, b.boundary_lo), approx(mode, b.boundary_hi)
        if lo == hi:
            return f"range about {lo:g}"
        return f"range {lo:g}–{hi:g}"
    lo_text = (
        f"{approx(mode, b.boundary_lo):g}"
        if b.boundary_lo is not None
        else f"from below {b.last_ok.load:g}"
    )
    if b.boundary_hi is not None:
        return f"range {lo_text}–{approx(mode, b.boundary_hi):g}"
    if lo_text == f"{b.first_breach.load:g}":
        return f"range {lo_text} or more"
    return f"range {lo_text} to more than {b.first_breach.load:g}"


def ci_label(confidence: float) -> str:
    """`95% CI` at 0.95, `90% CI` at 0.9: the label follows the level asked for."""
    return f"{confidence * 100:g}% CI"


def format_ci(lo: float | None, hi: float | None, confidence: float, slo: SLO | None = None) -> str:
    fmt = slo.format if slo is not None else format_seconds
    return f"{ci_label(confidence)} {fmt(lo)}–{fmt(hi) if hi is not None else 'unbounded'}"


def _over(value: float, threshold: float) -> str:
    over = value / threshold - 1
    if over >= 0.1:
        return f"{over:.0%}"
    return f"{over:.1%}" if over >= 0.001 else "less than 0.1%"


def _times(ratio: float) -> str:
    return f"{ratio:.0f}×" if ratio >= 10 else f"{ratio:.1f}×"


def format_excess(value: float, threshold: float) -> str:
    """How far over its SLO a value is, as an aside: `16× the SLO`, `4% over it`."""
    ratio = value / threshold
    return f"{_times(ratio)} the SLO" if ratio >= 2 else f"{_over(value, threshold)} over it"


def exceeds(value: float, slo: SLO) -> str:
    """`is 16× the 30 ms SLO` or `exceeds the 10 s SLO by 4%` (never "by 1494%")."""
    ratio = value / slo.threshold_s
    limit = slo.format(slo.threshold_s)
    if ratio >= 2:
        return f"is {_times(ratio)} the {limit} SLO"
    return f"exceeds the {limit} SLO by {_over(value, slo.threshold_s)}"


def sample_note(level: Level | None, confidence: float, slo: SLO | None = None) -> str:
    """`95% CI 2.9 s–3.3 s, n=400`, or why there is no interval."""
    if level is None or level.n is None:
        return "from the tool's summary statistics; no confidence interval available"
    return f"{format_ci(level.lo, level.hi, confidence, slo)}, n={level.n:,}"
