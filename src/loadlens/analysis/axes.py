"""Sweeps over something other than load: input or output length at one load level.

Real studies hold the load still and vary the workload: input length 1k→15k tokens at
concurrency 100, or output length, often with one run per value. Each such run is its own
series (`variants.series_names`); here the series of one base deployment at one load that
differ in exactly one numeric workload target (input or output tokens) are laid out on
that axis, with the per-token cost the sweep measures:

    TTFT = a + b · input tokens        (input axis)
    E2E  = a + b · output tokens       (output axis)

fitted by least squares over the successful requests' own token counts where the runs
have request rows, else over each run's mean (or median) against its target length. The
interval on b is the normal-theory one (Student t with n − 2 degrees of freedom), so a
sweep of 4 summary-only runs gets the wide interval it deserves. `share_at_max` is the
part of the mean at the longest point that the per-token term accounts for, b·x̄ / ȳ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist
from typing import Any, Literal

import orjson
import polars as pl

from loadlens.analysis.variants import facets, series_names
from loadlens.config import SLO
from loadlens.trace import stored_object

Axis = Literal["input_tokens", "output_tokens"]
AXES: dict[str, str] = {"input_tokens": "in", "output_tokens": "out"}  # axis -> facet label
AXIS_METRIC = {"input_tokens": "ttft_s", "output_tokens": "e2e_s"}  # what the tokens drive
MIN_FIT_POINTS = 3
# The statistic shown for a metric where no SLO names one, in order of preference: a
# summary-only file may not record p95 (vLLM's default summary has p99 and the median).
SHOWN_STATISTICS = ("p95", "p99", "p90", "p50", "mean")
POINT_STATISTICS = ("mean", "p50", "p90", "p95", "p99")
# Facet labels of `variants.facets` -> the axis names `sweep_axis` answers with.
FACET_AXES = {"in": "input_tokens", "out": "output_tokens"}


@dataclass(frozen=True)
class AxisPoint:
    """One run of a sweep: its series, its target on the axis, and its latencies."""

    series: str
    run_id: str
    value: float  # the run's target on the axis (tokens)
    # Level columns of TTFT and E2E (`p95_ttft_s`, `p95_ttft_s_lo`, `mean_e2e_s`...),
    # None where the run does not record them (a summary has no CIs, may lack p95).
    stats: dict[str, float | None]
    n: int | None  # requests of the run
    mean_tokens: float | None  # mean actual tokens on the axis of its successful requests

    def stat(self, column: str) -> float | None:
        return self.stats.get(column)


@dataclass(frozen=True)
class AxisFit:
    """`metric` = intercept + slope × tokens, least squares; CI at the sweep's confidence."""

    metric: str  # "ttft_s" (input axis) or "e2e_s" (output axis)
    basis: str  # "requests" | "run means" | "run medians"
    n: int  # requests (basis "requests") or runs fitted
    n_runs: int
    slope_s_per_token: float
    slope_lo: float | None  # None where n < 3 (no degrees of freedom left)
    slope_hi: float | None
    intercept_s: float
    r2: float | None
    significant: bool  # n ≥ 3 and the interval excludes 0
    share_tokens: float  # tokens at the largest point the share is taken at
    share_reference_s: float  # mean (or median) of the metric there
    share_at_max: float | None  # slope × share_tokens / share_reference_s


@dataclass(frozen=True)
class AxisSweep:
    """Series of one base deployment at one load differing only in one token target."""

    base_deployment: str
    load_mode: str
    load_value: float | None
    axis: Axis
    points: tuple[AxisPoint, ...]  # by axis value
    # Over the requests' own token counts where every run has request rows, else the same
    # as run_fit; None where nothing could be fitted (no latency recorded).
    fit: AxisFit | None
    # Over each run's mean: how the whole load's latency moves with length. With request
    # rows the two can differ (a request's TTFT at concurrency 100 depends on its batch's
    # prompts more than on its own); `disagree` says when to state both.
    run_fit: AxisFit | None
    confidence: float

    @property
    def disagree(self) -> bool:
        """The per-run slope lies outside the per-request slope's interval."""
        f, r = self.fit, self.run_fit
        if f is None or r is None or f.basis != "requests":
            return False
        if f.slope_lo is None or f.slope_hi is None:
            return False
        return not f.slope_lo <= r.slope_s_per_token <= f.slope_hi

    @property
    def metric(self) -> str:
        return AXIS_METRIC[self.axis]

    @property
    def values(self) -> list[float]:
        return sorted({p.value for p in self.points})

    @property
    def n_requests(self) -> int | None:
        """Requests per run where all runs sent the same number (for `at_load`)."""
        counts = {p.n for p in self.points}
        return counts.pop() if len(counts) == 1 else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def axis_sweeps(
    levels: pl.DataFrame,
    runs: pl.DataFrame,
    requests: pl.DataFrame,
    confidence: float = 0.95,
) -> list[AxisSweep]:
    """Every input- or output-length sweep: per base deployment and load, the runs that
    differ in exactly one token target, where it takes at least 2 values."""
    if levels.is_empty():
        return []
    if "base_deployment" in levels.columns:
        level_rows = levels
    else:  # before the series split: name the series here, as the analysis will
        names = series_names(runs)
        level_rows = levels.with_columns(
            base_deployment=pl.col("deployment"),
            deployment=pl.col("run_id").replace(names),
        )
    by_run = {r["run_id"]: r for r in level_rows.iter_rows(named=True)}
    found: dict[tuple[str, str, float | None, str, str], list[tuple[str, float]]] = {}
    for r in runs.iter_rows(named=True):
        level = by_run.get(r["run_id"])
        if level is None:
            continue
        workload = stored_object(r.get("workload"))
        f = facets(workload, stored_object(r.get("params")))
        f.pop("tag", None)  # a tool's tag often spells out the length itself
        for axis, label in AXES.items():
            value = _number(workload.get(axis))
            if value is None:
                continue
            rest = orjson.dumps({k: v for k, v in f.items() if k != label}).decode()
            key = (level["base_deployment"], level["load_mode"], level["load_value"], axis, rest)
            found.setdefault(key, []).append((r["run_id"], value))
    sweeps = []
    for (base, mode, load, axis, _), members in found.items():
        if len({v for _, v in members}) < 2:
            continue
        points = tuple(
            sorted(
                (_point(by_run[run_id], value, axis, requests) for run_id, value in members),
                key=lambda p: (p.value, p.series, p.run_id),
            )
        )
        sweeps.append(
            AxisSweep(
                base_deployment=base,
                load_mode=mode,
                load_value=load,
                axis=axis,  # type: ignore[arg-type]
                points=points,
                fit=_fit_requests(points, axis, requests, confidence)
                or _fit_runs(points, axis, confidence),
                run_fit=_fit_runs(points, axis, confidence),
                confidence=confidence,
            )
        )
    return sorted(
        sweeps,
        key=lambda s: (s.base_deployment, s.load_mode, s.load_value or 0.0, s.axis),
    )


def _point(level: dict[str, Any], value: float, axis: str, requests: pl.DataFrame) -> AxisPoint:
    stats = {
        f"{st}_{m}{suffix}": level.get(f"{st}_{m}{suffix}")
        for m in ("ttft_s", "e2e_s")
        for st in POINT_STATISTICS
        for suffix in ("", "_lo", "_hi")
    }
    tokens = _ok_rows(requests, [level["run_id"]], axis, AXIS_METRIC[axis])
    return AxisPoint(
        series=level["deployment"],
        run_id=level["run_id"],
        value=value,
        stats=stats,
        n=level.get("n_requests"),
        mean_tokens=tokens["x"].mean() if not tokens.is_empty() else None,  # type: ignore[arg-type]
    )


def _ok_rows(requests: pl.DataFrame, run_ids: list[str], axis: str, metric: str) -> pl.DataFrame:
    """(run_id, x, y) of the successful requests that recorded both tokens and latency."""
    if requests.is_empty():
        return pl.DataFrame(schema={"run_id": pl.String, "x": pl.Float64, "y": pl.Float64})
    return (
        requests.filter(pl.col("run_id").is_in(run_ids) & (pl.col("status") == "ok"))
        .select("run_id", x=pl.col(axis).cast(pl.Float64), y=pl.col(metric).cast(pl.Float64))
        .drop_nulls()
    )


def _fit_requests(
    points: tuple[AxisPoint, ...], axis: str, requests: pl.DataFrame, confidence: float
) -> AxisFit | None:
    """Per successful request: the metric on the request's own tokens; None unless every
    run of the sweep has such rows."""
    metric = AXIS_METRIC[axis]
    run_ids = [p.run_id for p in points]
    rows = _ok_rows(requests, run_ids, axis, metric)
    if set(rows["run_id"].unique().to_list()) != set(run_ids):
        return None
    at_max = rows.filter(pl.col("run_id") == points[-1].run_id)
    return _make_fit(
        metric,
        "requests",
        rows["x"].to_list(),
        rows["y"].to_list(),
        len(points),
        at_max["x"].mean(),  # type: ignore[arg-type]
        at_max["y"].mean(),  # type: ignore[arg-type]
        confidence,
    )


def _fit_runs(points: tuple[AxisPoint, ...], axis: str, confidence: float) -> AxisFit | None:
    """Per run: its mean (else median) metric on its mean actual tokens where it has
    request rows, else on its target."""
    metric = AXIS_METRIC[axis]
    statistic = next(
        (st for st in ("mean", "p50") if all(p.stat(f"{st}_{metric}") is not None for p in points)),
        None,
    )
    if statistic is None:
        return None
    xs = [p.mean_tokens if p.mean_tokens is not None else p.value for p in points]
    ys = [p.stat(f"{statistic}_{metric}") for p in points]
    return _make_fit(
        metric,
        "run means" if statistic == "mean" else "run medians",
        xs,
        ys,  # type: ignore[arg-type]
        len(points),
        xs[-1],
        ys[-1],  # type: ignore[arg-type]
        confidence,
    )


def _make_fit(
    metric: str,
    basis: str,
    xs: list[float],
    ys: list[float],
    n_runs: int,
    share_x: float,
    share_y: float,
    confidence: float,
) -> AxisFit | None:
    line = least_squares(xs, ys, confidence)
    if line is None:
        return None
    slope, intercept, lo, hi, r2 = line
    return AxisFit(
        metric=metric,
        basis=basis,
        n=len(xs),
        n_runs=n_runs,
        slope_s_per_token=slope,
        slope_lo=lo,
        slope_hi=hi,
        intercept_s=intercept,
        r2=r2,
        significant=(
            len(xs) >= MIN_FIT_POINTS and lo is not None and hi is not None and (lo > 0 or hi < 0)
        ),
        share_tokens=float(share_x),
        share_reference_s=float(share_y),
        share_at_max=slope * share_x / share_y if share_y else None,
    )


def least_squares(
    xs: list[float], ys: list[float], confidence: float
) -> tuple[float, float, float | None, float | None, float | None] | None:
    """(slope, intercept, slope CI lo, hi, r²) of y = a + b·x; None where x does not vary.
    The interval is b ± t(n−2)·s/√Sxx; None with fewer than 3 points."""
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx <= 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    syy = sum((y - my) ** 2 for y in ys)
    slope = sxy / sxx
    intercept = my - slope * mx
    r2 = sxy * sxy / (sxx * syy) if syy > 0 else None
    if n < MIN_FIT_POINTS:
        return slope, intercept, None, None, r2
    residual = max(syy - slope * sxy, 0.0) / (n - 2)
    half = student_t_quantile(0.5 + confidence / 2, n - 2) * math.sqrt(residual / sxx)
    return slope, intercept, slope - half, slope + half, r2


@lru_cache(maxsize=256)
def student_t_quantile(p: float, dof: int) -> float:
    """The p-quantile of Student's t (p > 0.5): bisection on its CDF, integrated by
    Simpson's rule over t = tan θ (a finite range however heavy the tail); the normal
    quantile beyond 1000 degrees of freedom, where the two agree to 3 digits."""
    if dof > 1000:
        return NormalDist().inv_cdf(p)
    log_c = math.lgamma((dof + 1) / 2) - math.lgamma(dof / 2) - 0.5 * math.log(dof * math.pi)

    def density_in_theta(theta: float) -> float:  # f(tan θ) · dt/dθ
        t = math.tan(theta)
        return math.exp(log_c - (dof + 1) / 2 * math.log1p(t * t / dof)) / math.cos(theta) ** 2

    def cdf(t: float) -> float:
        end, steps = math.atan(t), 400
        h = end / steps
        total = density_in_theta(0) + density_in_theta(end)
        total += sum((4 if i % 2 else 2) * density_in_theta(i * h) for i in range(1, steps))
        return 0.5 + total * h / 3

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def shown_column(
    points: tuple[AxisPoint, ...], metric: str, slos: tuple[SLO, ...]
) -> tuple[str, SLO | None]:
    """The level column a sweep shows for `metric`, and the SLO it is judged against: the
    SLO's own statistic where every point records it, else the first of SHOWN_STATISTICS
    every point records (then no SLO: a p99 is not judged against a p95 objective)."""
    for slo in slos:
        if (
            slo.is_latency
            and slo.metric == metric
            and all(p.stat(slo.column) is not None for p in points)
        ):
            return slo.column, slo
    for st in SHOWN_STATISTICS:
        if all(p.stat(f"{st}_{metric}") is not None for p in points):
            return f"{st}_{metric}", None
    return f"p95_{metric}", None


def sweep_axis(runs: pl.DataFrame) -> str:
    """What the runs of one base deployment vary on besides load: "input_tokens",
    "output_tokens", "dataset", "engine", "hardware", "tag", a server argument's name
    ("max_num_seqs"), several joined by "+" in that order; "load" where nothing else
    differs (a load sweep, or a single run)."""
    found = [
        facets(stored_object(r.get("workload")), stored_object(r.get("params")))
        for r in runs.iter_rows(named=True)
    ]
    keys = list(dict.fromkeys(k for f in found for k in f))
    varying = [k for k in keys if len({f.get(k) for f in found}) > 1]
    if len(varying) > 1:
        varying = [k for k in varying if k != "tag"]  # a tag spelling out what varies
    return "+".join(FACET_AXES.get(k, k) for k in varying) if varying else "load"
