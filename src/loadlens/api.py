"""The Python API: the CLI's verbs, for notebooks and scripts.

from loadlens import api
with Warehouse("lab.duckdb") as wh:
    api.ingest(wh, [Path("results/")], deployment="h100-vllm-tp1")
    analysis = api.analyze(wh, slos=parse_slos("p95_e2e<10s"))
    print(analysis.findings[0].sentence)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from loadlens import sources
from loadlens.analysis.axes import axis_sweeps
from loadlens.analysis.compare import recommend
from loadlens.analysis.cost import cost_at_zone
from loadlens.analysis.coverage import slo_coverage
from loadlens.analysis.drivers import decompose, stacked
from loadlens.analysis.failures import failure_kinds
from loadlens.analysis.levels import levels_from as level_metrics
from loadlens.analysis.result import Analysis, Economics, gpus_per_replica
from loadlens.analysis.saturation import (
    collapse,
    fit_usl,
    latency_knee,
    max_load_within_slos,
    operating_zones,
    rate_saturation,
    slo_boundary,
    throughput_plateaus,
    unplaced_verdicts,
)
from loadlens.analysis.sensitivity import scenarios
from loadlens.analysis.shortfall import client_disturbed, shortfalls
from loadlens.analysis.strain import early_warnings, unpredictable
from loadlens.analysis.timeline import (
    STALL_FACTOR,
    SUSTAINED,
    cold_starts,
    spreads,
    steadiness,
    sustain_boundaries,
    timelines,
    warmup_exclusion,
)
from loadlens.analysis.variants import series_names
from loadlens.analysis.whatif import RagSpec, priced, rag_whatifs, solve
from loadlens.config import SLO, Config, with_error_budget
from loadlens.errors import InternalError, LoadlensError, TraceFormatError, WarehouseError
from loadlens.findings import build_findings
from loadlens.trace import Trace
from loadlens.warehouse import IngestOutcome, Warehouse


@dataclass(frozen=True)
class IngestResult:
    outcomes: list[IngestOutcome]
    skipped: list[sources.Skipped]


def load_traces(
    paths: list[Path],
    fmt: str | None = None,
    on_file: Callable[[Path], None] | None = None,
    **options: Any,
) -> tuple[list[Trace], list[sources.Skipped]]:
    """Parse and check every file first, so a bad one stops the ingest before any write."""
    files, skipped = sources.plan(paths, fmt)
    traces = []
    for f in files:
        try:
            traces.append(sources.load_file(f, fmt, **options))
        except LoadlensError:
            raise
        except Exception as e:  # a loader bug: say which file met it
            raise InternalError(f"reading {f}", e) from e
        if on_file:
            on_file(f)
    return traces, skipped


def ingest(
    wh: Warehouse,
    paths: list[Path],
    deployment: str,
    fmt: str | None = None,
    attributes: dict[str, Any] | None = None,
    on_file: Callable[[Path], None] | None = None,
    **options: Any,
) -> IngestResult:
    """Load every trace under `paths` and store them under `deployment`, all or nothing."""
    traces, skipped = load_traces(paths, fmt, on_file, **options)
    if not traces:
        # e.g. a folder holding only side files: refused, not an empty deployment row
        raise TraceFormatError(paths[0], "no trace files to ingest")
    return IngestResult(wh.ingest(traces, deployment, attributes), skipped)


def analyze(
    wh: Warehouse,
    deployments: list[str] | None = None,
    slos: tuple[SLO, ...] = (),
    confidence: float = 0.95,
    headroom: float = 0.8,
    config: Config | None = None,
    *,
    stand_in: bool = False,
    exclude_warmup: str = "0",
    what_if: RagSpec | None = None,
) -> Analysis:
    """Run the models over the warehouse's runs of `deployments` (all when None).

    Every SLO set carries an error budget (1% of requests unless `slos` has one). Runs of a
    deployment that differ in workload or server settings are analysed as series of it.
    A level's cold start (its first requests far slower than the rest) stays in every
    statistic unless `exclude_warmup` says otherwise: "auto" leaves out each cold start
    found, a number N the first N requests (by start) of every level. `what_if` (e.g.
    `RagSpec.parse("rag=4x512+200ms")`) adds that what-if's prediction to `whatifs`.
    """
    slos = with_error_budget(slos)
    runs = wh.runs(deployments)
    if runs.is_empty():
        known = wh.deployments()["deployment"].to_list()
        wanted = ", ".join(deployments) if deployments else "any deployment"
        raise WarehouseError(
            f"{wh.path}: no runs for {wanted}; the warehouse has: "
            f"{', '.join(known) if known else 'nothing yet (run loadlens ingest)'}"
        )
    series = series_names(runs)
    runs = runs.with_columns(
        base_deployment=pl.col("deployment"),
        deployment=pl.col("run_id").replace_strict(series, return_dtype=pl.String),
    )
    ids = runs["run_id"].to_list()
    requests = wh.requests(ids, gaps=False)  # no model here reads the per-token gaps
    run_stats = wh.run_stats(ids)
    samples = wh.server_samples(ids)
    # A level's story over time needs a steady load: not a burst, not an unrecorded one.
    steady_loads = runs.filter(pl.col("load_mode").is_in(["rate", "concurrency"]))["run_id"]
    timed = requests.filter(pl.col("run_id").is_in(steady_loads.implode()))
    closed = runs.filter(pl.col("load_mode") == "concurrency")
    cold = cold_starts(timed, dict(zip(closed["run_id"], closed["load_value"], strict=True)))
    warmup, excluded = warmup_exclusion(timed, cold, exclude_warmup)
    if not excluded.is_empty():
        requests = requests.join(excluded, on=["run_id", "seq"], how="anti")
    levels = level_metrics(
        runs, wh.level_aggregates(ids, slos, confidence, excluded), run_stats, slos, confidence
    ).join(runs.select("run_id", "base_deployment"), on="run_id", how="left")
    drivers = decompose(runs, requests, samples, confidence)
    coverage = slo_coverage(levels, slos, stand_in)
    judged = [
        (
            c.judged_on,
            levels.filter(
                (pl.col("deployment") == c.deployment) & pl.col(c.judged_on.column).is_not_null()
            ),
        )
        for c in coverage
        if c.judged_on is not None
    ]
    boundaries = [b for slo, lv in judged for b in slo_boundary(lv, slo)]
    missed: dict[str, list[str]] = {}
    for slo, lv in judged:
        for run_id, value in zip(lv["run_id"], lv[slo.column], strict=True):
            missed.setdefault(run_id, [])
            if value > slo.threshold_s:
                missed[run_id].append(slo.label)
    # A level whose latency kept growing meets no SLO, whatever its percentiles: they say
    # how long the test ran.
    if not excluded.is_empty():  # the cold starts are out already
        timed = timed.join(excluded, on=["run_id", "seq"], how="anti")
    steady = {
        s.run_id: s
        for s in steadiness(timed, cold if excluded.is_empty() else {}, confidence=confidence)
    }
    boundaries += sustain_boundaries(levels, steady)
    for run_id, st in steady.items():
        if st.status == "unsustainable" and run_id in missed:
            missed[run_id].append(SUSTAINED.label)
    judged_misses = {k: tuple(v) for k, v in missed.items()}
    spread = {s.run_id: s for s in spreads(requests, wh.gap_stalls(ids, STALL_FACTOR))}
    verdicts = [v for slo, lv in judged for v in unplaced_verdicts(lv, slo)]
    binding = sorted(
        max_load_within_slos(boundaries).values(), key=lambda b: b.capacity, reverse=True
    )
    short = shortfalls(levels, runs, requests, run_stats)
    knees = latency_knee(levels)
    zones = operating_zones(binding, knees, headroom)
    deployment_rows = (
        runs.select("deployment", "base_deployment")
        .unique(maintain_order=True)
        .join(
            wh.deployments().rename({"deployment": "base_deployment"}),
            on="base_deployment",
            how="left",
        )
    )
    economics = Economics.from_config(config, deployment_rows) if config else None
    costs = [
        c
        for z in zones
        if economics
        and z.deployment in economics.prices
        and (
            c := cost_at_zone(
                levels, z, economics.prices[z.deployment], economics.profile, economics.hosted
            )
        )
        is not None
    ]
    known_gpus = {
        row["deployment"]: gpus_per_replica(config, row)
        for row in deployment_rows.iter_rows(named=True)
    }
    analysis = Analysis(
        slos=slos,
        confidence=confidence,
        headroom=headroom,
        coverage=coverage,
        runs=runs,
        deployments=deployment_rows,
        levels=levels,
        failures=failure_kinds(requests),
        boundaries=boundaries,
        binding=binding,
        verdicts=verdicts,
        missed=judged_misses,
        plateaus=throughput_plateaus(levels),
        usl=fit_usl(levels),
        knees=knees,
        zones=zones,
        collapses=collapse(levels),
        saturations=rate_saturation(
            levels, frozenset(s.run_id for s in short if s.status == "client_shortfall")
        ),
        drivers=drivers,
        whatifs=solve(levels, requests, runs, binding, slos)
        + priced(
            rag_whatifs(levels, requests, runs, samples, slos, what_if, confidence),
            zones,
            costs,
        ),
        stacked=stacked(runs, requests),
        costs=costs,
        scenarios=(
            scenarios(
                levels,
                runs,
                requests,
                slos,
                headroom,
                economics.prices,
                economics.profile,
                economics.hosted,
            )
            if economics
            else []
        ),
        economics=economics,
        axes=axis_sweeps(levels, runs, requests, confidence),
        shortfalls=short,
        disturbed=client_disturbed(runs),
        steadiness=steady,
        cold_starts=cold,
        spreads=spread,
        strains=early_warnings(
            levels,
            samples,
            {k: v.p99_over_p50 for k, v in spread.items() if v.p99_over_p50 is not None},
            judged_misses,
            slos,
        ),
        unpredictable=unpredictable(levels, spread, judged_misses),
        timelines=timelines(timed, samples),
        warmup=warmup,
        excluded={str(k): int(v) for k, v in excluded.group_by("run_id").len().iter_rows()},
        recommendation=recommend(binding, zones, costs, known_gpus, levels),
    )
    return replace(analysis, findings=build_findings(analysis))
