"""inference-perf report directories real GPUs wrote (../shared/traces/inference-perf): every
stage ingests as one run, and loadlens's numbers are the tool's stage metrics, by its
definitions (summary-only: the per-request file was not committed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from tests.conftest import SHARED_TRACES, trace_levels

from loadlens import sources
from loadlens.sources import inference_perf

ROOT = SHARED_TRACES / "inference-perf"
SHARED_PREFIX = ROOT / "inference-sim-h100-llama2-70b-tp4-shared-prefix-rate8-rate20"
OVERLOAD = ROOT / "inference-sim-h100-llama2-7b-tp1-reasoning-overload-4068-failures"
CODEGEN = ROOT / "inference-sim-h100-mixtral-8x7b-tp2-codegen-rate5-rate10"
STUDIES = {SHARED_PREFIX: 2, OVERLOAD: 1, CODEGEN: 2}  # study: stages

pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason=f"{ROOT} is absent")


def _stages(study: Path) -> list[Path]:
    return sorted((study / "results").glob("stage_*_lifecycle_metrics.json"))


def _level(path: Path) -> tuple[Any, Any, dict[str, Any]]:
    trace = sources.load_file(path)
    assert trace.source.format == "inference-perf"
    (run,) = trace.runs
    return trace, run, trace_levels(trace)[run.run_key]


@pytest.mark.parametrize("study", list(STUDIES), ids=lambda p: p.name)
def test_every_stage_ingests_once(study: Path) -> None:
    files, skipped = sources.plan([study])
    assert [f.name for f in files] == [f.name for f in _stages(study)]
    assert len(files) == STUDIES[study]
    assert {s.path.name for s in skipped} >= {"summary_lifecycle_metrics.json", "config.yaml"}


STAGES = [f for s in STUDIES if s.is_dir() for f in _stages(s)]


@pytest.mark.parametrize("path", STAGES, ids=lambda p: f"{p.parents[1].name[14:40]}/{p.name}")
def test_stage_numbers_are_the_tools(path: Path) -> None:
    doc = json.loads(path.read_text())
    trace, run, row = _level(path)
    load, ok, failed = doc["load_summary"], doc["successes"], doc["failures"]
    latency, throughput = ok["latency"], ok["throughput"]
    assert row["basis"] == "summary"
    assert (run.load_mode, run.load_value) == ("rate", load["requested_rate"])
    assert row["n_requests"] == load["count"] == ok["count"] + failed["count"]
    assert row["n_errors"] == failed["count"]
    for key, metric in (
        ("time_to_first_token", "ttft_s"),
        ("request_latency", "e2e_s"),
    ):
        for stat, ours in (("median", "p50"), ("p90", "p90"), ("p99", "p99"), ("mean", "mean")):
            assert row[f"{ours}_{metric}"] == pytest.approx(latency[key][stat], rel=1e-12)
    assert row["request_throughput_rps"] == pytest.approx(throughput["requests_per_sec"], rel=1e-12)
    assert row["output_throughput_tps"] == pytest.approx(
        throughput["output_tokens_per_sec"], rel=1e-12
    )
    assert row["total_token_throughput_tps"] == pytest.approx(
        throughput["total_tokens_per_sec"], rel=1e-12
    )
    stats = {(m, s): v for m, s, v in trace.run_stats.select("metric", "statistic", "value").rows()}
    assert stats[("achieved_rate_rps", "value")] == pytest.approx(load["achieved_rate"], rel=1e-12)
    # No benchmark_time_seconds before v0.5: the window is the tool's throughput divisor,
    # first start to last end (failures included), = successes / requests_per_sec.
    assert "benchmark_time_seconds" not in doc
    assert run.duration_s == pytest.approx(ok["count"] / throughput["requests_per_sec"], rel=1e-12)
    assert run.duration_s >= load["send_duration"]
    if failed["count"]:
        assert stats[("failed_e2e_s", "median")] == failed["request_latency"]["median"]


@pytest.mark.parametrize("path", STAGES, ids=lambda p: f"{p.parents[1].name[14:40]}/{p.name}")
def test_two_stamps_per_token_keep_tpot_apart(path: Path) -> None:
    """These reports stamp every SSE line (data line and blank separator): two stamps per
    token, so the tool's TPOT is about half the time per token. The stamps' span over the
    target output length says so: (median E2E - median TTFT) / median stamp gap ~ 2n."""
    doc = json.loads(path.read_text())
    trace, _, row = _level(path)
    latency = doc["successes"]["latency"]
    if not doc["failures"]["count"]:  # overloaded, the medians are of different requests
        span = latency["request_latency"]["median"] - latency["time_to_first_token"]["median"]
        stamps = span / latency["time_per_output_token"]["median"]
        assert 1.8 < stamps / doc["successes"]["output_len"]["median"] < 2.2
    metrics = set(trace.run_stats["metric"])
    assert {"tpot_stamp_s", "itl_stamp_s"} <= metrics and "tpot_s" not in metrics
    assert row.get("p50_tpot_s") is None
    stamp = trace.run_stats.filter(
        (pl.col("metric") == "tpot_stamp_s") & (pl.col("statistic") == "median")
    )["value"][0]
    assert stamp == latency["time_per_output_token"]["median"]


@pytest.mark.parametrize("study", list(STUDIES), ids=lambda p: p.name)
def test_config_is_kept(study: Path) -> None:
    config = yaml.safe_load((study / "results" / "config.yaml").read_text())
    prefix = config["data"]["shared_prefix"]
    for n, path in enumerate(_stages(study)):
        _, run, _ = _level(path)
        w = run.workload
        assert run.model == config["server"]["model_name"]
        assert run.params == {"engine": "vllm"}
        assert w["dataset"] == "shared_prefix" and w["load_type"] == "constant"
        assert w["input_tokens"] == prefix["system_prompt_len"] + prefix["question_len"]
        assert w["output_tokens"] == prefix["output_len"]
        assert w["stage"] == n
        assert w["stage_duration_s"] == config["load"]["stages"][n]["duration"]
        assert run.load_value == config["load"]["stages"][n]["rate"]
        assert w["ignore_eos"] is True


def test_overload_counts_its_failures() -> None:
    (path,) = _stages(OVERLOAD)
    _, run, row = _level(path)
    assert (run.num_requests, run.num_errors) == (4800, 4068)
    assert row["error_rate"] == pytest.approx(4068 / 4800)
    # The failures' prompt_len block is all zeros (the tool never counted their prompts):
    # not read. Their latencies (300 s timeouts) are kept apart from the successes'.
    assert row["p50_e2e_s"] < 300


def test_method_note_names_the_window() -> None:
    assert "first request's start" in inference_perf.METHOD_NOTE
