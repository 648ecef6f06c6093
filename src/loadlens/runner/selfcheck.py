"""The client measures itself: how far it fell behind while it measured a level.

A load generator is a measuring instrument, and what it adds to the latency it reports
is error. For every level the runner keeps:

- send lag: each request's send (its body on the wire) against when it was due: its
  planned time on an open-loop schedule, or the moment its slot became free in a closed
  loop (the previous request of that stream ended);
- event-loop lag: how late a timer that should fire every 10 ms fires (sampled), which
  every stamp taken on that loop absorbs;
- the client process's CPU share of one core over the level (all its threads);
- how many requests were sent more than 1 ms and 10 ms late.

A level is *disturbed* when that lag is not small against what it measures: p99 send lag
or p99 loop lag above 5% of the level's p50 TTFT, or the client busy above 90% of a core.
Its numbers are then an upper bound on the server's latency, not a measurement of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

LOOP_PERIOD_S = 0.010  # the loop-lag probe's timer
LAG_SHARE = 0.05  # lag above this share of p50 TTFT disturbs the measurement
CPU_BUSY = 0.90  # a client process busier than this share of a core is saturated
LATE_S = (0.001, 0.010)


def quantile(values: list[float], q: float) -> float | None:
    """The q-quantile (linear interpolation, as numpy's default) of `values`."""
    if not values:
        return None
    s = sorted(values)
    pos = (len(s) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


@dataclass
class ClientLoad:
    """What one client process spent and how late it ran during one level."""

    loop_lags: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def merge(self, other: ClientLoad) -> ClientLoad:
        """Several processes on one level: lags pooled, the busiest process's CPU kept
        (each is a client of its own; one saturated process disturbs its share)."""
        busiest = max((self, other), key=lambda c: c.cpu_s / c.wall_s if c.wall_s else 0.0)
        return ClientLoad(self.loop_lags + other.loop_lags, busiest.cpu_s, busiest.wall_s)


class Monitor:
    """`async with Monitor() as m:` around a level: samples the loop's lag and the
    process's CPU time; `m.load` holds them after the block."""

    def __init__(self, period_s: float = LOOP_PERIOD_S) -> None:
        self.period_s = period_s
        self.load = ClientLoad()
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = self._wall0 = 0.0

    async def __aenter__(self) -> Monitor:
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()
        self._task = asyncio.create_task(self._probe())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.load.cpu_s = time.process_time() - self._cpu0
        self.load.wall_s = time.perf_counter() - self._wall0

    async def _probe(self) -> None:
        lags = self.load.loop_lags
        while True:
            before = time.perf_counter()
            await asyncio.sleep(self.period_s)
            lags.append(max(0.0, time.perf_counter() - before - self.period_s))


def verdict(
    send_lags: Iterable[float], load: ClientLoad, p50_ttft_s: float | None
) -> dict[str, Any]:
    """The level's self-measurement as stored with it (`client` in the run's workload
    notes): lags in seconds, the CPU share, and whether the client disturbed the level,
    with why."""
    sends = [max(0.0, s) for s in send_lags]
    send_p50, send_p99 = quantile(sends, 0.5), quantile(sends, 0.99)
    loop_p99 = quantile(load.loop_lags, 0.99)
    cpu = load.cpu_s / load.wall_s if load.wall_s > 0 else None
    why: list[str] = []
    if p50_ttft_s:
        bound = LAG_SHARE * p50_ttft_s
        if send_p99 is not None and send_p99 > bound:
            why.append(
                f"p99 send lag {send_p99 * 1e3:.1f} ms is over {LAG_SHARE:.0%} of p50 TTFT "
                f"({p50_ttft_s * 1e3:.0f} ms)"
            )
        if loop_p99 is not None and loop_p99 > bound:
            why.append(
                f"p99 event-loop lag {loop_p99 * 1e3:.1f} ms is over {LAG_SHARE:.0%} of "
                f"p50 TTFT ({p50_ttft_s * 1e3:.0f} ms)"
            )
    if cpu is not None and cpu > CPU_BUSY:
        why.append(f"the client process was busy {cpu:.0%} of a core")

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v, 6)

    return {
        "send_lag_p50_s": ms(send_p50),
        "send_lag_p99_s": ms(send_p99),
        "send_lag_max_s": ms(max(sends) if sends else None),
        **{f"sent_late_{int(t * 1e3)}ms": sum(s > t for s in sends) for t in LATE_S},
        "loop_lag_p50_s": ms(quantile(load.loop_lags, 0.5)),
        "loop_lag_p99_s": ms(loop_p99),
        "loop_lag_max_s": ms(max(load.loop_lags) if load.loop_lags else None),
        "cpu_share": None if cpu is None else round(cpu, 3),
        "disturbed": bool(why),
        "disturbed_why": "; ".join(why) or None,
    }
