"""Hugging Face inference-benchmarker results JSON: detection, steps as runs, units, errors.

The fixture was built from the tool's serialisation code (see the fixture README), not
written by the tool: it cannot be built here (no crates.io).
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import FIXTURES, trace_levels

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import hf_benchmarker

GOLDEN = FIXTURES / "inference-benchmarker" / "_tmp_ll-tokenizer_2026-11-25-06-37-05.json"


def _doc() -> dict:
    return json.loads(GOLDEN.read_text())


def test_detects_only_its_results_files() -> None:
    head = sources.read_head(GOLDEN)
    hits = [
        n
        for n, m in sources.FORMATS.items()
        if getattr(m, "AUTO_DETECT", True) and m.detect(GOLDEN, head)
    ]
    assert hits == ["inference-benchmarker"]
    for path in FIXTURES.rglob("*"):
        if path.is_file() and "inference-benchmarker" not in path.parts:
            assert not hf_benchmarker.detect(path, sources.read_head(path)), path


def test_steps_are_runs_and_warmup_is_not() -> None:
    trace = sources.load_file(GOLDEN)
    doc = _doc()
    steps = {s["id"]: s for s in doc["results"]}
    assert [r.run_key for r in trace.runs] == [s["id"] for s in doc["results"][1:]]
    assert "warmup" not in {r.run_key for r in trace.runs}
    throughput, low, high = trace.runs
    assert (throughput.load_mode, throughput.load_value) == ("concurrency", 8.0)
    assert low.load_mode == high.load_mode == "rate"
    assert low.load_value == steps[low.run_key]["config"]["rate"]
    assert low.run_key == f"constant@{low.load_value:.2f}req/s"
    for run in trace.runs:
        step = steps[run.run_key]
        assert run.num_requests == step["total_requests"]
        assert run.num_errors == step["failed_requests"]
        assert run.duration_s == step["duration_ms"] / 1000
        assert run.model == "loadlens-sim"
        assert run.workload["benchmark_kind"] == "Sweep"
    assert trace.requests.is_empty()  # the tool saves no per-request data
    assert trace.source.tool == "inference-benchmarker"


def test_summary_numbers_in_seconds_and_itl_is_tpot() -> None:
    trace = sources.load_file(GOLDEN)
    doc = _doc()
    rows = trace_levels(trace)
    for step in doc["results"][1:]:
        row = rows[step["id"]]
        assert row["basis"] == "summary"
        for stat in ("p50", "p90", "p95", "p99"):
            assert row[f"{stat}_ttft_s"] == step["time_to_first_token_ms"][stat] / 1000
            assert row[f"{stat}_e2e_s"] == step["e2e_latency_ms"][stat] / 1000
            # per-request (last - first token) / (n - 1), summarised over requests: TPOT
            assert row[f"{stat}_tpot_s"] == step["inter_token_latency_ms"][stat] / 1000
        assert row["mean_ttft_s"] == step["time_to_first_token_ms"]["avg"] / 1000
        assert row["request_throughput_rps"] == step["request_rate"]
        assert row["output_throughput_tps"] == step["token_throughput_secs"]
        assert row["n_requests"] == step["total_requests"]
        stats = trace.run_stats.filter(pl.col("run_key") == step["id"])
        assert "itl_s" not in set(stats["metric"])


def test_tool_totals_are_consistent_with_its_rates() -> None:
    """request_rate and token_throughput_secs use the exact duration; duration_ms is it
    truncated to whole milliseconds, so the products agree within 1 ms of rate."""
    for step in _doc()["results"]:
        seconds = step["duration_ms"] / 1000
        assert step["request_rate"] * seconds == pytest.approx(
            step["successful_requests"], rel=2e-3
        )
        assert step["token_throughput_secs"] * seconds == pytest.approx(
            step["total_tokens"], rel=2e-3
        )
        assert step["successful_requests"] + step["failed_requests"] == step["total_requests"]


def _write(tmp_path: Path, doc: dict | str) -> Path:
    path = tmp_path / "model_2026-01-01-00-00-00.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_truncated_file(tmp_path: Path) -> None:
    path = _write(tmp_path, GOLDEN.read_text()[:-40])
    with pytest.raises(TraceFormatError, match="not valid JSON"):
        hf_benchmarker.load(path)


def test_missing_metric_block_names_the_field(tmp_path: Path) -> None:
    doc = _doc()
    del doc["results"][2]["e2e_latency_ms"]
    with pytest.raises(TraceFormatError, match=r"field 'results\[2\]\.e2e_latency_ms'"):
        hf_benchmarker.load(_write(tmp_path, doc))


def test_missing_results_and_unknown_executor(tmp_path: Path) -> None:
    doc = _doc()
    doc["results"][1]["executor_type"] = "RampingVUs"
    with pytest.raises(TraceFormatError, match="unknown executor_type 'RampingVUs'"):
        hf_benchmarker.load(_write(tmp_path, doc))
    del doc["results"]
    with pytest.raises(TraceFormatError, match="field 'results'"):
        hf_benchmarker.load(_write(tmp_path, doc))


def test_a_file_with_only_the_warmup_is_an_error(tmp_path: Path) -> None:
    doc = _doc()
    doc["results"] = doc["results"][:1]
    with pytest.raises(TraceFormatError, match="no measured step"):
        hf_benchmarker.load(_write(tmp_path, doc))


def test_null_metric_names_the_statistic(tmp_path: Path) -> None:
    doc = _doc()
    doc["results"][3]["time_to_first_token_ms"]["p95"] = None
    with pytest.raises(TraceFormatError, match=r"time_to_first_token_ms\.p95"):
        hf_benchmarker.load(_write(tmp_path, doc))
