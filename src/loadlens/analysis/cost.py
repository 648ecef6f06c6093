"""What a deployment costs at its stable operating point, per token, per request, per user.

The operating point is the stable zone's load; the throughput there is interpolated
linearly between the measured levels around it (a measurement, not the USL model). A
replica runs all month (730 h); users load it at their peak hour:

    peak demand per user (req/s) = requests/day ÷ (active hours × 3600) × peak factor
    users per replica            = replica throughput at the operating point ÷ that
    replicas for N users         = ⌈N ÷ users per replica⌉
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

from loadlens.analysis.saturation import OperatingZone, value_at

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 30.4


@dataclass(frozen=True)
class Prices:
    gpu_hour_usd: float
    gpus_per_replica: int = 1

    @property
    def replica_hour_usd(self) -> float:
        return self.gpu_hour_usd * self.gpus_per_replica


@dataclass(frozen=True)
class UserProfile:
    users: int
    requests_per_day: float
    active_hours: float = 8.0
    peak_factor: float = 2.0
    input_tokens: float | None = None  # per request; None: as measured
    output_tokens: float | None = None

    @property
    def peak_rps_per_user(self) -> float:
        return self.requests_per_day / (self.active_hours * 3600) * self.peak_factor


@dataclass(frozen=True)
class HostedPrice:
    input_usd_per_1m: float
    output_usd_per_1m: float


@dataclass(frozen=True)
class Cost:
    deployment: str
    load: float  # the operating point
    load_mode: str
    rps: float  # per replica, at the operating point
    output_tps: float
    total_tps: float
    replica_hour_usd: float
    usd_per_1m_output: float
    usd_per_1m_total: float
    usd_per_request: float
    users_per_replica: float
    replicas: int
    monthly_usd: float
    usd_per_user_month: float
    hosted_usd_per_user_month: float | None
    break_even_users: float | None  # from here on self-hosting is cheaper; None: never


def _at(levels: pl.DataFrame, load: float, column: str) -> float | None:
    """`column` at `load`, interpolated linearly between the measured levels around it."""
    points = sorted(
        (x, y)
        for x, y in zip(levels["load_value"], levels[column], strict=True)
        if x is not None and y is not None
    )
    return value_at(points, load)


def cost_at_zone(
    levels: pl.DataFrame,
    zone: OperatingZone,
    prices: Prices,
    profile: UserProfile,
    hosted: HostedPrice | None = None,
) -> Cost | None:
    """Costs of `zone.deployment` run at its stable zone; None if that load was not measured
    on both sides (the brief says so instead of extrapolating)."""
    lv = levels.filter(
        (pl.col("deployment") == zone.deployment) & (pl.col("load_mode") == zone.load_mode)
    )
    rps = _at(lv, zone.max_load, "request_throughput_rps")
    out_tps = _at(lv, zone.max_load, "output_throughput_tps")
    total_tps = _at(lv, zone.max_load, "total_token_throughput_tps")
    if not rps or not out_tps or not total_tps:
        return None
    hour = prices.replica_hour_usd
    users_per_replica = rps / profile.peak_rps_per_user
    replicas = max(1, math.ceil(profile.users / users_per_replica))
    monthly = replicas * hour * HOURS_PER_MONTH
    hosted_user = None
    break_even = None
    if hosted is not None:
        tokens_in = (
            profile.input_tokens
            if profile.input_tokens is not None
            else ((total_tps - out_tps) / rps)
        )
        tokens_out = profile.output_tokens if profile.output_tokens is not None else out_tps / rps
        per_request = tokens_in * hosted.input_usd_per_1m + tokens_out * hosted.output_usd_per_1m
        hosted_user = profile.requests_per_day * DAYS_PER_MONTH * per_request / 1e6
        # Self-hosting pays only if a full replica costs less per user than the API; then
        # the first replica breaks even at replica cost / API cost per user (and every
        # further one does, because that point lies below a replica's capacity).
        replica_month = hour * HOURS_PER_MONTH
        if hosted_user > 0 and replica_month / users_per_replica < hosted_user:
            break_even = replica_month / hosted_user
    return Cost(
        deployment=zone.deployment,
        load=zone.max_load,
        load_mode=zone.load_mode,
        rps=rps,
        output_tps=out_tps,
        total_tps=total_tps,
        replica_hour_usd=hour,
        usd_per_1m_output=hour / (out_tps * 3600) * 1e6,
        usd_per_1m_total=hour / (total_tps * 3600) * 1e6,
        usd_per_request=hour / (rps * 3600),
        users_per_replica=users_per_replica,
        replicas=replicas,
        monthly_usd=monthly,
        usd_per_user_month=monthly / profile.users,
        hosted_usd_per_user_month=hosted_user,
        break_even_users=break_even,
    )


@dataclass(frozen=True)
class Scenario:
    deployment: str
    name: str  # "as measured", "outputs −30%", "SLO 20% tighter", ...
    usd_per_user_month: float | None  # at scale; None: no stable zone left to measure


def scale_outputs(levels: pl.DataFrame, e2e_factor: dict[str, float], k: float) -> pl.DataFrame:
    """Levels as they would be with outputs k times as long, at the same concurrency: each
    run's mean E2E changes by `e2e_factor[run_id]`, so by Little's law its request
    throughput changes by the inverse, and its output tokens per request by k."""
    factor = pl.col("run_id").replace_strict(e2e_factor, default=1.0, return_dtype=pl.Float64)
    return levels.with_columns(
        request_throughput_rps=pl.col("request_throughput_rps") / factor,
        output_throughput_tps=pl.col("output_throughput_tps") * k / factor,
        total_token_throughput_tps=(
            pl.col("total_token_throughput_tps")
            - pl.col("output_throughput_tps")
            + pl.col("output_throughput_tps") * k
        )
        / factor,
    )
