"""Strain before the SLO breaks: the first load that meets every SLO but where the
server is running out of room."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.timeline import SUSTAINED
from loadlens.findings.format import format_load
from loadlens.findings.model import Finding

KIND = "early_warning"
SECTION = "story"
ORDER = 12


def signal_text(name: str, value: float) -> str:
    return {
        "waiting_share": f"requests wait for a slot in {value:.0%} of the server's samples",
        "kv_cache_peak": f"KV-cache usage peaks at {value:.0%}",
        "preemptions": f"the engine preempted {value:,.0f} requests",
        "tpot_rise": f"TPOT is {value + 1:.1f}× the lightest load's",
        "spread_ratio": f"p99 E2E is {value:.1f}× the median (latency turns unpredictable)",
    }[name]


def find(a: Any) -> list[Finding]:
    out = []
    for w in a.strains:
        here = format_load(w.load_mode, w.load)
        signals = ", ".join(signal_text(k, v) for k, v in w.signals.items())
        room = (
            f" with {w.headroom:.0%} headroom ({w.tightest} closest to its SLO)"
            if w.headroom is not None
            else ""
        )
        if w.next_missed:
            slos = [m for m in w.next_missed if m != SUSTAINED.label]
            falls = SUSTAINED.label in w.next_missed
            misses = (
                "misses " + ", ".join(slos) + (" and falls behind its load" if falls else "")
                if slos
                else "falls behind its load (latency keeps growing)"
            )
            after = f"the next step up, {format_load(w.load_mode, w.next_load)}, {misses}"
        elif w.next_load is not None:
            after = (
                f"the next step up, {format_load(w.load_mode, w.next_load)}, still meets "
                "them: watch it"
            )
        else:
            after = "no higher load was measured"
        out.append(
            Finding(
                kind=KIND,
                severity="warning",
                deployment=w.deployment,
                sentence=(
                    f"At {here} every SLO of {w.deployment} holds{room}, but {signals}: {after}."
                ),
                evidence={
                    "load": w.load,
                    "headroom": w.headroom,
                    **{k: float(v) for k, v in w.signals.items()},
                    "next_load": w.next_load,
                    "next_missed": ", ".join(w.next_missed) or None,
                },
                confidence=(
                    "the server's own samples and the level's percentiles; thresholds: queue "
                    "non-empty in half the samples, KV cache 90%, any preemption, TPOT 2×, "
                    "p99/p50 3× and twice the lightest load's"
                ),
            )
        )
    return out
