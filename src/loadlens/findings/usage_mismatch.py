"""A server whose usage report the stream contradicts: the streamed count stands."""

from __future__ import annotations

from typing import Any

from loadlens.findings.format import at_load, capitalised
from loadlens.findings.model import Finding
from loadlens.trace import stored_object

KIND = "usage_mismatch"
SECTION = "notes"
ORDER = 225


def find(a: Any) -> list[Finding]:
    out = []
    for r in a.runs.iter_rows(named=True):
        workload = stored_object(r.get("workload"))
        m = workload.get("usage_mismatch")
        if not isinstance(m, dict):
            continue
        where = at_load(r["load_mode"], r["load_value"], r.get("num_requests"))
        reported, streamed, n = (
            m["server_completion_tokens"],
            m["streamed_chunks"],
            m["requests"],
        )
        out.append(
            Finding(
                kind=KIND,
                severity="warning",
                deployment=r["deployment"],
                sentence=(
                    f"{capitalised(where)}, the server reported {reported:,} "
                    f"completion tokens for {n:,} request{'s' if n > 1 else ''} whose streams "
                    f"carried {streamed:,} chunks: more than any chunking explains, so "
                    "loadlens counts the streamed tokens (the server's figure is kept in the "
                    "run) and its throughput is not inflated."
                ),
                evidence={"requests": n, "server_tokens": reported, "streamed_chunks": streamed},
                confidence="counted by the client, chunk by chunk, against the usage report",
            )
        )
    return out
