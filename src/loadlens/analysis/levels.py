"""Per-run (per load level) metrics: latency percentiles with confidence intervals,
throughput, goodput, errors, and the Little's-law check of achieved concurrency.

Percentiles use linear interpolation between order statistics (numpy's default, which
vLLM, SGLang, AIPerf, GenAI-Perf, LLMPerf and inference-perf report), so our numbers match
those tools' own. GuideLLM takes the smallest value whose cumulative share reaches p (the
inverse CDF): at small samples that differs from ours (11% on a p95 of 15 requests), and
its loader's tests reproduce GuideLLM's numbers from the rows by GuideLLM's method. Their
confidence intervals are distribution-free: the interval between two order statistics
whose ranks come from the binomial distribution of the count of samples below the true
quantile (Hahn & Meeker, *Statistical Intervals*, §5.2). When a sample is too small for a
bound to exist (p99 of 50 requests has no upper bound at 95%), the bound is null — the
brief says so rather than inventing one.

The statistics over request rows are SQL aggregates computed by DuckDB where the rows are
(`level_sql`): the warehouse hands this module per-run aggregates, never the rows.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import polars as pl

# The order statistics and their ranks live with the SQL that fetches them; importable
# from here as before.
from loadlens.analysis.level_sql import EXACT_BINOMIAL_MAX_N as EXACT_BINOMIAL_MAX_N
from loadlens.analysis.level_sql import METRICS, LevelAggregates, aggregate_frame
from loadlens.analysis.level_sql import PERCENTILES as PERCENTILES
from loadlens.analysis.level_sql import _binomial_cdf_table as _binomial_cdf_table
from loadlens.analysis.level_sql import quantile_ci_ranks as quantile_ci_ranks
from loadlens.config import SLO


def request_metrics(requests: pl.DataFrame) -> pl.DataFrame:
    """Add per-request TPOT: (E2E - TTFT) / (output tokens - 1), as vLLM defines it."""
    return requests.with_columns(
        tpot_s=pl.when(pl.col("output_tokens") > 1).then(
            (pl.col("e2e_s") - pl.col("ttft_s")) / (pl.col("output_tokens") - 1)
        )
    )


def latency_stats(requests: pl.DataFrame, confidence: float = 0.95) -> pl.DataFrame:
    """Long frame: run_id, metric, statistic, value, ci_lo, ci_hi, n (from request rows)."""
    return aggregate_frame(requests, (), confidence).latency


def summary_latency_stats(run_stats: pl.DataFrame) -> pl.DataFrame:
    """The same long frame from a tool's summary statistics: no CI, n unknown."""
    return (
        run_stats.filter(pl.col("metric").is_in(METRICS))
        .with_columns(statistic=pl.col("statistic").replace({"median": "p50"}))
        .unique(["run_id", "metric", "statistic"], keep="first")
        .select(
            "run_id",
            "metric",
            "statistic",
            "value",
            ci_lo=pl.lit(None, dtype=pl.Float64),
            ci_hi=pl.lit(None, dtype=pl.Float64),
            n=pl.lit(None, dtype=pl.Int64),
        )
    )


STANDARD_STATISTICS = ("mean", "p50", "p90", "p95", "p99")


def with_every_stat_column(frame: pl.DataFrame, slos: tuple[SLO, ...] = ()) -> pl.DataFrame:
    """Every statistic column (value, _lo, _hi) and n_ column a consumer may ask for, null
    where no run carries it: a summary-only file without p95 must read as "not recorded",
    never as a missing column."""
    stats = dict.fromkeys([*STANDARD_STATISTICS, *(s.statistic for s in slos if s.is_latency)])
    wanted = [f"{st}_{m}{suffix}" for st in stats for m in METRICS for suffix in ("", "_lo", "_hi")]
    wanted += [f"n_{m}" for m in METRICS]
    missing = [c for c in wanted if c not in frame.columns]
    return frame.with_columns(
        pl.lit(None, dtype=pl.Int64 if c.startswith("n_") else pl.Float64).alias(c) for c in missing
    )


def wilson(failed: pl.Series, total: pl.Series, confidence: float) -> tuple[pl.Series, pl.Series]:
    """Wilson score interval of a share (failed / total): sound at 0 and at small n, where
    the normal one collapses to a point (Brown, Cai & DasGupta, 2001)."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    lo: list[float | None] = []
    hi: list[float | None] = []
    for k, n in zip(failed.to_list(), total.to_list(), strict=True):
        if k is None or not n:
            lo.append(None)
            hi.append(None)
            continue
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        lo.append(0.0 if k == 0 else max(0.0, centre - half))
        hi.append(1.0 if k == n else min(1.0, centre + half))
    return pl.Series(lo, dtype=pl.Float64), pl.Series(hi, dtype=pl.Float64)


def _wide_name(pivoted: str) -> str:
    """`value_p95_e2e_s` -> `p95_e2e_s`; `ci_lo_p95_e2e_s` -> `p95_e2e_s_lo`."""
    for prefix, suffix in (("value_", ""), ("ci_lo_", "_lo"), ("ci_hi_", "_hi")):
        if pivoted.startswith(prefix):
            return pivoted.removeprefix(prefix) + suffix
    return pivoted


def levels(
    runs: pl.DataFrame,
    requests: pl.DataFrame,
    run_stats: pl.DataFrame,
    slos: tuple[SLO, ...] = (),
    confidence: float = 0.95,
) -> pl.DataFrame:
    """One row per run: load, counts, latency stats (value/lo/hi), throughput, goodput.

    Columns like `p95_e2e_s`, `p95_e2e_s_lo`, `p95_e2e_s_hi`, `n_e2e_s`; `basis` says
    whether they come from request rows ("requests") or the tool's summary ("summary").
    From request rows held in a frame; `levels_from` takes the same aggregates computed
    where the rows are (`Warehouse.level_aggregates`).
    """
    return levels_from(
        runs, aggregate_frame(requests, slos, confidence), run_stats, slos, confidence
    )


def levels_from(
    runs: pl.DataFrame,
    aggregates: LevelAggregates,
    run_stats: pl.DataFrame,
    slos: tuple[SLO, ...] = (),
    confidence: float = 0.95,
) -> pl.DataFrame:
    """`levels` from the request rows' aggregates (per run and per latency metric) rather
    than the rows: what the warehouse computes in SQL (`analysis.level_sql`)."""
    detailed = aggregates.latency
    summary = summary_latency_stats(run_stats).join(
        detailed.select("run_id").unique(), on="run_id", how="anti"
    )
    long = pl.concat([detailed, summary])
    wide = long.with_columns(key=pl.col("statistic") + "_" + pl.col("metric")).pivot(
        on="key", index="run_id", values=["value", "ci_lo", "ci_hi"]
    )
    wide = wide.rename({c: _wide_name(c) for c in wide.columns if c != "run_id"})
    counts = (
        long.group_by("run_id", "metric", maintain_order=True)
        .agg(pl.col("n").first())
        .pivot(on="metric", index="run_id", values="n")
    )
    counts = counts.rename({m: f"n_{m}" for m in counts.columns if m != "run_id"})
    per_run = aggregates.per_run
    tool_tput = run_stats.filter(pl.col("statistic") == "value").pivot(
        on="metric", index="run_id", values="value", aggregate_function="first"
    )
    for col in ("request_throughput_rps", "output_throughput_tps", "total_token_throughput_tps"):
        if col not in tool_tput.columns:
            tool_tput = tool_tput.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    tool_tput = tool_tput.select(
        "run_id",
        *(
            pl.col(c).alias(f"tool_{c}")
            for c in (
                "request_throughput_rps",
                "output_throughput_tps",
                "total_token_throughput_tps",
            )
        ),
    )

    out = (
        runs.select(
            "run_id",
            "deployment",
            "load_mode",
            "load_value",
            "duration_s",
            pl.col("num_requests").alias("declared_requests"),
            pl.col("num_errors").alias("declared_errors"),
        )
        .join(per_run, on="run_id", how="left")
        .join(tool_tput, on="run_id", how="left")
        .join(wide, on="run_id", how="left")
        .join(counts, on="run_id", how="left")
    )
    out = with_every_stat_column(out, slos)
    has_rows = pl.col("n_requests").is_not_null()
    duration = pl.col("duration_s")
    out = out.with_columns(
        basis=pl.when(has_rows).then(pl.lit("requests")).otherwise(pl.lit("summary")),
        n_requests=pl.coalesce("n_requests", "declared_requests"),
        # Cancelled requests (the run ended before they completed: GuideLLM "incomplete")
        # were neither served nor refused: they are not failures and not in the budget.
        n_errors=pl.when(has_rows)
        .then(pl.col("n_requests") - pl.col("n_ok") - pl.col("n_cancelled"))
        .otherwise(pl.col("declared_errors")),
        n_cancelled=pl.col("n_cancelled").fill_null(0),
        request_throughput_rps=pl.when(has_rows)
        .then(pl.col("n_ok") / duration)
        .otherwise(pl.col("tool_request_throughput_rps")),
        output_throughput_tps=pl.when(has_rows)
        .then(pl.col("output_tokens_ok") / duration)
        .otherwise(pl.col("tool_output_throughput_tps")),
        total_token_throughput_tps=pl.when(has_rows)
        .then((pl.col("output_tokens_ok") + pl.col("input_tokens_ok")) / duration)
        .otherwise(pl.col("tool_total_token_throughput_tps")),
        goodput_rps=pl.when(has_rows & pl.col("goodput_measurable")).then(
            pl.col("n_good") / duration
        ),
    ).with_columns(
        error_rate=pl.when(pl.col("n_requests") - pl.col("n_cancelled") > 0).then(
            pl.col("n_errors") / (pl.col("n_requests") - pl.col("n_cancelled"))
        ),
        # Little's law, L = X * W: the concurrency the server actually held on average.
        achieved_concurrency=pl.col("request_throughput_rps")
        * pl.coalesce("mean_e2e_ok", "mean_e2e_s"),
    )
    lo, hi = wilson(out["n_errors"], out["n_requests"] - out["n_cancelled"], confidence)
    out = out.with_columns(
        error_rate_lo=lo,
        error_rate_hi=hi,
        achieved_ratio=pl.when(pl.col("load_mode") == "concurrency").then(
            pl.col("achieved_concurrency") / pl.col("load_value")
        ),
    )
    return out.drop(
        "declared_requests",
        "declared_errors",
        "mean_e2e_ok",
        "n_good",
        "goodput_measurable",
        "output_tokens_ok",
        "input_tokens_ok",
        *[c for c in out.columns if c.startswith("tool_")],
    ).sort("deployment", "load_mode", "load_value", nulls_last=True, maintain_order=True)
