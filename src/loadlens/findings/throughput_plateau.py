"""Where doubling the load stops buying throughput."""

from __future__ import annotations

from typing import Any

from loadlens.findings.format import format_load
from loadlens.findings.model import Finding

KIND = "throughput_plateau"
SECTION = "story"
ORDER = 110


def find(a: Any) -> list[Finding]:
    out = []
    for p in a.plateaus:
        change = f"adds only {p.gain:.0%}" if p.gain >= 0 else f"loses {-p.gain:.0%} of its"
        out.append(
            Finding(
                kind=KIND,
                severity="warning",
                deployment=p.deployment,
                sentence=(
                    f"Throughput of {p.deployment} plateaus: going from "
                    f"{format_load(p.load_mode, p.from_load)} to {p.to_load:g} {change} output "
                    f"tokens/s ({p.from_tps:,.0f} → {p.to_tps:,.0f} tok/s); more load now buys "
                    "latency, not work."
                ),
                evidence={
                    "from_load": p.from_load,
                    "to_load": p.to_load,
                    "from_tps": p.from_tps,
                    "to_tps": p.to_tps,
                    "gain": p.gain,
                },
                confidence="throughput is a count over the whole run; no sampling error "
                "beyond run-to-run",
            )
        )
    return out
