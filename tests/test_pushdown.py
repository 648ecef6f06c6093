"""The level statistics DuckDB computes where the rows are equal those polars computed from
every row loaded: every percentile, interval bound, count and rate, on the sample data and
on real traces.

`reference_levels` is the polars implementation the SQL replaced (loadlens 2d8c35c), kept
here as the yardstick; bench/run.py times it against the pushed-down one.
"""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import SAMPLE_DATA, SHARED_TRACES

from loadlens import api
from loadlens.analysis import level_sql
from loadlens.analysis.levels import (
    PERCENTILES,
    _wide_name,
    quantile_ci_ranks,
    summary_latency_stats,
    wilson,
    with_every_stat_column,
)
from loadlens.config import SLO, load_config, parse_slos, with_error_budget
from loadlens.warehouse import Warehouse

# -- the polars reference (every row in memory) ----------------------------------------


def _request_metrics(requests: pl.DataFrame) -> pl.DataFrame:
    return requests.with_columns(
        tpot_s=pl.when(pl.col("output_tokens") > 1).then(
            (pl.col("e2e_s") - pl.col("ttft_s")) / (pl.col("output_tokens") - 1)
        )
    )


def _samples(requests: pl.DataFrame) -> pl.DataFrame:
    ok = _request_metrics(requests.filter(pl.col("status") == "ok"))
    per_request = ok.unpivot(
        index="run_id", on=["ttft_s", "tpot_s", "e2e_s"], variable_name="metric"
    )
    gaps = (
        ok.select("run_id", pl.col("itl_s").alias("value"))
        .explode("value")
        .with_columns(metric=pl.lit("itl_s"))
        .select("run_id", "metric", "value")
    )
    return pl.concat([per_request, gaps]).drop_nulls("value")


def reference_latency_stats(requests: pl.DataFrame, confidence: float = 0.95) -> pl.DataFrame:
    samples = _samples(requests)
    columns = ["run_id", "metric", "statistic", "value", "ci_lo", "ci_hi", "n"]
    if samples.is_empty():
        return pl.DataFrame(
            schema=dict(zip(columns, [pl.String] * 3 + [pl.Float64] * 3 + [pl.Int64], strict=True))
        )
    grouped = samples.group_by("run_id", "metric").agg(
        n=pl.len().cast(pl.Int64),
        mean=pl.col("value").mean(),
        sorted=pl.col("value").sort(),
        **{f"p{p}": pl.col("value").quantile(p / 100, "linear") for p in PERCENTILES},
    )
    ranks = pl.DataFrame(
        [
            (n, f"p{p}", *quantile_ci_ranks(n, p / 100, confidence))
            for n in grouped["n"].unique().to_list()
            for p in PERCENTILES
        ],
        schema={"n": pl.Int64, "statistic": pl.String, "lo_idx": pl.Int64, "hi_idx": pl.Int64},
        orient="row",
    )
    pct = (
        grouped.unpivot(
            index=["run_id", "metric", "n", "sorted"],
            on=[f"p{p}" for p in PERCENTILES],
            variable_name="statistic",
        )
        .join(ranks, on=["n", "statistic"], how="left")
        .with_columns(
            ci_lo=pl.col("sorted").list.get(pl.col("lo_idx"), null_on_oob=True),
            ci_hi=pl.col("sorted").list.get(pl.col("hi_idx"), null_on_oob=True),
        )
    )
    means = grouped.select(
        "run_id",
        "metric",
        "n",
        pl.lit("mean").alias("statistic"),
        pl.col("mean").alias("value"),
        ci_lo=pl.lit(None, dtype=pl.Float64),
        ci_hi=pl.lit(None, dtype=pl.Float64),
    )
    return pl.concat([pct.select(columns), means.select(columns)]).sort(columns[:3])


def _goodput_ok(slos: tuple[SLO, ...]) -> pl.Expr:
    cond = pl.col("status") == "ok"
    for slo in slos:
        if slo.is_latency and slo.metric != "itl_s":
            cond = cond & (pl.col(slo.metric) <= slo.threshold_s).fill_null(False)
    return cond


def reference_levels(
    runs: pl.DataFrame,
    requests: pl.DataFrame,
    run_stats: pl.DataFrame,
    slos: tuple[SLO, ...] = (),
    confidence: float = 0.95,
) -> pl.DataFrame:
    """`analysis.levels.levels` as it was before the push-down, every row in polars."""
    detailed = reference_latency_stats(requests, confidence)
    summary = summary_latency_stats(run_stats).join(
        detailed.select("run_id").unique(), on="run_id", how="anti"
    )
    long = pl.concat([detailed, summary])
    wide = long.with_columns(key=pl.col("statistic") + "_" + pl.col("metric")).pivot(
        on="key", index="run_id", values=["value", "ci_lo", "ci_hi"]
    )
    wide = wide.rename({c: _wide_name(c) for c in wide.columns if c != "run_id"})
    counts = (
        long.group_by("run_id", "metric")
        .agg(pl.col("n").first())
        .pivot(on="metric", index="run_id", values="n")
    )
    counts = counts.rename({m: f"n_{m}" for m in counts.columns if m != "run_id"})
    req = _request_metrics(requests)
    latency_metrics = dict.fromkeys(s.metric for s in slos if s.is_latency and s.metric != "itl_s")
    per_run = req.group_by("run_id").agg(
        n_requests=pl.len().cast(pl.Int64),
        n_ok=(pl.col("status") == "ok").sum().cast(pl.Int64),
        n_cancelled=(pl.col("status") == "cancelled").sum().cast(pl.Int64),
        output_tokens_ok=pl.col("output_tokens").filter(pl.col("status") == "ok").sum(),
        input_tokens_ok=pl.col("input_tokens").filter(pl.col("status") == "ok").sum(),
        n_good=_goodput_ok(slos).sum().cast(pl.Int64),
        goodput_measurable=pl.all_horizontal(
            pl.lit(True),
            *(
                pl.col(m).filter(pl.col("status") == "ok").is_not_null().any()
                | (pl.col("status") != "ok").all()
                for m in latency_metrics
            ),
        ),
        mean_e2e_ok=pl.col("e2e_s").filter(pl.col("status") == "ok").mean(),
    )
    tool_columns = ("request_throughput_rps", "output_throughput_tps", "total_token_throughput_tps")
    tool_tput = run_stats.filter(pl.col("statistic") == "value").pivot(
        on="metric", index="run_id", values="value", aggregate_function="first"
    )
    for col in tool_columns:
        if col not in tool_tput.columns:
            tool_tput = tool_tput.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    tool_tput = tool_tput.select("run_id", *(pl.col(c).alias(f"tool_{c}") for c in tool_columns))
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
    ).sort("deployment", "load_mode", "load_value", nulls_last=True)


# -- the comparison ---------------------------------------------------------------------


def assert_same_levels(pushed: pl.DataFrame, reference: pl.DataFrame) -> int:
    """Same columns (the reference's `n_` columns come in hash order), same dtypes, same
    rows; floats to 1e-9 relative. Returns how many non-null cells were compared."""
    assert sorted(pushed.columns) == sorted(reference.columns)
    assert dict(pushed.schema) == dict(reference.schema)
    # Rows tied on (deployment, load_mode, load_value) come in no set order in the reference.
    assert sorted(pushed["run_id"]) == sorted(reference["run_id"])
    pushed, reference = pushed.sort("run_id"), reference.sort("run_id")
    compared = 0
    for column in reference.columns:
        for run_id, got, want in zip(
            reference["run_id"], pushed[column], reference[column], strict=True
        ):
            where = f"{column} of run {run_id}: pushed {got!r}, polars {want!r}"
            if want is None or got is None:
                assert got is None and want is None, where
                continue
            compared += 1
            if isinstance(want, float):
                assert math.isclose(got, want, rel_tol=1e-9, abs_tol=0.0) or (
                    math.isnan(got) and math.isnan(want)
                ), where
            else:
                assert got == want, where
    return compared


def _compare(wh: Warehouse, slos: tuple[SLO, ...], confidence: float = 0.95) -> int:
    """The level table api.analyze builds from the warehouse against the polars reference
    over every row of the same runs."""
    slos = with_error_budget(slos)
    analysis = api.analyze(wh, None, slos, confidence)
    runs = analysis.runs
    ids = runs["run_id"].to_list()
    reference = reference_levels(runs, wh.requests(ids), wh.run_stats(ids), slos, confidence).join(
        runs.select("run_id", "base_deployment"), on="run_id", how="left"
    )
    # Every latency statistic that has samples must have been compared, bound by bound.
    assert reference.filter(pl.col("basis") == "requests").height > 0
    return assert_same_levels(analysis.levels, reference)


def _ingest(tmp_path: Path, folders: dict[str, Path]) -> Warehouse:
    wh = Warehouse(tmp_path / "w.duckdb")
    for deployment, folder in folders.items():
        api.ingest(wh, [folder], deployment)
    return wh


@pytest.mark.parametrize(
    ("select_min", "batch"),
    [(level_sql.SELECT_MIN_SAMPLES, level_sql.BATCH_SAMPLES), (1, 1), (10**12, 5_000)],
    ids=["as-shipped", "every-run-selected", "every-run-sorted-in-small-batches"],
)
def test_sample_data_levels_equal_the_polars_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, select_min: int, batch: int
) -> None:
    """Both ways of fetching order statistics: selection per run (quantile_disc) and one
    sort per batch of runs (list_sort), and batches cut anywhere."""
    monkeypatch.setattr(level_sql, "SELECT_MIN_SAMPLES", select_min)
    monkeypatch.setattr(level_sql, "BATCH_SAMPLES", batch)
    config = load_config(SAMPLE_DATA / "loadlens.toml")
    folders = {p.name: p for p in sorted(SAMPLE_DATA.iterdir()) if p.is_dir()}
    with _ingest(tmp_path, folders) as wh:
        assert _compare(wh, config.slos) > 500
        # Another confidence level and SLOs on every metric move every rank and the goodput.
        assert _compare(wh, parse_slos("p90_ttft<0.5s,p99_tpot<50ms,mean_e2e<8s"), 0.9) > 500


REAL: dict[str, str] = {
    "vllm": "vllm/llmk8s-azure-nd96asr-a100-llama33-70b-tp8-qps-sweep",
    "guidellm": "guidellm/inference-sim-codellama34b-tp1-sweep-v0.6dev-errored",
    "sglang": "sglang/scicom-runpod-8xh100-llama31-70b-tp8-isl1k-8k-c100-details",
    "llmperf": "llmperf/llmperf-repo-4xa10g-yi15-34b-tgi-concurrency-1-64",
}


@pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent")
@pytest.mark.parametrize("tool", sorted(REAL))
def test_real_trace_levels_equal_the_polars_ones(tmp_path: Path, tool: str) -> None:
    folder = SHARED_TRACES / REAL[tool]
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    with _ingest(tmp_path, {tool: folder}) as wh:
        assert _compare(wh, parse_slos("p95_e2e<10s,p95_ttft<1s")) > 100


@pytest.mark.parametrize("select_min", [level_sql.SELECT_MIN_SAMPLES, 1])
def test_runs_without_rows_and_odd_rows_equal_the_polars_ones(
    monkeypatch: pytest.MonkeyPatch, select_min: int
) -> None:
    """Summary-only runs, a run of only failures, single samples, null and empty ITLs,
    one-token outputs (no TPOT) and cancelled requests."""
    from loadlens.analysis.levels import levels

    monkeypatch.setattr(level_sql, "SELECT_MIN_SAMPLES", select_min)

    runs = pl.DataFrame(
        {
            "run_id": ["a", "b", "c", "s"],
            "deployment": ["d"] * 4,
            "load_mode": ["concurrency"] * 4,
            "load_value": [1.0, 2.0, 4.0, 8.0],
            "duration_s": [10.0, 10.0, 10.0, 10.0],
            "num_requests": [3, 2, 1, 100],
            "num_errors": [0, 2, 0, 1],
        }
    )
    requests = pl.DataFrame(
        {
            "run_id": ["a", "a", "a", "b", "b", "c"],
            "seq": [0, 1, 2, 0, 1, 0],
            "start_s": [0.0, 0.1, 0.2, 0.0, 0.1, 0.0],
            "ttft_s": [0.1, None, 0.3, None, None, 0.2],
            "e2e_s": [1.0, 2.0, 3.0, None, None, 0.5],
            "input_tokens": [10, 20, 30, 5, None, 7],
            "output_tokens": [5, 1, 9, None, None, 3],
            "itl_s": [[0.2, None, 0.2], [], None, None, None, [0.1, 0.2]],
            "status": ["ok", "ok", "cancelled", "error", "error", "ok"],
            "error": [None, None, None, "boom", "boom", None],
        }
    )
    run_stats = pl.DataFrame(
        [("s", "e2e_s", "p95", 4.0), ("s", "request_throughput_rps", "value", 9.5)],
        schema=["run_id", "metric", "statistic", "value"],
        orient="row",
    )
    slos = with_error_budget(parse_slos("p95_e2e<2.5s,p95_ttft<0.25s"))
    for confidence in (0.95, 0.5):
        pushed = levels(runs, requests, run_stats, slos, confidence)
        assert_same_levels(pushed, reference_levels(runs, requests, run_stats, slos, confidence))
