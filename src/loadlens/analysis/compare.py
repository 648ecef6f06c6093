"""Deployment options side by side on the same SLOs and user profile, and which to pick.

With prices, the options are ranked by $ per user per month at their stable zones (the
fleet that serves the profile within every SLO); without, by stable-zone load per GPU.
The cost/latency frontier: at each measured level, $ per 1M output tokens against p95
E2E; a point no other point beats on both is on the Pareto frontier.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from loadlens.analysis.cost import Cost, Prices
from loadlens.analysis.saturation import OperatingZone


@dataclass(frozen=True)
class Option:
    deployment: str
    zone: OperatingZone | None
    cost: Cost | None
    gpus_per_replica: int

    @property
    def load_per_gpu(self) -> float:
        return self.zone.max_load / self.gpus_per_replica if self.zone else 0.0


@dataclass(frozen=True)
class Recommendation:
    best: Option
    runner_up: Option | None
    basis: str  # "cost" | "capacity"


def recommend(options: list[Option]) -> Recommendation | None:
    """The cheapest per user when every option has a cost, else the most load per GPU."""
    usable = [o for o in options if o.zone is not None]
    if not usable:
        return None
    if all(o.cost is not None for o in usable):
        ranked = sorted(usable, key=lambda o: o.cost.usd_per_user_month)  # type: ignore[union-attr]
        basis = "cost"
    else:
        ranked = sorted(usable, key=lambda o: o.load_per_gpu, reverse=True)
        basis = "capacity"
    return Recommendation(ranked[0], ranked[1] if len(ranked) > 1 else None, basis)


def cost_latency_points(levels: pl.DataFrame, prices: dict[str, Prices]) -> pl.DataFrame:
    """Per measured level: $ per 1M output tokens and p95 E2E, with the Pareto frontier."""
    rows = levels.filter(
        pl.col("deployment").is_in(list(prices))
        & pl.col("output_throughput_tps").is_not_null()
        & (pl.col("output_throughput_tps") > 0)
        & pl.col("p95_e2e_s").is_not_null()
    ).select("deployment", "load_value", "p95_e2e_s", "output_throughput_tps")
    hourly = pl.col("deployment").replace_strict(
        {d: p.replica_hour_usd for d, p in prices.items()}, return_dtype=pl.Float64
    )
    points = rows.with_columns(
        usd_per_1m_output=hourly / (pl.col("output_throughput_tps") * 3600) * 1e6
    )
    # Sorted by latency, a point is on the frontier when it is cheaper than every faster one.
    return points.sort("p95_e2e_s", "usd_per_1m_output").with_columns(
        pareto=pl.col("usd_per_1m_output")
        < pl.col("usd_per_1m_output").cum_min().shift(1).fill_null(float("inf"))
    )
