"""Load shapes: closed-loop concurrency and open-loop request rate.

Closed loop: N workers, each sending its next request when its last one ends — the load
vLLM's `--max-concurrency` applies. Open loop: arrivals on a schedule fixed in advance
(Poisson or constant), independent of responses, so a slow server cannot slow the arrivals
down and hide its queueing (coordinated omission).

The first `warmup` requests of a level are sent, at the level's load, before it and are
not recorded: they warm connections and caches, and once they have all ended the level
starts at its full load (warm-up requests still in flight would leave the recorded ones
short of it). A level ends after `requests` recorded requests, or once `duration_s` has
passed (no new request is sent after it; those in flight finish or time out).
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from loadlens.runner.client import Record
from loadlens.runner.selfcheck import Monitor

Send = Callable[[int], Awaitable[Record]]


@dataclass(frozen=True)
class Level:
    mode: Literal["concurrency", "rate"]
    value: float

    @property
    def key(self) -> str:
        return f"{'c' if self.mode == 'concurrency' else 'r'}{self.value:g}"


@dataclass(frozen=True)
class Plan:
    requests: int | None = 200
    duration_s: float | None = None
    warmup: int = 0
    arrival: Literal["poisson", "constant"] = "poisson"
    seed: int = 0
    workers: int = 1  # client processes sharing the level (runner/workers.py)
    ray: str | None = None  # a Ray cluster's address: the workers as actors there


async def run_level(
    send: Send,
    level: Level,
    plan: Plan,
    on_record: Callable[[Record], None] | None = None,
    monitor: Monitor | None = None,
) -> list[Record]:
    """Apply `level` until the plan says stop; return the recorded (post-warm-up) requests,
    each with when it was due (`Record.due`). `monitor`, if given, watches the client
    while the recorded part runs.

    The garbage collector is paused while the level runs: a full collection of a large
    heap stops the event loop for tens of milliseconds, which every in-flight stream's
    timestamps would absorb (seen: a 100 ms outlier). It runs once before and after.
    """
    gc.collect()
    gc.disable()
    try:
        return await _run_level(send, level, plan, on_record, monitor or Monitor())
    finally:
        gc.enable()
        gc.collect()


async def _run_level(
    send: Send,
    level: Level,
    plan: Plan,
    on_record: Callable[[Record], None] | None,
    monitor: Monitor,
) -> list[Record]:
    if plan.warmup:
        gate = asyncio.Semaphore(max(1, int(level.value)) if level.mode == "concurrency" else 1)

        async def warm(seq: int) -> None:
            async with gate:
                await send(seq)

        await asyncio.gather(*(warm(seq) for seq in range(plan.warmup)))
    limit = plan.warmup + plan.requests if plan.requests is not None else None
    async with monitor:
        start = time.perf_counter()
        deadline = start + plan.duration_s if plan.duration_s is not None else None
        records: list[Record] = []

        def keep(record: Record, due: float) -> None:
            record.due = due
            if record.seq >= plan.warmup:
                records.append(record)
                if on_record:
                    on_record(record)

        def may_send(seq: int) -> bool:
            if limit is not None and seq >= limit:
                return False
            return deadline is None or time.perf_counter() < deadline

        if level.mode == "concurrency":
            issued = plan.warmup

            async def worker() -> None:
                # Due when the stream's slot became free: the level's start, then the
                # end of the stream's previous request.
                nonlocal issued
                free = start
                while may_send(issued):
                    seq, issued = issued, issued + 1
                    record = await send(seq)
                    keep(record, free)
                    free = record.ended or time.perf_counter()

            await asyncio.gather(*(worker() for _ in range(int(level.value))))
        else:
            rng = random.Random(plan.seed)
            tasks: list[asyncio.Task[None]] = []
            at, seq = start, plan.warmup

            async def one(n: int, due: float) -> None:
                keep(await send(n), due)

            while may_send(seq):
                await asyncio.sleep(max(0.0, at - time.perf_counter()))
                if deadline is not None and time.perf_counter() >= deadline:
                    break
                tasks.append(asyncio.create_task(one(seq, at)))
                seq += 1
                gap = rng.expovariate(level.value) if plan.arrival == "poisson" else 1 / level.value
                at += gap
            await asyncio.gather(*tasks)
    return sorted(records, key=lambda r: r.seq)
