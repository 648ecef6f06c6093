"""A closed loop held fewer requests in flight on average than its concurrency, for reasons
its own start and drain explain (or that the files cannot tell apart from the client's)."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.shortfall import Shortfall
from loadlens.config import format_seconds
from loadlens.findings.format import format_load
from loadlens.findings.model import Finding

KIND = "littles_law"
SECTION = "notes"
ORDER = 220


def find(a: Any) -> list[Finding]:
    out = []
    for s in a.shortfalls:
        if not s.drain_note:
            continue
        assert s.mean_in_flight is not None
        held = (
            f"At {format_load('concurrency', s.requested)}, {s.deployment} held on average "
            f"{s.mean_in_flight:.3g} requests in flight"
        )
        if s.throughput_rps is not None and s.mean_latency_s is not None:
            held += (
                f" (Little's law: {s.throughput_rps:.3g} req/s × "
                f"{format_seconds(s.mean_latency_s)})"
            )
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=s.deployment,
                sentence=f"{held}: {_why(s)}",
                evidence={
                    "load": s.requested,
                    "achieved": s.mean_in_flight,
                    "ratio": s.mean_in_flight / s.requested if s.requested else None,
                    "throughput_rps": s.throughput_rps,
                    "mean_latency_s": s.mean_latency_s,
                    "longest_s": s.longest_s,
                    "duration_s": s.duration_s,
                    "drain_floor": s.drain_floor,
                    "delivered_while_sending": s.delivered if s.basis == "send_window" else None,
                },
                confidence="exact for the run's average; says nothing about moments",
            )
        )
    return out


def _why(s: Shortfall) -> str:
    if s.basis == "send_window" and s.delivered is not None:
        return (
            f"while it was sending it held {s.delivered:.3g}, so the drain after its last "
            "send lowers the average. Latency is as measured at the asked load; throughput "
            "understates a steady one."
        )
    if s.status == "ok" and s.longest_s is not None and s.duration_s is not None:
        return (
            f"the run's own start and drain explain it (its longest request took "
            f"{format_seconds(s.longest_s)} of a {format_seconds(s.duration_s)} run). Latency "
            "is as measured at up to the asked load; throughput understates a steady one."
        )
    if s.cause == "failures_untimed":
        return (
            "failed requests held slots for a time the file does not record, so whether the "
            "client fell short cannot be told."
        )
    return (
        "the file does not record its longest request, so whether the run's start and drain "
        "or the client explain it cannot be told."
    )
