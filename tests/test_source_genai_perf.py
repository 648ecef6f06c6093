"""GenAI-Perf artifacts: detection, per-request rows from perf_analyzer's profile export,
GenAI-Perf's own summary reproduced from the rows, summary-only fallback and bad input.

Fixtures are unmodified `genai-perf profile` output (perf_analyzer 2.51.0) against
`loadlens serve-sim` (see tests/fixtures/genai-perf/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import FIXTURES, one_level

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import genai_perf

DIR = FIXTURES / "genai-perf"
RUNS = [DIR / "c2", DIR / "c8"]
EXPORT = "profile_export.json"
SUMMARY = "profile_export_genai_perf.json"
CSV = "profile_export_genai_perf.csv"
SAME_DEFINITION = {
    "time_to_first_token": "ttft_s",
    "request_latency": "e2e_s",
    "inter_token_latency": "tpot_s",  # GenAI-Perf's ITL: (latency - TTFT) / (OSL - 1)
}


def _doc(run: Path, name: str = SUMMARY) -> dict:
    return json.loads((run / name).read_text())


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_detects_all_three_files_and_reads_them_as_one_run(run: Path) -> None:
    for name in (EXPORT, SUMMARY, CSV):
        assert sources.detect(run / name) is genai_perf, name
    kept, skipped = sources.plan([run])
    assert kept == [run / EXPORT]
    assert {s.path.name for s in skipped} == {SUMMARY, CSV}


def test_other_tools_files_are_not_genai_perf() -> None:
    others = [
        f
        for f in FIXTURES.rglob("*")
        if f.is_file() and DIR not in f.parents and f.suffix in {".json", ".jsonl", ".csv"}
    ]
    assert any("aiperf" in str(f) for f in others)  # AIPerf's look-alike summaries
    for f in others:
        assert not genai_perf.detect(f, sources.read_head(f)), f


def test_golden_rows() -> None:
    run_dir = RUNS[0]
    trace = sources.load_file(run_dir / EXPORT)
    (run,) = trace.runs
    assert trace.source.tool == "genai-perf"
    assert trace.source.tool_version == "perf_analyzer 2.51.0"
    assert (run.load_mode, run.load_value) == ("concurrency", 2.0)
    assert run.model == "loadlens-sim" and run.num_requests == 32 and run.num_errors == 0
    raw = _doc(run_dir, EXPORT)["experiments"][0]["requests"][0]
    row = trace.requests.sort("seq").row(0, named=True)
    stamps = raw["response_timestamps"]
    # 32 text chunks, then `data: [DONE]`, which is not part of the latency
    assert len(stamps) == 33 and raw["response_outputs"][-1]["response"].startswith("data: [DONE]")
    assert row["ttft_s"] == pytest.approx((stamps[0] - raw["timestamp"]) / 1e9)
    assert row["e2e_s"] == pytest.approx((stamps[31] - raw["timestamp"]) / 1e9)
    assert len(row["itl_s"]) == 31 and row["output_tokens"] == 32
    # no usage in the stream: the summary says every prompt was 128 tokens (min == max)
    assert row["input_tokens"] == 128
    assert row["e2e_s"] == pytest.approx(row["ttft_s"] + sum(row["itl_s"]))


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_rows_reproduce_genai_perf_summary(run: Path) -> None:
    doc = _doc(run)
    trace = sources.load_file(run / EXPORT)
    row = one_level(trace)
    assert row["basis"] == "requests"
    ok = trace.requests.with_columns(
        tpot_s=(pl.col("e2e_s") - pl.col("ttft_s")) / (pl.col("output_tokens") - 1)
    )
    for key, metric in SAME_DEFINITION.items():
        stats = doc[key]
        assert stats["unit"] == "ms"
        for stat in ("p50", "p90", "p95", "p99"):
            # GenAI-Perf rounds each request's ITL to whole nanoseconds
            assert row[f"{stat}_{metric}"] == pytest.approx(stats[stat] / 1000, rel=1e-6)
        assert row[f"mean_{metric}"] == pytest.approx(stats["avg"] / 1000, rel=1e-6)
        assert ok[metric].std(ddof=0) == pytest.approx(stats["std"] / 1000, rel=1e-4)
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"]["avg"])
    assert row["output_throughput_tps"] == pytest.approx(doc["output_token_throughput"]["avg"])
    # GenAI-Perf counts output tokens with the tokenizer; one chunk is one token here
    assert (
        doc["output_sequence_length"]["avg"]
        == row["output_throughput_tps"] / row["request_throughput_rps"]
        == pytest.approx(32)
    )


def test_summary_alone_is_summary_only(tmp_path: Path) -> None:
    run_dir = RUNS[1]
    shutil.copy(run_dir / SUMMARY, tmp_path / SUMMARY)
    doc = _doc(run_dir)
    trace = sources.load_file(tmp_path / SUMMARY)
    assert trace.requests.is_empty()
    (run,) = trace.runs
    assert (run.load_mode, run.load_value, run.num_requests) == ("concurrency", 8.0, 32)
    row = one_level(trace)
    assert row["basis"] == "summary"
    assert row["p95_e2e_s"] == pytest.approx(doc["request_latency"]["p95"] / 1000)
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"]["avg"])


def test_csv_alone_is_summary_only_rounded(tmp_path: Path) -> None:
    run_dir = RUNS[0]
    shutil.copy(run_dir / CSV, tmp_path / CSV)
    doc = _doc(run_dir)
    row = one_level(sources.load_file(tmp_path / CSV))
    assert row["basis"] == "summary"
    assert row["p90_ttft_s"] == pytest.approx(doc["time_to_first_token"]["p90"] / 1000, abs=6e-6)
    assert row["request_throughput_rps"] == pytest.approx(
        doc["request_throughput"]["avg"], abs=0.006
    )


def test_export_without_summary_still_loads(tmp_path: Path) -> None:
    shutil.copy(RUNS[0] / EXPORT, tmp_path / EXPORT)
    trace = sources.load_file(tmp_path / EXPORT)
    (run,) = trace.runs
    assert (run.load_mode, run.load_value) == ("concurrency", 2.0)  # the export has it too
    assert trace.requests.height == 32 and trace.run_stats.is_empty()


def test_several_experiments_are_several_runs(tmp_path: Path) -> None:
    a, b = _doc(RUNS[0], EXPORT), _doc(RUNS[1], EXPORT)
    a["experiments"] += b["experiments"]
    path = tmp_path / EXPORT
    path.write_text(json.dumps(a))
    trace = sources.load_file(path)
    assert [(r.run_key, r.load_value) for r in trace.runs] == [("0", 2.0), ("1", 8.0)]
    assert trace.requests.group_by("run_key").len().sort("run_key")["len"].to_list() == [32, 32]


def test_request_without_text_is_an_error_row(tmp_path: Path) -> None:
    doc = _doc(RUNS[0], EXPORT)
    req = doc["experiments"][0]["requests"][3]
    req["response_timestamps"] = req["response_timestamps"][-1:]
    req["response_outputs"] = req["response_outputs"][-1:]  # only `data: [DONE]`
    path = tmp_path / EXPORT
    path.write_text(json.dumps(doc))
    trace = sources.load_file(path)
    bad = trace.requests.filter(pl.col("seq") == 3).row(0, named=True)
    assert (bad["status"], bad["error"], bad["e2e_s"]) == ("error", "no text in the response", None)


def _error(path: Path) -> str:
    with pytest.raises(TraceFormatError) as info:
        sources.load_file(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_truncated_export_is_rejected(tmp_path: Path) -> None:
    text = (RUNS[0] / EXPORT).read_text()
    path = tmp_path / EXPORT
    path.write_text(text[: len(text) // 2])
    assert "not valid JSON" in _error(path)


def test_mismatched_outputs_are_rejected(tmp_path: Path) -> None:
    doc = _doc(RUNS[0], EXPORT)
    doc["experiments"][0]["requests"][5]["response_outputs"].pop()
    path = tmp_path / EXPORT
    path.write_text(json.dumps(doc))
    message = _error(path)
    assert "experiments[0].requests[5].response_outputs" in message


def test_missing_timestamp_is_rejected(tmp_path: Path) -> None:
    doc = _doc(RUNS[0], EXPORT)
    del doc["experiments"][0]["requests"][2]["timestamp"]
    path = tmp_path / EXPORT
    path.write_text(json.dumps(doc))
    assert "experiments[0].requests[2].timestamp" in _error(path)


def test_input_length_unknown_without_summary(tmp_path: Path) -> None:
    """GenAI-Perf tokenizes the prompt with the model's tokenizer, which loadlens lacks."""
    shutil.copy(RUNS[0] / EXPORT, tmp_path / EXPORT)
    trace = sources.load_file(tmp_path / EXPORT)
    assert trace.requests["input_tokens"].null_count() == 32
