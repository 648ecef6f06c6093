"""Home-grown files through a column mapping; loadlens's own JSONL/Parquet round trip."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from loadlens import sources
from loadlens.errors import ConfigError, TraceFormatError
from loadlens.sources import loadlens_native
from loadlens.sources.generic import parse_mapping
from loadlens.trace import RunMeta


def test_csv_with_units_and_a_load_column(tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    csv.write_text(
        "users,t0_ms,first_ms,done_ms,out,err\n"
        "4,0,50,1050,100,\n4,100,60,2100,120,\n8,0,90,3090,100,\n8,10,0,0,0,timeout\n"
    )
    mapping = parse_mapping(
        [
            "start=t0_ms:ms,ttft=first_ms:ms,e2e=done_ms:ms",
            "output_tokens=out",
            "error=err",
            "load=users",
        ]
    )
    trace = sources.load_file(csv, "generic", mapping=mapping, load_mode="concurrency")
    assert [(r.load_mode, r.load_value, r.num_requests, r.num_errors) for r in trace.runs] == [
        ("concurrency", 4.0, 2, 0),
        ("concurrency", 8.0, 2, 1),
    ]
    four = trace.requests.filter(pl.col("run_key") == "4.0").sort("seq")
    assert four["e2e_s"].to_list() == pytest.approx([1.05, 2.1])
    assert four["start_s"].to_list() == pytest.approx([0.0, 0.1])
    assert trace.runs[0].duration_s == pytest.approx(2.2)
    eight = trace.requests.filter(pl.col("run_key") == "8.0").sort("seq")
    assert eight["status"].to_list() == ["ok", "error"]


def test_start_and_end_give_e2e(tmp_path: Path) -> None:
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"s": 1.0, "e": 3.5}\n{"s": 2.0, "e": 2.5}\n')
    trace = sources.load_file(
        jsonl,
        "generic",
        mapping=parse_mapping({"start": "s", "end": "e"}),
        load_mode="rate",
        load_value=2.0,
    )
    assert trace.requests.sort("seq")["e2e_s"].to_list() == [2.5, 0.5]
    assert (trace.runs[0].load_mode, trace.runs[0].load_value) == ("rate", 2.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (["latency"], "expected field=column"),
        (["speed=x"], "unknown field 'speed'"),
        (["e2e=x:hours"], "unknown unit 'hours'"),
        (["ttft=x"], "needs e2e="),
    ],
)
def test_bad_mappings(spec: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_mapping(spec)


def test_non_numeric_latency_column(tmp_path: Path) -> None:
    csv = tmp_path / "m.csv"
    csv.write_text("lat\nfast\n")
    with pytest.raises(TraceFormatError, match=r"m\.csv"):
        sources.load_file(csv, "generic", mapping=parse_mapping(["e2e=lat"]))


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_native_round_trip(tmp_path: Path, suffix: str) -> None:
    runs = [
        RunMeta(
            run_key="c4",
            load_mode="concurrency",
            load_value=4,
            duration_s=2.0,
            num_requests=2,
            num_errors=1,
            workload={"input_tokens": 512},
        ),
    ]
    requests = pl.DataFrame(
        {
            "run_key": ["c4", "c4"],
            "seq": [0, 1],
            "start_s": [0.0, 0.5],
            "ttft_s": [0.1, None],
            "e2e_s": [1.0, None],
            "input_tokens": [512, 512],
            "output_tokens": [10, 0],
            "itl_s": [[0.1] * 9, []],
            "status": ["ok", "timeout"],
            "error": [None, "read timeout"],
        }
    )
    path = tmp_path / f"sweep{suffix}"
    loadlens_native.write(path, runs, requests)
    assert sources.detect(path) is loadlens_native
    trace = sources.load_file(path)
    assert trace.runs == tuple(runs)
    got = trace.requests.sort("seq")
    assert got["status"].to_list() == ["ok", "timeout"]
    assert got["itl_s"][0].to_list() == [0.1] * 9
    assert trace.source.tool == "loadlens sweep"


def test_native_requests_must_name_known_runs(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(
        '{"loadlens_trace": 1, "runs": [{"run_key": "a", "load_mode": "rate"}]}\n'
        '{"run_key": "b", "seq": 0, "e2e_s": 1.0, "status": "ok"}\n'
    )
    with pytest.raises(TraceFormatError, match="missing from the header"):
        sources.load_file(path)


def test_companion_metrics_file_becomes_server_samples(tmp_path: Path) -> None:
    import json

    from tests.conftest import vllm_doc

    trace_path = tmp_path / "run.json"
    trace_path.write_text(json.dumps(vllm_doc([0.1], [[0.01]])))
    (tmp_path / "run.metrics.jsonl").write_text(
        '{"t_s": 0.0, "signal": "kv_cache_usage", "value": 0.5}\n'
        '{"t_s": 1.0, "signal": "kv_cache_usage", "value": 0.97}\n'
    )
    files, skipped = sources.expand([tmp_path])
    assert files == [trace_path] and skipped == []
    samples = sources.load_file(trace_path).server_samples
    assert samples["value"].to_list() == [0.5, 0.97]
    (tmp_path / "run.metrics.jsonl").write_text('{"t_s": 0.0, "signal": "x"}\n')
    with pytest.raises(TraceFormatError, match=r"run\.metrics\.jsonl:1"):
        sources.load_file(trace_path)
