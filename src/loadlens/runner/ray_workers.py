"""One load level spread over the nodes of a Ray cluster, for loads one host cannot apply.

Ray is the distributed engine (an optional extra: `pip install 'loadlens[ray]'`); this
module only shares a level out as `runner/workers.py` does over local processes: worker w
of W runs `workers.split(level, plan, W, w)` in a Ray actor of its own (spread over the
nodes), on its own client and its own monotonic clock.

Clocks: an actor's `time.perf_counter()` is not the driver's once it runs on another host.
Before a level the driver estimates each actor's clock offset by min-RTT sampling (as
AIPerf and NTP do): it reads the actor's clock between two of its own readings, many
times, and keeps the sample with the shortest round trip, where the actor's reading is
closest to the midpoint; the error is at most half that round trip. The driver names a
start time on its own clock; each actor begins at that time on its clock, and every stamp
it reports is moved onto the driver's clock by its offset. The offsets and round trips
are stored with the level (`ray` in the run's workload notes).

Records stream back while the level runs: the driver drains each actor's finished records
every quarter second, so progress stays live and memory stays flat on the actors.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from loadlens.errors import ConfigError, LoadlensError
from loadlens.runner.client import Client, Record
from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.selfcheck import ClientLoad
from loadlens.runner.workers import check_workers, run_share, split
from loadlens.runner.workloads import Workload

INSTALL_HINT = "Ray is not installed: pip install 'loadlens[ray]' (or pip install ray)"
CLOCK_SAMPLES = 25  # round trips per actor for its clock offset
START_AHEAD_S = 0.5  # from "all ready" to the common start: a remote call to every actor
DRAIN_EVERY_S = 0.25


@dataclass(frozen=True)
class ClockOffset:
    """Actor w's clock minus the driver's, as estimated, and the round trip it rests on."""

    worker: int
    node: str
    host: str
    offset_s: float
    rtt_s: float


def available() -> bool:
    return importlib.util.find_spec("ray") is not None


def connect(address: str) -> Any:
    """`ray` connected to the cluster at `address` ("auto": the one this host belongs to;
    "local": a new one on this machine), or a ConfigError saying how to get Ray."""
    if not available():
        raise ConfigError(INSTALL_HINT)
    import ray

    if not ray.is_initialized():
        try:
            ray.init(
                address=None if address == "local" else address,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        except ConnectionError as e:
            raise ConfigError(
                f"--ray {address}: no Ray cluster there ({' '.join(str(e).split())}); "
                "start one with `ray start --head` or pass --ray local"
            ) from None
    return ray


class LevelWorker:
    """A Ray actor running one worker's share of a level (made remote in `_actor_class`)."""

    def __init__(self, index: int, workers: int, target: Any, workload: Workload) -> None:
        self.index, self.workers, self.target = index, workers, target
        self.workload = workload.shard(index, workers)
        self.client: Client | None = None
        self.finished: list[Record] = []

    def where(self) -> tuple[str, str]:
        import ray

        return ray.get_runtime_context().get_node_id(), socket.gethostname()

    def clock(self) -> float:
        return time.perf_counter()

    async def prepare(self, level: Level, plan: Plan) -> None:
        part, _ = split(level, plan, self.workers, self.index)
        self.client = Client(self.target.base_url, self.target.api_key, self.target.timeout_s)
        await self.client.prewarm(max(1, math.ceil(part.value)))

    async def run(self, level: Level, plan: Plan, begin: float) -> ClientLoad:
        """Run this worker's share from `begin` (this actor's clock); what the client
        spent and how late it ran."""
        assert self.client is not None, "prepare() first"
        try:
            return await run_share(
                self.client,
                self.target,
                self.workload,
                level,
                plan,
                self.index,
                self.workers,
                begin,
                lambda record: self.finished.append(record),  # drain() swaps the list
            )
        finally:
            await self.client.close()
            self.client = None

    def drain(self) -> list[Record]:
        out, self.finished = self.finished, []
        return out


def _actor_class(ray: Any) -> Any:
    # Async methods run on the actor's event loop, so drain() and clock() answer while
    # run() is in flight.
    return ray.remote(num_cpus=1, max_concurrency=64, scheduling_strategy="SPREAD")(LevelWorker)


def estimate_offset(ray: Any, actor: Any, samples: int = CLOCK_SAMPLES) -> tuple[float, float]:
    """(offset, rtt): the actor's clock minus ours at the round trip shortest of `samples`."""
    best: tuple[float, float] | None = None
    for _ in range(samples):
        before = time.perf_counter()
        theirs = ray.get(actor.clock.remote())
        after = time.perf_counter()
        rtt = after - before
        if best is None or rtt < best[1]:
            best = (theirs - (before + after) / 2, rtt)
    assert best is not None
    return best


def _on_our_clock(record: Record, offset: float) -> Record:
    return replace(
        record,
        sent=record.sent - offset,
        chunks=[t - offset for t in record.chunks],
        ended=None if record.ended is None else record.ended - offset,
        due=None if record.due is None else record.due - offset,
    )


async def run_level_on_ray(
    address: str,
    target: Any,
    workload: Workload,
    level: Level,
    plan: Plan,
    on_record: Callable[[Record], None] | None = None,
    loads: list[ClientLoad] | None = None,
) -> tuple[list[Record], list[ClockOffset]]:
    """Run `level` over `plan.workers` Ray actors; the records by sequence, on this
    process's clock, and the clock offset of every actor. What each actor's client spent
    and how late it ran is appended to `loads`."""
    workers = plan.workers
    check_workers(level, workers)
    ray = connect(address)
    cpus = ray.cluster_resources().get("CPU", 0)
    if cpus < workers:
        raise ConfigError(
            f"--ray: the cluster has {cpus:g} CPUs for {workers} workers (one CPU each); "
            "add nodes or use fewer --workers"
        )
    cls = _actor_class(ray)
    actors = [cls.remote(i, workers, target, workload) for i in range(workers)]
    loop = asyncio.get_running_loop()

    def ray_get(refs: Any) -> Any:
        return loop.run_in_executor(None, ray.get, refs)

    try:
        places = await ray_get([a.where.remote() for a in actors])
        await ray_get([a.prepare.remote(level, plan) for a in actors])
        measured = [await loop.run_in_executor(None, estimate_offset, ray, a) for a in actors]
        offsets = [
            ClockOffset(i, node, host, offset, rtt)
            for i, ((node, host), (offset, rtt)) in enumerate(zip(places, measured, strict=True))
        ]
        begin = time.perf_counter() + START_AHEAD_S
        running = [
            a.run.remote(level, plan, begin + o.offset_s)
            for a, o in zip(actors, offsets, strict=True)
        ]
        records: list[Record] = []

        async def drain() -> None:
            batches = await ray_get([a.drain.remote() for a in actors])
            for batch, o in zip(batches, offsets, strict=True):
                for record in batch:
                    record = _on_our_clock(record, o.offset_s)
                    records.append(record)
                    if on_record:
                        on_record(record)

        def wait(pending: list[Any]) -> list[Any]:
            return ray.wait(pending, num_returns=len(pending), timeout=DRAIN_EVERY_S)[1]

        pending = list(running)
        while pending:
            pending = await loop.run_in_executor(None, wait, pending)
            await drain()
        try:
            spent = await ray_get(running)  # raises what an actor raised
        except Exception as e:
            raise LoadlensError(
                "the load generator failed on a Ray worker: " + " ".join(str(e).split())[:500]
            ) from None
        await drain()
        if loads is not None:
            loads.extend(spent)
    finally:
        for a in actors:
            ray.kill(a)
    return sorted(records, key=lambda r: r.seq), offsets


def offsets_note(offsets: list[ClockOffset]) -> dict[str, Any]:
    """What the run's workload notes keep of a Ray level: where each worker ran and how
    far its clock was from the driver's."""
    return {
        "ray": {
            "driver_host": socket.gethostname(),
            "driver_pid": os.getpid(),
            "workers": [
                {
                    "worker": o.worker,
                    "node": o.node,
                    "host": o.host,
                    "clock_offset_s": round(o.offset_s, 6),
                    "clock_rtt_s": round(o.rtt_s, 6),
                }
                for o in offsets
            ],
        }
    }
