"""The analysis result: every number a finding, a brief or the CLI shows, made here once.

Findings word these numbers; reports and the CLI lay them out. Nothing downstream fits,
interpolates or ranks anew, so a number reads the same wherever it appears.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from loadlens.analysis.axes import AxisSweep
from loadlens.analysis.compare import Recommendation
from loadlens.analysis.cost import Cost, HostedPrice, Prices, Scenario, UserProfile
from loadlens.analysis.coverage import SloCoverage
from loadlens.analysis.drivers import Drivers
from loadlens.analysis.saturation import (
    Collapse,
    Knee,
    OperatingZone,
    Plateau,
    RateSaturation,
    RunVerdict,
    SloBoundary,
    UslFit,
)
from loadlens.analysis.shortfall import Shortfall
from loadlens.analysis.strain import Strain, Unpredictable
from loadlens.analysis.timeline import ColdStart, Spread, Steadiness
from loadlens.analysis.whatif import WhatIf
from loadlens.config import SLO, Config

if TYPE_CHECKING:
    from loadlens.findings.model import Finding


def gpus_per_replica(config: Config | None, row: dict[str, Any]) -> int | None:
    """GPUs a replica of a deployment (row of `deployments`, a series' row inheriting its
    base deployment's) uses: as configured, else as recorded; None when neither says."""
    dep = (
        config.deployments.get(row.get("base_deployment") or row["deployment"]) if config else None
    )
    return (dep.gpus_per_replica if dep else None) or row["gpus_per_replica"]


@dataclass(frozen=True)
class Economics:
    """Prices per deployment (series), the user profile, and optionally a hosted API."""

    prices: dict[str, Prices]
    profile: UserProfile
    hosted: HostedPrice | None = None

    @classmethod
    def from_config(cls, config: Config, deployments: pl.DataFrame) -> Economics | None:
        """From [cost], [users] and [deployments.X] (X the deployment as ingested: its
        series share its prices); None when no GPU price is known."""
        prices = {}
        for row in deployments.iter_rows(named=True):
            name = row["deployment"]
            dep = config.deployments.get(row.get("base_deployment") or name)
            hourly = (dep.gpu_hour_usd if dep else None) or config.cost.gpu_hour_usd
            # Priced with one GPU a replica where the count is unknown (the price is then
            # per replica); per-GPU figures use `gpus_per_replica`, which stays unknown.
            gpus = gpus_per_replica(config, row) or 1
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
    """Everything the models say about a set of deployments, ready for findings and briefs.

    `deployment` in `runs`, `levels` and `deployments` is the series (see
    analysis/variants.py); `base_deployment` the deployment as ingested.
    """

    slos: tuple[SLO, ...]  # as asked, with the error budget
    confidence: float
    headroom: float
    coverage: list[SloCoverage]  # per SLO and deployment: judged as asked, on a stand-in, or not
    runs: pl.DataFrame
    deployments: pl.DataFrame
    levels: pl.DataFrame
    failures: pl.DataFrame  # run_id, kind, n: what the failed requests met
    boundaries: list[SloBoundary]
    binding: list[SloBoundary]  # per deployment and mode, the SLO that binds; most load first
    verdicts: list[RunVerdict]  # runs with no load to place them, judged on each SLO
    missed: dict[str, tuple[str, ...]]  # per run judged on any SLO: the SLOs it misses
    plateaus: list[Plateau]
    usl: list[UslFit]
    knees: list[Knee]
    zones: list[OperatingZone]
    collapses: list[Collapse]
    saturations: list[RateSaturation]
    drivers: list[Drivers]
    whatifs: list[WhatIf]
    stacked: pl.DataFrame  # mean E2E parts per level, for the drivers chart
    costs: list[Cost]
    scenarios: list[Scenario]  # cost per user under output-length and SLO changes
    economics: Economics | None
    axes: list[AxisSweep] = field(default_factory=list)  # length sweeps at one load
    shortfalls: list[Shortfall] = field(default_factory=list)  # requested vs delivered load
    # per run whose client lagged what it measured: the runner's self-measurement
    disturbed: dict[str, dict[str, Any]] = field(default_factory=dict)
    # each level over time (analysis/timeline.py, strain.py), per run where start times allow
    steadiness: dict[str, Steadiness] = field(default_factory=dict)
    cold_starts: dict[str, ColdStart] = field(default_factory=dict)
    spreads: dict[str, Spread] = field(default_factory=dict)
    strains: list[Strain] = field(default_factory=list)  # early warnings, per series
    # per series, the first load meeting every SLO whose latency turned unpredictable
    unpredictable: list[Unpredictable] = field(default_factory=list)
    # per timed level (a steady load, enough requests with start times): the level over
    # time, windowed (analysis/timeline.timeline), for the brief's story figures
    timelines: dict[str, pl.DataFrame] = field(default_factory=dict)
    # "kept" (cold starts in every statistic, the default), "auto" (each cold start found
    # left out) or a number of first requests left out of every level; and per run, the
    # requests left out
    warmup: str = "kept"
    excluded: dict[str, int] = field(default_factory=dict)
    recommendation: Recommendation | None = None  # which option, and why
    findings: list[Finding] = field(default_factory=list)

    @property
    def error_budget(self) -> SLO | None:
        return next((s for s in self.slos if not s.is_latency), None)

    @property
    def latency_slos(self) -> tuple[SLO, ...]:
        return tuple(s for s in self.slos if s.is_latency)

    def binding_of(self, deployment: str) -> list[SloBoundary]:
        return [b for b in self.binding if b.deployment == deployment]

    def level(self, deployment: str, mode: str, load: float | None) -> dict[str, Any] | None:
        """The level row of a deployment at a load (None when not measured)."""
        rows = self.levels.filter(
            (pl.col("deployment") == deployment)
            & (pl.col("load_mode") == mode)
            & (pl.col("load_value") == load if load is not None else pl.col("load_value").is_null())
        )
        return rows.row(0, named=True) if rows.height else None
