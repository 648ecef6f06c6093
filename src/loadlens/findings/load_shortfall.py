"""The load generator sent less than asked, or sent late: the level is not the load it is
labelled with, and latency timed from a late send leaves the client's wait out."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.shortfall import DELIVERED_BASIS, Shortfall
from loadlens.config import format_seconds
from loadlens.findings.format import format_load
from loadlens.findings.model import Finding

KIND = "load_shortfall"
SECTION = "story"
ORDER = 95


def find(a: Any) -> list[Finding]:
    out = []
    for s in a.shortfalls:
        short = s.status == "client_shortfall"
        if not short and not s.latency_excludes_wait:
            continue
        parts = [_shortfall(s)] if short else [_late(s)]
        if s.latency_excludes_wait:
            parts.append(_optimistic(s))
        out.append(
            Finding(
                kind=KIND,
                severity="warning",
                deployment=s.deployment,
                sentence=" ".join(parts),
                evidence=_evidence(s),
                confidence=_confidence(s),
            )
        )
    return out


def level_label(s: Shortfall) -> str | None:
    """The level table's load cell where the client fell short: `asked 128 / delivered ≤ 100`,
    `asked 20 / delivered 14.2 req/s`; None where the load was delivered as asked."""
    if s.status != "client_shortfall" or s.requested is None:
        return None
    if s.delivered_max is not None:
        return f"asked {s.requested:g} / delivered ≤ {s.delivered_max:g}"
    unit = " req/s" if s.load_mode == "rate" else ""
    assert s.delivered is not None
    return f"asked {s.requested:g} / delivered {_num(s.delivered)}{unit}"


def _num(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def _shortfall(s: Shortfall) -> str:
    asked = format_load(s.load_mode, s.requested)
    d = s.delivered
    if s.cause == "too_few_requests":
        assert s.delivered_max is not None
        n = f"{s.delivered_max:g}"
        had = (
            f"only {n} requests (completed; the file records no failures)"
            if s.n_from_completed
            else f"only {n} requests"
        )
        mean = f" (on average {_num(d)}, by Little's law)" if d is not None else ""
        what = f"at most {n} in flight{mean}"
        head = f"{s.deployment}: asked for {asked}, the client had {had}: {what}."
        delivered = f"at most {n} in flight"
    elif s.cause == "client_pacing":
        assert d is not None
        if s.basis == "send_window":
            how = "while it was sending (from send times)"
        elif s.basis == "littles_law_all":
            how = "(Little's law over every request, failed ones' time included" + (
                f"; the run's own start and drain allow no less than {s.drain_floor:.0%})"
                if s.drain_floor is not None
                else ")"
            )
        else:
            assert s.throughput_rps is not None and s.mean_latency_s is not None
            how = (
                f"(Little's law: {s.throughput_rps:.3g} req/s × "
                f"{format_seconds(s.mean_latency_s)}"
                + (
                    f"; the run's own start and drain allow no less than {s.drain_floor:.0%})"
                    if s.drain_floor is not None
                    else ")"
                )
            )
        head = (
            f"{s.deployment}: asked for {asked}, the client kept on average only "
            f"{_num(d)} requests in flight {how}."
        )
        delivered = f"about {_num(d)} in flight"
    else:
        assert d is not None
        if s.cause == "concurrency_cap":
            assert s.cap is not None and s.mean_latency_s is not None
            head = (
                f"{s.deployment}: asked for {asked}, but with at most {s.cap:g} requests in "
                f"flight and {format_seconds(s.mean_latency_s)} per request the client could "
                f"send at most {d:.3g} req/s (Little's law)."
            )
        else:
            who = "the tool achieved" if s.cause == "tool_rate" else "the client sent"
            noise = f", noise ±{s.tolerance:.0%}" if s.tolerance is not None else ""
            head = (
                f"{s.deployment}: asked for {asked}, {who} only {d:.3g} req/s "
                f"({s.n_requests} requests{noise})."
            )
        delivered = f"{d:.3g} req/s"
    return (
        f"{head} The load generator fell short, not the server: capacity claims at this "
        f"level rest on the delivered load ({delivered}), not on {asked}."
    )


def _late(s: Shortfall) -> str:
    asked = format_load(s.load_mode, s.requested)
    worst = (
        f", up to {format_seconds(s.max_schedule_delay_s)}"
        if s.max_schedule_delay_s is not None
        else ""
    )
    return (
        f"{s.deployment}: at {asked} the client sent requests behind its schedule "
        f"(on average {format_seconds(s.schedule_delay_s)}{worst})."
    )


def _optimistic(s: Shortfall) -> str:
    return (
        "Latencies are timed from the actual send and leave out that client-side wait "
        f"(on average {format_seconds(s.schedule_delay_s)}): they are optimistic at this level."
    )


def _evidence(s: Shortfall) -> dict[str, float | int | str | None]:
    return {
        "load_mode": s.load_mode,
        "requested": s.requested,
        "delivered": s.delivered,
        "delivered_max": s.delivered_max,
        "ratio": s.ratio,
        "tolerance": s.tolerance,
        "cause": s.cause,
        "basis": s.basis,
        "n_requests": s.n_requests,
        "throughput_rps": s.throughput_rps,
        "mean_latency_s": s.mean_latency_s,
        "drain_floor": s.drain_floor,
        "cap": s.cap,
        "schedule_delay_s": s.schedule_delay_s,
        "max_schedule_delay_s": s.max_schedule_delay_s,
    }


def _confidence(s: Shortfall) -> str:
    if s.cause == "too_few_requests":
        return "counted: no more requests can be in flight than were sent"
    if s.status != "client_shortfall":
        return "send times against a Poisson schedule at the asked rate (Chernoff bound, 5%)"
    basis = DELIVERED_BASIS.get(s.basis, s.basis)
    if s.load_mode == "rate" and s.tolerance is not None:
        return f"{basis}; short by more than Poisson noise (2/√n) and 5%"
    return f"{basis}; short by more than the run's start and drain and a 5% margin"
