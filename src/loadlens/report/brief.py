"""Lay out an Analysis as a brief: the decision, key numbers, findings, tables, provenance.

The report only arranges what the models and findings hand it; every number shown here is
formatted from a model result, never computed anew.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import polars as pl
from pydantic import BaseModel

from loadlens import __version__
from loadlens.analysis.result import Analysis
from loadlens.analysis.saturation import OperatingZone, RunVerdict, SloBoundary
from loadlens.analysis.strain import KV_HIGH, Strain
from loadlens.analysis.timeline import SUSTAINED
from loadlens.analysis.variants import SERIES_SEPARATOR, run_variants
from loadlens.config import format_seconds, format_share
from loadlens.findings import NOTES, STORY, Finding, approx, at_load, boundary_range, format_load
from loadlens.findings.capacity import judged_slos, lower_loads_advice
from loadlens.findings.early_warning import signal_text
from loadlens.findings.format import capitalised
from loadlens.findings.load_shortfall import level_label
from loadlens.trace import stored_object


class FindingGroup(BaseModel):
    title: str
    findings: list[Finding]  # in STORY order
    notes: list[Finding]  # qualifications: method fits, sample sizes, data caveats


def group_findings(findings: list[Finding], deployments: list[str]) -> list[FindingGroup]:
    """One group per deployment (in the given order), then one for findings about none."""
    rank = {kind: i for i, kind in enumerate(STORY + NOTES)}
    groups = []
    for name in [*dict.fromkeys(deployments), None]:  # a deployment swept in two modes: once
        mine = sorted(
            (f for f in findings if f.deployment == name), key=lambda f: rank.get(f.kind, 99)
        )
        if mine:
            groups.append(
                FindingGroup(
                    title=name or "All deployments",
                    findings=[f for f in mine if f.kind not in NOTES],
                    notes=[f for f in mine if f.kind in NOTES],
                )
            )
    return groups


class Brief(BaseModel):
    title: str
    generated_at: str
    version: str
    slos: list[str]
    decision: str
    simulated: bool
    notes: list[str]  # what the measurements are, as their deployments say
    key_numbers: list[dict[str, str]]
    findings: list[Finding]
    finding_groups: list[FindingGroup]
    level_tables: dict[str, list[dict[str, str]]]
    provenance: list[dict[str, str]]
    sample_notes: list[str]
    method_notes: list[str]  # per source format: its numbers against the tool's own
    cost_rows: list[dict[str, str]]
    cost_basis: str
    charts: dict[str, str]  # the first group's (concurrency, where measured)
    chart_groups: list[dict[str, Any]] = []  # per load mode: heading, charts
    missing_charts: list[str]  # each chart not drawn, with why
    axis_charts: list[dict[str, str]]  # latency against a swept length, per sweep
    # the story over time: per series, the highest level within every SLO beside the first
    # one to break an SLO (title, note, svg); and every timed level as small multiples
    stories: list[dict[str, str]] = []
    story_grids: list[dict[str, str]] = []
    story_notes: list[str] = []  # what has no story, and why
    short_names: dict[str, str]  # series -> what the page calls it (see short_name)
    ci: str  # "95%": the confidence level every interval is at
    headroom: str  # "80%": the stable zone's share of the lower limit
    error_budget: str  # "error rate ≤ 1%"


MODE_LABELS = {
    "concurrency": "In the concurrency sweeps",
    "rate": "In the request-rate sweeps",
    "throughput": "At maximum throughput",
}


def decision(analysis: Analysis) -> str:
    """The decision: how much load each deployment can carry within its SLOs, series by
    series where its runs differ in workload or settings, and how runs with no load to
    place them fared. It says what it rests on where an SLO cannot be judged."""
    base_of = dict(analysis.levels.select("deployment", "base_deployment").unique().iter_rows())
    series: dict[str, list[str]] = {}
    for name in analysis.levels["deployment"].unique(maintain_order=True).to_list():
        series.setdefault(base_of[name], []).append(name)
    parts = []
    single = [b for b in analysis.binding if len(series[base_of[b.deployment]]) == 1]
    if single:
        parts.append(_sweep_decision(single))
    for base, names in series.items():
        bs = [b for b in analysis.binding if b.deployment in names]
        if len(names) > 1 and bs:
            parts.append(_series_decision(base, bs))
    if analysis.verdicts:
        parts.append(_verdict_decision(analysis.verdicts))
    for base, names in series.items():
        notes = dict.fromkeys(
            note for n in names if (note := judged_slos(analysis, n)[1]) and n in base_of
        )
        judged_any = any(b.deployment in names for b in analysis.binding) or any(
            v.deployment in names for v in analysis.verdicts
        )
        if notes and judged_any:
            parts.append(
                f"For {base}, that rests only on what can be judged"
                f"{' and '.join(notes)}: see the findings."
            )
    if parts:
        return " ".join(parts)
    unjudged = [c for c in analysis.coverage if c.unjudged_run_ids]
    if unjudged:
        asked = ", ".join(dict.fromkeys(str(c.slo) for c in unjudged))
        carried = ", ".join(sorted({s for c in unjudged for s in c.carried}))
        return (
            f"No SLO can be judged on these runs: {asked} need statistics their files do "
            f"not carry (they carry {carried or 'none'}; see the findings for how to judge "
            "them)."
        )
    return "No run carries a latency or a request count the SLOs can be judged on."


def _natural(text: str) -> list[Any]:
    """Sort key that puts `in 2,048 tok` before `in 15,000 tok`."""
    import re

    return [
        float(t.replace(",", "")) if t.replace(",", "").replace(".", "").isdigit() else t
        for t in re.split(r"(\d[\d,]*(?:\.\d+)?)", text)
        if t
    ]


def _series_decision(base: str, binding: list[SloBoundary]) -> str:
    """`X, run by run: in 1,024 tok meets them at concurrency 100 (its one load); ...`."""
    sep = SERIES_SEPARATOR
    ordered = sorted(binding, key=lambda b: _natural(b.deployment.removeprefix(base + sep)))
    parts = []
    for b in ordered:
        variant = (
            b.deployment[len(base + sep) :]
            if b.deployment.startswith(base + sep)
            else "runs whose files state no workload"
        )
        mode = b.load_mode
        if b.status == "never_breached":
            where = (
                f"at {format_load(mode, b.max_load_measured)} (its one load)"
                if b.n_loads == 1
                else f"up to {format_load(mode, b.max_load_measured)} (never breached)"
            )
            parts.append(f"{variant} meets them {where}")
        elif b.status == "breached_at_lowest":
            first = b.first_breach
            assert first is not None
            parts.append(
                f"{variant} misses {b.slo} at {format_load(mode, first.load)} "
                f"({b.slo.label} {b.slo.format(first.value)})"
            )
        else:
            assert b.last_ok is not None and b.boundary_load is not None
            parts.append(
                f"{variant} meets them up to {format_load(mode, b.last_ok.load)} and misses "
                f"{b.slo} at {format_load(mode, b.first_breach.load)}"  # type: ignore[union-attr]
            )
    return f"{base}, variant by variant, against every SLO judged: " + "; ".join(parts) + "."


def _verdict_decision(verdicts: list[RunVerdict]) -> str:
    by_run: dict[str, list[RunVerdict]] = {}
    for v in verdicts:
        by_run.setdefault(v.run_id, []).append(v)
    out = []
    for vs in by_run.values():
        v0 = vs[0]
        where = at_load(v0.load_mode, None, v0.n_requests)
        missed = [v for v in vs if not v.meets]
        if missed:
            out.append(
                f"{capitalised(where)}, {v0.deployment} misses "
                + ", ".join(
                    f"{v.slo} ({v.slo.label} {v.slo.format(v.level.value)})" for v in missed
                )
                + "."
            )
        else:
            out.append(f"{capitalised(where)}, {v0.deployment} meets every SLO.")
    return " ".join(out)


def _sweep_decision(binding: list[SloBoundary]) -> str:
    modes = list(dict.fromkeys(b.load_mode for b in binding))
    if len(modes) > 1:  # a concurrency and a rate are not one scale: decide per mode
        return " ".join(
            f"{MODE_LABELS.get(m, m)}: " + _sweep_decision([b for b in binding if b.load_mode == m])
            for m in modes
        )
    ranked = sorted(binding, key=lambda b: b.capacity, reverse=True)
    best = ranked[0]

    def limit(b: SloBoundary) -> str:
        if b.slo == SUSTAINED and b.last_ok and b.first_breach:
            return (
                f"{format_load(b.load_mode, b.last_ok.load)} (latency keeps growing at "
                f"{format_load(b.load_mode, b.first_breach.load)})"
            )
        if b.status == "never_breached":
            if b.n_loads == 1:
                return f"{format_load(b.load_mode, b.max_load_measured)} met (its one load)"
            return f"at least {format_load(b.load_mode, b.max_load_measured)} (never breached)"
        if b.status == "breached_at_lowest":
            return "none of the measured loads"
        return f"about {format_load(b.load_mode, approx(b.load_mode, b.boundary_load or 0))}"

    def advice(b: SloBoundary) -> str:
        if b.last_ok is None:
            return f"none for {b.deployment}"
        return f"{format_load(b.load_mode, b.last_ok.load)} on {b.deployment}"

    if len(ranked) == 1:
        if best.status == "breached_at_lowest":
            where = (
                "at its one measured load"
                if best.n_loads == 1
                else "even at the lightest measured load"
            )
            first = best.first_breach
            assert first is not None
            return (
                f"{best.deployment} misses {best.slo} {where}, "
                f"{format_load(best.load_mode, first.load)} "
                f"({best.slo.label} {best.slo.format(first.value)}): "
                f"{lower_loads_advice(best)}."
            )
        if best.status == "never_breached":
            if best.n_loads == 1:
                return (
                    f"{best.deployment} meets the SLOs at its one measured load, "
                    f"{format_load(best.load_mode, best.max_load_measured)}; measure more "
                    "loads to find where it stops."
                )
            return (
                f"{best.deployment} meets every SLO at every measured load, up to "
                f"{format_load(best.load_mode, best.max_load_measured)}; measure higher "
                "loads to find where it stops."
            )
        breaks = (
            f"At {format_load(best.load_mode, best.first_breach.load)} latency keeps growing "  # type: ignore[union-attr]
            "through the run: the server falls behind that load."
            if best.slo == SUSTAINED
            else f"{best.slo} breaks at {limit(best)}."
        )
        return (
            f"Run {best.deployment} at no more than "
            f"{format_load(best.load_mode, best.last_ok.load)} per replica: "  # type: ignore[union-attr]
            f"the highest measured load meeting every SLO. {breaks}"
        )
    second = ranked[1]
    comparable = best.status == "crossed" and second.status == "crossed" and second.boundary_load
    ratio = (
        f", {best.boundary_load / second.boundary_load:.1f}× that of {second.deployment}"  # type: ignore[operator]
        if comparable
        else ""
    )
    others = "; ".join(f"{b.deployment}: {limit(b)}" for b in ranked[1:])
    return (
        f"{best.deployment} carries the most load within SLO: {limit(best)} per replica"
        f"{ratio} ({others}). The highest measured loads meeting every SLO: "
        f"{'; '.join(advice(b) for b in ranked)}."
    )


def zone_sentence(zones: list[OperatingZone]) -> str:
    """Where to plan capacity: the stable operating zones, best first."""
    if not zones:
        return ""
    ranked = sorted(zones, key=lambda z: z.max_load, reverse=True)
    listed = "; ".join(
        f"{format_load(z.load_mode, approx(z.load_mode, z.max_load))} on {z.deployment}"
        for z in ranked
    )
    return (
        f" Plan capacity on the stable zones ({ranked[0].headroom:.0%} of the lower of SLO "
        f"limit and latency knee): up to {listed}."
    )


def cost_rows(analysis: Analysis) -> list[dict[str, str]]:
    return [
        {
            "deployment": c.deployment,
            "point": f"{format_load(c.load_mode, approx(c.load_mode, c.load))}, {c.rps:.2f} req/s",
            "replica_hour": f"${c.replica_hour_usd:.2f}",
            "per_1m_output": f"${c.usd_per_1m_output:.2f}",
            "per_1m_total": f"${c.usd_per_1m_total:.3f}",
            "per_request": f"${c.usd_per_request:.5f}",
            "users_per_replica": f"{c.users_per_replica:,.0f}",
            "replicas": f"{c.replicas:,}",
            "monthly": f"${c.monthly_usd:,.0f}",
            "per_user": f"${c.usd_per_user_month:.2f}",
            "hosted_per_user": (
                f"${c.hosted_usd_per_user_month:.2f}"
                if c.hosted_usd_per_user_month is not None
                else "–"
            ),
            "break_even": (f"{c.break_even_users:,.0f}" if c.break_even_users is not None else "–"),
        }
        for c in sorted(analysis.costs, key=lambda c: c.usd_per_user_month)
    ]


def cost_basis(analysis: Analysis) -> str:
    e = analysis.economics
    if e is None:
        return ""
    p = e.profile
    text = (
        f"{p.users:,} users × {p.requests_per_day:g} requests/day over {p.active_hours:g} "
        f"active hours, peak {p.peak_factor:g}× the average ({p.peak_rps_per_user * 1000:.2f} "
        "req/s per 1,000 users at peak); replicas run all month (730 h); throughput at the "
        "stable zone, interpolated between measured levels."
    )
    if e.hosted:
        text += (
            f" Hosted API: ${e.hosted.input_usd_per_1m:g} / ${e.hosted.output_usd_per_1m:g} "
            "per 1M input / output tokens."
        )
    return text


def _fmt_num(value: float | None, spec: str = ",.0f") -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else format(value, spec)
    )


def _modes(analysis: Analysis) -> dict[str, int]:
    """How many load modes each deployment was measured in."""
    counts = analysis.levels.group_by("deployment").agg(pl.col("load_mode").n_unique())
    return dict(counts.iter_rows())


def key_numbers(analysis: Analysis, binding: list[SloBoundary]) -> list[dict[str, str]]:
    rows = []
    modes = _modes(analysis)
    several = len({b.load_mode for b in binding}) > 1
    for b in binding:
        mixed = several or modes.get(b.deployment, 1) > 1  # then every load names its mode

        def load(value: float, mode: str = b.load_mode, mixed: bool = mixed) -> str:
            return format_load(mode, value) if mixed else f"{value:g}"

        lv = analysis.levels.filter(
            (pl.col("deployment") == b.deployment) & (pl.col("load_mode") == b.load_mode)
        )
        peak = lv.sort("output_throughput_tps", descending=True, nulls_last=True).row(0, named=True)
        if b.slo == SUSTAINED and b.first_breach is not None:
            interp = f"< {b.first_breach.load:g} (latency keeps growing there)"
        elif b.status == "crossed":
            interp = f"≈ {approx(b.load_mode, b.boundary_load or 0):g} ({boundary_range(b)})"
        elif b.status == "never_breached":
            interp = "unknown (one load)" if b.n_loads == 1 else f"> {b.max_load_measured:g}"
        else:
            interp = "none (its one load misses)" if b.n_loads == 1 else "< lowest measured"
        zone = next(
            (
                z
                for z in analysis.zones
                if (z.deployment, z.load_mode) == (b.deployment, b.load_mode)
            ),
            None,
        )
        at_cap = lv.filter(pl.col("load_value") == b.last_ok.load) if b.last_ok else lv.clear()
        rows.append(
            {
                "deployment": b.deployment,
                "label": short_name(analysis, b.deployment)
                + (f" ({b.load_mode})" if mixed else ""),
                "last_ok": load(b.last_ok.load) if b.last_ok else "none",
                "boundary": interp,
                "zone": f"≤ {approx(b.load_mode, zone.max_load):g}" if zone else "–",
                "binding_slo": str(b.slo),
                "value_at_last_ok": (
                    "–"
                    if not b.last_ok
                    else "not growing"
                    if b.slo == SUSTAINED
                    else b.slo.format(b.last_ok.value)
                ),
                "error_rate": _worst_errors(lv),
                "peak_tps": f"{_fmt_num(peak['output_throughput_tps'])} at "
                + (load(peak["load_value"]) if peak["load_value"] is not None else "–"),
                "goodput_at_last_ok": (
                    f"{at_cap['goodput_rps'][0]:.2f} req/s"
                    if at_cap.height and at_cap["goodput_rps"][0] is not None
                    else "–"
                ),
                "requests": f"{int(lv['n_requests'].sum()):,}",
                "load_mode": b.load_mode,
            }
        )
    return rows


def short_name(analysis: Analysis, series: str) -> str:
    """A series by what differs (`in 8,192 tok`) where the brief is about one deployment;
    its full name where several deployments share the page."""
    bases = analysis.levels["base_deployment"].unique().to_list()
    if len(bases) == 1 and series.startswith(bases[0] + SERIES_SEPARATOR):
        return series[len(bases[0] + SERIES_SEPARATOR) :]
    return series


def _worst_errors(lv: pl.DataFrame) -> str:
    """`0%`, or the worst level's share of failed requests and where: `87% at c5`."""
    rates = lv.filter(pl.col("error_rate").is_not_null())
    if rates.is_empty():
        return "–"
    worst = rates.sort("error_rate", descending=True).row(0, named=True)
    if not worst["error_rate"]:
        return "0%"
    return f"{format_share(worst['error_rate'])} at " + (
        f"{worst['load_value']:g}" if worst["load_value"] is not None else "burst"
    )


def _errors_cell(row: dict[str, Any]) -> str:
    if row["n_errors"] is None:
        return "–"
    text = f"{row['n_errors']:,}"
    if row["n_errors"] and row["error_rate"] is not None:
        text += f" ({format_share(row['error_rate'])})"
    if row.get("n_cancelled"):
        text += f" +{row['n_cancelled']:,} cancelled"
    return text


def _verdict_cell(missed: tuple[str, ...] | None, disturbed: bool = False) -> str:
    """`meets`, `misses p95 E2E, error rate`, `unsustainable; misses p95 E2E` (latency kept
    growing through the run), or `not judged`; `(client lagged)` where the load generator
    fell behind what it measured there."""
    if missed is None:
        text = "not judged"
    elif not missed:
        text = "meets"
    else:
        others = [m for m in missed if m != SUSTAINED.label]
        text = "; ".join(
            (["unsustainable"] if len(others) < len(missed) else [])
            + (["misses " + ", ".join(others)] if others else [])
        )
    return text + (" (client lagged)" if disturbed else "")


def _cold_cell(analysis: Analysis, run_id: str) -> str:
    """`cold start ×10` (its first 10 requests far slower, kept in the statistics), `first
    wave ×40` (a closed-loop level's streams starting together), `…, left out`, or empty."""
    c = analysis.cold_starts.get(run_id)
    if c is None:
        return ""
    kind = "first wave" if c.first_wave else "cold start"
    return f"{kind} ×{c.n_slow}" + (", left out" if analysis.excluded.get(run_id) else "")


def _ci(row: dict[str, Any], col: str) -> str:
    """`[2.9 s, 3.3 s]`, with `?` for a side the sample cannot bound; empty without a CI."""
    lo, hi = row.get(f"{col}_lo"), row.get(f"{col}_hi")
    if row.get(col) is None or (lo is None and hi is None):
        return ""
    return f"[{format_seconds(lo) if lo is not None else '?'}, " + (
        f"{format_seconds(hi)}]" if hi is not None else "?]"
    )


WHATIF_NOTE = (
    "What-if predictions rescale the requests measured at the level (shorter outputs: TTFT "
    "as measured, each decode step plus the prefill of the faster cycle; replicas: the sweep "
    "read at the load per replica). Checked on a real engine (llama.cpp, SmolLM2-135M on one "
    "CPU thread, make bench-whatif-real): output cuts within 0-17% of the measured p95 "
    "(means within 14%), loads read between measured levels 10-44% optimistic, where the "
    "same level measured twice moved 16-28%. Read them as the direction and size of a "
    "change, and confirm by running it."
)


def method_notes(analysis: Analysis) -> list[str]:
    """What each source format's numbers mean where they differ from the tool's own, and
    how far the what-ifs have been checked, where the brief has one."""
    from loadlens import sources

    formats = analysis.runs["format"].unique(maintain_order=True).to_list()
    notes = [
        f"{fmt}: {note}"
        for fmt in formats
        if (note := getattr(sources.FORMATS.get(fmt), "METHOD_NOTE", None))
    ]
    return [warmup_note(analysis), *notes] + ([WHATIF_NOTE] if analysis.whatifs else [])


def warmup_note(analysis: Analysis) -> str:
    """Which warm-up policy the statistics follow, and what it left out."""
    cold = len(analysis.cold_starts)
    waves = sum(c.first_wave for c in analysis.cold_starts.values())
    left = sum(analysis.excluded.values())
    levels = f"{len(analysis.excluded)} level{'s' if len(analysis.excluded) != 1 else ''}"
    if analysis.warmup == "kept":
        began = (
            f"a cold start or first wave ({waves} first wave{'s' if waves != 1 else ''})"
            if waves and waves < cold
            else "a first wave (its streams' first requests queued together)"
            if waves
            else "a cold start"
        )
        found = (
            f"; {cold} level{'s' if cold != 1 else ''} began with {began}, kept in "
            "their statistics and reported in the findings (--exclude-warmup auto leaves "
            "those requests out)"
            if cold
            else "; no level began with a cold start"
        )
        return "Warm-up: every request is in the statistics (--exclude-warmup 0)" + found + "."
    if analysis.warmup == "auto":
        return (
            "Warm-up: --exclude-warmup auto: the slow first requests (cold start or first "
            "wave) found at the beginning of "
            f"{levels} is left out of their statistics ({left:,} requests in all); every "
            "other level keeps all its requests."
        )
    return (
        f"Warm-up: --exclude-warmup {analysis.warmup}: the first {analysis.warmup} requests "
        f"(by send time) of every level with send times are left out of its statistics "
        f"({left:,} requests over {levels})."
    )


def warning_sentence(strains: list[Strain]) -> str:
    """The early warnings in one sentence: where every SLO still holds but the server is
    running out of room, what shows it, the headroom left, and what the next step misses."""
    if not strains:
        return ""

    def clause(w: Strain) -> str:
        signals = " and ".join(signal_text(k, v) for k, v in w.signals.items())
        room = f" ({w.headroom:.0%} headroom on {w.tightest})" if w.headroom is not None else ""
        text = (
            f"at {format_load(w.load_mode, w.load)}, {w.deployment} meets every SLO{room} "
            f"but {signals}"
        )
        if w.next_missed and w.next_load is not None:
            misses = [m for m in w.next_missed if m != SUSTAINED.label]
            said = (["misses " + ", ".join(misses)] if misses else []) + (
                ["falls behind"] if SUSTAINED.label in w.next_missed else []
            )
            text += f"; at {format_load(w.load_mode, w.next_load)} it " + " and ".join(said)
        return text

    head = "Early warning" + ("s" if len(strains) > 1 else "")
    return f" {head}: " + "; ".join(map(clause, strains)) + "."


def level_tables(analysis: Analysis) -> dict[str, list[dict[str, str]]]:
    tables: dict[str, list[dict[str, str]]] = {}
    modes = _modes(analysis)
    variant = run_variants(analysis.runs)
    asked = {s.run_id: label for s in analysis.shortfalls if (label := level_label(s))}
    for row in analysis.levels.iter_rows(named=True):
        mixed = modes.get(row["deployment"], 1) > 1
        cells = {
            "variant": variant.get(row["run_id"], ""),
            "load": asked.get(row["run_id"])
            or (
                format_load(row["load_mode"], row["load_value"])
                if mixed or row["load_value"] is None
                else f"{row['load_value']:g}"
            ),
            "n": f"{row['n_requests']:,}" if row["n_requests"] is not None else "–",
            "errors": _errors_cell(row),
            "verdict": _verdict_cell(
                analysis.missed.get(row["run_id"]), row["run_id"] in analysis.disturbed
            ),
            "miss": "yes" if analysis.missed.get(row["run_id"]) else "",
            "cold": _cold_cell(analysis, row["run_id"]),
            "tps": _fmt_num(row["output_throughput_tps"]),
            "goodput": _fmt_num(row["goodput_rps"], ".2f"),
            "basis": row["basis"],
        }
        for col in ("p50_e2e_s", "p95_e2e_s", "p99_e2e_s", "p95_ttft_s", "p95_tpot_s"):
            cells[col] = format_seconds(row.get(col))
            cells[f"{col}_ci"] = _ci(row, col)
        tables.setdefault(row["deployment"], []).append(cells)
    return tables


def provenance(analysis: Analysis) -> list[dict[str, str]]:
    return [
        {
            "deployment": r["deployment"],
            "load": format_load(r["load_mode"], r["load_value"]),
            "file": r["source_path"],
            "tool": r["tool"] + (f" {r['tool_version']}" if r["tool_version"] else ""),
            "sha256": r["source_sha256"][:12],
            "rows": f"{r['request_rows']:,}" if r["request_rows"] else "summary only",
        }
        for r in analysis.runs.iter_rows(named=True)
    ]


def deployment_notes(analysis: Analysis) -> list[str]:
    """What the deployments' owners said the measurements are (`note` attribute), once each:
    e.g. that a real engine on CPU is a test bed, not a production capacity."""
    notes = []
    for params in analysis.deployments["params"].to_list():
        note = stored_object(params).get("note")
        if isinstance(note, str) and note not in notes:
            notes.append(note)
    return notes


def _is_simulated(analysis: Analysis) -> bool:
    for params in analysis.deployments["params"].to_list():
        if stored_object(params).get("simulated"):
            return True
    return False


def axis_charts(analysis: Analysis) -> list[dict[str, str]]:
    """Latency against the swept length, one chart per sweep at one load."""
    from loadlens import charts  # altair: loaded only to draw (~0.7 s)

    return [
        {
            "title": f"{s.base_deployment}: latency vs {s.axis.split('_')[0]} length "
            f"{at_load(s.load_mode, s.load_value)}",
            "svg": charts.axis_chart(s, analysis.slos),
        }
        for s in analysis.axes
    ]


SWEEP_NAMES = {"concurrency": "concurrency sweep", "rate": "request-rate sweep"}
GRID_COLUMNS = 8  # levels per row of small multiples
# Series whose story is drawn: each costs about 1.5 s of charts and two pages, so a brief
# of many options draws the ones a reader needs first (the recommended option and its
# runner-up, then those with an early warning or a load they do not sustain, then the
# rest in order) and says where the others are.
STORY_SERIES = 6


def _story_order(analysis: Analysis, names: list[str]) -> list[str]:
    """`names` (series), the ones whose story the brief draws first."""
    rec = analysis.recommendation
    first = [n for n in (rec.best, rec.runner_up) if n] if rec else []
    strained = {w.deployment for w in analysis.strains}
    unsustained = {b.deployment for b in analysis.boundaries if b.slo == SUSTAINED}

    def rank(name: str) -> tuple[int, int]:
        if name in first:
            return (0, first.index(name))
        return (1 if name in strained or name in unsustained else 2, names.index(name))

    return sorted(dict.fromkeys(names), key=rank)


def _drawn_series(analysis: Analysis, names: list[str]) -> set[str]:
    return set(_story_order(analysis, names)[:STORY_SERIES])


def _stories_left_out(analysis: Analysis, names: list[str]) -> str | None:
    left = [n for n in _story_order(analysis, names)[STORY_SERIES:]]
    if not left:
        return None
    shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5 else "")
    return (
        f"The stories over time of {len(left)} more options ({shown}) are not drawn here, to "
        "keep the brief short: `loadlens report -d NAME` draws one option's, and `--format "
        "json` carries every level's in numbers (levels_over_time)."
    )


def _series(analysis: Analysis) -> list[tuple[str, str, list[dict[str, Any]]]]:
    """(series, load mode, its levels with a load, lightest first), in the levels' order."""
    placed = analysis.levels.filter(pl.col("load_value").is_not_null())
    return [
        (str(name), str(mode), rows.sort("load_value").to_dicts())
        for (name, mode), rows in placed.group_by("deployment", "load_mode", maintain_order=True)
    ]


def _series_title(analysis: Analysis, name: str, mode: str) -> str:
    mixed = _modes(analysis).get(name, 1) > 1
    return short_name(analysis, name) + (f", {SWEEP_NAMES.get(mode, mode)}" if mixed else "")


def story_levels(analysis: Analysis) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """Per series: the highest load meeting every SLO below the first that misses one, and
    that first one, as (run_id, role); as `analysis.missed` judged them."""
    out = []
    for name, mode, rows in _series(analysis):
        judged = [r for r in rows if analysis.missed.get(r["run_id"]) is not None]
        breach = next((r for r in judged if analysis.missed[r["run_id"]]), None)
        below = [r for r in judged if breach is None or r["load_value"] < breach["load_value"]]
        ok = next((r for r in reversed(below) if not analysis.missed[r["run_id"]]), None)
        picked = ([(ok["run_id"], "within")] if ok else []) + (
            [(breach["run_id"], "breach")] if breach else []
        )
        if picked:
            out.append((name, mode, picked))
    return out


def _level_verdict(analysis: Analysis, run_id: str) -> str:
    missed = analysis.missed.get(run_id)
    if missed is None:
        return "not judged"
    if not missed:
        return "meets every SLO"
    return _verdict_cell(missed)


def stories(analysis: Analysis) -> tuple[list[dict[str, str]], list[str]]:
    """The story figure of each series (its highest level within every SLO beside the first
    to break one, over time), and for each series or level without one, why."""
    from loadlens import charts  # altair: loaded only to draw (~0.7 s)

    figures, notes = [], []
    level = {r["run_id"]: r for r in analysis.levels.iter_rows(named=True)}
    series = story_levels(analysis)
    drawn_series = _drawn_series(analysis, [name for name, _, _ in series])
    if left_out := _stories_left_out(analysis, [name for name, _, _ in series]):
        notes.append(left_out)
    for name, mode, picked in series:
        if name not in drawn_series:
            continue
        title = _series_title(analysis, name, mode)
        drawn = [(run_id, role) for run_id, role in picked if run_id in analysis.timelines]
        lacking = [run_id for run_id, _ in picked if run_id not in analysis.timelines]
        if lacking:
            notes.append(
                f"{title}: no story over time at "
                + ", ".join(format_load(mode, level[r]["load_value"]) for r in lacking)
                + " (its requests carry no send times, or too few)"
            )
        if not drawn:
            continue
        panels = [
            (
                f"{format_load(mode, level[r]['load_value'])}: {_level_verdict(analysis, r)}",
                analysis.timelines[r],
            )
            for r, _ in drawn
        ]
        roles = {
            "within": "the highest load meeting every SLO",
            "breach": "the first load to miss one",
        }
        said = [f"{format_load(mode, level[r]['load_value'])}, {roles[role]}" for r, role in drawn]
        warning = next(
            (w for w in analysis.strains if (w.deployment, w.load_mode) == (name, mode)), None
        )
        note = ("Left: " + said[0] + "; right: " + said[1]) if len(said) == 2 else said[0]
        if warning is not None:
            note += f". Early warning at {format_load(mode, warning.load)}: " + " and ".join(
                signal_text(k, v) for k, v in warning.signals.items()
            )
        figures.append(
            {
                "title": f"{title}: {' and '.join(p[0].split(':')[0] for p in panels)} over time",
                "note": note + ".",
                "svg": charts.story_chart(panels, analysis.latency_slos, KV_HIGH),
                "loads": ", ".join(format_load(mode, level[r]["load_value"]) for r, _ in drawn),
            }
        )
    return figures, notes


def story_grids(analysis: Analysis) -> list[dict[str, str]]:
    """Every level with a timeline, per series, as small multiples (shared y scales)."""
    from loadlens import charts  # altair: loaded only to draw (~0.7 s)

    out = []
    series = _series(analysis)
    drawn_series = _drawn_series(analysis, [name for name, _, _ in series])
    for name, mode, rows in series:
        timed = [r for r in rows if r["run_id"] in analysis.timelines]
        if not timed or name not in drawn_series:
            continue
        unsustainable = [
            r["load_value"]
            for r in timed
            if SUSTAINED.label in analysis.missed.get(r["run_id"], ())
        ]
        missing = [r["load_value"] for r in timed if analysis.missed.get(r["run_id"])]
        note = f"Columns: {'concurrency' if mode == 'concurrency' else 'offered rate, req/s'}."
        if missing:
            note += f" Missing an SLO: {', '.join(f'{v:.3g}' for v in missing)}."
        if unsustainable:
            grew = ", ".join(f"{v:.3g}" for v in unsustainable)
            note += f" Latency kept growing (unsustainable): {grew}."
        if len(timed) < len(rows):
            note += f" {len(rows) - len(timed)} level(s) without send times are not drawn."
        for i in range(0, len(timed), GRID_COLUMNS):
            chunk = timed[i : i + GRID_COLUMNS]
            out.append(
                {
                    "title": _series_title(analysis, name, mode),
                    "note": note if i == 0 else "",
                    "svg": charts.story_grid(
                        [(f"{r['load_value']:.3g}", analysis.timelines[r["run_id"]]) for r in chunk]
                    ),
                }
            )
    return out


def _charts(analysis: Analysis) -> tuple[list[dict[str, Any]], list[str]]:
    """The charts against load that have data to draw, one group per load mode (a
    concurrency and a rate are no one axis), and for each one left out, why."""
    placed = analysis.levels.filter(pl.col("load_value").is_not_null())
    modes = sorted(
        placed["load_mode"].unique(maintain_order=True).to_list(),
        key=lambda m: m != "concurrency",
    )
    if placed["load_value"].n_unique() < 2 or not modes:
        return [], [
            "charts against load need at least two measured loads; "
            f"these runs have {placed['load_value'].n_unique()} (the table below has every run"
            + (", and the charts above show the length sweep)" if analysis.axes else ")")
        ]
    groups, missing = [], []
    for mode in modes:
        lv = placed.filter(pl.col("load_mode") == mode)
        heading = f" ({SWEEP_NAMES.get(mode, mode)}s)" if len(modes) > 1 else ""
        if lv["load_value"].n_unique() < 2:
            missing.append(f"charts{heading} against one measured load")
            continue
        drawn, lacking = _mode_charts(analysis, lv, mode)
        groups.append({"heading": heading, "charts": drawn})
        missing += [m + heading for m in lacking]
    return groups, missing


def _mode_charts(
    analysis: Analysis, lv: pl.DataFrame, mode: str
) -> tuple[dict[str, str], list[str]]:
    from loadlens import charts  # altair: loaded only to draw (~0.7 s)

    drawn: dict[str, str] = {}
    missing: list[str] = []
    plotted = [s for s in analysis.latency_slos if lv[s.column].is_not_null().any()]
    if plotted:
        drawn["slo"] = charts.slo_chart(lv, tuple(plotted))
    for s in analysis.latency_slos:
        if s not in plotted:
            missing.append(f"{s.label} against its SLO (no level carries {s.label})")
    if lv["output_throughput_tps"].is_not_null().any():
        usl = analysis.usl if mode == "concurrency" else []  # the USL is fitted on concurrency
        drawn["throughput"] = charts.throughput_chart(lv, usl)
    else:
        missing.append("throughput (no level records its output tokens/s)")
    stacked = analysis.stacked
    if not stacked.is_empty() and "load_mode" in stacked.columns:
        stacked = stacked.filter(pl.col("load_mode") == mode)
    if not stacked.is_empty():
        drawn["drivers"] = charts.drivers_chart(stacked)
    for metric, name in (("ttft_s", "ttft"), ("tpot_s", "tpot")):
        cols = [f"p{q}_{metric}" for q in (50, 90, 95, 99)]
        if any(lv[c].is_not_null().any() for c in cols):
            drawn[name] = charts.percentile_chart(lv, metric)
        else:
            missing.append(f"{name.upper()} percentiles (not recorded)")
    return drawn, missing


def build_brief(analysis: Analysis, *, with_charts: bool = True) -> Brief:
    binding = analysis.binding
    names = analysis.levels["deployment"].unique(maintain_order=True).to_list()
    chart_groups, missing_charts = _charts(analysis) if with_charts else ([], [])
    ns = analysis.levels["n_requests"].drop_nulls().cast(pl.Int64)
    sample_notes = [
        f"{analysis.levels.height} load levels; {int(ns.sum()):,} requests in all, "
        f"{int(ns.min()) if ns.len() else 0:,}–{int(ns.max()) if ns.len() else 0:,} "  # type: ignore[arg-type]
        "per level.",
    ]
    key_numbers_ = key_numbers(analysis, binding)
    story_figures, story_notes = stories(analysis) if with_charts else ([], [])
    return Brief(
        title="Capacity brief: "
        + ", ".join(analysis.levels["base_deployment"].unique(maintain_order=True).to_list()),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        slos=[str(s) for s in analysis.slos],
        decision=decision(analysis)
        + warning_sentence(analysis.strains)
        + zone_sentence(analysis.zones),
        simulated=_is_simulated(analysis),
        notes=deployment_notes(analysis),
        key_numbers=key_numbers_,
        findings=analysis.findings,
        finding_groups=[
            g.model_copy(update={"title": short_name(analysis, g.title)})
            for g in group_findings(
                analysis.findings,
                [
                    *analysis.levels["base_deployment"].unique(maintain_order=True),
                    *(k["deployment"] for k in key_numbers_),
                    *names,
                ],
            )
        ],
        level_tables=level_tables(analysis),
        provenance=provenance(analysis),
        sample_notes=sample_notes,
        method_notes=method_notes(analysis),
        cost_rows=cost_rows(analysis),
        cost_basis=cost_basis(analysis),
        charts=chart_groups[0]["charts"] if chart_groups else {},
        chart_groups=chart_groups,
        missing_charts=missing_charts,
        axis_charts=axis_charts(analysis) if with_charts else [],
        stories=story_figures,
        story_grids=story_grids(analysis) if with_charts else [],
        story_notes=story_notes,
        short_names={n: short_name(analysis, n) for n in names},
        ci=f"{analysis.confidence * 100:g}%",
        headroom=f"{analysis.headroom:.0%}",
        error_budget=str(analysis.error_budget) if analysis.error_budget else "none",
    )
