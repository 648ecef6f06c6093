"""Requests the runner re-sent because a pooled connection was closed before they left."""

from __future__ import annotations

from typing import Any

from loadlens.findings.format import capitalised, format_loads
from loadlens.findings.model import Finding
from loadlens.trace import stored_object

KIND = "resent"
SECTION = "notes"
ORDER = 226


def find(a: Any) -> list[Finding]:
    """One note per deployment: a server that closes connections after each response
    (llama.cpp does) makes nearly every send meet a closed one, level after level."""
    by_deployment: dict[str, list[tuple[Any, int, int]]] = {}
    for r in a.runs.iter_rows(named=True):
        workload = stored_object(r.get("workload"))
        n = workload.get("resent_requests")
        if n:
            by_deployment.setdefault(r["deployment"], []).append(
                (r, int(n), int(r.get("num_requests") or 0))
            )
    out = []
    for deployment, rows in by_deployment.items():
        resent = sum(n for _, n, _ in rows)
        requests = sum(m for _, _, m in rows)
        modes = {r["load_mode"] for r, _, _ in rows}
        where = (
            "at " + format_loads(rows[0][0]["load_mode"], [r["load_value"] for r, _, _ in rows])
            if len(modes) == 1 and all(r["load_value"] is not None for r, _, _ in rows)
            else f"in {len(rows)} runs"
        )
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=deployment,
                sentence=(
                    f"{capitalised(where)}, {resent:,} sends of {requests:,} requests "
                    "met a kept-alive connection the server had closed before answering, and "
                    "went again on another; each request is timed from the send the server "
                    "answered."
                ),
                evidence={"resent": resent, "requests": requests, "runs": len(rows)},
                confidence="counted by the client (at most 3 re-sends a request)",
            )
        )
    return out
