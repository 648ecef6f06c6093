"""Per-level statistics as SQL aggregates, computed where the request rows are (DuckDB).

Only per-run and per-(run, metric) aggregates leave the database: counts, token sums,
goodput counts, means, and the few order statistics the percentiles and their confidence
intervals need — never the rows. A run with many samples has them picked by selection
(`quantile_disc` at the exact rank, linear time); smaller runs are sorted a batch at a time
(`list_sort`, `list_select`). Percentiles interpolate linearly between the order
statistics at floor and ceil of (n - 1)·q with polars' arithmetic, operation for
operation, so they and their bounds are the very numbers of the polars implementation this
replaced; means are compensated sums (`favg`), equal to polars' to the last bit or one ulp.
DuckDB's own `quantile_cont` rounds its interpolation differently (one ulp off polars in
about a third of cases), which is why the order statistics are fetched and interpolated
here instead.

The same SQL runs on the warehouse's `requests` table and, for frames held in memory, on
the frame registered in an in-memory DuckDB: one implementation for both.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import duckdb
import polars as pl

from loadlens.config import SLO

PERCENTILES = (50, 90, 95, 99)
METRICS = ("ttft_s", "tpot_s", "itl_s", "e2e_s")
EXACT_BINOMIAL_MAX_N = 2000
# Samples sorted in one query: bounds the memory DuckDB holds at once (8 bytes a sample
# plus list overhead) whatever the size of the warehouse.
BATCH_SAMPLES = 4_000_000
# A run with this many samples of a metric has its order statistics selected in a query of
# its own (quantile_disc: linear time, no sorted copy); smaller runs are sorted in batches.
SELECT_MIN_SAMPLES = 50_000

# Per request, as vLLM defines it: (E2E - TTFT) / (output tokens - 1).
TPOT_SQL = "CASE WHEN output_tokens > 1 THEN (e2e_s - ttft_s) / (output_tokens - 1) END"
_METRIC_SQL = {"ttft_s": "ttft_s", "tpot_s": TPOT_SQL, "e2e_s": "e2e_s"}

LATENCY_SCHEMA = {
    "run_id": pl.String,
    "metric": pl.String,
    "statistic": pl.String,
    "value": pl.Float64,
    "ci_lo": pl.Float64,
    "ci_hi": pl.Float64,
    "n": pl.Int64,
}
PER_RUN_SCHEMA = {
    "run_id": pl.String,
    "n_requests": pl.Int64,
    "n_ok": pl.Int64,
    "n_cancelled": pl.Int64,
    "output_tokens_ok": pl.Int64,
    "input_tokens_ok": pl.Int64,
    "n_good": pl.Int64,
    "goodput_measurable": pl.Boolean,
    "mean_e2e_ok": pl.Float64,
}
REQUEST_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "run_id": pl.String,
    "status": pl.String,
    "ttft_s": pl.Float64,
    "e2e_s": pl.Float64,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "itl_s": pl.List(pl.Float64),
}


def _binomial_cdf_table(n: int, q: float) -> list[float]:
    """P(B <= k) for B ~ Binomial(n, q), k = 0..n, via log-space pmf."""
    log_q, log_1q = math.log(q), math.log1p(-q)
    cdf, total = [], 0.0
    for k in range(n + 1):
        log_pmf = (
            math.lgamma(n + 1)
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * log_q
            + (n - k) * log_1q
        )
        total += math.exp(log_pmf)
        cdf.append(total)
    return cdf


@lru_cache(maxsize=4096)
def quantile_ci_ranks(n: int, q: float, confidence: float = 0.95) -> tuple[int | None, int | None]:
    """0-based indices (lo, hi) into the sorted sample bounding the q-quantile.

    Coverage of [x_lo, x_hi] is P(lo < B <= hi) for B ~ Binomial(n, q) (B counts the
    samples below the true quantile), at least `confidence`. None where no order
    statistic is far enough out: the sample cannot bound the quantile on that side.
    """
    if n <= 0:
        return None, None
    alpha = (1 - confidence) / 2
    if n <= EXACT_BINOMIAL_MAX_N:
        cdf = _binomial_cdf_table(n, q)
        # 1-based rank l: largest with P(B <= l-1) <= alpha; u: smallest with P(B <= u-1) >= 1-alpha
        lo_rank = max((j for j in range(1, n + 1) if cdf[j - 1] <= alpha), default=None)
        hi_rank = min((j for j in range(1, n + 1) if cdf[j - 1] >= 1 - alpha), default=None)
    else:
        z = NormalDist().inv_cdf(1 - alpha)
        spread = z * math.sqrt(n * q * (1 - q))
        lo_rank = math.floor(n * q - spread)
        hi_rank = math.ceil(n * q + spread) + 1
        lo_rank = lo_rank if lo_rank >= 1 else None
        hi_rank = hi_rank if hi_rank <= n else None
    return (
        lo_rank - 1 if lo_rank is not None else None,
        hi_rank - 1 if hi_rank is not None else None,
    )


def _interpolation_ranks(n: int, q: float) -> tuple[int, int, float]:
    """(floor, ceil, position) of the q-quantile among n sorted samples, as polars finds
    them for linear interpolation."""
    position = (n - 1) * q
    return int(position), math.ceil(position), position


def _linear(lower: float, upper: float, floor: int, position: float) -> float:
    """Polars' linear interpolation, operation for operation (numpy's rounds the same
    numbers within an ulp)."""
    if lower == upper:
        return lower
    return (position - floor) * (upper - lower) + lower


@dataclass(frozen=True)
class LevelAggregates:
    """What the level table needs of the request rows: `per_run` (one row per run with
    request rows: counts, token sums, goodput count, mean successful E2E) and `latency`
    (run_id, metric, statistic, value, ci_lo, ci_hi, n for mean and p50..p99 of every
    latency metric with samples)."""

    per_run: pl.DataFrame
    latency: pl.DataFrame


def _literal(value: float) -> str:
    """A float as SQL that parses to the very same double."""
    return f"CAST('{value!r}' AS DOUBLE)"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _where(run_ids: list[str] | None, ok_only: bool = False) -> str:
    conditions = ["status = 'ok'"] if ok_only else []
    if run_ids is not None:
        conditions.append(
            f"run_id IN ({', '.join(_quote(r) for r in run_ids)})" if run_ids else "false"
        )
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def per_run_sql(source: str, run_ids: list[str] | None, slos: tuple[SLO, ...]) -> str:
    """One row per run: request counts, token sums of successes, goodput, sample counts."""
    ok = "status = 'ok'"
    good = [ok]
    measurable = ["true"]
    goodput_metrics = dict.fromkeys(s.metric for s in slos if s.is_latency and s.metric != "itl_s")
    for slo in slos:
        if slo.is_latency and slo.metric != "itl_s":
            good.append(
                f"coalesce(({_METRIC_SQL[slo.metric]}) <= {_literal(slo.threshold_s)}, false)"
            )
    for metric in goodput_metrics:
        # A metric the tool did not measure (a non-streamed run has no TTFT) cannot be held
        # against requests, nor can goodput be claimed on it: then goodput is unknown.
        measurable.append(
            f"(coalesce(bool_or(({_METRIC_SQL[metric]}) IS NOT NULL) FILTER (WHERE {ok}), false)"
            f" OR bool_and(status <> 'ok'))"
        )
    return f"""
        SELECT run_id,
            count(*)::BIGINT AS n_requests,
            count_if({ok})::BIGINT AS n_ok,
            count_if(status = 'cancelled')::BIGINT AS n_cancelled,
            coalesce(sum(output_tokens) FILTER (WHERE {ok}), 0)::BIGINT AS output_tokens_ok,
            coalesce(sum(input_tokens) FILTER (WHERE {ok}), 0)::BIGINT AS input_tokens_ok,
            count_if({" AND ".join(good)})::BIGINT AS n_good,
            ({" AND ".join(measurable)}) AS goodput_measurable,
            favg(e2e_s) FILTER (WHERE {ok}) AS mean_e2e_ok,
            count(ttft_s) FILTER (WHERE {ok})::BIGINT AS n_ttft_s,
            count({TPOT_SQL}) FILTER (WHERE {ok})::BIGINT AS n_tpot_s,
            coalesce(sum(list_aggregate(itl_s, 'count')) FILTER (WHERE {ok}), 0)::BIGINT
                AS n_itl_s,
            count(e2e_s) FILTER (WHERE {ok})::BIGINT AS n_e2e_s
        FROM {source} {_where(run_ids)}
        GROUP BY run_id
    """


def _samples_sql(source: str, metric: str, run_ids: list[str]) -> str:
    if metric == "itl_s":
        return (
            f"SELECT run_id, value FROM (SELECT run_id, unnest(itl_s) AS value FROM {source} "
            f"{_where(run_ids, ok_only=True)}) WHERE value IS NOT NULL"
        )
    expr = _METRIC_SQL[metric]
    return (
        f"SELECT run_id, value FROM (SELECT run_id, {expr} AS value FROM {source} "
        f"{_where(run_ids, ok_only=True)}) WHERE value IS NOT NULL"
    )


def _wanted(n: int, confidence: float) -> list[int]:
    """0-based ranks of every order statistic the percentiles and their bounds need."""
    ranks: set[int] = set()
    for p in PERCENTILES:
        floor, ceil, _ = _interpolation_ranks(n, p / 100)
        lo, hi = quantile_ci_ranks(n, p / 100, confidence)
        ranks.update(r for r in (floor, ceil, lo, hi) if r is not None)
    return sorted(ranks)


def order_statistics_sql(source: str, metric: str, wanted: dict[str, list[int]]) -> str:
    """Per run: sample count, mean, and the order statistics at the 0-based ranks `wanted`
    of that run, in the order given."""
    values = ", ".join(
        f"({_quote(run_id)}, [{', '.join(str(r + 1) for r in ranks)}])"
        for run_id, ranks in wanted.items()
    )
    return f"""
        WITH g AS (
            SELECT run_id, count(*)::BIGINT AS n, favg(value) AS mean,
                   list_sort(list(value)) AS sorted
            FROM ({_samples_sql(source, metric, list(wanted))})
            GROUP BY run_id
        )
        SELECT g.run_id, g.n, g.mean, list_select(g.sorted, w.ranks) AS picked
        FROM g JOIN (VALUES {values}) AS w(run_id, ranks) ON g.run_id = w.run_id
    """


def _batches(counts: dict[str, int]) -> Iterator[list[str]]:
    """Runs grouped so that one query sorts at most BATCH_SAMPLES samples (or one run)."""
    batch: list[str] = []
    total = 0
    for run_id, n in counts.items():
        if batch and total + n > BATCH_SAMPLES:
            yield batch
            batch, total = [], 0
        batch.append(run_id)
        total += n
    if batch:
        yield batch


def selected_sql(source: str, metric: str, run_id: str, ranks: list[int]) -> str:
    """One run: sample count, mean, and the order statistics at the 0-based `ranks`, by
    selection rather than a sort. `quantile_disc(x, q)` takes the element at 0-based index
    ceil(n·q) - 1, so q = (rank + 1/2) / n lands on `rank` with half a rank to spare for
    rounding."""
    return f"""
        SELECT count(*)::BIGINT AS n, favg(value) AS mean,
               quantile_disc(value, [{", ".join(f"(({r} + 0.5) / $n)" for r in ranks)}])
        FROM ({_samples_sql(source, metric, [run_id])})
    """


def _picked(
    con: duckdb.DuckDBPyConnection,
    source: str,
    metric: str,
    counts: dict[str, int],
    confidence: float,
) -> Iterator[tuple[str, int, float, dict[int, float]]]:
    """(run_id, n, mean, {rank: order statistic}) of every run with samples of `metric`:
    a run of many samples alone (selection, no sort), the others a batch at a time."""
    large = {r: n for r, n in counts.items() if n >= SELECT_MIN_SAMPLES}
    small = {r: n for r, n in counts.items() if n < SELECT_MIN_SAMPLES}
    for run_id, count in large.items():
        ranks = _wanted(count, confidence)
        (row,) = con.execute(selected_sql(source, metric, run_id, ranks), {"n": count}).fetchall()
        yield run_id, row[0], row[1], dict(zip(ranks, row[2], strict=True))
    for batch in _batches(small):
        wanted = {run_id: _wanted(small[run_id], confidence) for run_id in batch}
        for run_id, n, mean, picked in con.execute(
            order_statistics_sql(source, metric, wanted)
        ).fetchall():
            yield run_id, n, mean, dict(zip(wanted[run_id], picked, strict=True))


def _latency_rows(
    con: duckdb.DuckDBPyConnection,
    source: str,
    metric: str,
    counts: dict[str, int],
    confidence: float,
) -> Iterator[tuple[str, str, str, float | None, float | None, float | None, int]]:
    for run_id, n, mean, at in _picked(con, source, metric, counts, confidence):
        if n != counts[run_id]:  # the rows changed between the two reads
            raise RuntimeError(f"{run_id} {metric}: {n} samples, {counts[run_id]} counted")
        yield run_id, metric, "mean", mean, None, None, n
        for p in PERCENTILES:
            floor, ceil, position = _interpolation_ranks(n, p / 100)
            lo, hi = quantile_ci_ranks(n, p / 100, confidence)
            yield (
                run_id,
                metric,
                f"p{p}",
                _linear(at[floor], at[ceil], floor, position),
                at[lo] if lo is not None else None,
                at[hi] if hi is not None else None,
                n,
            )


def aggregate(
    con: duckdb.DuckDBPyConnection,
    source: str,
    run_ids: list[str] | None,
    slos: tuple[SLO, ...] = (),
    confidence: float = 0.95,
) -> LevelAggregates:
    """The level table's aggregates of the request rows in `source` (a table or view of the
    warehouse's `requests` schema) for `run_ids` (all when None), computed by DuckDB."""
    relation = con.sql(per_run_sql(source, run_ids, slos))
    assert relation is not None
    counted = relation.pl()
    per_run = counted.select(
        pl.col(c).cast(t) if c in counted.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in PER_RUN_SCHEMA.items()
    )
    rows = []
    for metric in METRICS:
        counts = {
            run_id: n for run_id, n in counted.select("run_id", f"n_{metric}").iter_rows() if n
        }
        rows += list(_latency_rows(con, source, metric, counts, confidence))
    latency = pl.DataFrame(rows, schema=LATENCY_SCHEMA, orient="row").sort(
        "run_id", "metric", "statistic"
    )
    return LevelAggregates(per_run=per_run, latency=latency)


def aggregate_frame(
    requests: pl.DataFrame, slos: tuple[SLO, ...] = (), confidence: float = 0.95
) -> LevelAggregates:
    """The same aggregates of request rows held in a frame, by the same SQL, in an
    in-memory DuckDB (columns the frame lacks or holds untyped read as nulls)."""
    frame = requests.select(
        pl.col(c).cast(t) if c in requests.columns else pl.lit(None, dtype=t).alias(c)
        for c, t in REQUEST_COLUMNS.items()
    )
    with duckdb.connect() as con:
        con.register("frame_requests", frame)
        return aggregate(con, "frame_requests", None, slos, confidence)
