"""AIPerf's aggregate-only exports from real GPU runs (../shared/traces/aiperf): loadlens
keeps the tool's own numbers (seconds, within 1%), its counts, load level, model, version
and workload. The studies have no per-request file, so there is nothing to recompute:
the check is that nothing is lost or mislabelled on the way in."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import SHARED_TRACES, one_level

from loadlens import sources
from loadlens.trace import Trace

ROOT = SHARED_TRACES / "aiperf"
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason=f"{ROOT} is absent")
SUMMARIES = sorted(ROOT.glob("*/**/profile_export_aiperf.json")) if ROOT.is_dir() else []
REL = 0.01
# AIPerf metric -> loadlens metric of the same definition (AIPerf's ITL is our TPOT).
SAME = {
    "time_to_first_token": "ttft_s",
    "request_latency": "e2e_s",
    "inter_token_latency": "tpot_s",
    "inter_chunk_latency": "itl_s",
}
STATS = {"avg": "mean", "p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99"}


def _id(path: Path) -> str:
    return str(path.parent.relative_to(ROOT))


def _counts(doc: dict) -> tuple[int, int]:
    ok = int(doc["request_count"]["avg"])
    errors = int((doc.get("error_request_count") or {}).get("avg") or 0)
    return ok + errors, errors


def test_every_study_is_found() -> None:
    assert len(SUMMARIES) == 16


STUDIES = sorted(p for p in ROOT.iterdir() if p.is_dir()) if ROOT.is_dir() else []


@pytest.mark.parametrize("study", STUDIES, ids=str)
def test_json_and_csv_are_read_together_never_twice(study: Path) -> None:
    kept, skipped = sources.plan([study])
    assert kept and all(f.name == "profile_export_aiperf.json" for f in kept)
    csvs = [s for s in skipped if s.path.suffix == ".csv"]
    assert len(csvs) == len(kept)
    assert all(s.reason == "read together with profile_export_aiperf.json" for s in csvs)


@pytest.mark.parametrize("path", SUMMARIES, ids=_id)
def test_levels_keep_the_tools_numbers(path: Path) -> None:
    doc = json.loads(path.read_text())
    trace = sources.load_file(path)
    row = one_level(trace)
    assert row["basis"] == "summary"
    for key, metric in SAME.items():
        assert doc[key]["unit"] == "ms"
        for stat, name in STATS.items():
            want = doc[key][stat] / 1000
            assert row[f"{name}_{metric}"] == pytest.approx(want, rel=REL), (key, stat)
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"]["avg"], rel=REL)
    assert row["output_throughput_tps"] == pytest.approx(
        doc["output_token_throughput"]["avg"], rel=REL
    )
    n, errors = _counts(doc)
    assert (row["n_requests"], row["n_errors"]) == (n, errors)
    if doc.get("error_summary"):  # the per-kind counts add up to the error count
        assert sum(e["count"] for e in doc["error_summary"]) == errors


@pytest.mark.parametrize("path", SUMMARIES, ids=_id)
def test_run_keeps_load_model_version_and_workload(path: Path) -> None:
    doc = json.loads(path.read_text())
    config = doc["input_config"]
    trace = sources.load_file(path)
    (run,) = trace.runs
    assert trace.source.tool_version == doc.get("aiperf_version")
    assert run.model == config["endpoint"]["model_names"][0]
    # every level says --concurrency N; pd4p4d adds --request-rate 500 that the cap held back
    assert (run.load_mode, run.load_value) == ("concurrency", config["loadgen"]["concurrency"])
    assert f"--concurrency {int(run.load_value)}" in config["cli_command"]
    if "request_rate" in config["loadgen"]:
        assert run.workload["request_rate"] == config["loadgen"]["request_rate"]
        assert row_rate(trace) < 0.5 * config["loadgen"]["request_rate"]
    prompt = config["input"].get("prompt", {})
    for key in ("input_tokens", "output_tokens"):
        if "mean" in prompt.get(key, {}):
            assert run.workload[key] == prompt[key]["mean"]
    if "custom_dataset_type" in config["input"]:
        assert run.workload["dataset"] == config["input"]["custom_dataset_type"]
    assert run.workload["observed_input_tokens_mean"] == pytest.approx(
        doc["input_sequence_length"]["avg"], rel=1e-3
    )
    assert run.duration_s == pytest.approx(doc["benchmark_duration"]["avg"], rel=1e-6)


def row_rate(trace: Trace) -> float:
    return float(one_level(trace)["request_throughput_rps"])


def test_dynamo_workload_targets() -> None:
    (path,) = [p for p in SUMMARIES if p.parent.name == "medium"]
    (run,) = sources.load_file(path).runs
    assert (run.workload["input_tokens"], run.workload["output_tokens"]) == (2048, 256)
    assert run.workload["goodput_slo"] == {
        "time_to_first_token": 500.0,
        "inter_token_latency": 50.0,
    }


@pytest.mark.parametrize("path", SUMMARIES, ids=_id)
def test_csv_alone_keeps_the_rounded_numbers(path: Path, tmp_path: Path) -> None:
    doc = json.loads(path.read_text())
    alone = tmp_path / "profile_export_aiperf.csv"
    shutil.copy(path.with_suffix(".csv"), alone)
    trace = sources.load_file(alone)
    row = one_level(trace)
    for key, metric in SAME.items():
        for stat, name in STATS.items():
            want = doc[key][stat] / 1000  # the CSV rounds to 0.01 ms
            assert row[f"{name}_{metric}"] == pytest.approx(want, rel=REL, abs=6e-6), (key, stat)
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"]["avg"], rel=REL)
    assert (row["n_requests"], row["n_errors"]) == _counts(doc)
