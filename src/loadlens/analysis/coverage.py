"""Which SLO can be judged on which runs, and on which statistic.

Many real files carry only a tool's summary: means and medians, sometimes p99 but no p95.
An SLO on a statistic a run does not carry is not judged on something else silently. With
`stand_in` allowed, the next higher percentile the runs carry stands in for the missing one:
it is an upper bound of it (p99 ≥ p95), so a pass is certain and a breach may be overstated.
Otherwise the run is listed as not judged on that SLO, with the statistics it does carry.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from loadlens.config import SLO, quantile_of


@dataclass(frozen=True)
class SloCoverage:
    """How one SLO is judged on one deployment's runs that carry latencies."""

    slo: SLO  # as asked
    deployment: str
    judged_on: SLO | None  # what is judged: `slo`, a stand-in, or None (nothing carries it)
    unjudged_run_ids: tuple[str, ...]  # runs with latencies but without the statistic
    carried: tuple[str, ...]  # the statistics of the metric those runs do carry

    @property
    def stand_in(self) -> bool:
        return self.judged_on is not None and self.judged_on != self.slo


def _stat_columns(levels: pl.DataFrame, metric: str) -> list[str]:
    """Statistics of `metric` present as value columns, e.g. ['mean', 'p50', 'p99']."""
    suffix = f"_{metric}"
    return [
        c.removesuffix(suffix)
        for c in levels.columns
        if c.endswith(suffix) and not c.startswith("n_") and c.removesuffix(suffix)
    ]


def _carried(row: dict[str, object], stats: list[str], metric: str) -> tuple[str, ...]:
    return tuple(s for s in stats if row.get(f"{s}_{metric}") is not None)


def _has_latency(row: dict[str, object]) -> bool:
    return any(
        v is not None
        for k, v in row.items()
        if k.endswith(("_e2e_s", "_ttft_s")) and not k.startswith("n_")
    )


def higher_percentiles(slo: SLO, stats: list[str]) -> list[str]:
    """Percentile statistics above the SLO's, nearest first."""
    if slo.quantile is None:
        return []
    above = [(q, s) for s in stats if (q := quantile_of(s)) is not None and q > slo.quantile]
    return [s for _, s in sorted(above)]


def slo_coverage(levels: pl.DataFrame, slos: tuple[SLO, ...], stand_in: bool) -> list[SloCoverage]:
    """Per (SLO, deployment): the SLO judged as asked, on a stand-in, or not at all."""
    out = []
    for slo in slos:
        stats = _stat_columns(levels, slo.metric)
        for (deployment,), group in levels.group_by("deployment", maintain_order=True):
            # Runs with no latency at all failed entirely: the error budget judges those.
            rows = [r for r in group.iter_rows(named=True) if not slo.is_latency or _has_latency(r)]
            lacking = [r for r in rows if r.get(slo.column) is None]
            judged_on: SLO | None = slo if len(lacking) < len(rows) else None
            if lacking and stand_in:
                # A stand-in the whole deployment carries, so its runs are judged alike.
                for stat in higher_percentiles(slo, stats):
                    if all(r.get(f"{stat}_{slo.metric}") is not None for r in rows):
                        judged_on = slo.model_copy(update={"statistic": stat})
                        lacking = []
                        break
            carried = sorted({s for r in lacking for s in _carried(r, stats, slo.metric)})
            out.append(
                SloCoverage(
                    slo=slo,
                    deployment=str(deployment),
                    judged_on=judged_on,
                    unjudged_run_ids=tuple(r["run_id"] for r in lacking),
                    carried=tuple(carried),
                )
            )
    return out
