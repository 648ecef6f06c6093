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
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from loadlens.errors import ConfigError, LoadlensError
from loadlens.runner.client import Client, Record
from loadlens.runner.loadgen import Level, Plan, run_level
from loadlens.runner.selfcheck import ClientLoad, Monitor
from loadlens.runner.workloads import Workload

STARTUP_TIMEOUT_S = 120.0  # spawn, import and pre-warm, per worker


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


@dataclass(frozen=True)
class _Job:
    index: int
    workers: int
    target: Any  # sweep.Target (not imported: sweep imports this module)
    workload: Workload
    level: Level
    plan: Plan


@dataclass(frozen=True)
class _Start:
    """Ready, then go: between the two the parent writes the start time."""

    ready: Any  # multiprocessing Barrier, workers + parent
    go: Any  # the same
    at: Any  # multiprocessing Value('d'): time.perf_counter() to begin at

    def abort(self) -> None:
        self.ready.abort()
        self.go.abort()


START_AHEAD_S = 0.1  # from "all ready" to the common start: time to wake every worker


def _worker(job: _Job, start: _Start, results: Any) -> None:
    """Process entry point: run this worker's share and report every record."""
    try:
        asyncio.run(_work(job, start, results))
        results.put(("done", job.index))
    except BaseException as e:  # everything must reach the parent
        start.abort()
        results.put(("error", f"worker {job.index}: {type(e).__name__}: {e}"))


async def _work(job: _Job, start: _Start, results: Any) -> None:
    level, plan = split(job.level, job.plan, job.workers, job.index)
    target, w, n = job.target, job.index, job.workers
    workload = job.workload.shard(w, n)
    client = Client(target.base_url, target.api_key, target.timeout_s)
    try:

        async def send_one(local: int) -> Record:
            request_id = f"loadlens-{job.level.key}-{local * n + w}"
            return await target.send(client, workload.next(), local, request_id)

        def report(record: Record) -> None:
            results.put(("record", replace(record, seq=record.seq * n + w)))

        await client.prewarm(max(1, math.ceil(level.value)))  # as one process does
        start.ready.wait(STARTUP_TIMEOUT_S)
        start.go.wait(STARTUP_TIMEOUT_S)
        if level.mode == "concurrency" and level.value == 0:
            return  # more workers than streams: this one has none
        begin = start.at.value
        if level.mode == "rate" and plan.arrival == "constant":
            # Interleave the workers' fixed schedules: W aligned ones would send in bursts.
            begin += w / job.level.value
        await asyncio.sleep(max(0.0, begin - time.perf_counter()))
        monitor = Monitor()
        await run_level(send_one, level, plan, report, monitor)
        results.put(("load", monitor.load))
    finally:
        await client.close()


async def run_level_in_processes(
    target: Any,
    workload: Workload,
    level: Level,
    plan: Plan,
    on_record: Callable[[Record], None] | None = None,
    loads: list[ClientLoad] | None = None,
) -> list[Record]:
    """Run `level` over `plan.workers` processes; the recorded requests, by sequence.
    What each process spent and how late it ran is appended to `loads`."""
    workers = plan.workers
    if level.mode == "concurrency" and workers > level.value:
        raise ConfigError(
            f"{workers} workers for concurrency {level.value:g}: use at most one worker per stream"
        )
    ctx = multiprocessing.get_context("spawn")  # no fork of a running event loop
    start = _Start(ctx.Barrier(workers + 1), ctx.Barrier(workers + 1), ctx.Value("d", 0.0))
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=_worker,
            args=(_Job(i, workers, target, workload, level, plan), start, results),
            daemon=True,
        )
        for i in range(workers)
    ]
    for p in processes:
        p.start()
    loop = asyncio.get_running_loop()
    records: list[Record] = []
    errors: list[str] = []
    done = 0
    started = loop.run_in_executor(None, _release, start)
    try:
        while done + len(errors) < workers:
            kind, payload = await loop.run_in_executor(None, results.get)
            if kind == "record":
                records.append(payload)
                if on_record:
                    on_record(payload)
            elif kind == "load":
                if loads is not None:
                    loads.append(payload)
            elif kind == "done":
                done += 1
            else:
                errors.append(payload)
        await started
    finally:
        for p in processes:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    if errors:
        raise LoadlensError("the load generator failed: " + "; ".join(errors))
    return sorted(records, key=lambda r: r.seq)


def _release(start: _Start) -> None:
    """Wait until every worker is ready, name the start time, let them go."""
    # Broken: a worker failed, and says why on the results queue.
    with contextlib.suppress(threading.BrokenBarrierError):
        start.ready.wait(STARTUP_TIMEOUT_S)
        start.at.value = time.perf_counter() + START_AHEAD_S
        start.go.wait(STARTUP_TIMEOUT_S)
