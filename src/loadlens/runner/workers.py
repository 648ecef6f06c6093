"""One load level spread over worker processes, for loads one Python process cannot time.

A request costs the client about 2.6 ms of CPU in the openai SDK (building it, parsing the
response headers); at 1,000 streams of 3-second requests that is most of a core, and a
busy event loop stamps every stream's chunks late. With `workers = W`, W processes each
run 1/W of the level (a share of the streams, or of the arrival rate: Poisson streams
merge into one Poisson stream of the summed rate) on a client of their own.

Clocks: every stamp is `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC, one clock
for all processes of the machine, so records from different workers line up.

Sequence numbers: worker w's local request s is request s × W + w of the level (and its
X-Request-Id says so), so every request keeps a unique, stable number. The workers
connect and pre-warm first; once all are ready the parent names a start time a moment
ahead (on the shared clock), and every worker begins then (constant-rate ones offset by
their share of the interval, so the merged schedule stays even). Each completed record is
sent to the parent at once, so progress stays live.

The processes live for a whole sweep (`WorkerPool`): spawning and importing them cost
seconds, which a pool started per level paid again at every level.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from loadlens.errors import ConfigError, LoadlensError
from loadlens.runner import loop
from loadlens.runner.client import Client, Record
from loadlens.runner.loadgen import Level, Plan, run_level
from loadlens.runner.selfcheck import ClientLoad, Monitor
from loadlens.runner.workloads import Workload

STARTUP_TIMEOUT_S = 120.0  # spawn, import and pre-warm, per worker


def check_workers(level: Level, workers: int) -> None:
    """Refuse more client processes than a closed-loop level has streams."""
    if level.mode == "concurrency" and workers > level.value:
        raise ConfigError(
            f"{workers} workers for concurrency {level.value:g}: use at most one worker per stream"
        )


def share(total: int, workers: int, index: int) -> int:
    """Worker `index`'s part of `total` when split as evenly as possible."""
    return total // workers + (1 if index < total % workers else 0)


def split(level: Level, plan: Plan, workers: int, index: int) -> tuple[Level, Plan]:
    """The level and plan worker `index` of `workers` runs."""
    if level.mode == "concurrency":
        part = Level("concurrency", share(int(level.value), workers, index))
    else:
        part = Level("rate", level.value / workers)
    return part, replace(
        plan,
        requests=share(plan.requests, workers, index) if plan.requests is not None else None,
        warmup=share(plan.warmup, workers, index),
        seed=plan.seed * 1_000 + index,
        workers=1,
    )


START_AHEAD_S = 0.1  # from "all ready" to the common start: time to wake every worker
POLL_S = 0.5  # how often the parent checks that its workers are alive while it waits


class WorkerPool:
    """`workers` client processes for a sweep: `async with WorkerPool(...) as pool`, then
    `await pool.run(level, plan)` per level. Each process keeps its share of the
    workload's prompts from level to level, as one process would."""

    def __init__(self, target: Any, workload: Workload, workers: int) -> None:
        self.target, self.workload, self.workers = target, workload, workers
        ctx = multiprocessing.get_context("spawn")  # no fork of a running event loop
        self._jobs = [ctx.Queue() for _ in range(workers)]
        self._results = ctx.Queue()
        self._processes = [
            ctx.Process(
                target=_serve,
                args=(i, workers, target, workload, self._jobs[i], self._results),
                daemon=True,
            )
            for i in range(workers)
        ]

    async def __aenter__(self) -> WorkerPool:
        for p in self._processes:
            p.start()
        await self._gather("up", None, None)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for q in self._jobs:
            with contextlib.suppress(Exception):
                q.put(None)
        loop = asyncio.get_running_loop()
        for p in self._processes:
            await loop.run_in_executor(None, p.join, 10)
            if p.is_alive():
                p.kill()

    async def run(
        self,
        level: Level,
        plan: Plan,
        on_record: Callable[[Record], None] | None = None,
        loads: list[ClientLoad] | None = None,
    ) -> list[Record]:
        """Run `level` over the pool; the recorded requests, by sequence. What each
        process spent and how late it ran is appended to `loads`."""
        check_workers(level, self.workers)
        for q in self._jobs:
            q.put((level, plan))
        await self._gather("ready", None, None)
        at = time.perf_counter() + START_AHEAD_S
        for q in self._jobs:
            q.put(at)
        records: list[Record] = []
        await self._gather("done", records, on_record, loads)
        return sorted(records, key=lambda r: r.seq)

    async def _gather(
        self,
        until: str,
        records: list[Record] | None,
        on_record: Callable[[Record], None] | None,
        loads: list[ClientLoad] | None = None,
    ) -> None:
        """Read results until every worker has said `until`; a worker's error or death
        ends the wait with a LoadlensError."""
        loop = asyncio.get_running_loop()
        said, errors = 0, list[str]()
        waited = 0.0
        while said + len(errors) < self.workers:
            try:
                kind, payload = await loop.run_in_executor(None, self._results.get, True, POLL_S)
            except queue.Empty:
                waited += POLL_S
                dead = [i for i, p in enumerate(self._processes) if not p.is_alive()]
                if dead or (until != "done" and waited > STARTUP_TIMEOUT_S):
                    what = f"worker {dead[0]} exited" if dead else f"no '{until}' in time"
                    raise LoadlensError(f"the load generator failed: {what}") from None
                continue
            if kind == "record":
                assert records is not None
                records.append(payload)
                if on_record:
                    on_record(payload)
            elif kind == "load":
                if loads is not None:
                    loads.append(payload)
            elif kind == "error":
                errors.append(payload)
            elif kind == until:
                said += 1
        if errors:
            raise LoadlensError("the load generator failed: " + "; ".join(errors))


def _serve(
    index: int, workers: int, target: Any, workload: Workload, jobs: Any, results: Any
) -> None:
    """Process entry point: serve levels until told to stop (None)."""
    try:
        loop.run(
            _serve_levels(index, workers, target, workload.shard(index, workers), jobs, results)
        )
    except BaseException as e:  # everything must reach the parent
        results.put(("error", f"worker {index}: {type(e).__name__}: {e}"))


async def _serve_levels(
    w: int, n: int, target: Any, workload: Workload, jobs: Any, results: Any
) -> None:
    loop = asyncio.get_running_loop()
    results.put(("up", w))
    while (job := await loop.run_in_executor(None, jobs.get)) is not None:
        level, plan = job
        try:
            if not await _one_level(w, n, target, workload, level, plan, jobs, results):
                return  # told to stop while waiting for the start
        except Exception as e:  # the level fails; the pool stays up for the next
            results.put(("error", f"worker {w}: {type(e).__name__}: {e}"))
            continue
        results.put(("done", w))


async def _one_level(
    w: int,
    n: int,
    target: Any,
    workload: Workload,
    whole: Level,
    whole_plan: Plan,
    jobs: Any,
    results: Any,
) -> bool:
    """Worker w's share of one level; False when the pool closed before it started."""
    level, _ = split(whole, whole_plan, n, w)
    client = Client(target.base_url, target.api_key, target.timeout_s)
    loop = asyncio.get_running_loop()
    try:
        await client.prewarm(max(1, math.ceil(level.value)))  # as one process does
        results.put(("ready", w))
        begin = await loop.run_in_executor(None, jobs.get)
        if begin is None:
            return False
        load = await run_share(
            client,
            target,
            workload,
            whole,
            whole_plan,
            w,
            n,
            begin,
            lambda record: results.put(("record", record)),
        )
        results.put(("load", load))
        return True
    finally:
        await client.close()


async def run_share(
    client: Client,
    target: Any,
    workload: Workload,
    whole: Level,
    whole_plan: Plan,
    w: int,
    n: int,
    begin: float,
    report: Callable[[Record], None],
) -> ClientLoad:
    """Worker w of n runs its share of `whole` from `begin` (on its own clock), in a
    process or a Ray actor alike: request ids and the sequence numbers `report` gets name
    the whole level, constant-rate schedules interleave. What the client spent and how
    late it ran."""
    level, plan = split(whole, whole_plan, n, w)
    monitor = Monitor()
    if level.mode == "concurrency" and level.value == 0:
        return monitor.load  # more workers than streams: this one has none
    if level.mode == "rate" and plan.arrival == "constant":
        # Interleave the workers' fixed schedules: W aligned ones would send in bursts.
        begin += w / whole.value

    async def send_one(local: int) -> Record:
        request_id = f"loadlens-{whole.key}-{local * n + w}"
        return await target.send(client, workload.next(), local, request_id)

    def keep(record: Record) -> None:
        report(replace(record, seq=record.seq * n + w))

    await asyncio.sleep(max(0.0, begin - time.perf_counter()))
    await run_level(send_one, level, plan, keep, monitor)
    return monitor.load
