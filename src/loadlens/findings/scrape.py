"""Where the sweep runner's scraping of the server's metrics was partial: scrapes skipped
(too large, too slow, refused) or samples dropped (not finite numbers, unreadable)."""

from __future__ import annotations

from typing import Any

from loadlens.config import format_seconds
from loadlens.findings.format import at_load, capitalised
from loadlens.findings.model import Finding
from loadlens.trace import stored_object

KIND = "scrape"
SECTION = "notes"
ORDER = 228

REASONS = {
    "timeout": "no answer within the period",
    "body_over_limit": "body over its size limit",
    "too_many_series": "too many series",
    "http_status": "an HTTP error",
    "connection": "no connection",
    "missed": "due while a slow one ran",
}


def find(a: Any) -> list[Finding]:
    out = []
    for r in a.runs.iter_rows(named=True):
        scrape = stored_object(r.get("workload")).get("scrape")
        if not isinstance(scrape, dict):
            continue
        skipped = {k: int(v) for k, v in (scrape.get("skipped") or {}).items() if v}
        dropped = int(scrape.get("dropped_non_finite") or 0)
        unreadable = int(scrape.get("dropped_unreadable") or 0)
        if not skipped and not dropped and not unreadable and not scrape.get("scraper_failed"):
            continue
        parts = []
        if scrape.get("scraper_failed"):
            parts.append("the scraper process failed")
        if skipped:
            why = ", ".join(f"{REASONS.get(k, k)}: {v}" for k, v in skipped.items())
            parts.append(
                f"{sum(skipped.values())} of {scrape.get('planned', 0)} scrapes were skipped "
                f"({why})"
            )
        if dropped:
            parts.append(f"{dropped:,} samples that were not finite numbers were dropped")
        if unreadable:
            parts.append(f"{unreadable:,} unreadable samples were dropped")
        where = at_load(r["load_mode"], r["load_value"], r.get("num_requests"))
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=r["deployment"],
                sentence=(
                    f"{capitalised(where)}, the server's metrics were read in part: "
                    + "; ".join(parts)
                    + ". Its server signals have gaps there; a signal missing is never zero."
                ),
                evidence={
                    "planned": scrape.get("planned"),
                    "done": scrape.get("done"),
                    **{f"skipped_{k}": v for k, v in skipped.items()},
                    "dropped_non_finite": dropped,
                    "dropped_unreadable": unreadable,
                },
                confidence=(
                    f"counted by the runner's scraper (latest start "
                    f"{format_seconds(scrape.get('lag_max_s'))} behind its schedule)"
                    if scrape.get("lag_max_s") is not None
                    else "counted by the runner's scraper"
                ),
            )
        )
    return out
