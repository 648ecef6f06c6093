"""SGLang bench_serving JSONL: detection, rows, the tool's summary reproduced, fallbacks."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import FIXTURES, one_level, trace_levels

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import sglang

DIR = FIXTURES / "sglang"
NEW = DIR / "sglang-0.5.23-c1-4-16.jsonl"
OLD = DIR / "sglang-0.4.6.post5-rate10-40-errors.jsonl"
SUMMARY = DIR / "sglang-0.5.23-c8-summary.jsonl"
NAMES = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "itl_s", "e2e_latency": "e2e_s"}


def other_fixtures() -> list[Path]:
    return [
        f
        for f in sorted(FIXTURES.rglob("*"))
        if f.is_file() and f.suffix in (".json", ".jsonl", ".csv") and DIR not in f.parents
    ]


def test_detects_sglang_files_and_nothing_else() -> None:
    for f in (NEW, OLD, SUMMARY):
        assert sources.detect(f) is sglang
    for f in other_fixtures():
        assert not sglang.detect(f, sources.read_head(f)), f


def test_one_run_per_line_with_load_levels() -> None:
    trace = sources.load_file(NEW)
    assert [(r.run_key, r.load_mode, r.load_value) for r in trace.runs] == [
        ("0", "concurrency", 1.0),
        ("1", "concurrency", 4.0),
        ("2", "concurrency", 16.0),
    ]
    assert all(r.num_requests == 30 and r.num_errors == 0 for r in trace.runs)
    assert trace.runs[0].workload["dataset_name"] == "random-ids"
    assert trace.source.tool == "sglang.bench_serving" and trace.source.tool_version is None
    old = sources.load_file(OLD)
    assert [(r.load_mode, r.load_value, r.num_errors) for r in old.runs] == [
        ("rate", 10.0, 4),
        ("rate", 40.0, 1),
    ]


def test_golden_rows() -> None:
    trace = sources.load_file(OLD)
    doc = json.loads(OLD.read_text().splitlines()[0])
    req = trace.requests.filter(pl.col("run_key") == "0").sort("seq")
    assert req.height == len(doc["ttfts"])
    bad = req.filter(pl.col("status") == "error")
    assert bad["error"].to_list() == ["Internal Server Error"] * 4
    assert bad["ttft_s"].null_count() == 4 and bad["e2e_s"].null_count() == 4
    first = req.row(0, named=True)
    assert first["input_tokens"] == doc["input_lens"][0]
    assert first["output_tokens"] == doc["output_lens"][0]
    assert first["ttft_s"] == doc["ttfts"][0]
    assert first["e2e_s"] == pytest.approx(doc["ttfts"][0] + sum(doc["itls"][0]))
    assert first["start_s"] is None  # SGLang does not save when a request was sent


@pytest.mark.parametrize("path", [NEW, OLD])
def test_numbers_match_sglangs_summary(path: Path) -> None:
    """TTFT and ITL to float precision; E2E and TPOT within 0.1%: SGLang's per-request
    latency ends at the last chunk received ([DONE] included), ours (ttft + sum of gaps)
    at the last content chunk, so ours is never larger and differs by one chunk's gap."""
    docs = [json.loads(line) for line in path.read_text().splitlines()]
    rows = list(trace_levels(sources.load_file(path)).values())
    checked = 0
    for doc, row in zip(docs, rows, strict=True):
        for key, value in doc.items():
            m = sglang.SUMMARY_KEY.match(key)
            if not m or m.group(1) == "std":
                continue  # loadlens does not compute a standard deviation
            stat = {"median": "p50"}.get(m.group(1), m.group(1))
            ours, theirs = row[f"{stat}_{NAMES[m.group(2)]}"], value / 1000
            if m.group(2) in ("ttft", "itl"):
                assert ours == pytest.approx(theirs, rel=1e-9), key
            else:
                assert ours <= theirs * (1 + 1e-9), key
                assert ours == pytest.approx(theirs, rel=1e-3), key
            checked += 1
        assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"])
        assert row["output_throughput_tps"] == pytest.approx(doc["output_throughput"])
        if "total_throughput" in doc:
            assert row["total_token_throughput_tps"] == pytest.approx(doc["total_throughput"])
    assert checked >= 13 * len(docs)


def test_summary_only_line_uses_the_tools_numbers() -> None:
    doc = json.loads(SUMMARY.read_text())
    trace = sources.load_file(SUMMARY)
    assert trace.requests.is_empty()
    (run,) = trace.runs
    assert (run.load_mode, run.load_value, run.num_requests) == ("concurrency", 8.0, None)
    row = one_level(trace)
    assert row["basis"] == "summary"
    assert row["p95_e2e_s"] == pytest.approx(doc["p95_e2e_latency_ms"] / 1000)
    assert row["p50_ttft_s"] == pytest.approx(doc["median_ttft_ms"] / 1000)
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"])


def _write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "sglang-oai_1125_30_128_32.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _bad(tmp_path: Path, mutate) -> str:
    doc = json.loads(NEW.read_text().splitlines()[0])
    mutate(doc)
    path = _write(tmp_path, [json.dumps(doc)])
    with pytest.raises(TraceFormatError) as info:
        sources.load_file(path, "sglang")
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_truncated_file_names_the_line(tmp_path: Path) -> None:
    lines = NEW.read_text().splitlines()
    path = _write(tmp_path, [lines[0], lines[1][: len(lines[1]) // 2]])
    with pytest.raises(TraceFormatError, match=r":2: not valid JSON"):
        sources.load_file(path)


def test_bad_arrays_and_values_are_rejected(tmp_path: Path) -> None:
    assert "output_lens" in _bad(tmp_path, lambda d: d["output_lens"].pop())
    message = _bad(tmp_path, lambda d: d["ttfts"].__setitem__(3, -1.0))
    assert "ttft_s" in message and "request #3" in message
    assert "'duration'" in _bad(tmp_path, lambda d: d.__setitem__("duration", "fast"))
    assert "completed" in _bad(tmp_path, lambda d: d.pop("completed"))


def test_line_without_summary_keys_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, [json.dumps({"backend": "sglang", "completed": 3})])
    with pytest.raises(TraceFormatError, match="mean_e2e_latency_ms"):
        sources.load_file(path, "sglang")


def _line(**changes) -> str:
    doc = json.loads(NEW.read_text().splitlines()[0])
    doc.update(changes)
    return json.dumps(doc)


def test_a_stream_without_tokens_is_an_error(tmp_path: Path) -> None:
    doc = json.loads(NEW.read_text().splitlines()[0])
    doc["ttfts"][2], doc["itls"][2], doc["output_lens"][2] = 0.0, [], 0
    trace = sources.load_file(_write(tmp_path, [json.dumps(doc)]))
    req = trace.requests.sort("seq")
    assert req["status"][2] == "error" and req["error"][2] == sglang.NO_OUTPUT
    assert req["ttft_s"][2] is None and req["e2e_s"][2] is None
    assert trace.runs[0].num_errors == 1


def test_server_info_gives_engine_and_server_args(tmp_path: Path) -> None:
    info = {"version": "0.5.9", "model_path": "/m/llama", "tp_size": 4, "dp_size": 2}
    info |= {"pp_size": 1, "disaggregation_mode": "null", "quantization": "fp8"}
    (run,) = sources.load_file(_write(tmp_path, [_line(server_info=info)])).runs
    assert run.model == "/m/llama"
    assert run.params == {
        "engine": "sglang 0.5.9",
        "server_args": {"tp_size": 4, "dp_size": 2, "quantization": "fp8"},
    }
    w = run.workload
    assert (w["dataset"], w["input_tokens"], w["output_tokens"]) == ("random-ids", 128, 32)


def test_prefill_decode_router_server_info(tmp_path: Path) -> None:
    worker = {"model_path": "q/3b", "tp_size": 2, "disaggregation_transfer_backend": "nixl"}
    info = {
        "prefill": [worker | {"version": "0.5.5", "disaggregation_mode": "prefill"}],
        "decode": [worker | {"version": "0.5.6", "disaggregation_mode": "decode", "tp_size": 1}],
    }
    (run,) = sources.load_file(_write(tmp_path, [_line(server_info=info)])).runs
    assert run.model == "q/3b"
    assert run.params["engine"] == "sglang 0.5.5 (prefill) / 0.5.6 (decode)"
    assert run.params["server_args"] == {
        "disaggregation": "prefill/decode",
        "transfer_backend": "nixl",
        "prefill_tp_size": 2,
        "decode_tp_size": 1,
    }


def test_sharegpt_targets_only_what_applies(tmp_path: Path) -> None:
    line = _line(dataset_name="sharegpt", sharegpt_output_len=256)
    (run,) = sources.load_file(_write(tmp_path, [line])).runs
    assert run.workload["output_tokens"] == 256 and "input_tokens" not in run.workload


def test_old_summary_without_request_throughput(tmp_path: Path) -> None:
    doc = json.loads(SUMMARY.read_text().splitlines()[0])
    doc.pop("request_throughput")
    trace = sources.load_file(_write(tmp_path, [json.dumps(doc)]))
    row = one_level(trace)
    assert row["request_throughput_rps"] == pytest.approx(doc["completed"] / doc["duration"])
