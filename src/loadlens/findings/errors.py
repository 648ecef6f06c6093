"""Failed requests per level, by kind, against the error budget."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.failures import describe
from loadlens.config import format_share
from loadlens.findings.format import at_load, capitalised, ci_label
from loadlens.findings.model import Finding

KIND = "errors"
SECTION = "story"
ORDER = 35


def find(a: Any) -> list[Finding]:
    budget = a.error_budget
    out = []
    for row in a.levels.filter(a.levels["n_errors"] > 0).iter_rows(named=True):
        n, failed, rate = row["n_requests"], row["n_errors"], row["error_rate"]
        if rate is None:
            continue
        where = at_load(row["load_mode"], row["load_value"], n)
        kinds = describe(a.failures, row["run_id"], n - (row["n_cancelled"] or 0))
        all_failed = failed == n - (row["n_cancelled"] or 0)
        if all_failed:
            sentence = (
                f"{capitalised(where)}, every one of {row['deployment']}'s "
                f"{failed:,} requests failed"
            )
        else:
            sentence = (
                f"{capitalised(where)}, {format_share(rate)} of {row['deployment']}'s "
                f"requests failed ({failed:,} of {n - (row['n_cancelled'] or 0):,})"
            )
        sentence += f": {kinds}" if kinds else ""
        over = budget is not None and rate > budget.threshold_s
        if budget is not None:
            sentence += (
                f"; over its {format_share(budget.threshold_s)} error budget, so this level "
                "does not meet the SLOs"
                if over
                else f"; within its {format_share(budget.threshold_s)} error budget"
            )
        lightest = a.levels.filter(
            (a.levels["deployment"] == row["deployment"])
            & (a.levels["load_mode"] == row["load_mode"])
        )["load_value"].min()
        at_lightest = row["load_value"] is None or row["load_value"] == lightest
        severity = (
            "critical" if all_failed or (over and at_lightest) else "warning" if over else "info"
        )
        lo, hi = row.get("error_rate_lo"), row.get("error_rate_hi")
        out.append(
            Finding(
                kind=KIND,
                severity=severity,  # type: ignore[arg-type]
                deployment=row["deployment"],
                sentence=sentence + ".",
                evidence={
                    "load": row["load_value"],
                    "n_errors": failed,
                    "n_requests": n,
                    "n_cancelled": row["n_cancelled"],
                    "error_rate": rate,
                    "error_budget": budget.threshold_s if budget else None,
                    "error_rate_lo": lo,
                    "error_rate_hi": hi,
                    "kinds": kinds or None,
                },
                confidence=(
                    f"counted; the true failure rate lies in {format_share(lo)}–"
                    f"{format_share(hi)} ({ci_label(a.confidence)}, Wilson)"
                    if lo is not None and hi is not None
                    else "counted, as the tool's file reports it"
                ),
            )
        )
    return out
