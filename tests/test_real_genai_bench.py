"""genai-bench files real runs wrote (../shared/traces/genai-bench): loadlens agrees with a
stdlib recompute from the raw rows, and with genai-bench's own `aggregated_metrics`."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SHARED_TRACES, one_level, pct

from loadlens import sources
from loadlens.sources import genai_bench

ROOT = SHARED_TRACES / "genai-bench"
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason=f"{ROOT} is absent")

STUDIES = {
    "baseten-h100-qwen3-30b-a3b-fp8-concurrency-sweep": 6,
    "baseten-trtllm-gpt-oss-120b-c1-4-http500-failures": 3,
    "baseten-glm46-c1-parallel-feature-branch": 1,
    "baseten-glm46-c1-regression-with-flag": 1,
}
RUN_FILES = (
    sorted(f for f in ROOT.glob("*/*.json") if f.name != genai_bench.METADATA)
    if ROOT.is_dir()
    else []
)
HTTP500 = "baseten-trtllm-gpt-oss-120b-c1-4-http500-failures"


def _ids(p: Path) -> str:
    return f"{p.parent.name[:24]}/{p.name[:40]}"


def _raw(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_every_study_plans_its_runs_and_passes_over_the_metadata(study: str) -> None:
    files, skipped = sources.plan([ROOT / study])
    assert len(files) == STUDIES[study]
    assert all(sources.detect(f) is genai_bench for f in files)
    meta = ROOT / study / genai_bench.METADATA
    if meta.exists():
        assert any(s.path == meta for s in skipped)


@pytest.mark.parametrize("path", RUN_FILES, ids=_ids)
def test_loadlens_agrees_with_a_stdlib_recompute(path: Path) -> None:
    doc = _raw(path)
    records = doc["individual_request_metrics"]
    duration = doc["aggregated_metrics"]["run_duration"]  # seconds in every version
    scale = 1e-3 if doc.get("_time_unit") == "ms" else 1.0
    ok = [r for r in records if not r["error_code"] and r["num_output_tokens"]]
    row = one_level(sources.load_file(path))
    e2e = [r["e2e_latency"] * scale for r in ok]
    for q in (50, 95, 99):
        assert row[f"p{q}_e2e_s"] == pytest.approx(pct(e2e, q / 100), rel=1e-9)
    if path.parent.name != HTTP500:  # non-streaming: TTFT is a placeholder (below)
        ttft = [r["ttft"] * scale for r in ok]
        for q in (50, 95, 99):
            assert row[f"p{q}_ttft_s"] == pytest.approx(pct(ttft, q / 100), rel=1e-9)
    assert row["n_requests"] == len(records)
    assert row["n_errors"] == len(records) - len(ok)
    assert row["request_throughput_rps"] == pytest.approx(len(ok) / duration, rel=1e-9)
    out_tokens = sum(r["num_output_tokens"] for r in ok)
    assert row["output_throughput_tps"] == pytest.approx(out_tokens / duration, rel=1e-9)
    assert statistics.fmean(e2e) == pytest.approx(row["mean_e2e_s"], rel=1e-9)


@pytest.mark.parametrize("path", RUN_FILES, ids=_ids)
def test_loadlens_agrees_with_genai_benchs_aggregated_metrics(path: Path) -> None:
    """genai-bench's definitions are ours (numpy linear percentiles of completed requests;
    completed requests and tokens / run_duration): within 1%, in fact to rounding."""
    agg = _raw(path)["aggregated_metrics"]
    trace = sources.load_file(path)
    row = one_level(trace)
    streaming = trace.runs[0].workload.get("streaming", True)
    metrics = {"e2e_latency": "e2e_s"} | ({"ttft": "ttft_s", "tpot": "tpot_s"} if streaming else {})
    for key, metric in metrics.items():
        for stat in ("mean", "p50", "p90", "p95", "p99"):
            assert row[f"{stat}_{metric}"] == pytest.approx(agg["stats"][key][stat], rel=0.01)
    assert row["request_throughput_rps"] == pytest.approx(agg["requests_per_second"], rel=0.01)
    assert row["output_throughput_tps"] == pytest.approx(
        agg["mean_output_throughput_tokens_per_s"], rel=0.01
    )
    assert row["total_token_throughput_tps"] == pytest.approx(
        agg["mean_total_tokens_throughput_tokens_per_s"], rel=0.01
    )
    assert (
        row["n_errors"] == agg["num_error_requests"] == sum(agg["error_codes_frequency"].values())
    )
    assert row["n_requests"] == agg["num_requests"]
    assert trace.runs[0].load_value == agg["num_concurrency"]
    assert trace.runs[0].duration_s == agg["run_duration"]


@pytest.mark.parametrize("path", [p for p in RUN_FILES if p.parent.name == HTTP500], ids=_ids)
def test_the_http_500_study_counts_its_errors_and_drops_the_placeholder_ttft(path: Path) -> None:
    agg = _raw(path)["aggregated_metrics"]
    trace = sources.load_file(path)
    (run,) = trace.runs
    assert run.num_errors == agg["error_codes_frequency"]["500"] > 0
    errors = trace.requests.filter(trace.requests["status"] == "error")
    assert errors.height == run.num_errors
    assert all(e.startswith("HTTP 500: ") for e in errors["error"])
    # Non-streaming (--disable-streaming): genai-bench's TTFT is start + 1 ms, not a latency.
    assert agg["stats"]["ttft"]["max"] == pytest.approx(0.001, abs=1e-9)
    assert run.workload["streaming"] is False and trace.requests["ttft_s"].is_null().all()
    assert run.workload["input_tokens"] == 8000 and run.workload["output_tokens"] == 700


def test_metadata_fills_model_version_and_hardware() -> None:
    path = next(p for p in RUN_FILES if "num_concurrency_8_" in p.name)
    trace = sources.load_file(path)
    (run,) = trace.runs
    assert trace.source.tool_version == "0.0.2"
    assert run.model == "Qwen3-30B-A3B-Instruct-2507-FP8"
    assert run.params["hardware"] == "1x H100"
    assert (run.load_mode, run.load_value) == ("concurrency", 8.0)
    assert run.workload["dataset"] == "N(2000,200)/(200,20)"
    assert (run.workload["input_tokens"], run.workload["output_tokens"]) == (2000, 200)
    assert "cmd" not in run.params and "cmd" not in run.workload
