"""More load, less throughput and more latency: past the peak."""

from __future__ import annotations

from typing import Any

from loadlens.config import format_seconds
from loadlens.findings.format import format_load
from loadlens.findings.model import Finding

KIND = "collapse"
SECTION = "story"
ORDER = 90


def find(a: Any) -> list[Finding]:
    out = []
    for c in a.collapses:
        sentence = (
            f"{c.deployment} collapses past {format_load(c.load_mode, c.from_load)}: at "
            f"{c.to_load:g} it completes {c.to_rps:.2f} req/s instead of {c.from_rps:.2f} "
            f"({c.to_rps / c.from_rps - 1:.0%}) while p95 E2E rises from "
            f"{format_seconds(c.from_p95_s)} to {format_seconds(c.to_p95_s)}."
        )
        out.append(
            Finding(
                kind=KIND,
                severity="critical",
                deployment=c.deployment,
                sentence=sentence,
                evidence={
                    "from_load": c.from_load,
                    "to_load": c.to_load,
                    "from_rps": c.from_rps,
                    "to_rps": c.to_rps,
                    "from_p95_s": c.from_p95_s,
                    "to_p95_s": c.to_p95_s,
                },
                confidence="throughput counted over each whole run",
            )
        )
    return out
