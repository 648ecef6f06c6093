"""vLLM result files: detection, per-request rows, summary stats, load modes, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, one_level, vllm_doc

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import vllm

GOLDEN_DETAILED = FIXTURES / "vllm" / "detailed-c4.json"
GOLDEN_SUMMARY = FIXTURES / "vllm" / "summary-c4.json"


def test_detects_vllm_files_and_nothing_else(tmp_path: Path) -> None:
    assert sources.detect(GOLDEN_DETAILED) is vllm
    assert sources.detect(GOLDEN_SUMMARY) is vllm
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": [1, 2, 3]}))
    with pytest.raises(TraceFormatError, match="matches no known trace format"):
        sources.detect(other)


def test_detailed_golden_rows() -> None:
    trace = sources.load_file(GOLDEN_DETAILED)
    (run,) = trace.runs
    assert (run.load_mode, run.load_value) == ("concurrency", 4.0)
    assert run.num_requests == 6 and run.num_errors == 1
    assert run.model == "test/model"
    req = trace.requests.sort("seq")
    assert req["status"].to_list() == ["ok"] * 5 + ["error"]
    assert req["error"][5] == "HTTP 503: Service Unavailable"
    assert req["ttft_s"][5] is None  # vLLM writes 0.0; it never saw a token
    first = req.row(0, named=True)
    assert first["e2e_s"] == pytest.approx(first["ttft_s"] + sum(first["itl_s"]))
    assert first["output_tokens"] == len(first["itl_s"]) + 1


@pytest.mark.parametrize("golden", [GOLDEN_DETAILED])
def test_detailed_numbers_match_vllm_summary_fields(golden: Path) -> None:
    """Every mean/median/percentile vLLM wrote is reproduced from the per-request rows."""
    doc = json.loads(golden.read_text())
    row = one_level(sources.load_file(golden))
    assert row["basis"] == "requests"
    names = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "itl_s", "e2el": "e2e_s"}
    checked = 0
    for short, metric in names.items():
        for stat in ("mean", "p50", "p90", "p95", "p99"):
            expected = doc[f"{stat}_{short}_ms"] / 1000
            assert row[f"{stat}_{metric}"] == pytest.approx(expected, rel=1e-9), (stat, metric)
            checked += 1
        assert row[f"p50_{metric}"] == pytest.approx(doc[f"median_{short}_ms"] / 1000)
    assert checked == 20
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"])
    assert row["output_throughput_tps"] == pytest.approx(doc["output_throughput"])
    assert row["total_token_throughput_tps"] == pytest.approx(doc["total_token_throughput"])


def test_summary_only_golden_uses_the_tools_numbers() -> None:
    doc = json.loads(GOLDEN_SUMMARY.read_text())
    trace = sources.load_file(GOLDEN_SUMMARY)
    assert trace.requests.is_empty()
    (run,) = trace.runs
    assert run.num_requests == doc["completed"] + doc["failed"]
    row = one_level(trace)
    assert row["basis"] == "summary"
    assert row["p95_e2e_s"] == pytest.approx(doc["p95_e2el_ms"] / 1000)
    assert row["p50_ttft_s"] == pytest.approx(doc["median_ttft_ms"] / 1000)
    assert row["p95_e2e_s_hi"] is None  # no rows, no interval: stated, not invented
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"])


@pytest.mark.parametrize(
    ("rate", "concurrency", "mode", "value"),
    [
        ("inf", 16, "concurrency", 16.0),
        (4.0, None, "rate", 4.0),
        (4.0, 32, "rate", 4.0),
        ("inf", None, "throughput", None),
    ],
)
def test_load_mode(write_vllm, rate, concurrency, mode, value) -> None:
    doc = vllm_doc([0.1, 0.2], [[0.01], [0.02]], request_rate=rate, max_concurrency=concurrency)
    (run,) = sources.load_file(write_vllm("r.json", doc)).runs
    assert (run.load_mode, run.load_value) == (mode, value)


def _bad(write_vllm, mutate) -> str:
    doc = vllm_doc([0.1, 0.2, 0.3], [[0.01, 0.02], [0.02], [0.03]])
    mutate(doc)
    path = write_vllm("bad.json", doc)
    with pytest.raises(TraceFormatError) as info:
        sources.load_file(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_negative_latency_is_rejected(write_vllm) -> None:
    message = _bad(write_vllm, lambda d: d["ttfts"].__setitem__(1, -0.5))
    assert "ttft_s" in message and "request #1" in message and "-0.5" in message


def test_nan_latency_is_rejected(write_vllm) -> None:
    message = _bad(write_vllm, lambda d: d["itls"].__setitem__(2, [math.nan]))
    assert "itl_s" in message and "request #2" in message


def test_arrays_of_different_length_are_rejected(write_vllm) -> None:
    message = _bad(write_vllm, lambda d: d["output_lens"].pop())
    assert "output_lens" in message and "2 entries" in message


def test_truncated_file_is_rejected(write_vllm) -> None:
    text = json.dumps(vllm_doc([0.1], [[0.01]]))
    path = write_vllm("cut.json", text[: len(text) // 2])
    with pytest.raises(TraceFormatError, match="not valid JSON"):
        sources.load_file(path, "vllm")


def test_result_without_latencies_is_rejected(write_vllm) -> None:
    doc = {k: v for k, v in vllm_doc([0.1], [[0.01]], detailed=False).items() if "_ms" not in k}
    with pytest.raises(TraceFormatError, match="--save-result"):
        sources.load_file(write_vllm("empty.json", doc), "vllm")


def test_a_request_without_output_tokens_is_an_error_not_a_zero_latency(write_vllm) -> None:
    """vLLM counts a stream that ended without a token as completed, TTFT 0, no gaps."""
    doc = vllm_doc([0.1, 0.2, 0.3], [[0.01, 0.02], [0.02], [0.03]])
    doc["ttfts"][1], doc["itls"][1], doc["output_lens"][1] = 0.0, [], 0
    trace = sources.load_file(write_vllm("silent.json", doc))
    req = trace.requests.sort("seq")
    assert req["status"].to_list() == ["ok", "error", "ok"]
    assert req["error"][1] == vllm.NO_OUTPUT
    assert req["ttft_s"][1] is None and req["e2e_s"][1] is None
    assert trace.runs[0].num_errors == 1
    row = one_level(trace)
    assert row["n_errors"] == 1 and row["p50_ttft_s"] == pytest.approx(0.2)  # of 0.1, 0.3


def test_all_failed_level_keeps_no_placeholder_latencies(write_vllm) -> None:
    """vLLM writes 0.0 for every latency statistic when nothing completed."""
    doc = vllm_doc([0.1], [[0.01]], detailed=False)
    for key in list(doc):
        if key.endswith("_ms") or "throughput" in key:
            doc[key] = 0.0
    doc |= {"completed": 0, "failed": 1, "total_input_tokens": 0, "total_output_tokens": 0}
    trace = sources.load_file(write_vllm("down.json", doc))
    (run,) = trace.runs
    assert (run.num_requests, run.num_errors) == (1, 1)
    assert set(trace.run_stats["metric"]) == {
        "request_throughput_rps",
        "output_throughput_tps",
        "total_token_throughput_tps",
    }
    assert "mean_input_tokens" not in run.workload


def test_latencies_and_start_times_are_used_when_saved(write_vllm) -> None:
    doc = vllm_doc([0.1, 0.2], [[0.01], [0.02]])
    doc["latencies"] = [0.5, 0.7]  # the tool's own e2el, usage tail included
    doc["start_times"] = [1000.25, 1000.75]  # perf_counter at send
    req = sources.load_file(write_vllm("new.json", doc)).requests.sort("seq")
    assert req["e2e_s"].to_list() == [0.5, 0.7]
    assert req["start_s"].to_list() == [0.0, 0.5]


def test_workload_targets_from_metadata_and_measured_means(write_vllm) -> None:
    doc = vllm_doc([0.1, 0.2], [[0.01], [0.02]], input_lens=[100, 300], detailed=False)
    doc |= {"random_input_len": "200", "random_output_len": "2", "dataset_name": "random"}
    (run,) = sources.load_file(write_vllm("meta.json", doc)).runs
    w = run.workload
    assert (w["input_tokens"], w["output_tokens"], w["dataset"]) == (200, 2, "random")
    assert (w["mean_input_tokens"], w["mean_output_tokens"]) == (200.0, 2.0)


def test_without_failed_key_every_prompt_counts(write_vllm) -> None:
    """vLLM < 0.9 writes no `failed`: num_prompts were sent, `completed` succeeded."""
    doc = vllm_doc([0.1, 0.2, 0.3], [[0.01], [0.02], [0.03]], detailed=False)
    doc["completed"] = 2
    del doc["failed"]
    (run,) = sources.load_file(write_vllm("old.json", doc)).runs
    assert (run.num_requests, run.num_errors) == (3, 1)
