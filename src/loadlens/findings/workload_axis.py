"""What a sweep over input or output length at one load says: how the latency the SLO
holds moves along the axis, where it crosses the SLO, and the fitted cost per token.

The time is called TTFT, never prefill: for a hosted API TTFT is whatever the provider
does before the first token, and even on a self-hosted engine at load it includes waiting.
"""

from __future__ import annotations

import itertools
from typing import Any

from loadlens.analysis.axes import AxisFit, AxisSweep, shown_column
from loadlens.config import METRIC_LABELS, format_seconds
from loadlens.findings.format import at_load, capitalised, format_ci
from loadlens.findings.model import Finding

KIND = "workload_axis"
SECTION = "story"
ORDER = 45
# A request's mean tokens this far from its target are said beside it ("3,894 on average").
TARGET_TOLERANCE = 0.05
AXIS_WORDS = {"input_tokens": "input", "output_tokens": "output"}


def _tokens(value: float) -> str:
    return f"{value:,.0f}"


def find(a: Any) -> list[Finding]:
    return [_finding(s, a.slos, a.confidence) for s in a.axes]


def _finding(sweep: AxisSweep, slos: Any, confidence: float) -> Finding:
    metric = sweep.metric
    label = METRIC_LABELS[metric]
    word = AXIS_WORDS[sweep.axis]
    column, slo = shown_column(sweep.points, metric, slos)
    statistic = column.split("_")[0]
    shown = [p for p in sweep.points if p.stat(column) is not None]
    evidence: dict[str, float | int | str | None] = {
        "load_mode": sweep.load_mode,
        "load_value": sweep.load_value,
        "axis": sweep.axis,
        "statistic": column,
        "points": len(sweep.points),
    }
    parts = []
    over: list[float] = []
    if len(shown) >= 2:
        first, last = shown[0], shown[-1]
        v0, v1 = first.stat(column), last.stat(column)
        assert v0 is not None and v1 is not None
        verb = "grows" if v1 > v0 else "falls" if v1 < v0 else "stays"
        parts.append(
            f"{at_load(sweep.load_mode, sweep.load_value, sweep.n_requests).capitalize()}, "
            f"{statistic} {label} of {sweep.base_deployment} {verb} from {format_seconds(v0)} "
            f"at {_tokens(first.value)} {word} tokens to {format_seconds(v1)} at "
            f"{_tokens(last.value)}"
        )
        evidence |= {
            "from_tokens": first.value,
            "from_value_s": v0,
            "to_tokens": last.value,
            "to_value_s": v1,
        }
        if slo is not None:
            clause, over = _slo_clause(shown, column, slo.threshold_s)
            parts[-1] += f" ({clause})"
            evidence["slo_threshold_s"] = slo.threshold_s
            evidence["points_over_slo"] = len(over)
            crossing = _crossing(shown, column, slo.threshold_s)
            if crossing:
                evidence["crossed_after_tokens"], evidence["crossed_by_tokens"] = crossing
        else:
            wanted = next(
                (
                    s
                    for s in slos
                    if s.is_latency and s.metric == metric and s.statistic != statistic
                ),
                None,
            )
            if wanted is not None:
                parts[-1] += f" ({wanted.statistic} not recorded, so {wanted} is not judged here)"
    fit = sweep.fit
    if fit is not None:
        parts.append(_slope_clause(sweep, fit, confidence, label, word))
        evidence |= _fit_evidence("", fit)
        if sweep.disagree and sweep.run_fit is not None:
            r = sweep.run_fit
            more = "more" if r.slope_s_per_token > fit.slope_s_per_token else "less"
            ci = (
                f", {format_ci(r.slope_lo, r.slope_hi, confidence)}"
                if r.slope_lo is not None
                else ""
            )
            parts.append(
                f"across the runs, mean {label} grows {format_seconds(r.slope_s_per_token)} per "
                f"{word} token{ci}: the runs' length moves {label} {more} than a request's own "
                f"{word} tokens do"
            )
            evidence |= _fit_evidence("run_", r)
    else:
        parts.append(f"no per-token slope could be fitted: no run records a mean or median {label}")
    sentence = "; ".join(parts) + "."
    sentence = capitalised(sentence)
    return Finding(
        kind=KIND,
        severity="warning" if over else "info",
        deployment=sweep.base_deployment,
        sentence=sentence,
        evidence=evidence,
        confidence=_confidence(sweep, fit, confidence, label, word),
    )


def _slo_clause(shown: list[Any], column: str, threshold: float) -> tuple[str, list[float]]:
    slo_text = f"the {format_seconds(threshold)} SLO"
    over = [p.value for p in shown if p.stat(column) > threshold]
    if not over:
        return f"within {slo_text} throughout", over
    if len(over) == len(shown):
        return f"over {slo_text} at every length", over
    crossing = _crossing(shown, column, threshold)
    if crossing:
        lo, hi = crossing
        return f"{slo_text} is crossed between {_tokens(lo)} and {_tokens(hi)}", over
    return f"over {slo_text} at {', '.join(_tokens(v) for v in over)}", over


def _crossing(shown: list[Any], column: str, threshold: float) -> tuple[float, float] | None:
    """The first step along the axis from within the SLO to over it."""
    for before, after in itertools.pairwise(shown):
        if before.stat(column) <= threshold < after.stat(column):
            return before.value, after.value
    return None


def _slope_clause(sweep: AxisSweep, fit: AxisFit, confidence: float, label: str, word: str) -> str:
    slope = format_seconds(fit.slope_s_per_token)
    if fit.slope_lo is None or fit.slope_hi is None:
        return (
            f"{fit.n} points are too few for an interval on the per-token slope "
            f"(the line through them: {slope} per {word} token)"
        )
    ci = format_ci(fit.slope_lo, fit.slope_hi, confidence)
    if not fit.significant:
        return f"the per-token slope cannot be told from zero ({slope} per {word} token, {ci})"
    verb = "grows" if fit.slope_s_per_token > 0 else "falls"
    text = f"{label} {verb} {format_seconds(abs(fit.slope_s_per_token))} per {word} token ({ci})"
    if fit.intercept_s < 0:
        return text + (
            f", faster than in proportion to length (the fitted line's intercept is "
            f"−{format_seconds(-fit.intercept_s)}), so no share of {label} is given"
        )
    if fit.share_at_max is None or fit.share_at_max < 0:
        return text
    largest = sweep.points[-1].value
    where = f"at {_tokens(largest)} tokens"
    if abs(fit.share_tokens - largest) > TARGET_TOLERANCE * largest:
        where = f"in the {_tokens(largest)}-token run ({_tokens(fit.share_tokens)} on average)"
    reference = "mean" if fit.basis != "run medians" else "median"
    return text + (
        f"; {where} the per-token part of {label} is {fit.share_at_max:.0%} of {reference} {label}"
    )


def _fit_evidence(prefix: str, fit: AxisFit) -> dict[str, float | int | str | None]:
    return {
        f"{prefix}fit_basis": fit.basis,
        f"{prefix}fit_n": fit.n,
        f"{prefix}fit_runs": fit.n_runs,
        f"{prefix}slope_s_per_token": fit.slope_s_per_token,
        f"{prefix}slope_ci_lo": fit.slope_lo,
        f"{prefix}slope_ci_hi": fit.slope_hi,
        f"{prefix}intercept_s": fit.intercept_s,
        f"{prefix}r2": fit.r2,
        f"{prefix}significant": "yes" if fit.significant else "no",
        f"{prefix}share_tokens": fit.share_tokens,
        f"{prefix}share_reference_s": fit.share_reference_s,
        f"{prefix}share_at_max": fit.share_at_max,
    }


def _confidence(
    sweep: AxisSweep, fit: AxisFit | None, confidence: float, label: str, word: str
) -> str:
    if fit is None:
        return f"{len(sweep.points)} runs; no latency to fit"
    dof = fit.n - 2
    interval = (
        f"{confidence * 100:g}% interval from Student's t with {dof} degrees of freedom"
        if dof > 0
        else "no interval (fewer than 3 points)"
    )
    if fit.basis == "requests":
        basis = (
            f"least squares over {fit.n:,} successful requests of {fit.n_runs} runs, "
            f"each request's {label} on its own {word} tokens"
        )
    else:
        stat = "mean" if fit.basis == "run means" else "median"
        has_rows = all(p.mean_tokens is not None for p in sweep.points)
        against = f"their mean {word} tokens" if has_rows else f"their target {word} length"
        basis = f"least squares over the {stat} {label} of {fit.n} runs against {against}"
        if not has_rows:
            basis += " (summary only: no request rows)"
    runs = (
        "one run per length, none repeated"
        if len(sweep.values) == len(sweep.points)
        else f"{len(sweep.points)} runs at {len(sweep.values)} lengths"
    )
    return f"{basis}; {interval}; {runs}"
