"""The highest load meeting every SLO, per deployment; or, for a run with no load to place
it on a curve, whether it met them."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.saturation import Level, RunVerdict, SloBoundary
from loadlens.findings.format import (
    approx,
    at_load,
    boundary_range,
    capitalised,
    format_excess,
    format_load,
    sample_note,
)
from loadlens.findings.model import Finding

KIND = "capacity"
SECTION = "story"
ORDER = 10


def level_evidence(prefix: str, level: Level | None) -> dict[str, float | int | None]:
    if level is None:
        return {}
    return {
        f"{prefix}_load": level.load,
        f"{prefix}_value": level.value,
        f"{prefix}_ci_lo": level.lo,
        f"{prefix}_ci_hi": level.hi,
        f"{prefix}_n": level.n,
    }


def lower_loads_advice(b: SloBoundary) -> str:
    """What to do when the lightest load measured already misses an SLO."""
    if b.slo.metric == "latency_rise":
        return "measure lower loads to find the load it sustains"
    if not b.slo.is_latency:
        return (
            "find and fix what fails (the errors finding says what) before measuring its capacity"
        )
    if b.load_mode == "concurrency" and b.first_breach and b.first_breach.load <= 1:
        return (
            "even one request at a time misses it, so no lower load will meet it: the model, "
            "hardware or request shape must change, or the SLO"
        )
    return "measure lower loads to find its capacity"


def judged_slos(a: Any, deployment: str) -> tuple[str, str]:
    """`(every SLO (p95 E2E ≤ 10 s, ...), "")`, or where some cannot be judged on this
    deployment's files, `(every SLO it can be judged on (error rate ≤ 1%), "; p95 E2E ≤ 10 s
    not judged")`."""
    judged = [c.slo for c in a.coverage if c.deployment == deployment and c.judged_on]
    unjudged = [c.slo for c in a.coverage if c.deployment == deployment and not c.judged_on]
    listed = ", ".join(str(s) for s in judged)
    if not unjudged:
        return f"every SLO ({listed})", ""
    return (
        f"every SLO it can be judged on ({listed})",
        f"; {', '.join(str(s) for s in unjudged)} cannot be judged on its files",
    )


def delivered_note(a: Any, b: SloBoundary) -> str:
    """Where a level the capacity rests on was not delivered as asked, say so."""
    loads = {lv.load for lv in (b.last_ok, b.first_breach) if lv is not None}
    short = [
        s
        for s in getattr(a, "shortfalls", [])
        if s.status == "client_shortfall"
        and s.deployment == b.deployment
        and s.load_mode == b.load_mode
        and s.requested in loads
    ]
    if not short:
        return ""
    parts = [
        f"{format_load(s.load_mode, s.requested)} was not delivered as asked ("
        + (
            f"at most {s.delivered_max:g} in flight"
            if s.delivered_max is not None
            else f"{s.delivered:.3g} delivered"
        )
        + ")"
        for s in short
    ]
    return "; " + ", ".join(parts) + ", so the limit rests on the load delivered"


def boundary_finding(b: SloBoundary, a: Any) -> Finding:
    slos, unjudged = judged_slos(a, b.deployment)
    unjudged += delivered_note(a, b)
    conf = a.confidence
    evidence: dict[str, float | int | str | None] = {
        "slo": str(b.slo),
        "threshold": b.slo.threshold_s,
        "max_load_measured": b.max_load_measured,
        "loads_measured": b.n_loads,
        "boundary_load": b.boundary_load,
        "boundary_lo": b.boundary_lo,
        "boundary_hi": b.boundary_hi,
        **level_evidence("last_ok", b.last_ok),
        **level_evidence("first_breach", b.first_breach),
    }
    mode, one = b.load_mode, b.n_loads == 1
    if b.status == "never_breached":
        where = (
            f"at its one measured load, {format_load(mode, b.max_load_measured)}; with one "
            "load measured, where its limit lies is unknown"
            if one
            else f"at every measured level, up to {format_load(mode, b.max_load_measured)}; "
            "its limit lies beyond what was measured"
        )
        return Finding(
            kind=KIND,
            severity="info",
            deployment=b.deployment,
            sentence=f"{b.deployment} meets {slos} {where}{unjudged}.",
            evidence=evidence,
            confidence=f"closest to its SLO: {b.slo.label} {sample_note(b.last_ok, conf, b.slo)}",
        )
    first = b.first_breach
    assert first is not None
    if b.slo.metric == "latency_rise":
        return _unsustained(b, a, slos, unjudged, evidence)
    if b.status == "breached_at_lowest":
        where = "at its one measured load" if one else "already at the lightest measured load"
        sentence = (
            f"{b.deployment} misses {b.slo} {where}, {format_load(mode, first.load)} "
            f"({b.slo.label} {b.slo.format(first.value)}, "
            f"{format_excess(first.value, b.slo.threshold_s)}): {lower_loads_advice(b)}."
        )
        return Finding(
            kind=KIND,
            severity="critical",
            deployment=b.deployment,
            sentence=sentence,
            evidence=evidence,
            confidence=sample_note(first, conf, b.slo),
        )
    last = b.last_ok
    assert last is not None and b.boundary_load is not None
    sentence = (
        f"{b.deployment} meets {slos} up to {format_load(mode, last.load)} and misses "
        f"{b.slo} at {format_load(mode, first.load)}; interpolated, its limit is about "
        f"{format_load(mode, approx(mode, b.boundary_load))} ({boundary_range(b)}){unjudged}."
    )
    return Finding(
        kind=KIND,
        severity="info",
        deployment=b.deployment,
        sentence=sentence,
        evidence=evidence,
        confidence=(
            f"{b.slo.label} at {last.load:g}: {b.slo.format(last.value)} "
            f"({sample_note(last, conf, b.slo)}); at {first.load:g}: "
            f"{b.slo.format(first.value)} ({sample_note(first, conf, b.slo)}); linear "
            "interpolation, conservative for convex latency"
        ),
    )


def _unsustained(
    b: SloBoundary,
    a: Any,
    slos: str,
    unjudged: str,
    evidence: dict[str, float | int | str | None],
) -> Finding:
    """The limit set by the first load the server could not sustain (its latency kept
    growing through the run): no interpolation between a trend and none."""
    mode, first, last = b.load_mode, b.first_breach, b.last_ok
    assert first is not None
    if last is None:
        sentence = (
            f"{b.deployment} does not sustain even its lightest measured load, "
            f"{format_load(mode, first.load)}: latency kept growing through the run; "
            f"{lower_loads_advice(b)}."
        )
        severity = "critical"
    else:
        sentence = (
            f"{b.deployment} meets {slos} up to {format_load(mode, last.load)}; at "
            f"{format_load(mode, first.load)} its latency kept growing through the run, so "
            f"that load is not sustainable: its limit lies between the two{unjudged}."
        )
        severity = "info"
    return Finding(
        kind=KIND,
        severity=severity,  # type: ignore[arg-type]
        deployment=b.deployment,
        sentence=sentence,
        evidence=evidence,
        confidence="a trend test on the level's latency over time (the unsustainable "
        "finding gives it)",
    )


def verdict_finding(run_id: str, verdicts: list[RunVerdict], a: Any) -> Finding:
    """A burst or unrecorded-load run judged on every SLO it carries."""
    v0 = verdicts[0]
    where = at_load(v0.load_mode, None, v0.n_requests)
    missed = [v for v in verdicts if not v.meets]
    evidence: dict[str, float | int | str | None] = {
        "run_id": run_id,
        "n_requests": v0.n_requests,
    }
    for v in verdicts:
        evidence[v.slo.column] = v.level.value
    if not missed:
        values = ", ".join(f"{v.slo.label} {v.slo.format(v.level.value)}" for v in verdicts)
        sentence = (
            f"{v0.deployment} meets every SLO it can be judged on {where} ({values}); a run "
            "with no load to place it on a curve has no limit to find."
        )
        severity = "info"
    else:
        parts = [
            f"{v.slo} ({v.slo.label} {v.slo.format(v.level.value)}, "
            f"{format_excess(v.level.value, v.slo.threshold_s)})"
            for v in missed
        ]
        sentence = f"{capitalised(where)}, {v0.deployment} misses " + ("; ".join(parts) + ".")
        severity = "critical"
    return Finding(
        kind=KIND,
        severity=severity,  # type: ignore[arg-type]
        deployment=v0.deployment,
        sentence=sentence,
        evidence=evidence,
        confidence="; ".join(
            f"{v.slo.label}: {sample_note(v.level, a.confidence, v.slo)}" for v in verdicts
        ),
    )


def find(a: Any) -> list[Finding]:
    out = [boundary_finding(b, a) for b in a.binding]
    by_run: dict[str, list[RunVerdict]] = {}
    for v in a.verdicts:
        by_run.setdefault(v.run_id, []).append(v)
    out += [verdict_finding(run_id, vs, a) for run_id, vs in by_run.items()]
    return out
