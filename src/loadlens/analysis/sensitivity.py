"""How cost per user moves with output length (±30%) and with the SLO (tighter, looser).

Output length: each level's requests re-predicted with outputs k times as long (the
what-if model, prefill stalls included); at a fixed concurrency, Little's law turns the
new mean E2E into the new request throughput. SLO: the thresholds scaled, the boundary,
knee and stable zone found again from the measured levels. Either way the cost model then
runs unchanged on the result.
"""

from __future__ import annotations

import polars as pl

from loadlens.analysis.cost import (
    HOURS_PER_MONTH,
    HostedPrice,
    Prices,
    Scenario,
    UserProfile,
    cost_at_zone,
    scale_outputs,
)
from loadlens.analysis.drivers import prefill_fit
from loadlens.analysis.levels import request_metrics
from loadlens.analysis.saturation import (
    latency_knee,
    max_load_within_slos,
    operating_zones,
    slo_boundary,
)
from loadlens.analysis.whatif import prefill_stall
from loadlens.config import SLO

OUTPUT_SCALES = {"outputs −30%": 0.7, "outputs +30%": 1.3}
SLO_SCALES = {"SLO 20% tighter": 0.8, "SLO 20% looser": 1.2}


def _mean_e2e_factor(requests: pl.DataFrame, k: float, stall_s: float) -> float:
    ok = request_metrics(requests.filter(pl.col("status") == "ok"))
    if ok.is_empty():
        return 1.0
    tpot = pl.col("tpot_s").fill_null(0.0)
    scaled = ok.select(
        before=pl.col("e2e_s").mean(),
        after=(
            pl.col("ttft_s")
            + ((pl.col("output_tokens") * k).round().clip(lower_bound=1) - 1)
            * (tpot + stall_s * (1 / k - 1))
        ).mean(),
    ).row(0, named=True)
    if not scaled["before"] or scaled["after"] is None:  # no TTFT measured: no scaling known
        return 1.0
    return float(scaled["after"] / scaled["before"])


def _cost(levels, slos, headroom, deployment, prices, profile, hosted):
    bounds = [b for s in slos for b in slo_boundary(levels, s)]
    zones = operating_zones(
        list(max_load_within_slos(bounds).values()), latency_knee(levels), headroom
    )
    zone = next((z for z in zones if z.deployment == deployment), None)
    cost = cost_at_zone(levels, zone, prices, profile, hosted) if zone else None
    # Per user at scale (a replica's month over the users it serves): continuous, where the
    # fleet's whole-replica cost would hide a change behind the rounding up.
    return cost.replica_hour_usd * HOURS_PER_MONTH / cost.users_per_replica if cost else None


def scenarios(
    levels: pl.DataFrame,
    runs: pl.DataFrame,
    requests: pl.DataFrame,
    slos: tuple[SLO, ...],
    headroom: float,
    prices: dict[str, Prices],
    profile: UserProfile,
    hosted: HostedPrice | None,
) -> list[Scenario]:
    out: list[Scenario] = []
    for deployment, price in prices.items():
        lv = levels.filter(pl.col("deployment") == deployment)
        if lv.is_empty():
            continue
        args = (deployment, price, profile, hosted)
        out.append(Scenario(deployment, "as measured", _cost(lv, slos, headroom, *args)))
        dep_runs = runs.filter(pl.col("deployment") == deployment).sort("load_value")
        _, slope = prefill_fit(requests, dep_runs["run_id"][0])
        for name, k in OUTPUT_SCALES.items():
            factors = {}
            for row in lv.iter_rows(named=True):
                reqs = requests.filter(pl.col("run_id") == row["run_id"])
                in_flight = row["achieved_concurrency"] or row["load_value"] or 0.0
                stall = prefill_stall(reqs, in_flight, slope)
                factors[row["run_id"]] = _mean_e2e_factor(reqs, k, stall)
            scaled = scale_outputs(lv, factors, k)
            out.append(Scenario(deployment, name, _cost(scaled, slos, headroom, *args)))
        for name, f in SLO_SCALES.items():
            scaled_slos = tuple(
                s.model_copy(update={"threshold_s": s.threshold_s * f}) if s.is_latency else s
                for s in slos
            )
            out.append(Scenario(deployment, name, _cost(lv, scaled_slos, headroom, *args)))
    return out
