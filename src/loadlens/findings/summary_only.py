"""Runs that carry only the tool's summary: no intervals, no goodput."""

from __future__ import annotations

from typing import Any

import polars as pl

from loadlens.findings.model import Finding

KIND = "summary_only"
SECTION = "notes"
ORDER = 230


def find(a: Any) -> list[Finding]:
    out = []
    summary = a.levels.filter(pl.col("basis") == "summary")
    for (deployment,), group in summary.group_by("base_deployment", maintain_order=True):
        n = group.height
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=str(deployment),
                sentence=(
                    f"{n} run{'s' if n > 1 else ''} of {deployment} "
                    f"carr{'y' if n > 1 else 'ies'} only the tool's summary statistics: "
                    f"{'their' if n > 1 else 'its'} percentiles have no confidence intervals "
                    "and goodput cannot be computed."
                ),
                evidence={"runs": n},
                confidence="as reported by the tool",
            )
        )
    return out
