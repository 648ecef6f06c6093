"""Each SLO's first breach in a load sweep, by how much, and how sure."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.saturation import SloBoundary
from loadlens.findings.capacity import level_evidence
from loadlens.findings.format import ci_label, exceeds, format_load, sample_note
from loadlens.findings.model import Finding

KIND = "slo_breach"
SECTION = "story"
ORDER = 30


def breach_finding(b: SloBoundary, confidence: float) -> Finding | None:
    first = b.first_breach
    if first is None:
        return None
    slo = b.slo
    sentence = (
        f"At {format_load(b.load_mode, first.load)}, {slo.label} of {b.deployment} "
        f"({slo.format(first.value)}) {exceeds(first.value, slo)}"
    )
    if first.lo is not None and first.lo <= slo.threshold_s:
        sentence += (
            f"; its {ci_label(confidence)} reaches down to {slo.format(first.lo)}, so the "
            "breach is likely but not certain"
        )
    sentence += "."
    return Finding(
        kind=KIND,
        # One severity rule for every breach (findings/__init__.py): missed at the lightest
        # load measured is critical; missed above a load that meets it sets capacity: warning.
        severity="critical" if b.status == "breached_at_lowest" else "warning",
        deployment=b.deployment,
        sentence=sentence,
        evidence={
            "slo": str(slo),
            "threshold": slo.threshold_s,
            "ratio": first.value / slo.threshold_s,
            **level_evidence("breach", first),
        },
        confidence=sample_note(first, confidence, slo),
    )


def find(a: Any) -> list[Finding]:
    """Latency SLOs only: a level over its error budget is the errors finding's to say,
    with the kinds of failure."""
    return [
        f
        for b in a.boundaries
        if b.slo.is_latency and (f := breach_finding(b, a.confidence)) is not None
    ]
