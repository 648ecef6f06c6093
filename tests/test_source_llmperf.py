"""Ray LLMPerf results: individual responses + summary, detection, numbers, fallbacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
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
    records = json.loads(C4.read_text())[:4]
    # LLMPerf's placeholders for a request that never answered: 0 s and 1 (BOS) token.
    records[1] |= {"error_code": 500, "error_msg": "Internal Server Error", "ttft_s": 0}
    records[1] |= {"end_to_end_latency_s": 0, "number_output_tokens": 1}
    records[2] |= {"error_code": -1, "error_msg": ""}  # measured, then refused
    records[3] |= {"number_output_tokens": 0}  # "completed" with nothing in it
    req = sources.load_file(_individual(tmp_path, records)).requests.sort("seq")
    assert req["status"].to_list() == ["ok", "error", "error", "error"]
    assert req["error"].to_list()[1:] == [
        "HTTP 500: Internal Server Error",
        "error -1 (no message)",
        "no output tokens (LLMPerf counted it completed)",
    ]
    assert req.row(1, named=True)["ttft_s"] is None and req["e2e_s"][1] is None
    assert req["output_tokens"][1] is None
    assert req["e2e_s"][2] == records[2]["end_to_end_latency_s"]  # a measurement: kept
    assert req["e2e_s"][3] is None


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


LEADERBOARD = DIR / "leaderboard-layout"
LB_INDIVIDUAL = LEADERBOARD / "individual" / "demo_7b.json"
LB_SUMMARY = LEADERBOARD / "summary" / "demo_7b.json"


def test_leaderboard_layout_pairs_by_name_across_folders() -> None:
    assert sources.detect(LB_INDIVIDUAL) is llmperf
    assert llmperf.partners(LB_INDIVIDUAL) == [LB_SUMMARY]
    files, skipped = sources.plan([LEADERBOARD])
    assert files == [LB_INDIVIDUAL]
    assert any(s.path == LB_SUMMARY and "read together" in s.reason for s in skipped)


def test_leaderboard_layout_run_errors_and_summary_agree() -> None:
    records = json.loads(LB_INDIVIDUAL.read_text())
    summary = json.loads(LB_SUMMARY.read_text())
    trace = sources.load_file(LB_INDIVIDUAL)
    (run,) = trace.runs
    assert (run.load_mode, run.load_value) == ("concurrency", 2.0)
    assert run.model == "demo-org/demo-7b-chat"
    assert run.workload == {
        "input_tokens": 550,
        "output_tokens": 150,
        "stddev_input_tokens": 0,
        "stddev_output_tokens": 0,
    }
    assert run.params == {"framework": "demo-cloud", "model_size": "7b"}
    assert (
        (run.num_requests, run.num_errors)
        == (10, 2)
        == (
            summary["results_num_requests_started"],
            summary["results_number_errors"],
        )
    )
    assert trace.source.tool_version == "results 2023-08-31"
    req = trace.requests.sort("seq")
    errors = req.filter(pl.col("status") == "error")
    assert errors["seq"].to_list() == [3, 5]
    assert errors["error"][0].startswith("HTTP 429: ")
    assert errors["e2e_s"][0] is None  # placeholder zeros dropped
    assert errors["error"][1] == "error -100: Output too few tokens 37"
    assert errors["e2e_s"][1] == records[5]["end_to_end_latency_s"]
    row = one_level(trace)
    assert row["n_errors"] == 2
    assert row["error_rate"] == pytest.approx(summary["results_error_rate"])
    for short, metric in (("ttft_s", "ttft_s"), ("end_to_end_latency_s", "e2e_s")):
        for stat in ("p50", "p90", "p95", "p99", "mean"):
            key = f"results_{short}_{'quantiles_' if stat != 'mean' else ''}{stat}"
            assert row[f"{stat}_{metric}"] == pytest.approx(summary[key], rel=1e-9)
    assert row["output_throughput_tps"] == pytest.approx(
        summary["results_mean_output_throughput_token_per_s"], rel=1e-9
    )


def _copy_leaderboard(tmp_path: Path, summary_dirs: tuple[str, ...]) -> Path:
    individual = tmp_path / "individual" / LB_INDIVIDUAL.name
    individual.parent.mkdir()
    shutil.copy(LB_INDIVIDUAL, individual)
    for d in summary_dirs:
        (tmp_path / d).mkdir()
        shutil.copy(LB_SUMMARY, tmp_path / d / LB_SUMMARY.name)
    return individual


def test_a_summary_that_counts_other_requests_is_not_paired(tmp_path: Path) -> None:
    individual = _copy_leaderboard(tmp_path, ("summary",))
    records = json.loads(individual.read_text())
    individual.write_text(json.dumps(records[:-1]))  # one request fewer than summarised
    assert llmperf.partners(individual) == []
    files, _ = sources.plan([tmp_path])
    assert len(files) == 2
    alone = sources.load_file(individual)
    assert alone.runs[0].load_mode == "unknown" and alone.run_stats.is_empty()
    assert alone.runs[0].num_requests == 9
    summary_only = sources.load_file(tmp_path / "summary" / LB_SUMMARY.name)
    assert summary_only.requests.is_empty() and summary_only.runs[0].load_value == 2.0


def test_two_summaries_that_could_belong_are_not_guessed_between(tmp_path: Path) -> None:
    individual = _copy_leaderboard(tmp_path, ("summary", "summaries-old"))
    assert llmperf.partners(individual) == []
    assert sources.load_file(individual).runs[0].load_mode == "unknown"


def test_individual_alone_takes_model_and_targets_from_the_tool_made_name() -> None:
    path = DIR / "individual-alone" / "demo-org-demo-7b_256_64_individual_responses.json"
    assert llmperf.partners(path) == []
    trace = sources.load_file(path)
    (run,) = trace.runs
    assert (run.load_mode, run.load_value, run.duration_s) == ("unknown", None, None)
    assert run.model == "demo-org-demo-7b"  # as the tool sanitised it
    assert run.workload == {"input_tokens": 256, "output_tokens": 64}
    assert (run.num_requests, run.num_errors) == (6, 1)
    assert trace.source.tool_version is None and trace.run_stats.is_empty()
    row = one_level(trace)
    assert row["basis"] == "requests" and row["request_throughput_rps"] is None


def test_summary_alone_fixture_loads_summary_only() -> None:
    path = DIR / "summary-alone" / "demo-org-demo-7b_256_64_summary.json"
    doc = json.loads(path.read_text())
    trace = sources.load_file(path)
    (run,) = trace.runs
    assert (run.load_mode, run.load_value) == ("concurrency", 8.0)
    assert run.model == "demo-org/demo-7b" and run.workload["output_tokens"] == 64
    assert (run.num_requests, run.num_errors) == (24, 0)
    assert run.duration_s == pytest.approx(5.25)
    row = one_level(trace)
    assert row["basis"] == "summary"
    assert row["p99_ttft_s"] == pytest.approx(doc["results_ttft_s_quantiles_p99"])
    assert row["output_throughput_tps"] == pytest.approx(
        doc["results_mean_output_throughput_token_per_s"]
    )


def test_summary_without_concurrency_has_an_unknown_level(tmp_path: Path) -> None:
    doc = json.loads(C4_SUMMARY.read_text())
    del doc["num_concurrent_requests"]
    path = tmp_path / C4_SUMMARY.name
    path.write_text(json.dumps(doc))
    assert sources.detect(path) is llmperf
    assert sources.load_file(path).runs[0].load_mode == "unknown"


def test_a_broken_summary_does_not_stop_its_individual_file(tmp_path: Path) -> None:
    individual = _copy_leaderboard(tmp_path, ("summary",))
    broken = tmp_path / "summary" / LB_SUMMARY.name
    broken.write_text(LB_SUMMARY.read_text()[:200])
    assert llmperf.partners(individual) == []
    assert sources.load_file(individual).runs[0].num_requests == 10
    with pytest.raises(TraceFormatError, match="JSON") as info:
        sources.load_file(broken)
    assert str(broken) in str(info.value)
