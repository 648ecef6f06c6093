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
    """One finding per deployment, SLO and what the files carry: a deployment whose every
    variant lacks the same statistic is said once, not once per variant."""
    base_of = dict(a.levels.select("deployment", "base_deployment").unique().iter_rows())
    groups: dict[tuple[str, str, tuple[str, ...]], list[Any]] = {}
    for c in a.coverage:
        if c.unjudged_run_ids:
            key = (base_of.get(c.deployment, c.deployment), str(c.slo), c.carried)
            groups.setdefault(key, []).append(c)
    out = []
    for (base, _, carried_stats), cs in groups.items():
        c = cs[0]
        name = base if len(cs) > 1 else c.deployment
        run_ids = [r for x in cs for r in x.unjudged_run_ids]
        n = len(run_ids)
        where = loads_of(a.levels, run_ids)
        runs = f"{n} run{'s' if n > 1 else ''} of {name} ({where})"
        if not c.slo.is_latency:
            sentence = (
                f"{c.slo} cannot be judged on {runs}: "
                f"{'their files count' if n > 1 else 'its file counts'} no requests or failures."
            )
        else:
            label = METRIC_LABELS[c.slo.metric]
            carried = ", ".join(carried_stats) if carried_stats else "no statistic"
            higher = higher_percentiles(c.slo, list(carried_stats))
            hint = (
                f"--stand-in judges it on {higher[0]} (an upper bound)"
                if higher
                else f"set the SLO on a statistic they carry ({carried})"
            )
            files = "their files carry" if n > 1 else "its file carries"
            sentence = f"{c.slo} cannot be judged on {runs}: " + (
                f"{files} {carried} of {label} but no {c.slo.statistic}; {hint}."
                if carried_stats
                else f"{files} no statistic of {label}."
            )
        out.append(
            Finding(
                kind=KIND,
                severity="warning",
                deployment=name,
                sentence=sentence,
                evidence={"runs": n, "carried": ", ".join(carried_stats), "slo": str(c.slo)},
                confidence="as the tool's file reports it",
            )
        )
    return out
