"""Deployment options side by side on the same SLOs and user profile, and which to pick.

An option's *SLO capacity* is the load up to which it meets every SLO (the error budget
included): measured, the highest load level that met them all; interpolated, where its
binding SLO (the one reached at the lowest load) is crossed, with the range the
percentiles' confidence intervals leave. Options are ranked on that capacity (per GPU when
every option's GPU count is known), or on $ per user per month when every option that has
a capacity is priced. The latency knee may lower the stable zone one plans at, but not the
ranking: a knee is where latency turns steep, not where the SLOs stop holding.

Two options whose capacity ranges overlap are a tie: at this sample size the data cannot
tell them apart, and the result says what would (more requests per level where the ranges
come from confidence intervals, more load levels where they come from the gap between
levels, a sweep beyond the last load where an option never breached).

The cost/latency frontier: at each measured level, $ per 1M output tokens against p95
E2E; a point no other point beats on both is on the Pareto frontier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import polars as pl

from loadlens.analysis.cost import Cost, Prices
from loadlens.analysis.saturation import OperatingZone, SloBoundary
from loadlens.config import SLO

Basis = Literal["cost", "capacity", "tie", "none"]
MODE_PREFERENCE = ("concurrency", "rate")  # compared on the first mode every option has
COST_TIE = 0.01  # options within 1% per user of the cheapest cost the same


@dataclass(frozen=True)
class Capacity:
    """One option's SLO capacity in the load mode the options are compared on."""

    option: str
    load_mode: str
    status: str  # "crossed" | "never_breached" | "breached_at_lowest" | "unjudged"
    slo: SLO | None  # the binding SLO
    boundary: SloBoundary | None
    measured: float | None  # highest load meeting every SLO; None: none did
    interpolated: float | None  # where the binding SLO is crossed; None: not crossed
    lo: float | None  # where the true crossing can lie, from; None: open below
    hi: float | None  # to; None: open above (never breached: at least `measured`)
    has_range: bool  # the interpolated crossing has a confidence-interval range to show
    max_load_measured: float | None
    gpus: int | None  # per replica; None: unknown (a hosted API, or not configured)
    zone_load: float | None  # the stable zone to plan at
    zone_bound_by: str | None  # "knee" | "slo"
    knee: float | None
    error_rate_at_capacity: float | None  # at the measured capacity's level
    worst_error_rate: float | None
    worst_error_load: float | None
    cost: Cost | None

    @property
    def has_capacity(self) -> bool:
        return self.measured is not None

    @property
    def lower_bound_only(self) -> bool:
        """Never breached: the capacity is at least the highest load measured."""
        return self.status == "never_breached"

    @property
    def point(self) -> float | None:
        """The load it is ranked on: the crossing, or the lower bound if never breached."""
        return self.interpolated if self.interpolated is not None else self.measured

    def per_gpu(self, value: float | None) -> float | None:
        return value / self.gpus if value is not None and self.gpus else None

    @property
    def point_per_gpu(self) -> float | None:
        return self.per_gpu(self.point)

    @property
    def measured_per_gpu(self) -> float | None:
        return self.per_gpu(self.measured)

    @property
    def lo_per_gpu(self) -> float | None:
        return self.per_gpu(self.lo)

    @property
    def hi_per_gpu(self) -> float | None:
        return self.per_gpu(self.hi)


@dataclass(frozen=True)
class Advice:
    """What would separate tied options: `kind` "more_requests" (at loads lo–hi, to narrow
    confidence intervals), "measure_between" (new load levels between lo and hi) or
    "measure_above" (extend `option`'s sweep beyond lo, its highest load)."""

    kind: Literal["more_requests", "measure_between", "measure_above"]
    load_mode: str
    lo: float
    hi: float | None
    option: str | None = None


@dataclass(frozen=True)
class Recommendation:
    """Which option to take and why, as numbers: the report words them."""

    best: str | None  # None: nothing can be recommended (see `why_none`)
    runner_up: str | None
    basis: Basis
    per_gpu: bool  # capacities ranked per GPU (every option's GPU count is known)
    load_mode: str | None  # the mode capacities are compared in
    options: tuple[Capacity, ...]  # every option, ranked: best first
    modes: dict[str, tuple[str, ...]]  # the load modes each option was measured in
    tie: bool = False  # best and the options in `tied` are indistinguishable at this size
    tied: tuple[str, ...] = ()  # every option tied with the best, the best first
    cost_ratio: float | None = None  # runner-up's $ per user / the cheapest's − 1 (all
    # priced); under COST_TIE the options cost the same and capacity decides
    advice: tuple[Advice, ...] = ()  # what would separate the tied options
    why_none: str | None = None  # "mixed_modes" | "no_capacity" | "unjudged" (basis none)

    def option(self, name: str | None) -> Capacity | None:
        return next((o for o in self.options if o.option == name), None)


def _interval(b: SloBoundary) -> tuple[float | None, float | None]:
    """(lo, hi): where the binding SLO's true crossing can lie, for telling options apart.

    Latency grows convexly with load, so the true crossing lies at or beyond the chord's
    (the pessimistic chord, through the upper confidence bounds, where there is one) and
    before the first level that breaches: two options breaching between the same two
    levels cannot be told apart, however narrow their chords' ranges. A side is open
    (None) where a confidence interval straddles the threshold: the crossing may lie below
    the last level that met it, or beyond the first that breached it."""
    t = b.slo.threshold_s
    if b.status == "never_breached":
        return b.max_load_measured, None
    assert b.last_ok is not None and b.first_breach is not None
    lo: float | None
    if b.boundary_lo is not None:
        lo = b.boundary_lo
    elif b.last_ok.hi is None or b.last_ok.hi <= t:
        lo = b.last_ok.load  # no interval: bracketed by the level that met it
    else:
        lo = None
    hi = b.first_breach.load if b.first_breach.lo is None or b.first_breach.lo > t else None
    return lo, hi


def _errors(
    levels: pl.DataFrame, option: str, mode: str, at: float | None
) -> tuple[float | None, float | None, float | None]:
    """(error rate at load `at`, worst error rate, its load) over an option's levels."""
    if "error_rate" not in levels.columns:
        return None, None, None
    rows = levels.filter(
        (pl.col("deployment") == option)
        & (pl.col("load_mode") == mode)
        & pl.col("error_rate").is_not_null()
    )
    if rows.is_empty():
        return None, None, None
    worst = rows.sort("error_rate", "load_value", descending=[True, False]).row(0, named=True)
    at_rows = rows.filter(pl.col("load_value") == at) if at is not None else rows.clear()
    at_rate = float(at_rows["error_rate"].max()) if at_rows.height else None  # type: ignore[arg-type]
    return at_rate, worst["error_rate"], worst["load_value"]


def _capacity(
    name: str,
    mode: str,
    b: SloBoundary | None,
    zone: OperatingZone | None,
    cost: Cost | None,
    gpus: int | None,
    levels: pl.DataFrame,
) -> Capacity:
    if b is None:
        status, measured, interpolated, lo, hi = "unjudged", None, None, None, None
    else:
        status = b.status
        measured = (
            b.max_load_measured
            if status == "never_breached"
            else b.last_ok.load
            if b.last_ok is not None
            else None
        )
        interpolated = b.boundary_load if status == "crossed" else None
        lo, hi = _interval(b) if measured is not None else (None, None)
    at, worst, worst_load = _errors(levels, name, mode, measured)
    return Capacity(
        option=name,
        load_mode=mode,
        status=status,
        slo=b.slo if b else None,
        boundary=b,
        measured=measured,
        interpolated=interpolated,
        lo=lo,
        hi=hi,
        has_range=b is not None
        and status == "crossed"
        and (b.boundary_lo is not None or b.boundary_hi is not None),
        max_load_measured=b.max_load_measured if b else None,
        gpus=gpus,
        zone_load=zone.max_load if zone else None,
        zone_bound_by=zone.bound_by if zone else None,
        knee=zone.knee if zone else None,
        error_rate_at_capacity=at,
        worst_error_rate=worst,
        worst_error_load=worst_load,
        cost=cost,
    )


def _overlap(a: Capacity, b: Capacity, per_gpu: bool) -> bool:
    def ends(c: Capacity) -> tuple[float, float]:
        lo, hi = (c.lo_per_gpu, c.hi_per_gpu) if per_gpu else (c.lo, c.hi)
        return (-math.inf if lo is None else lo, math.inf if hi is None else hi)

    (alo, ahi), (blo, bhi) = ends(a), ends(b)
    return alo <= bhi and blo <= ahi


def _advice(tied: list[Capacity]) -> tuple[Advice, ...]:
    """What would tell the tied options apart: a sweep beyond the last load of one that
    never breached; more requests where an interval straddles the threshold; new levels
    between the loads that met and breached the SLO, where a level fits between them."""
    mode = tied[0].load_mode
    out: list[Advice] = [
        Advice("measure_above", mode, c.max_load_measured, None, c.option)
        for c in tied
        if c.lower_bound_only and c.max_load_measured is not None
    ]
    brackets = [
        (c, c.boundary.last_ok, c.boundary.first_breach)
        for c in tied
        if c.status == "crossed" and c.boundary is not None
    ]
    pairs = [(c, ok, bad) for c, ok, bad in brackets if ok is not None and bad is not None]
    straddled = [ok.load for c, ok, _ in pairs if c.lo is None] + [
        bad.load for c, _, bad in pairs if c.hi is None
    ]
    if straddled:
        out.append(Advice("more_requests", mode, min(straddled), max(straddled)))
    if len(pairs) >= 2:
        lo = max(ok.load for _, ok, _ in pairs)
        hi = min(bad.load for _, _, bad in pairs)
        step = 1.0 if mode == "concurrency" else 0.0  # whole users; a rate takes any value
        if hi - lo > step:
            out.append(Advice("measure_between", mode, lo, hi))
    return tuple(out)


def _choose_mode(modes: dict[str, tuple[str, ...]]) -> str | None:
    shared = set.intersection(*(set(m) for m in modes.values())) if modes else set()
    return next((m for m in (*MODE_PREFERENCE, *sorted(shared)) if m in shared), None)


def recommend(
    binding: list[SloBoundary],
    zones: list[OperatingZone],
    costs: list[Cost],
    gpus: dict[str, int | None],
    levels: pl.DataFrame,
) -> Recommendation | None:
    """Rank the options (the `deployment` values of `levels`, series names included) on SLO
    capacity, or on $ per user per month when every option with a capacity is priced.
    `binding`: per option and load mode, the SLO reached at the lowest load; `gpus`: GPUs
    per replica by option, None where unknown. None when `levels` holds no option."""
    measured = levels.filter(pl.col("load_value").is_not_null())
    names = levels["deployment"].unique(maintain_order=True).to_list()
    if not names:
        return None
    modes: dict[str, tuple[str, ...]] = {}
    for name in names:
        found = measured.filter(pl.col("deployment") == name)["load_mode"]
        modes[name] = tuple(found.unique(maintain_order=True).to_list())
    by_key = {(b.deployment, b.load_mode): b for b in binding}
    zone_of = {(z.deployment, z.load_mode): z for z in zones}
    cost_of = {(c.deployment, c.load_mode): c for c in costs}

    mode = _choose_mode({n: m for n, m in modes.items() if m})
    judged = {n: m for n, m in modes.items() if any((n, x) in by_key for x in m)}

    def capacity(name: str, m: str) -> Capacity:
        key = (name, m)
        return _capacity(
            name, m, by_key.get(key), zone_of.get(key), cost_of.get(key), gpus.get(name), levels
        )

    if mode is None:
        # Capacities in different modes (concurrency vs req/s) are different units.
        own = [capacity(n, (m or ("unknown",))[0]) for n, m in modes.items()]
        priced = [c for c in own if c.has_capacity]
        if len(priced) >= 2 and all(c.cost is not None for c in priced):
            return _by_cost(own, modes, None)
        return _none(own, modes, "mixed_modes" if judged else "unjudged", None)

    options = [capacity(n, mode) for n in names]
    usable = [c for c in options if c.has_capacity]
    if not usable:
        return _none(options, modes, "no_capacity" if judged else "unjudged", mode)
    if len(usable) >= 2 and all(c.cost is not None for c in usable):
        return _by_cost(options, modes, mode)
    return _by_capacity(options, modes, mode)


def _by_capacity(
    options: list[Capacity], modes: dict[str, tuple[str, ...]], mode: str
) -> Recommendation:
    per_gpu = all(c.gpus for c in options)

    def key(c: Capacity) -> float:
        value = c.point_per_gpu if per_gpu else c.point
        return -math.inf if value is None else value

    ranked = sorted(options, key=key, reverse=True)
    best = ranked[0]
    tied = [best] + [c for c in ranked[1:] if c.has_capacity and _overlap(best, c, per_gpu)]
    tie = len(tied) > 1
    return Recommendation(
        best=best.option,
        runner_up=ranked[1].option if len(ranked) > 1 else None,
        basis="tie" if tie else "capacity",
        tie=tie,
        tied=tuple(c.option for c in tied) if tie else (),
        per_gpu=per_gpu,
        load_mode=mode,
        options=tuple(ranked),
        advice=_advice(tied) if tie else (),
        modes=modes,
    )


def _by_cost(
    options: list[Capacity], modes: dict[str, tuple[str, ...]], mode: str | None
) -> Recommendation:
    """Cheapest per user first. Options within COST_TIE of the cheapest cost the same: among
    them capacity decides where it can (else they are a tie)."""

    def key(c: Capacity) -> float:
        return c.cost.usd_per_user_month if c.cost else math.inf

    ranked = sorted(options, key=key)
    best, second = ranked[0], ranked[1] if len(ranked) > 1 else None
    ratio = (
        second.cost.usd_per_user_month / best.cost.usd_per_user_month - 1
        if second and second.cost and best.cost and best.cost.usd_per_user_month > 0
        else None
    )
    if ratio is not None and ratio < COST_TIE:
        same = [c for c in ranked if key(c) <= key(best) * (1 + COST_TIE)]
        if mode is not None:
            by_capacity = _by_capacity(same, modes, mode)
            rest = tuple(c for c in ranked if c not in same)
            return replace(by_capacity, options=by_capacity.options + rest, cost_ratio=ratio)
        return Recommendation(
            best=best.option,
            runner_up=second.option if second else None,
            basis="tie",
            tie=True,
            tied=tuple(c.option for c in same),
            per_gpu=all(c.gpus for c in options),
            load_mode=mode,
            options=tuple(ranked),
            cost_ratio=ratio,
            modes=modes,
        )
    return Recommendation(
        best=best.option,
        runner_up=second.option if second else None,
        basis="cost",
        per_gpu=all(c.gpus for c in options),
        load_mode=mode,
        options=tuple(ranked),
        cost_ratio=ratio,
        modes=modes,
    )


def _none(
    options: list[Capacity], modes: dict[str, tuple[str, ...]], why: str, mode: str | None
) -> Recommendation:
    return Recommendation(
        best=None,
        runner_up=None,
        basis="none",
        per_gpu=all(c.gpus for c in options),
        load_mode=mode,
        options=tuple(options),
        why_none=why,
        modes=modes,
    )


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
