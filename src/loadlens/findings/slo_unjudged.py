"""An SLO a run cannot be judged on: said, never silent."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.coverage import higher_percentiles
from loadlens.config import METRIC_LABELS
from loadlens.findings.format import loads_of
from loadlens.findings.model import Finding

KIND = "slo_unjudged"
SECTION = "story"
ORDER = 20


def find(a: Any) -> list[Finding]:
    out = []
    for c in a.coverage:
        if not c.unjudged_run_ids:
            continue
        n = len(c.unjudged_run_ids)
        where = loads_of(a.levels, c.unjudged_run_ids)
        if not c.slo.is_latency:
            sentence = (
                f"{c.slo} cannot be judged on {n} run{'s' if n > 1 else ''} of {c.deployment} "
                f"({where}): {'their files count' if n > 1 else 'its file counts'} no "
                "requests or failures."
            )
        else:
            label = METRIC_LABELS[c.slo.metric]
            carried = ", ".join(c.carried) if c.carried else "no statistic"
            higher = higher_percentiles(c.slo, list(c.carried))
            hint = (
                f"--stand-in judges it on {higher[0]} (an upper bound)"
                if higher
                else f"set the SLO on a statistic they carry ({carried})"
            )
            files = "their files carry" if n > 1 else "its file carries"
            sentence = (
                f"{c.slo} cannot be judged on {n} run{'s' if n > 1 else ''} of "
                f"{c.deployment} ({where}): "
                + (
                    f"{files} {carried} of {label} but no {c.slo.statistic}; {hint}."
                    if c.carried
                    else f"{files} no statistic of {label}."
                )
            )
        out.append(
            Finding(
                kind=KIND,
                severity="warning",
                deployment=c.deployment,
                sentence=sentence,
                evidence={"runs": n, "carried": ", ".join(c.carried), "slo": str(c.slo)},
                confidence="as the tool's file reports it",
            )
        )
    return out
