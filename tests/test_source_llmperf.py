"""Ray LLMPerf results: individual responses + summary, detection, numbers, fallbacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, one_level

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import llmperf

DIR = FIXTURES / "llmperf"
STEM = "loadlens-sim_128_32"
C4 = DIR / "c4" / f"{STEM}_individual_responses.json"
C4_SUMMARY = DIR / "c4" / f"{STEM}_summary.json"


def test_detects_both_files_and_nothing_else() -> None:
    for f in sorted(DIR.rglob("*.json")):
        assert sources.detect(f) is llmperf, f
    for f in sorted(FIXTURES.rglob("*")):
        if f.is_file() and f.suffix in (".json", ".jsonl", ".csv") and DIR not in f.parents:
            assert not llmperf.detect(f, sources.read_head(f)), f


def test_summary_is_read_with_its_individual_responses() -> None:
    assert llmperf.partners(C4) == [C4_SUMMARY]
    files, skipped = sources.plan([DIR])
    assert C4 in files and C4_SUMMARY not in files
    assert any(s.path == C4_SUMMARY and "read together" in s.reason for s in skipped)


def test_golden_rows_and_run() -> None:
    records = json.loads(C4.read_text())
    summary = json.loads(C4_SUMMARY.read_text())
    trace = sources.load_file(C4)
    (run,) = trace.runs
    assert (run.load_mode, run.load_value) == ("concurrency", 4.0)
    assert run.num_requests == 30 and run.num_errors == 0
    assert run.model == "loadlens-sim"
    assert run.duration_s == pytest.approx(
        summary["results_num_completed_requests"]
        / summary["results_num_completed_requests_per_min"]
        * 60
    )
    assert trace.source.tool_version == "results 2023-08-31"
    first = trace.requests.sort("seq").row(0, named=True)
    assert first["ttft_s"] == records[0]["ttft_s"]
    assert first["e2e_s"] == records[0]["end_to_end_latency_s"]
    assert first["input_tokens"] == records[0]["number_input_tokens"]
    assert first["output_tokens"] == records[0]["number_output_tokens"]
    assert first["itl_s"] is None and first["start_s"] is None  # not recorded by LLMPerf


@pytest.mark.parametrize("level", ["c1", "c4", "c2-fail10pct-crashed"])
def test_numbers_match_llmperfs_summary(level: str) -> None:
    individual = DIR / level / f"{STEM}_individual_responses.json"
    summary = json.loads((DIR / level / f"{STEM}_summary.json").read_text())
    row = one_level(sources.load_file(individual))
    assert row["basis"] == "requests"
    checked = 0
    for short, metric in (("ttft_s", "ttft_s"), ("end_to_end_latency_s", "e2e_s")):
        for stat in ("p50", "p90", "p95", "p99"):  # pandas' linear quantile = ours
            expected = summary[f"results_{short}_quantiles_{stat}"]
            assert row[f"{stat}_{metric}"] == pytest.approx(expected, rel=1e-9)
            checked += 1
        assert row[f"mean_{metric}"] == pytest.approx(summary[f"results_{short}_mean"], rel=1e-9)
        checked += 1
    assert checked == 10
    assert row["output_throughput_tps"] == pytest.approx(
        summary["results_mean_output_throughput_token_per_s"], rel=1e-9
    )
    assert row["request_throughput_rps"] == pytest.approx(
        summary["results_num_completed_requests_per_min"] / 60, rel=1e-9
    )


def test_llmperf_itl_is_kept_apart_with_its_documented_relation() -> None:
    """LLMPerf's per-request `inter_token_latency_s` is (TTFT + all gaps) / output tokens:
    the time of the last content chunk over n, so n * itl <= e2e (by one [DONE] read).
    It is stored as `llmperf_itl_s` and must not be confused with our ITL."""
    records = json.loads(C4.read_text())
    for r in records:
        span = r["inter_token_latency_s"] * r["number_output_tokens"]
        assert r["ttft_s"] < span <= r["end_to_end_latency_s"]
        assert span == pytest.approx(r["end_to_end_latency_s"], abs=0.005)
    stats = sources.load_file(C4).run_stats
    assert set(stats["metric"]) >= {"ttft_s", "e2e_s", "llmperf_itl_s"}
    assert "itl_s" not in set(stats["metric"])
    row = one_level(sources.load_file(C4))
    assert row.get("p50_itl_s") is None  # no per-token gaps: no ITL from LLMPerf


def test_summary_alone_loads_summary_only(tmp_path: Path) -> None:
    path = tmp_path / C4_SUMMARY.name
    shutil.copy(C4_SUMMARY, path)
    doc = json.loads(path.read_text())
    trace = sources.load_file(path)
    assert trace.requests.is_empty()
    (run,) = trace.runs
    assert run.num_requests == doc["results_num_requests_started"] and run.num_errors == 0
    row = one_level(trace)
    assert row["basis"] == "summary"
    assert row["p95_e2e_s"] == pytest.approx(doc["results_end_to_end_latency_s_quantiles_p95"])
    assert row["p50_ttft_s"] == pytest.approx(doc["results_ttft_s_quantiles_p50"])


def test_individual_alone_has_rows_and_unknown_level(tmp_path: Path) -> None:
    path = tmp_path / C4.name
    shutil.copy(C4, path)
    trace = sources.load_file(path)
    assert trace.requests.height == 30
    assert trace.runs[0].load_mode == "unknown" and trace.run_stats.is_empty()


def _individual(tmp_path: Path, records) -> Path:
    path = tmp_path / f"{STEM}_individual_responses.json"
    path.write_text(records if isinstance(records, str) else json.dumps(records))
    return path


def test_failed_request_becomes_an_error_row(tmp_path: Path) -> None:
    records = json.loads(C4.read_text())[:3]
    records[1] |= {"error_code": 500, "error_msg": "Internal Server Error", "ttft_s": 0}
    req = sources.load_file(_individual(tmp_path, records)).requests.sort("seq")
    assert req["status"].to_list() == ["ok", "error", "ok"]
    assert req["error"][1] == "HTTP 500: Internal Server Error"
    assert req["ttft_s"][1] is None and req["e2e_s"][1] is None


def test_bad_input_is_rejected(tmp_path: Path) -> None:
    text = C4.read_text()
    with pytest.raises(TraceFormatError, match="not valid JSON"):
        sources.load_file(_individual(tmp_path, text[: len(text) // 2]), "llmperf")
    records = json.loads(text)[:2]
    del records[1]["end_to_end_latency_s"]
    with pytest.raises(TraceFormatError, match=r"request #1: missing") as info:
        sources.load_file(_individual(tmp_path, records), "llmperf")
    assert "end_to_end_latency_s" in str(info.value)
    records = json.loads(text)[:2]
    records[0]["ttft_s"] = -0.2
    with pytest.raises(TraceFormatError, match="ttft_s"):
        sources.load_file(_individual(tmp_path, records), "llmperf")
    summary = tmp_path / "x_summary.json"
    summary.write_text(json.dumps({"num_concurrent_requests": 2, "results_ttft_s_mean": "x"}))
    with pytest.raises(TraceFormatError, match="results_ttft_s_mean"):
        sources.load_file(summary, "llmperf")
