"""The Python API: the CLI's verbs, for notebooks and scripts.

from loadlens import api
with Warehouse("lab.duckdb") as wh:
    api.ingest(wh, [Path("results/")], deployment="h100-vllm-tp1")
    analysis = api.analyze(wh, slos=parse_slos("p95_e2e<10s"))
    print(analysis.findings[0].sentence)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from loadlens import sources
from loadlens.analysis.cost import Cost, HostedPrice, Prices, Scenario, UserProfile, cost_at_zone
from loadlens.analysis.coverage import SloCoverage, slo_coverage
from loadlens.analysis.drivers import Drivers, decompose, stacked
from loadlens.analysis.levels import levels as level_metrics
from loadlens.analysis.saturation import (
    Knee,
    OperatingZone,
    Plateau,
    SloBoundary,
    UslFit,
    fit_usl,
    latency_knee,
    max_load_within_slos,
    operating_zones,
    slo_boundary,
    throughput_plateaus,
)
from loadlens.analysis.sensitivity import scenarios
from loadlens.analysis.whatif import WhatIf, solve
from loadlens.config import SLO, Config
from loadlens.errors import InternalError, LoadlensError, WarehouseError
from loadlens.findings import Finding, build_findings
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
    return IngestResult(wh.ingest(traces, deployment, attributes), skipped)


@dataclass(frozen=True)
class Economics:
    """Prices per deployment, the user profile, and optionally a hosted API to compare."""

    prices: dict[str, Prices]
    profile: UserProfile
    hosted: HostedPrice | None = None

    @classmethod
    def from_config(cls, config: Config, deployments: pl.DataFrame) -> Economics | None:
        """From [cost], [users] and [deployments.X]; None when no GPU price is known."""
        prices = {}
        for row in deployments.iter_rows(named=True):
            name = row["deployment"]
            dep = config.deployments.get(name)
            hourly = (dep.gpu_hour_usd if dep else None) or config.cost.gpu_hour_usd
            gpus = (dep.gpus_per_replica if dep else None) or row["gpus_per_replica"] or 1
            if hourly:
                prices[name] = Prices(hourly, gpus)
        if not prices:
            return None
        u, c = config.users, config.cost
        hosted = (
            HostedPrice(c.hosted_input_usd_per_1m, c.hosted_output_usd_per_1m)
            if c.hosted_input_usd_per_1m is not None and c.hosted_output_usd_per_1m is not None
            else None
        )
        profile = UserProfile(
            u.count,
            u.requests_per_day,
            u.active_hours,
            u.peak_factor,
            u.input_tokens,
            u.output_tokens,
        )
        return cls(prices, profile, hosted)


@dataclass(frozen=True)
class Analysis:
    """Everything the models say about a set of deployments, ready for findings and briefs."""

    slos: tuple[SLO, ...]
    coverage: list[SloCoverage]  # per SLO and deployment: judged as asked, on a stand-in, or not
    runs: pl.DataFrame
    deployments: pl.DataFrame
    levels: pl.DataFrame
    boundaries: list[SloBoundary]
    plateaus: list[Plateau]
    usl: list[UslFit]
    knees: list[Knee]
    zones: list[OperatingZone]
    drivers: list[Drivers]
    whatifs: list[WhatIf]
    stacked: pl.DataFrame  # mean E2E parts per level, for the drivers chart
    costs: list[Cost]
    scenarios: list[Scenario]  # cost per user under output-length and SLO changes
    economics: Economics | None
    findings: list[Finding]


def analyze(
    wh: Warehouse,
    deployments: list[str] | None = None,
    slos: tuple[SLO, ...] = (),
    confidence: float = 0.95,
    headroom: float = 0.8,
    config: Config | None = None,
    *,
    stand_in: bool = False,
) -> Analysis:
    """Run the models over the warehouse's runs of `deployments` (all when None)."""
    runs = wh.runs(deployments)
    if runs.is_empty():
        known = wh.deployments()["deployment"].to_list()
        wanted = ", ".join(deployments) if deployments else "any deployment"
        raise WarehouseError(
            f"{wh.path}: no runs for {wanted}; the warehouse has: "
            f"{', '.join(known) if known else 'nothing yet (run loadlens ingest)'}"
        )
    ids = runs["run_id"].to_list()
    requests = wh.requests(ids)
    levels = level_metrics(runs, requests, wh.run_stats(ids), slos, confidence)
    drivers = decompose(runs, requests, wh.server_samples(ids))
    coverage = slo_coverage(levels, slos, stand_in)
    boundaries = [
        b
        for c in coverage
        if c.judged_on is not None
        for b in slo_boundary(
            levels.filter(
                (pl.col("deployment") == c.deployment) & pl.col(c.judged_on.column).is_not_null()
            ),
            c.judged_on,
        )
    ]
    plateaus = throughput_plateaus(levels)
    usl = fit_usl(levels)
    knees = latency_knee(levels)
    zones = operating_zones(list(max_load_within_slos(boundaries).values()), knees, headroom)
    deployment_rows = wh.deployments().filter(
        pl.col("deployment").is_in(runs["deployment"].unique().to_list())
    )
    whatifs = solve(levels, requests, runs, list(max_load_within_slos(boundaries).values()), slos)
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
    return Analysis(
        slos=slos,
        coverage=coverage,
        runs=runs,
        deployments=deployment_rows,
        levels=levels,
        boundaries=boundaries,
        plateaus=plateaus,
        usl=usl,
        knees=knees,
        zones=zones,
        drivers=drivers,
        whatifs=whatifs,
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
        findings=build_findings(
            levels, boundaries, plateaus, slos, usl, zones, costs, drivers, whatifs, coverage
        ),
    )
