"""The load generator could not keep up with what it measured: its own lag is in the
level's latencies, which are then upper bounds on the server's, not measurements of it."""

from __future__ import annotations

from typing import Any

from loadlens.findings.format import at_load, capitalised
from loadlens.findings.model import Finding

KIND = "client_disturbed"
SECTION = "story"
ORDER = 97


def find(a: Any) -> list[Finding]:
    if not a.disturbed:
        return []
    out = []
    for r in a.runs.iter_rows(named=True):
        client = a.disturbed.get(r["run_id"])
        if client is None:
            continue
        where = at_load(r["load_mode"], r["load_value"], r.get("num_requests"))
        missed = a.missed.get(r["run_id"])
        verdict = (
            f" The SLOs it misses there ({', '.join(missed)}) may be the client's, not the "
            "server's."
            if missed
            else ""
        )
        out.append(
            Finding(
                kind=KIND,
                severity="warning",
                deployment=r["deployment"],
                sentence=(
                    f"{capitalised(where)}, the load generator fell behind what it measured: "
                    f"{client.get('disturbed_why')}. Its latencies there are upper bounds on "
                    "the server's, not measurements of it." + verdict + " Rerun the level "
                    "with more client processes (--workers) or hosts (--ray)."
                ),
                evidence={
                    k: client.get(k)
                    for k in (
                        "send_lag_p50_s",
                        "send_lag_p99_s",
                        "loop_lag_p99_s",
                        "cpu_share",
                        "sent_late_10ms",
                    )
                },
                confidence="measured by the client on itself during the level",
            )
        )
    return out
