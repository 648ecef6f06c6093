"""Where to run each deployment: headroom below the lower of SLO limit and latency knee."""

from __future__ import annotations

from typing import Any

from loadlens.findings.format import approx, format_load
from loadlens.findings.model import Finding

KIND = "operating_zone"
SECTION = "story"
ORDER = 60


def find(a: Any) -> list[Finding]:
    out = []
    for z in a.zones:
        parts = []
        if z.knee is not None:
            parts.append(f"its latency knee ({z.knee:g}, where latency turns steep)")
        if z.slo_limit is not None:
            parts.append(f"its SLO limit (about {approx(z.load_mode, z.slo_limit):g})")
        if len(parts) == 2:
            basis = f"{z.headroom:.0%} of the lower of {' and '.join(parts)}"
        elif parts:
            basis = f"{z.headroom:.0%} of {parts[0]}"
        else:
            basis = f"{z.headroom:.0%} of the highest load measured, where no limit was reached"
        if z.bound_by == "knee" and z.slo_limit is not None:
            basis += "; the knee comes first, so the zone sits below what the SLO allows"
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=z.deployment,
                sentence=(
                    f"Stable operating zone of {z.deployment}: up to "
                    f"{format_load(z.load_mode, approx(z.load_mode, z.max_load))} per replica "
                    f"— {basis}."
                ),
                evidence={
                    "max_load": z.max_load,
                    "knee": z.knee,
                    "slo_limit": z.slo_limit,
                    "headroom": z.headroom,
                    "bound_by": z.bound_by,
                },
                confidence="inherits the SLO limit's range; the knee is a measured level, "
                "not interpolated",
            )
        )
    return out
