"""A sweep: levels run one after another; each completed level is written (loadlens trace +
server samples beside it) and ingested into the warehouse before the next starts, so an
interrupted sweep keeps every completed level and `resume` picks up where it stopped.

What is stored: the endpoint's URL, the model, the workload and the load plan. Never the
API key or any header.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from loadlens import api
from loadlens.analysis.failures import failure_kind
from loadlens.errors import ConfigError
from loadlens.runner import loop
from loadlens.runner.client import Api, Client, Record, send
from loadlens.runner.loadgen import Level, Plan, run_level
from loadlens.runner.scrape import Sampler
from loadlens.runner.selfcheck import ClientLoad, Monitor, quantile, verdict
from loadlens.runner.workers import WorkerPool, check_workers
from loadlens.runner.workloads import Prompt, Workload
from loadlens.sources import loadlens_native
from loadlens.trace import RunMeta
from loadlens.warehouse import Warehouse

TOOL = "loadlens sweep"


@dataclass(frozen=True)
class Target:
    base_url: str
    model: str
    api: Api = "chat"
    api_key: str | None = field(default=None, repr=False)  # never stored
    timeout_s: float = 600.0
    ignore_eos: bool = True
    metrics_urls: tuple[str, ...] = ()
    use_nvml: bool = True
    stream: bool = True
    scrape_period_s: float = 1.0

    async def send(self, client: Client, prompt: Prompt, seq: int, request_id: str) -> Record:
        """One streamed request to this endpoint, as every load generator sends it."""
        return await send(
            client,
            self.model,
            prompt,
            seq,
            api=self.api,
            timeout_s=self.timeout_s,
            ignore_eos=self.ignore_eos,
            request_id=request_id,
            stream=self.stream,
        )


@dataclass(frozen=True)
class LevelOutcome:
    level: Level
    path: Path
    records: int
    errors: dict[str, int]
    skipped: bool = False  # already done (resume)
    scrape_failures: dict[str, str] = field(default_factory=dict)  # url -> last error
    scrape: dict[str, Any] = field(default_factory=dict)  # Sampler.notes(), when scraping


def level_path(out_dir: Path, deployment: str, level: Level) -> Path:
    """Where a level's trace goes: always inside `out_dir`, whatever the deployment's name
    (`../../x`, `/etc`, a control character) — the name is data, not a path."""
    return out_dir / safe_dirname(deployment) / f"sweep-{level.key}.jsonl"


def safe_dirname(name: str) -> str:
    """A folder name from any text: path separators, control characters and a leading
    dot replaced, so it names one folder inside its parent and never climbs out."""
    cleaned = re.sub(r"[\x00-\x1f\x7f/\\]", "_", name).lstrip(".")
    return cleaned[:200] or "_"


def to_trace_frames(records: list[Record], level: Level) -> tuple[float, float, pl.DataFrame]:
    """(window start, duration, request rows keyed by run_key) from client records."""
    window_start = min(r.sent for r in records)
    window_end = max((r.chunks[-1] if r.chunks else (r.ended or r.sent)) for r in records)
    rows = []
    for r in records:
        status, error = outcome_of(r)
        last = r.chunks[-1] if r.streamed and r.chunks else r.ended
        rows.append(
            {
                "run_key": level.key,
                "seq": r.seq,
                "start_s": r.sent - window_start,
                "ttft_s": r.chunks[0] - r.sent if r.chunks else None,
                "e2e_s": last - r.sent if status == "ok" and last is not None else None,
                "input_tokens": r.input_tokens,
                "output_tokens": r.output_tokens,
                "itl_s": [b - a for a, b in itertools.pairwise(r.chunks)],
                "status": status,
                "error": error,
            }
        )
    return window_start, window_end - window_start, pl.DataFrame(rows)


def client_notes(records: list[Record]) -> dict[str, Any]:
    """What the client had to do or doubt at a level, kept with the run: requests re-sent
    after a stale connection lost them unsent, and usage the stream contradicts."""
    notes: dict[str, Any] = {}
    if resent := sum(r.resent for r in records):
        notes["resent_requests"] = resent
    mismatched = [r for r in records if r.usage_tokens is not None]
    if mismatched:
        notes["usage_mismatch"] = {
            "requests": len(mismatched),
            "server_completion_tokens": sum(r.usage_tokens or 0 for r in mismatched),
            "streamed_chunks": sum(len(r.chunks) for r in mismatched),
        }
    return notes


def client_verdict(records: list[Record], loads: list[ClientLoad]) -> dict[str, Any]:
    """How far the client fell behind while it measured this level (runner/selfcheck.py):
    each send against when it was due, the event loop's lag and the CPU of its busiest
    process, judged against the level's p50 TTFT."""
    p50_ttft = quantile(
        [r.chunks[0] - r.sent for r in records if r.status == "ok" and r.streamed and r.chunks],
        0.5,
    )
    load = functools.reduce(ClientLoad.merge, loads) if loads else ClientLoad()
    lags = [r.sent - r.due for r in records if r.due is not None]
    # CPU of every client process together, for what a request costs the client
    return {
        **verdict(lags, load, p50_ttft),
        "cpu_s": round(sum(x.cpu_s for x in loads), 4),
        "event_loop": loop.name(),
    }


def outcome_of(record: Record) -> tuple[str, str | None]:
    """(status, error) as stored: a streamed request that succeeded without any content
    is a failure."""
    if record.status == "ok" and record.streamed and not record.chunks:
        return "error", "no content streamed"
    return record.status, record.error


def error_kinds(records: list[Record]) -> dict[str, int]:
    """Failures by kind, as the brief names them (`rate-limited (HTTP 429)`, `timed out`,
    `stream cut mid-response`, ...): one classification, `analysis.failures.failure_kind`."""
    kinds: dict[str, int] = {}
    for r in records:
        status, error = outcome_of(r)
        if status == "ok":
            continue
        kind = failure_kind(status, error)
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


async def run_sweep(
    target: Target,
    workload: Workload,
    levels: list[Level],
    plan: Plan,
    *,
    deployment: str,
    out_dir: Path,
    warehouse: Warehouse,
    resume: bool = False,
    on_level_start: Callable[[Level], None] | None = None,
    on_record: Callable[[Level, Record], None] | None = None,
    on_level_done: Callable[[LevelOutcome], None] | None = None,
) -> list[LevelOutcome]:
    """Run every level, storing each as soon as it completes. With `plan.workers` > 1 the
    levels run on client processes started once for the sweep; with `plan.ray`, on Ray
    actors across a cluster's nodes."""
    outcomes: list[LevelOutcome] = []
    client = Client(target.base_url, target.api_key, target.timeout_s)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(client.close)
        apply = _applier(client, target, workload, plan, stack)
        for level in levels:
            path = level_path(out_dir, deployment, level)
            if path.exists():
                if not resume:
                    raise ConfigError(
                        f"{path}: this level was already measured; pass --resume to keep it "
                        "and run the rest, or choose another --out-dir"
                    )
                outcome = LevelOutcome(level, path, 0, {}, skipped=True)
                api.ingest(warehouse, [path], deployment)  # no-op when already stored
                outcomes.append(outcome)
                if on_level_done:
                    on_level_done(outcome)
                continue
            check_workers(level, plan.workers)
            if on_level_start:
                on_level_start(level)
            records, failures, scrape = await _measure(
                apply, target, workload, level, plan, path, deployment, warehouse, on_record
            )
            if not records:
                continue
            outcome = LevelOutcome(
                level,
                path,
                len(records),
                error_kinds(records),
                scrape_failures=failures,
                scrape=scrape,
            )
            outcomes.append(outcome)
            if on_level_done:
                on_level_done(outcome)
    return outcomes


# One level applied: its records, what each client process spent, notes to keep with it.
Applied = tuple[list[Record], list[ClientLoad], dict[str, Any]]
Apply = Callable[[Level, Callable[[Record], None] | None], Awaitable[Applied]]


def _applier(
    client: Client,
    target: Target,
    workload: Workload,
    plan: Plan,
    stack: contextlib.AsyncExitStack,
) -> Apply:
    """How this sweep applies a level: in this process, on a pool of client processes
    (started at the first level, kept to the last), or on Ray actors."""
    pool: WorkerPool | None = None

    async def apply(level: Level, report: Callable[[Record], None] | None) -> Applied:
        nonlocal pool
        loads: list[ClientLoad] = []
        if plan.ray:
            from loadlens.runner.ray_workers import offsets_note, run_level_on_ray

            records, offsets = await run_level_on_ray(
                plan.ray, target, workload, level, plan, report, loads
            )
            return records, loads, offsets_note(offsets)
        if plan.workers > 1:
            if pool is None:
                pool = await stack.enter_async_context(WorkerPool(target, workload, plan.workers))
            return await pool.run(level, plan, report, loads), loads, {}

        async def send_one(seq: int) -> Record:
            return await target.send(client, workload.next(), seq, f"loadlens-{level.key}-{seq}")

        await client.prewarm(math.ceil(level.value))
        monitor = Monitor()
        records = await run_level(send_one, level, plan, report, monitor)
        return records, [monitor.load], {}

    return apply


async def _measure(
    apply: Apply,
    target: Target,
    workload: Workload,
    level: Level,
    plan: Plan,
    path: Path,
    deployment: str,
    warehouse: Warehouse,
    on_record: Callable[[Level, Record], None] | None,
) -> tuple[list[Record], dict[str, str], dict[str, Any]]:
    """Run one level with the sampler alongside, then write and ingest it."""
    report = (lambda r: on_record(level, r)) if on_record else None
    sampler = Sampler(
        list(target.metrics_urls), period_s=target.scrape_period_s, use_nvml=target.use_nvml
    )
    started_at = datetime.now(UTC).replace(tzinfo=None)
    async with sampler:
        records, loads, notes = await apply(level, report)
    if not records:
        return records, sampler.failures, {}
    window_start, duration, frame = to_trace_frames(records, level)
    run = RunMeta(
        run_key=level.key,
        load_mode=level.mode,
        load_value=level.value,
        started_at=started_at,
        duration_s=duration,
        model=target.model,
        workload={
            **workload.description,
            "plan": asdict(plan),
            "api": target.api,
            "endpoint": target.base_url,
            "ignore_eos": target.ignore_eos,
            "stream": target.stream,
            **client_notes(records),
            # How far the client fell behind what it measured, and whether that disturbed it.
            "client": client_verdict(records, loads),
            **notes,
            # How the scraping went: its schedule, what it skipped and why, what it dropped.
            **({"scrape": sampler.notes()} if sampler.active else {}),
        },
        num_requests=len(records),
        num_errors=sum(r.status != "ok" for r in records),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_samples(path, sampler.samples, window_start)
    loadlens_native.write(path, [run], frame, tool=TOOL)
    api.ingest(warehouse, [path], deployment)
    return records, sampler.failures, sampler.notes() if sampler.active else {}


def _write_samples(
    trace_path: Path, samples: list[tuple[float, str, float]], window_start: float
) -> None:
    """Server samples from the measured window on, beside the trace (a companion file)."""
    lines = [
        orjson.dumps({"t_s": round(t - window_start, 6), "signal": s, "value": v})
        for t, s, v in samples
        if t >= window_start
    ]
    companion = trace_path.with_name(trace_path.stem + ".metrics.jsonl")
    if lines:
        companion.write_bytes(b"\n".join(lines) + b"\n")


def sweep(*args: Any, **kwargs: Any) -> list[LevelOutcome]:
    """Synchronous wrapper of `run_sweep` for the CLI and notebooks."""
    return loop.run(run_sweep(*args, **kwargs))
