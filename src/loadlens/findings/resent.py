"""Requests the runner re-sent because a pooled connection was closed before they left."""

from __future__ import annotations

from typing import Any

import orjson

from loadlens.findings.format import at_load
from loadlens.findings.model import Finding

KIND = "resent"
SECTION = "notes"
ORDER = 226


def find(a: Any) -> list[Finding]:
    out = []
    for r in a.runs.iter_rows(named=True):
        workload = orjson.loads(r["workload"]) if r.get("workload") else {}
        n = workload.get("resent_requests") if isinstance(workload, dict) else None
        if not n:
            continue
        where = at_load(r["load_mode"], r["load_value"], r.get("num_requests"))
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=r["deployment"],
                sentence=(
                    f"{where[0].upper()}{where[1:]}, {n:,} send{'s' if n > 1 else ''} met a "
                    "kept-alive connection the server had closed before answering, and went "
                    "again on another; each request is timed from the send the server "
                    "answered."
                ),
                evidence={"resent": n, "requests": r.get("num_requests")},
                confidence="counted by the client (at most 3 re-sends a request)",
            )
        )
    return out
