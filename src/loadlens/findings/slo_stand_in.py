"""An SLO judged on a higher percentile than asked, because the files lack the one asked."""

from __future__ import annotations

from typing import Any

from loadlens.config import METRIC_LABELS
from loadlens.findings.model import Finding

KIND = "slo_stand_in"
SECTION = "notes"
ORDER = 200


def find(a: Any) -> list[Finding]:
    out = []
    for c in a.coverage:
        if not (c.stand_in and c.judged_on is not None):
            continue
        label = METRIC_LABELS[c.slo.metric]
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=c.deployment,
                sentence=(
                    f"{c.slo} is judged on {c.judged_on.statistic} {label} for "
                    f"{c.deployment}: its files carry no {c.slo.statistic}. "
                    f"{c.judged_on.statistic} is at least {c.slo.statistic}, so a pass is "
                    "certain and a breach may be overstated."
                ),
                evidence={"slo": str(c.slo), "judged_on": str(c.judged_on)},
                confidence="an upper bound of the statistic asked for",
            )
        )
    return out
