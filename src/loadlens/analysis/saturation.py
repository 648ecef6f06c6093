"""Where a deployment stops meeting its SLOs, and where throughput stops growing.

The SLO boundary is interpolated linearly between the last level that meets an SLO and
the first that breaches it. Latency grows convexly with load, so the true crossing lies at
or beyond the chord's: the linear estimate is the conservative one. Its uncertainty comes
from the percentile confidence intervals at both levels: interpolating the upper bounds
gives the pessimistic boundary, the lower bounds the optimistic one.
"""

from __future__ import annotations

from dataclasses import dataclass

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

    @property
    def status(self) -> str:
        if self.first_breach is None:
            return "never_breached"
        if self.last_ok is None:
            return "breached_at_lowest"
        return "crossed"


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


def _series(levels: pl.DataFrame, column: str) -> list[Level]:
    rows = levels.filter(pl.col(column).is_not_null()).sort("load_value")
    lo = f"{column}_lo" if f"{column}_lo" in rows.columns else None
    hi = f"{column}_hi" if f"{column}_hi" in rows.columns else None
    metric = column.split("_", 1)[1]
    n_col = f"n_{metric}" if f"n_{metric}" in rows.columns else None
    return [
        Level(
            load=r["load_value"],
            value=r[column],
            lo=r[lo] if lo else None,
            hi=r[hi] if hi else None,
            n=r[n_col] if n_col else None,
        )
        for r in rows.iter_rows(named=True)
    ]


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
            )
        )
    return out


def max_load_within_slos(boundaries: list[SloBoundary]) -> dict[tuple[str, str], SloBoundary]:
    """Per (deployment, load mode), the binding SLO: the boundary reached at the lowest load."""

    def capacity(b: SloBoundary) -> float:
        if b.status == "never_breached":
            return float("inf")
        if b.status == "breached_at_lowest":
            return float("-inf")
        return b.boundary_load  # type: ignore[return-value]

    binding: dict[tuple[str, str], SloBoundary] = {}
    for b in boundaries:
        key = (b.deployment, b.load_mode)
        if key not in binding or capacity(b) < capacity(binding[key]):
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
