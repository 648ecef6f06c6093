"""Findings: each model result worded as a plain sentence with the numbers behind it.

A registry: one module per kind (`findings/<kind>.py`) declares `KIND`, `SECTION` ("story":
what a reader follows — capacity, breaches, causes, fixes, cost; "notes": what qualifies
the numbers), `ORDER` (its place in the brief), its thresholds, and `find(analysis)`, which
words numbers the analysis already made and computes none. Adding a finding is adding a
module and its name below.

One severity rule for every finding:
- critical: an objective the deployment cannot meet as measured — an SLO or the error
  budget missed at the lightest load measured (or by a run with no load to place it), a
  level where every request failed, throughput collapsing as load grows;
- warning: an SLO or error budget missed above a load that meets it (it sets the
  capacity), an SLO that cannot be judged, load the client did not deliver or a client
  that fell behind what it measured, strain or unpredictable latency before an SLO
  breaks, a plateau;
- info: everything else.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from loadlens.analysis.variants import run_variants
from loadlens.findings.format import approx, at_load, boundary_range, format_load, format_loads
from loadlens.findings.model import SEVERITY_ORDER, Finding

MODULES = (
    "capacity",
    "early_warning",
    "unpredictable",
    "slo_unjudged",
    "slo_breach",
    "unsustainable",
    "cold_start",
    "errors",
    "drivers",
    "workload_axis",
    "whatif",
    "operating_zone",
    "cost",
    "collapse",
    "load_shortfall",
    "client_disturbed",
    "rate_saturation",
    "throughput_plateau",
    "slo_stand_in",
    "scalability",
    "littles_law",
    "usage_mismatch",
    "resent",
    "scrape",
    "summary_only",
    "sample_size",
)


REGISTRY: list[ModuleType] = sorted(
    (importlib.import_module(f"loadlens.findings.{name}") for name in MODULES),
    key=lambda m: m.ORDER,
)
STORY = tuple(m.KIND for m in REGISTRY if m.SECTION == "story")
NOTES = tuple(m.KIND for m in REGISTRY if m.SECTION == "notes")
_RANK = {m.KIND: i for i, m in enumerate(REGISTRY)}


def build_findings(analysis: Any) -> list[Finding]:
    """Every registered kind's findings, in registry order, deployment by deployment."""
    found = [f for m in REGISTRY for f in m.find(analysis)]
    return sorted(found, key=lambda f: (_RANK[f.kind], f.deployment or ""))


__all__ = [
    "NOTES",
    "REGISTRY",
    "SEVERITY_ORDER",
    "STORY",
    "Finding",
    "approx",
    "at_load",
    "boundary_range",
    "build_findings",
    "format_load",
    "format_loads",
    "run_variants",
]
