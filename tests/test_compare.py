"""Options compared: the recommendation and the cost/latency frontier."""

from __future__ import annotations

import polars as pl

from loadlens.analysis.compare import Option, cost_latency_points, recommend
from loadlens.analysis.cost import Cost, Prices
from loadlens.analysis.saturation import OperatingZone


def _option(name: str, zone: float, per_user: float | None, gpus: int = 1) -> Option:
    z = OperatingZone(name, "concurrency", zone, None, None, 0.8)
    cost = None
    if per_user is not None:
        cost = Cost(
            name,
            zone,
            "concurrency",
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            1,
            per_user * 100,
            per_user,
            None,
            None,
        )
    return Option(name, z, cost, gpus)


def test_cheapest_per_user_wins_when_every_option_has_a_price() -> None:
    rec = recommend([_option("fast", 50, 0.50), _option("cheap", 30, 0.40)])
    assert rec and rec.best.deployment == "cheap" and rec.runner_up.deployment == "fast"
    assert rec.basis == "cost"


def test_capacity_per_gpu_wins_without_prices() -> None:
    rec = recommend([_option("tp2", 80, None, gpus=2), _option("tp1", 50, None)])
    assert rec and rec.best.deployment == "tp1" and rec.basis == "capacity"


def test_pareto_frontier_keeps_only_undominated_levels() -> None:
    levels = pl.DataFrame(
        {
            "deployment": ["a", "a", "b", "b"],
            "load_value": [1.0, 10.0, 1.0, 10.0],
            "p95_e2e_s": [1.0, 3.0, 2.0, 4.0],
            "output_throughput_tps": [100.0, 900.0, 50.0, 400.0],
        }
    )
    points = cost_latency_points(levels, {"a": Prices(3.6), "b": Prices(3.6)})
    frontier = points.filter("pareto").select("deployment", "load_value").rows()
    assert frontier == [("a", 1.0), ("a", 10.0)]  # b is slower and dearer at both levels
