"""Where a deployment stops meeting its SLOs, and where throughput stops growing.

The SLO boundary is interpolated linearly between the last level that meets an SLO and
the first that breaches it. Latency grows convexly with load, so the true crossing lies at
or beyond the chord's: the linear estimate is the conservative one. Its uncertainty comes
from the percentile confidence intervals at both levels: interpolating the upper bounds
gives the pessimistic boundary, the lower bounds the optimistic one.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from loadlens.config import SLO

PLATEAU_GAIN = 0.10  # less than 10% more throughput for twice the load


@dataclass(frozen=True)
class Level:
    """One measured point of a metric: load, value and its confidence interval."""

    load: float
    value: float
    lo: float | None
    hi: float | None
    n: int | None


@dataclass(frozen=True)
class SloBoundary:
    deployment: str
    load_mode: str
    slo: SLO
    last_ok: Level | None  # highest load meeting the SLO below the first breach
    first_breach: Level | None  # lowest load breaching it
    boundary_load: float | None  # interpolated load where the metric meets the threshold
    boundary_lo: float | None  # pessimistic (upper CI); None: may lie below last_ok
    boundary_hi: float | None  # optimistic (lower CI); None: may lie beyond first_breach
    max_load_measured: float
    n_loads: int = 2  # distinct loads measured: 1 is a single-level study, no curve
    min_load_measured: float | None = None

    @property
    def status(self) -> str:
        if self.first_breach is None:
            return "never_breached"
        if self.last_ok is None:
            return "breached_at_lowest"
        return "crossed"

    @property
    def capacity(self) -> float:
        """The load this SLO allows, for ranking: ∞ never breached, -∞ none."""
        if self.status == "never_breached":
            return math.inf
        if self.status == "breached_at_lowest":
            return -math.inf
        return self.boundary_load  # type: ignore[return-value]


@dataclass(frozen=True)
class Plateau:
    deployment: str
    load_mode: str
    from_load: float
    to_load: float
    from_tps: float
    to_tps: float

    @property
    def gain(self) -> float:
        return self.to_tps / self.from_tps - 1


def _interpolate(x0: float, y0: float, x1: float, y1: float, target: float) -> float:
    if y1 == y0:
        return x0
    return x0 + (target - y0) * (x1 - x0) / (y1 - y0)


def value_at(points: list[tuple[float, float]], x: float) -> float | None:
    """y at x, linear between the sorted (x, y) points around it; None outside them."""
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= x <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)
    return points[0][1] if len(points) == 1 and points[0][0] == x else None


def _level(row: dict[str, Any], column: str) -> Level:
    """One row's value of `column` with its interval and sample size."""
    metric = column.split("_", 1)[1]
    n_col = "n_requests" if column == "error_rate" else f"n_{metric}"
    return Level(
        load=row["load_value"],
        value=row[column],
        lo=row.get(f"{column}_lo"),
        hi=row.get(f"{column}_hi"),
        n=row.get(n_col),
    )


def _series(levels: pl.DataFrame, column: str) -> list[Level]:
    rows = levels.filter(pl.col(column).is_not_null()).sort("load_value")
    return [_level(r, column) for r in rows.iter_rows(named=True)]


def slo_boundary(levels: pl.DataFrame, slo: SLO) -> list[SloBoundary]:
    """Per (deployment, load mode): the last level meeting `slo`, the first breaching it,
    and the interpolated load in between, with its uncertainty range."""
    out = []
    measured = levels.filter(pl.col("load_value").is_not_null())
    for (deployment, mode), group in measured.group_by(
        "deployment", "load_mode", maintain_order=True
    ):
        if slo.column not in group.columns:
            continue
        series = _series(group, slo.column)
        if not series:
            continue
        t = slo.threshold_s
        breach_idx = next((i for i, lv in enumerate(series) if lv.value > t), None)
        first = series[breach_idx] if breach_idx is not None else None
        last = series[breach_idx - 1] if breach_idx else (series[-1] if first is None else None)
        boundary = lo = hi = None
        if first is not None and last is not None:
            boundary = _interpolate(last.load, last.value, first.load, first.value, t)
            if last.hi is not None and last.hi <= t:
                # No upper bound at the breaching level: the crossing may come right away.
                lo = (
                    _interpolate(last.load, last.hi, first.load, first.hi, t)
                    if first.hi is not None
                    else last.load
                )
            if first.lo is not None and first.lo > t:
                hi = _interpolate(last.load, last.lo or 0.0, first.load, first.lo, t)
        out.append(
            SloBoundary(
                deployment=str(deployment),
                load_mode=str(mode),
                slo=slo,
                last_ok=last,
                first_breach=first,
                boundary_load=boundary,
                boundary_lo=lo,
                boundary_hi=hi,
                max_load_measured=series[-1].load,
                n_loads=len({lv.load for lv in series}),
                min_load_measured=series[0].load,
            )
        )
    return out


@dataclass(frozen=True)
class RunVerdict:
    """A run with no load to place it on a curve (everything sent at once, or a load the
    tool did not record), judged on one SLO on its own."""

    deployment: str
    run_id: str
    load_mode: str
    n_requests: int | None
    slo: SLO
    level: Level

    @property
    def meets(self) -> bool:
        return self.level.value <= self.slo.threshold_s


def unplaced_verdicts(levels: pl.DataFrame, slo: SLO) -> list[RunVerdict]:
    """Every run without a load value that carries the SLO's statistic, judged on it."""
    rows = levels.filter(pl.col("load_value").is_null())
    if slo.column not in rows.columns:
        return []
    out = []
    for (deployment,), group in rows.group_by("deployment", maintain_order=True):
        for row in group.filter(pl.col(slo.column).is_not_null()).iter_rows(named=True):
            out.append(
                RunVerdict(
                    str(deployment),
                    row["run_id"],
                    row["load_mode"],
                    row["n_requests"],
                    slo,
                    _level(row, slo.column),
                )
            )
    return out


def max_load_within_slos(boundaries: list[SloBoundary]) -> dict[tuple[str, str], SloBoundary]:
    """Per (deployment, load mode), the binding SLO: the boundary reached at the lowest load."""
    binding: dict[tuple[str, str], SloBoundary] = {}
    for b in boundaries:
        key = (b.deployment, b.load_mode)
        if key not in binding or b.capacity < binding[key].capacity:
            binding[key] = b
    return binding


def throughput_plateaus(
    levels: pl.DataFrame, column: str = "output_throughput_tps"
) -> list[Plateau]:
    """The first doubling of load (x1.6–2.5) that adds less than 10% throughput."""
    out = []
    measured = levels.filter(pl.col("load_value").is_not_null() & pl.col(column).is_not_null())
    for (deployment, mode), group in measured.group_by(
        "deployment", "load_mode", maintain_order=True
    ):
        points = sorted(zip(group["load_value"], group[column], strict=True))
        for load, tps in points:
            halves = [(ld, tp) for ld, tp in points if 1.6 <= load / ld <= 2.5] if load else []
            if not halves:
                continue
            base_load, base_tps = min(halves, key=lambda p: abs(load / p[0] - 2))
            if base_tps > 0 and tps / base_tps - 1 < PLATEAU_GAIN:
                out.append(Plateau(str(deployment), str(mode), base_load, load, base_tps, tps))
                break
    return out


@dataclass(frozen=True)
class UslFit:
    """Universal Scalability Law: X(N) = λN / (1 + σ(N−1) + κN(N−1))  (Gunther, 2007).

    λ: throughput of one unit of concurrency; σ: contention (serialised fraction);
    κ: coherency cost (crosstalk that makes throughput fall past the peak).
    """

    deployment: str
    lam: float
    sigma: float
    kappa: float
    r2: float
    n_points: int
    max_load_measured: float

    @property
    def peak_concurrency(self) -> float:
        """N* = √((1−σ)/κ): where throughput peaks (∞ without coherency cost; 1 where
        contention alone, σ ≥ 1, makes every added request cost more than it brings)."""
        if self.sigma >= 1:
            return 1.0
        return math.sqrt((1 - self.sigma) / self.kappa) if self.kappa > 0 else math.inf

    def throughput(self, n: float) -> float:
        return _usl(n, self.lam, self.sigma, self.kappa)


def _usl(n: float, lam: float, sigma: float, kappa: float) -> float:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def _usl_given_lambda(points: list[tuple[float, float]], lam: float) -> tuple[float, float, float]:
    """σ, κ ≥ 0 by least squares on the linearised law N·λ/X − 1 = σ(N−1) + κN(N−1),
    then the fit's summed squared relative error."""
    rows = [(n - 1, n * (n - 1), n * lam / x - 1) for n, x in points]
    saa = sum(a * a for a, _, _ in rows)
    sab = sum(a * b for a, b, _ in rows)
    sbb = sum(b * b for _, b, _ in rows)
    say = sum(a * y for a, _, y in rows)
    sby = sum(b * y for _, b, y in rows)
    det = saa * sbb - sab * sab
    sigma, kappa = (
        ((say * sbb - sby * sab) / det, (sby * saa - say * sab) / det) if det > 0 else (0.0, 0.0)
    )
    if sigma < 0 or kappa < 0:  # project onto the feasible edge, refit the other
        sigma = max(0.0, say / saa) if saa > 0 and kappa <= 0 else 0.0
        kappa = 0.0 if sigma > 0 else max(0.0, sby / sbb) if sbb > 0 else 0.0
    # Relative residuals: measurement noise is proportional to throughput, and light loads
    # (small X) must pin λ down as much as heavy ones pin κ.
    rel = sum((1 - _usl(n, lam, sigma, kappa) / x) ** 2 for n, x in points)
    return sigma, kappa, rel


def fit_usl(levels: pl.DataFrame, column: str = "request_throughput_rps") -> list[UslFit]:
    """Fit the USL to throughput vs. concurrency, per deployment (closed-loop runs only).

    λ is found by golden-section search (σ and κ are linear given λ), bracketed by the
    best per-unit throughput measured: λ ≥ max X(N)/N can only be exceeded by noise.
    """
    out = []
    measured = levels.filter(
        (pl.col("load_mode") == "concurrency")
        & pl.col("load_value").is_not_null()
        & (pl.col(column) > 0)
    )
    for (deployment,), group in measured.group_by("deployment", maintain_order=True):
        points = sorted(zip(group["load_value"], group[column], strict=True))
        if len({n for n, _ in points}) < 3:  # repeats at one load (a workload sweep) fit nothing
            continue
        per_unit = max(x / n for n, x in points)
        lo, hi = per_unit * 0.5, per_unit * 2.0
        golden = (math.sqrt(5) - 1) / 2
        for _ in range(80):
            a, b = hi - golden * (hi - lo), lo + golden * (hi - lo)
            if _usl_given_lambda(points, a)[2] < _usl_given_lambda(points, b)[2]:
                hi = b
            else:
                lo = a
        lam = (lo + hi) / 2
        sigma, kappa, _ = _usl_given_lambda(points, lam)
        sse = sum((x - _usl(n, lam, sigma, kappa)) ** 2 for n, x in points)
        mean = sum(x for _, x in points) / len(points)
        sst = sum((x - mean) ** 2 for _, x in points)
        out.append(
            UslFit(
                deployment=str(deployment),
                lam=lam,
                sigma=sigma,
                kappa=kappa,
                r2=1 - sse / sst if sst > 0 else 1.0,
                n_points=len(points),
                max_load_measured=points[-1][0],
            )
        )
    return out


@dataclass(frozen=True)
class Knee:
    deployment: str
    load_mode: str
    load: float
    value: float
    metric: str


KNEE_MIN_RISE = 1.5  # latency must at least grow by half over the sweep to have a knee
KNEE_MIN_GAP = 0.1  # of the scaled range: smaller bends are noise, not a knee


def latency_knee(
    levels: pl.DataFrame, columns: tuple[str, ...] = ("p95_ttft_s", "p95_e2e_s")
) -> list[Knee]:
    """Kneedle (Satopää et al., 2011) on convex, increasing latency curves: the measured
    level farthest below the chord from the lightest to the heaviest load, both axes
    scaled to [0, 1] — where latency turns from flat to steep. A bend smaller than
    KNEE_MIN_GAP is no knee. Per deployment, the earliest knee over `columns` (TTFT bends
    first when queueing starts)."""
    knees: dict[tuple[str, str], Knee] = {}
    for column in columns:
        if column not in levels.columns:
            continue
        measured = levels.filter(pl.col("load_value").is_not_null() & pl.col(column).is_not_null())
        for (deployment, mode), group in measured.group_by(
            "deployment", "load_mode", maintain_order=True
        ):
            points = sorted(zip(group["load_value"], group[column], strict=True))
            if len(points) < 3:
                continue
            (x0, y0), (x1, y1) = points[0], points[-1]
            if x1 == x0 or y1 <= KNEE_MIN_RISE * y0:
                continue  # flat (within 50%) or falling latency: no knee to find
            gaps = [((x - x0) / (x1 - x0)) - ((y - y0) / (y1 - y0)) for x, y in points]
            best = max(range(len(points)), key=lambda i: gaps[i])
            if gaps[best] < KNEE_MIN_GAP:
                continue
            key = (str(deployment), str(mode))
            if key not in knees or points[best][0] < knees[key].load:
                knees[key] = Knee(key[0], key[1], points[best][0], points[best][1], column)
    return list(knees.values())


@dataclass(frozen=True)
class OperatingZone:
    """Loads at which to run: below both the SLO limit and the knee, with headroom."""

    deployment: str
    load_mode: str
    max_load: float
    slo_limit: float | None  # interpolated SLO boundary (None: never breached)
    knee: float | None
    headroom: float

    @property
    def bound_by(self) -> str:
        if self.knee is not None and (self.slo_limit is None or self.knee < self.slo_limit):
            return "knee"
        return "slo"


def operating_zones(
    binding: list[SloBoundary], knees: list[Knee], headroom: float = 0.8
) -> list[OperatingZone]:
    """Per deployment: headroom × the lower of the SLO limit and the latency knee."""
    by_key = {(k.deployment, k.load_mode): k.load for k in knees}
    zones = []
    for b in binding:
        # One load measured is a point, not a zone: where latency turns, or where the SLO
        # would break, cannot be told from it.
        if b.status == "breached_at_lowest" or b.n_loads < 2:
            continue
        limit = b.boundary_load if b.status == "crossed" else None
        knee = by_key.get((b.deployment, b.load_mode))
        candidates = [v for v in (limit, knee) if v is not None]
        ceiling = min(candidates) if candidates else b.max_load_measured
        zones.append(
            OperatingZone(b.deployment, b.load_mode, headroom * ceiling, limit, knee, headroom)
        )
    return zones


@dataclass(frozen=True)
class RateSaturation:
    """Open loop: the first offered rate the server could not keep up with."""

    deployment: str
    offered_rps: float
    achieved_rps: float
    last_kept_up_rps: float | None  # the highest offered rate it still completed


RATE_MIN_REQUESTS = 50
KEEP_UP = 0.95  # completing less than 95% of the offered rate: the queue only grows


def served_rate(row: dict[str, Any], drain_s: float = 0.0) -> float:
    """Completed requests per second of sending. A run's duration ends when its last
    request completes, one request time after the last send even on a server that keeps
    up; over a short run that drain alone would look like falling behind (8 requests at
    18 req/s: 58%). So `drain_s`, the request time at the lightest level, is taken off;
    what a queue adds beyond it still counts against the server."""
    rps, duration = row["request_throughput_rps"], row.get("duration_s")
    if not duration or duration - drain_s <= 0.5 * duration:
        return rps  # no duration, or a drain too long against the run to correct for
    return rps * duration / (duration - drain_s)


def rate_saturation(
    levels: pl.DataFrame, client_short: frozenset[str] = frozenset()
) -> list[RateSaturation]:
    """Per deployment's rate sweep, the first offered rate whose served rate
    (`served_rate`) falls short of it by more than 5% and more than Poisson arrivals
    explain (2/√n: the count sent in a window varies by 1/√n). Levels whose client did
    not send the rate asked (`client_short` run ids) say nothing about the server."""
    out = []
    rated = levels.filter(
        (pl.col("load_mode") == "rate") & pl.col("request_throughput_rps").is_not_null()
    )
    if client_short:
        rated = rated.filter(~pl.col("run_id").is_in(list(client_short)))
    for (deployment,), group in rated.group_by("deployment", maintain_order=True):
        rows = group.sort("load_value").to_dicts()
        drain = rows[0].get("mean_e2e_s") or 0.0
        last = None
        for row in rows:
            offered = row["load_value"]
            n = row.get("n_requests") or 0
            if n < RATE_MIN_REQUESTS:
                continue  # too short a run to tell a queue from the arrivals' noise
            keep_up = min(KEEP_UP, 1 - 2 / math.sqrt(n))
            if (served := served_rate(row, drain)) < keep_up * offered:
                out.append(RateSaturation(str(deployment), offered, served, last))
                break
            last = offered
    return out


@dataclass(frozen=True)
class Collapse:
    """More load, less throughput and more latency: past the peak, not just flat."""

    deployment: str
    load_mode: str
    from_load: float
    to_load: float
    from_rps: float
    to_rps: float
    from_p95_s: float
    to_p95_s: float


COLLAPSE_DROP = 0.05
COLLAPSE_RISE = 0.10


def collapse(levels: pl.DataFrame) -> list[Collapse]:
    """The first step up in load where throughput falls by over 5% while p95 E2E rises
    by over 10%, and no heavier level wins the throughput back (two runs at the same load
    are no step; jitter is no rise; a dip that later levels recover is noise, not a
    collapse: seen on llama.cpp on CPU, 1.85 → 1.67 → 1.98 req/s)."""
    out = []
    measured = levels.filter(
        pl.col("load_value").is_not_null()
        & pl.col("request_throughput_rps").is_not_null()
        & pl.col("p95_e2e_s").is_not_null()
    )
    for (deployment, mode), group in measured.group_by(
        "deployment", "load_mode", maintain_order=True
    ):
        rows = group.sort("load_value").to_dicts()
        for i, (a, b) in enumerate(itertools.pairwise(rows)):
            x0, x1 = a["request_throughput_rps"], b["request_throughput_rps"]
            later = max(r["request_throughput_rps"] for r in rows[i + 1 :])
            if (
                b["load_value"] > a["load_value"]
                and x0 > 0
                and later < (1 - COLLAPSE_DROP) * x0
                and b["p95_e2e_s"] > (1 + COLLAPSE_RISE) * a["p95_e2e_s"]
            ):
                out.append(
                    Collapse(
                        str(deployment),
                        str(mode),
                        a["load_value"],
                        b["load_value"],
                        x0,
                        x1,
                        a["p95_e2e_s"],
                        b["p95_e2e_s"],
                    )
                )
                break
    return out
