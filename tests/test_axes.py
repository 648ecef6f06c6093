"""Sweeps over input or output length at one load: detection, the per-token fit, the
finding's words and the chart."""

from __future__ import annotations

import random
import statistics
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import polars as pl
import pytest
from tests.conftest import SHARED_TRACES

from loadlens import sources
from loadlens.analysis.axes import axis_sweeps, student_t_quantile, sweep_axis
from loadlens.analysis.levels import levels as level_metrics
from loadlens.analysis.variants import series_names
from loadlens.charts import axis_chart
from loadlens.config import parse_slos
from loadlens.findings import workload_axis
from loadlens.warehouse import Warehouse

SLOS = parse_slos("p95_e2e<10s,p95_ttft<2s")
TRUE_SLOPE = 2e-4  # s per input token
TRUE_INTERCEPT = 0.1


def _run(run_id: str, load: float, workload: dict[str, Any], params: dict[str, Any] | None = None):
    return {
        "run_id": run_id,
        "deployment": "h100",
        "load_mode": "concurrency",
        "load_value": load,
        "duration_s": 60.0,
        "num_requests": 50,
        "num_errors": 0,
        "workload": orjson.dumps(workload).decode(),
        "params": orjson.dumps(params).decode() if params else None,
    }


def _requests(run_id: str, target: int, n: int = 50, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(f"{run_id}{seed}")
    rows = []
    for seq in range(n):
        tokens = round(target * rng.uniform(0.8, 1.2))
        ttft = TRUE_INTERCEPT + TRUE_SLOPE * tokens + rng.gauss(0, 0.02)
        rows.append(
            {
                "run_id": run_id,
                "seq": seq,
                "start_s": None,
                "ttft_s": ttft,
                "e2e_s": ttft + 2.0,
                "input_tokens": tokens,
                "output_tokens": 128,
                "itl_s": None,
                "status": "ok",
                "error": None,
            }
        )
    return rows


REQUEST_SCHEMA = {
    "run_id": pl.String,
    "seq": pl.Int64,
    "start_s": pl.Float64,
    "ttft_s": pl.Float64,
    "e2e_s": pl.Float64,
    "input_tokens": pl.Int64,
    "output_tokens": pl.Int64,
    "itl_s": pl.List(pl.Float64),
    "status": pl.String,
    "error": pl.String,
}
STATS_SCHEMA = {
    "run_id": pl.String,
    "metric": pl.String,
    "statistic": pl.String,
    "value": pl.Float64,
}


def _series_levels(runs: pl.DataFrame, requests: pl.DataFrame, stats: pl.DataFrame | None = None):
    """Levels with the series split as the analysis lays it out (deployment = series)."""
    stats = stats if stats is not None else pl.DataFrame(schema=STATS_SCHEMA)
    levels = level_metrics(runs, requests, stats, SLOS, 0.9)
    if "base_deployment" in levels.columns:
        return levels
    return levels.with_columns(
        base_deployment=pl.col("deployment"),
        deployment=pl.col("run_id").replace(series_names(runs)),
    )


def _input_sweep(targets=(1000, 2000, 4000, 8000), load: float = 10):
    runs = pl.DataFrame(
        [_run(f"r{t}", load, {"input_tokens": t, "output_tokens": 128}) for t in targets]
    )
    requests = pl.DataFrame(
        [row for t in targets for row in _requests(f"r{t}", t)], schema=REQUEST_SCHEMA
    )
    return runs, requests


def test_input_sweep_detected_and_slope_recovered():
    runs, requests = _input_sweep()
    [sweep] = axis_sweeps(_series_levels(runs, requests), runs, requests, 0.9)
    assert (sweep.base_deployment, sweep.load_mode, sweep.load_value) == ("h100", "concurrency", 10)
    assert sweep.axis == "input_tokens"
    assert [p.value for p in sweep.points] == [1000, 2000, 4000, 8000]
    assert sweep.points[0].series == "h100 · in 1,000 tok"
    assert sweep.points[-1].stat("p95_ttft_s") is not None
    assert sweep.points[-1].stat("p95_ttft_s_lo") is not None
    fit = sweep.fit
    assert fit is not None and fit.basis == "requests" and fit.n == 200 and fit.n_runs == 4
    assert fit.slope_lo < TRUE_SLOPE < fit.slope_hi
    assert fit.slope_s_per_token == pytest.approx(TRUE_SLOPE, rel=0.03)
    assert fit.intercept_s == pytest.approx(TRUE_INTERCEPT, abs=0.02)
    assert fit.significant
    # The per-token part at the longest point: slope x its mean tokens / its mean TTFT.
    last = requests.filter(pl.col("run_id") == "r8000")
    expected = fit.slope_s_per_token * last["input_tokens"].mean() / last["ttft_s"].mean()
    assert fit.share_at_max == pytest.approx(expected)
    # Requests' own lengths and the runs' lengths say the same here.
    assert not sweep.disagree


def test_slope_matches_stdlib_least_squares():
    runs, requests = _input_sweep()
    [sweep] = axis_sweeps(_series_levels(runs, requests), runs, requests, 0.9)
    ref = statistics.linear_regression(
        requests["input_tokens"].cast(pl.Float64).to_list(), requests["ttft_s"].to_list()
    )
    assert sweep.fit.slope_s_per_token == pytest.approx(ref.slope)
    assert sweep.fit.intercept_s == pytest.approx(ref.intercept)


def test_interval_follows_confidence():
    runs, requests = _input_sweep()
    levels = _series_levels(runs, requests)
    [wide] = axis_sweeps(levels, runs, requests, 0.99)
    [narrow] = axis_sweeps(levels, runs, requests, 0.8)
    assert wide.fit.slope_hi - wide.fit.slope_lo > narrow.fit.slope_hi - narrow.fit.slope_lo
    for confidence, label in ((0.9, "90% CI"), (0.95, "95% CI")):
        [sweep] = axis_sweeps(levels, runs, requests, confidence)
        [f] = workload_axis.find(SimpleNamespace(axes=[sweep], slos=SLOS, confidence=confidence))
        assert label in f.sentence
        assert "95% CI" not in f.sentence or confidence == 0.95


def test_no_sweep_when_only_load_differs():
    runs = pl.DataFrame(
        [_run(f"c{c}", c, {"input_tokens": 1000, "output_tokens": 128}) for c in (1, 8, 32)]
    )
    requests = pl.DataFrame(
        [row for c in (1, 8, 32) for row in _requests(f"c{c}", 1000)], schema=REQUEST_SCHEMA
    )
    assert axis_sweeps(_series_levels(runs, requests), runs, requests, 0.9) == []
    assert sweep_axis(runs) == "load"


def test_no_sweep_when_two_facets_differ():
    runs = pl.DataFrame(
        [
            _run("a", 10, {"input_tokens": 1000, "output_tokens": 128}),
            _run("b", 10, {"input_tokens": 2000, "output_tokens": 256}),
        ]
    )
    requests = pl.DataFrame([*_requests("a", 1000), *_requests("b", 2000)], schema=REQUEST_SCHEMA)
    assert axis_sweeps(_series_levels(runs, requests), runs, requests, 0.9) == []
    assert sweep_axis(runs) == "input_tokens+output_tokens"


def test_one_sweep_per_load_and_server_arg_axis():
    runs = pl.DataFrame(
        [
            _run(f"{c}-{t}", c, {"input_tokens": t, "output_tokens": 128})
            for c in (10, 50)
            for t in (1000, 4000)
        ]
    )
    requests = pl.DataFrame(
        [row for r in runs["run_id"] for row in _requests(r, int(r.split("-")[1]))],
        schema=REQUEST_SCHEMA,
    )
    sweeps = axis_sweeps(_series_levels(runs, requests), runs, requests, 0.9)
    assert [s.load_value for s in sweeps] == [10, 50]
    assert sweep_axis(runs) == "input_tokens"
    args = pl.DataFrame(
        [
            _run(f"s{m}", 10, {"input_tokens": 1000}, {"server_args": {"max_num_seqs": m}})
            for m in (64, 128)
        ]
    )
    assert sweep_axis(args) == "max_num_seqs"


def test_summary_only_fit_over_run_means_and_too_few_points():
    targets = (1024, 4096, 8192)
    runs = pl.DataFrame([_run(f"r{t}", 100, {"input_tokens": t}) for t in targets])
    means = {t: 0.5 + 1e-3 * t + (0.05 if t == 4096 else 0.0) for t in targets}
    stats = pl.DataFrame(
        [
            {"run_id": f"r{t}", "metric": "ttft_s", "statistic": s, "value": v}
            for t in targets
            for s, v in (("mean", means[t]), ("p99", 2 * means[t]))
        ],
        schema=STATS_SCHEMA,
    )
    requests = pl.DataFrame(schema=REQUEST_SCHEMA)
    [sweep] = axis_sweeps(_series_levels(runs, requests, stats), runs, requests, 0.9)
    fit = sweep.fit
    ref = statistics.linear_regression([float(t) for t in targets], [means[t] for t in targets])
    assert fit.basis == "run means" and fit.n == 3
    assert fit.slope_s_per_token == pytest.approx(ref.slope)
    assert fit.share_tokens == 8192 and fit.share_reference_s == pytest.approx(means[8192])
    assert sweep.run_fit == fit
    [f] = workload_axis.find(SimpleNamespace(axes=[sweep], slos=SLOS, confidence=0.9))
    # p95 is not recorded: p99 is shown, and the p95 SLO is not judged on it.
    assert "p99 TTFT" in f.sentence and "not judged" in f.sentence
    assert "summary only" in f.confidence and "1 degrees" in f.confidence

    two = runs.filter(pl.col("run_id") != "r4096")
    [short] = axis_sweeps(_series_levels(two, requests, stats), two, requests, 0.9)
    assert short.fit.slope_lo is None and not short.fit.significant
    [f] = workload_axis.find(SimpleNamespace(axes=[short], slos=SLOS, confidence=0.9))
    assert "too few" in f.sentence


def test_student_t_quantile():
    assert student_t_quantile(0.95, 3) == pytest.approx(2.353363, abs=1e-5)
    assert student_t_quantile(0.975, 1) == pytest.approx(12.706205, abs=1e-4)
    assert student_t_quantile(0.975, 30) == pytest.approx(2.042272, abs=1e-5)
    assert student_t_quantile(0.95, 5000) == pytest.approx(1.644854, abs=1e-3)


def test_finding_sentence_and_evidence():
    runs, requests = _input_sweep(targets=(1000, 4000, 8000, 16000))
    [sweep] = axis_sweeps(_series_levels(runs, requests), runs, requests, 0.9)
    [f] = workload_axis.find(SimpleNamespace(axes=[sweep], slos=SLOS, confidence=0.9))
    assert f.kind == "workload_axis" and f.deployment == "h100"
    assert f.sentence.startswith("At concurrency 10, p95 TTFT of h100 grows from ")
    assert "at 1,000 input tokens to" in f.sentence
    assert "the 2 s SLO is crossed between 8,000 and 16,000" in f.sentence
    assert "per input token (90% CI " in f.sentence
    assert "the per-token part of TTFT is" in f.sentence
    assert "prefill" not in f.sentence
    assert f.severity == "warning"
    e = f.evidence
    assert e["crossed_after_tokens"] == 8000 and e["crossed_by_tokens"] == 16000
    assert e["slope_s_per_token"] == sweep.fit.slope_s_per_token
    assert e["share_at_max"] == sweep.fit.share_at_max
    assert e["fit_n"] == 200 and e["load_value"] == 10
    assert "200 successful requests of 4 runs" in f.confidence
    assert "198 degrees of freedom" in f.confidence
    assert workload_axis.KIND == "workload_axis" and workload_axis.SECTION == "story"


def test_axis_chart_is_svg():
    runs, requests = _input_sweep()
    [sweep] = axis_sweeps(_series_levels(runs, requests), runs, requests, 0.9)
    svg = axis_chart(sweep, SLOS)
    assert svg.lstrip().startswith("<svg") and "Input length" in svg and "SLO 2 s" in svg


# -- real studies --------------------------------------------------------------------------

real = pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent")


def _study(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    files = sorted(
        f for f in folder.iterdir() if f.suffix in (".json", ".jsonl") and "summary" not in f.name
    )
    wh = Warehouse(":memory:")
    wh.ingest([sources.load_file(f) for f in files], "d", None)
    runs = wh.runs()
    ids = runs["run_id"].to_list()
    requests = wh.requests(ids)
    levels = level_metrics(runs, requests, wh.run_stats(ids), SLOS, 0.9)
    if "base_deployment" not in levels.columns:
        levels = levels.with_columns(
            base_deployment=pl.col("deployment"),
            deployment=pl.col("run_id").replace(series_names(runs)),
        )
    return levels, runs, requests


@real
def test_real_vllm_context_sweep_summary_only():
    folder = SHARED_TRACES / "vllm" / "scicom-runpod-8xb200-glm47-fp8-tp8-ctx1k-15k-c100"
    levels, runs, requests = _study(folder)
    assert sweep_axis(runs) == "input_tokens"
    [sweep] = axis_sweeps(levels, runs, requests, 0.9)
    assert sweep.load_value == 100 and sweep.values == [1024, 2048, 4096, 8192, 15000]
    fit = sweep.fit
    assert fit.basis == "run means" and fit.n == 5 and fit.significant
    ref = statistics.linear_regression(
        [p.value for p in sweep.points], [p.stat("mean_ttft_s") for p in sweep.points]
    )
    assert fit.slope_s_per_token == pytest.approx(ref.slope)
    assert 0.8e-3 < fit.slope_s_per_token < 1.0e-3  # about 0.91 ms per input token
    [f] = workload_axis.find(SimpleNamespace(axes=[sweep], slos=SLOS, confidence=0.9))
    assert "p99 TTFT" in f.sentence and "90% CI" in f.sentence
    assert axis_chart(sweep, SLOS).lstrip().startswith("<svg")


@real
def test_real_sglang_context_sweep_per_request():
    folder = SHARED_TRACES / "sglang" / "scicom-runpod-8xh100-llama31-70b-tp8-isl1k-8k-c100-details"
    levels, runs, requests = _study(folder)
    [sweep] = axis_sweeps(levels, runs, requests, 0.9)
    assert sweep.values == [1024, 2048, 4096, 8192]
    fit = sweep.fit
    assert fit.basis == "requests" and fit.n == 400
    ok = requests.filter(pl.col("status") == "ok").drop_nulls(["ttft_s", "input_tokens"])
    ref = statistics.linear_regression(
        ok["input_tokens"].cast(pl.Float64).to_list(), ok["ttft_s"].to_list()
    )
    assert fit.slope_s_per_token == pytest.approx(ref.slope)
    # At concurrency 100 a request's TTFT follows its batch's prompts more than its own:
    # across runs mean TTFT grows about 1 ms per token, per request about 0.4 ms.
    assert sweep.run_fit.slope_s_per_token > fit.slope_hi
    assert sweep.disagree
    [f] = workload_axis.find(SimpleNamespace(axes=[sweep], slos=SLOS, confidence=0.9))
    assert "across the runs" in f.sentence and "over the 2 s SLO at every length" in f.sentence


def test_output_sweep_fits_e2e_per_output_token():
    targets = (128, 512, 1024)
    runs = pl.DataFrame(
        [_run(f"o{t}", 16, {"input_tokens": 1000, "output_tokens": t}) for t in targets]
    )
    rows = []
    for t in targets:
        for row in _requests(f"o{t}", 1000):
            out = round(t * random.Random(row["seq"]).uniform(0.9, 1.1))
            rows.append(row | {"output_tokens": out, "e2e_s": row["ttft_s"] + 0.02 * out})
    requests = pl.DataFrame(rows, schema=REQUEST_SCHEMA)
    [sweep] = axis_sweeps(_series_levels(runs, requests), runs, requests, 0.9)
    assert sweep.axis == "output_tokens" and sweep.metric == "e2e_s"
    assert sweep.fit.slope_s_per_token == pytest.approx(0.02, rel=0.02)
    [f] = workload_axis.find(SimpleNamespace(axes=[sweep], slos=SLOS, confidence=0.9))
    assert "p95 E2E of h100 grows" in f.sentence and "per output token" in f.sentence
    assert "the per-token part of E2E is" in f.sentence and "of mean E2E" in f.sentence
    assert sweep_axis(runs) == "output_tokens"
