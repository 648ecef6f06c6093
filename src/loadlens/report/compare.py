"""The deployment-options brief: options side by side, the recommendation and why.

Only lays out: every number comes from the analysis (`Recommendation`, `Cost`, the SLO
boundaries); this module words and formats them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel

from loadlens import __version__
from loadlens.analysis.compare import Advice, Capacity, Recommendation, cost_latency_points
from loadlens.config import format_share
from loadlens.findings.format import approx, boundary_range, ci_label, format_load

if TYPE_CHECKING:
    from loadlens.api import Analysis

MODE_NAMES = {"concurrency": "concurrency", "rate": "request rate"}


class CompareBrief(BaseModel):
    title: str
    generated_at: str
    version: str
    slos: list[str]
    recommendation: str
    basis: str  # "cost" | "capacity" | "tie" | "none"
    best: str | None
    tied: list[str]
    profile: str
    columns: list[dict[str, str]]  # key, label, and "num" when right-aligned
    rows: list[dict[str, str]]
    notes: list[str]
    provenance: list[dict[str, str]]
    charts: dict[str, str]


def _load(c: Capacity, value: float) -> str:
    return format_load(c.load_mode, approx(c.load_mode, value))


def _gpu_share(value: float) -> str:
    """A load per GPU: not whole users, so two digits below 10 (`1.2`, `0.45`, `40`)."""
    return f"{value:.2g}" if value < 10 else f"{value:.0f}"


def _per_gpu(c: Capacity, rec: Recommendation) -> str:
    if not rec.per_gpu or c.point_per_gpu is None:
        return ""
    return f", {_gpu_share(c.point_per_gpu)} per GPU ({c.gpus} per replica)"


def _error_note(c: Capacity) -> str:
    rate = c.error_rate_at_capacity
    return f", with {format_share(rate)} of requests failing there" if rate else ""


def capacity_phrase(c: Capacity, rec: Recommendation) -> str:
    """`meets every SLO up to ≈ concurrency 48 (range 40–56; met at 32)`."""
    b = c.boundary
    if c.status == "unjudged" or b is None:
        return "has no level at a recorded load in this mode to place a capacity on"
    if c.status == "breached_at_lowest":
        return f"meets the SLOs at no measured load: it breaches {b.slo} already at " + _load(
            c, b.max_load_measured if b.first_breach is None else b.first_breach.load
        )
    assert c.measured is not None
    if c.lower_bound_only:
        return (
            f"met every SLO at every load measured, up to {_load(c, c.measured)}: its capacity "
            f"is at least that, a lower bound only{_per_gpu(c, rec)}{_error_note(c)}"
        )
    assert c.interpolated is not None and b.first_breach is not None
    spread = f"{boundary_range(b)}; " if c.has_range else ""
    return (
        f"meets every SLO up to ≈ {_load(c, c.interpolated)} ({spread}{b.slo} binds: met at "
        f"{c.measured:g}, breached at {b.first_breach.load:g}){_per_gpu(c, rec)}{_error_note(c)}"
    )


def knee_phrase(c: Capacity) -> str:
    """Why the stable zone lies below the capacity, when a latency knee put it there."""
    if c.zone_bound_by != "knee" or c.zone_load is None or c.knee is None:
        return ""
    return (
        f" Plan {c.option} at {_load(c, c.zone_load)}: its latency turns steep at "
        f"{approx(c.load_mode, c.knee):g}, before its SLO limit, so its stable zone sits below "
        "the knee; the ranking is on SLO capacity, not on that zone."
    )


def advice_phrase(a: Advice) -> str:
    """`measure concurrency 3`, `run more requests per level at concurrency 32–64, ...`."""
    if a.kind == "measure_above":
        return f"measure {a.option} above {format_load(a.load_mode, a.lo)}, to see how far it goes"
    assert a.hi is not None
    if a.kind == "measure_between":
        if a.load_mode == "concurrency" and a.hi - a.lo == 2:
            return f"measure {format_load(a.load_mode, a.lo + 1)}"
        if a.load_mode == "concurrency":
            return f"measure concurrencies between {a.lo:g} and {a.hi:g}"
        if a.load_mode == "rate":
            return f"measure rates between {a.lo:g} and {a.hi:g} req/s"
        return f"measure loads between {a.lo:g} and {a.hi:g}"
    span = (
        format_load(a.load_mode, a.lo)
        if a.hi == a.lo
        else f"{format_load(a.load_mode, a.lo)}–{a.hi:g}"
    )
    return f"run more requests per level at {span}, to narrow the intervals that straddle the SLO"


def recommendation_sentence(rec: Recommendation | None) -> str:
    if rec is None:
        return "No option has measured levels: none can be recommended."
    if rec.basis == "none":
        return _none_sentence(rec)
    best, second = rec.option(rec.best), rec.option(rec.runner_up)
    assert best is not None
    if rec.basis == "tie":
        tied = [c for c in (rec.option(n) for n in rec.tied) if c is not None]
        names = ", ".join(c.option for c in tied[:-1]) + f" and {tied[-1].option}"
        parts = "; ".join(f"{c.option} {capacity_phrase(c, rec)}" for c in tied)
        if rec.cost_ratio is not None and rec.load_mode is None:
            return (
                f"{names} cost the same at this user profile ({_monthly(tied)}); their "
                "capacities were measured in different load modes and are not ranked."
            )
        same_cost = (
            f" cost the same at this user profile ({_monthly(tied)}) and are indistinguishable "
            "on capacity"
            if rec.cost_ratio is not None
            else " are indistinguishable"
        )
        text = f"{names}{same_cost} at this sample size: {parts}."
        if rec.advice:
            how = "; ".join(advice_phrase(a) for a in rec.advice)
            text += f" To separate them: {how}."
        else:
            text += (
                " No load lies between the levels where they met and breached the SLOs: at "
                "this resolution their capacities are equal."
            )
        return text + "".join(knee_phrase(c) for c in tied)
    if rec.basis == "cost":
        c = best.cost
        assert c is not None
        text = (
            f"Choose {best.option}: it serves the user profile within every SLO for "
            f"${c.monthly_usd:,.0f}/month (${c.usd_per_user_month:.2f} per user) with "
            f"{c.replicas:,} replica(s) run at {_load(best, c.load)}"
        )
        if second and second.cost and rec.cost_ratio is not None:
            more = (
                f"{rec.cost_ratio:.0%} more"
                if rec.cost_ratio >= 0.005
                else "about the same (less than 1% more)"
            )
            text += (
                f"; the runner-up, {second.option}, costs {more} "
                f"(${second.cost.monthly_usd:,.0f}/month, {second.cost.replicas:,} replica(s))"
            )
        return text + "." + knee_phrase(best)
    text = f"Choose {best.option}: it {capacity_phrase(best, rec)}"
    if second:
        text += f"; {second.option} {capacity_phrase(second, rec)}"
    how = "per GPU" if rec.per_gpu else "per replica"
    why = (
        f"they cost the same at this user profile ({_monthly([best, second])})"
        if rec.cost_ratio is not None and second is not None
        else "no prices configured for every option"
    )
    return text + f". Ranked on SLO capacity {how} ({why})." + knee_phrase(best)


def _monthly(options: Sequence[Capacity | None]) -> str:
    costs = [c.cost for c in options if c is not None and c.cost is not None]
    each = sorted({f"${k.monthly_usd:,.0f}/month" for k in costs})
    return " and ".join(each) + (" each" if len(each) == 1 and len(costs) > 1 else "")


def _none_sentence(rec: Recommendation) -> str:
    if rec.why_none == "mixed_modes":
        modes = "; ".join(
            f"{name}: {', '.join(MODE_NAMES.get(m, m) for m in ms) or 'no recorded load'}"
            for name, ms in rec.modes.items()
        )
        return (
            f"The options were measured in different load modes ({modes}): their capacities "
            "are in different units, so they are not ranked on load. Measure them in the same "
            "mode, or configure prices to compare them on cost."
        )
    if rec.why_none == "unjudged":
        return "No option has a level the SLOs can be judged on: none can be recommended."
    why = "; ".join(f"{c.option} {capacity_phrase(c, rec)}" for c in rec.options)
    return f"No option meets every SLO at any measured load: none can be recommended ({why})."


def _capacity_cells(c: Capacity) -> dict[str, str]:
    b = c.boundary
    if c.measured is None:
        measured = "none" if c.status == "breached_at_lowest" else "–"
    else:
        measured = ("≥ " if c.lower_bound_only else "") + f"{approx(c.load_mode, c.measured):g}"
    interpolated = (
        f"≈ {approx(c.load_mode, c.interpolated):g}" if c.interpolated is not None else "–"
    )
    if c.interpolated is not None and c.has_range and b is not None:
        interpolated += f" ({boundary_range(b)})"
    return {
        "mode": MODE_NAMES.get(c.load_mode, c.load_mode),
        "measured": measured,
        "interpolated": interpolated,
        "binding": str(c.slo) if c.slo is not None and c.status != "never_breached" else "–",
        "last_ok": (
            c.slo.format(b.last_ok.value)
            if c.slo is not None and b is not None and b.last_ok is not None
            else "–"
        ),
    }


def _zone_cell(c: Capacity) -> str:
    if c.zone_load is None:
        return "–"
    text = f"{approx(c.load_mode, c.zone_load):g}"
    if c.zone_bound_by == "knee" and c.knee is not None:
        text += f" (below its latency knee at {approx(c.load_mode, c.knee):g})"
    return text


def _error_cells(c: Capacity) -> dict[str, str]:
    worst = "–"
    if c.worst_error_rate is not None:
        worst = format_share(c.worst_error_rate)
        if c.worst_error_rate and c.worst_error_load is not None:
            worst += f" at {approx(c.load_mode, c.worst_error_load):g}"
    at = c.error_rate_at_capacity
    return {"errors_at": format_share(at) if at is not None else "–", "errors_worst": worst}


def _cost_cells(c: Capacity) -> dict[str, str]:
    k = c.cost
    return {
        "per_1m": f"${k.usd_per_1m_output:.2f}" if k else "–",
        "replicas": f"{k.replicas:,}" if k else "–",
        "monthly": f"${k.monthly_usd:,.0f}" if k else "–",
        "per_user": f"${k.usd_per_user_month:.2f}" if k else "–",
    }


def table(
    rec: Recommendation, confidence: float | None
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[str]]:
    """(columns, rows, notes): the options side by side, in ranked order."""
    ranged = any(c.interpolated is not None and c.has_range for c in rec.options)
    label = ci_label(confidence) if confidence is not None else "confidence interval"
    columns = [
        {"key": "option", "label": "Option", "class": "name"},
        {"key": "measured", "label": "SLO capacity, measured", "class": "num big"},
        {
            "key": "interpolated",
            "label": f"Interpolated (range: {label})" if ranged else "Interpolated",
            "class": "num",
        },
        {"key": "binding", "label": "Binding SLO", "class": ""},
        {"key": "last_ok", "label": "Its value at the capacity level", "class": "num"},
        {"key": "zone", "label": "Stable zone", "class": "num"},
        {"key": "per_gpu", "label": "Capacity per GPU", "class": "num"},
        {"key": "errors_at", "label": "Error rate at capacity", "class": "num"},
        {"key": "errors_worst", "label": "Worst error rate", "class": "num"},
    ]
    modes = {c.load_mode for c in rec.options}
    if len(modes) > 1:
        columns.insert(1, {"key": "mode", "label": "Load mode", "class": ""})
    priced = any(c.cost is not None for c in rec.options)
    if priced:
        columns += [
            {"key": "per_1m", "label": "$ / 1M output tokens", "class": "num"},
            {"key": "replicas", "label": "Replicas", "class": "num"},
            {"key": "monthly", "label": "$ / month", "class": "num"},
            {"key": "per_user", "label": "$ / user / month", "class": "num"},
        ]
    rows = []
    for c in rec.options:
        per_gpu = c.measured_per_gpu
        rows.append(
            {
                "option": c.option,
                **_capacity_cells(c),
                "zone": _zone_cell(c),
                "per_gpu": (
                    ("≥ " if c.lower_bound_only else "") + _gpu_share(per_gpu)
                    if per_gpu is not None
                    else "–"
                ),
                **_error_cells(c),
                **(_cost_cells(c) if priced else {}),
            }
        )
    notes = [
        "SLO capacity: the highest load at which an option met every SLO, the error budget "
        "included (measured), and where its binding SLO is crossed between levels "
        '(interpolated); "≥" where no SLO was breached at any load measured (a lower bound).'
    ]
    if rec.tie:
        notes.append(
            "Tied options: latency bends upward between measured levels, so an SLO's true "
            "crossing may lie anywhere from its interpolated range up to the first level that "
            "breached it; options whose spans overlap cannot be told apart by these data."
        )
    if not ranged:
        notes.append("No interpolated capacity has a confidence interval to show as a range.")
    unknown = [c.option for c in rec.options if not c.gpus]
    if unknown:
        notes.append(
            f'Per GPU: "–" for {", ".join(unknown)}: GPUs per replica unknown (a hosted '
            "API, or not configured: [deployments.NAME] gpus_per_replica)."
        )
    notes.append(
        "Stable zone: the headroom share of the lower of the SLO limit and the latency knee, "
        "per replica; a knee lowers where to plan, not the capacity the options are ranked on."
    )
    if priced:
        notes.append('Costs at the stable zone; "–" where no price is configured.')
    return columns, rows, notes


def build_compare(analysis: Analysis) -> CompareBrief:
    from loadlens import charts  # altair: loaded only to draw (~0.7 s)
    from loadlens.report.brief import provenance

    rec = analysis.recommendation
    names = analysis.levels["deployment"].unique(maintain_order=True).to_list()
    columns, rows, notes = table(rec, analysis.confidence) if rec else ([], [], [])
    chart_svgs = {"slo": charts.slo_chart(analysis.levels, analysis.latency_slos)}
    if analysis.economics:
        points = cost_latency_points(analysis.levels, analysis.economics.prices)
        if not points.is_empty():
            chart_svgs["pareto"] = charts.pareto_chart(points)
    profile = ""
    if analysis.economics:
        p = analysis.economics.profile
        profile = (
            f"User profile: {p.users:,} users × {p.requests_per_day:g} requests/day over "
            f"{p.active_hours:g} active hours, peak {p.peak_factor:g}× the average."
        )
    return CompareBrief(
        title="Deployment options: " + " vs ".join(names),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        slos=[str(s) for s in analysis.slos],
        recommendation=recommendation_sentence(rec),
        basis=rec.basis if rec else "none",
        best=rec.best if rec else None,
        tied=list(rec.tied) if rec else [],
        profile=profile,
        columns=columns,
        rows=rows,
        notes=notes,
        provenance=provenance(analysis),
        charts=chart_svgs,
    )
