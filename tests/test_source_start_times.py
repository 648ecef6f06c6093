"""Per-request start times (`start_s`) from every source that records them, on every
fixture: seconds from the level's first send (so each level starts at 0 and none is
negative); null, and said so in the loader's docstring, where the tool records none."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import FIXTURES

from loadlens import sources
from loadlens.sources.generic import parse_mapping

TOOL_DIRS = sorted(p for p in FIXTURES.iterdir() if p.is_dir() and p.name != "tools")
PRIMARY_FILES = [f for folder in TOOL_DIRS for f in sources.plan([folder])[0]]
# Formats whose files (in every layout loadlens reads) hold no per-request start time.
NO_START_TIME = {"sglang", "genai-bench", "llmperf"}
# Formats whose per-request layouts always carry one.
START_TIME = {"guidellm", "aiperf", "genai-perf", "inference-perf"}
VLLM_TIMED = FIXTURES / "vllm" / "detailed-start-times-r4.json"


@pytest.mark.parametrize("path", PRIMARY_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_each_level_starts_at_its_first_send(path: Path) -> None:
    trace = sources.load_file(path)
    rows = trace.requests
    if rows.is_empty():
        return
    fmt = trace.source.format
    per_level = rows.group_by("run_key").agg(
        n=pl.len(),
        timed=pl.col("start_s").count(),
        lo=pl.col("start_s").min(),
        negative=(pl.col("start_s") < 0).sum(),
    )
    for level in per_level.iter_rows(named=True):
        if fmt in NO_START_TIME:
            assert level["timed"] == 0, level
            continue
        if fmt in START_TIME:
            assert level["timed"] == level["n"], level
        if level["timed"]:
            assert level["negative"] == 0, level
            assert level["lo"] == pytest.approx(0.0, abs=1e-9), level


@pytest.mark.parametrize("fmt", sorted(NO_START_TIME | {"vllm"}))
def test_a_loader_whose_tool_records_no_start_time_says_so(fmt: str) -> None:
    doc = " ".join((sources.FORMATS[fmt].__doc__ or "").split())
    assert "no per-request start time" in doc


def test_vllm_start_times_are_perf_counter_offsets_from_the_first_send() -> None:
    doc = json.loads(VLLM_TIMED.read_text())
    trace = sources.load_file(VLLM_TIMED)
    rows = trace.requests.sort("seq")
    first = min(doc["start_times"])
    assert rows["start_s"].to_list() == pytest.approx([t - first for t in doc["start_times"]])
    ok = rows.filter(pl.col("status") == "ok")
    latencies = [lat for lat, err in zip(doc["latencies"], doc["errors"], strict=True) if not err]
    assert ok["e2e_s"].to_list() == pytest.approx(latencies)
    failed = rows.filter(pl.col("status") != "ok")
    assert failed.height == 1 and failed["start_s"][0] == pytest.approx(1.027)


def test_vllm_files_without_start_times_leave_them_null() -> None:
    trace = sources.load_file(FIXTURES / "vllm" / "detailed-c4.json")
    assert trace.requests.height and trace.requests["start_s"].null_count() == trace.requests.height


def test_aiperf_start_is_the_request_start_not_the_credit() -> None:
    path = FIXTURES / "aiperf" / "v0.13-c2" / "profile_export.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    starts = [
        r["metadata"]["request_start_ns"]
        for r in records
        if r["metadata"].get("benchmark_phase") != "warmup"
    ]
    trace = sources.load_file(path)
    got = sorted(trace.requests["start_s"].to_list())
    assert got == pytest.approx(sorted((s - min(starts)) / 1e9 for s in starts), abs=1e-9)


def test_guidellm_window_is_on_the_start_s_clock() -> None:
    for path in PRIMARY_FILES:
        trace = sources.load_file(path)
        if trace.source.format != "guidellm" or trace.requests.is_empty():
            continue
        for run in trace.runs:
            rows = trace.requests.filter(pl.col("run_key") == run.run_key)
            if rows.is_empty():
                continue
            lo, hi = run.workload["measured_window_s"]
            assert float(rows["start_s"].min()) == 0.0  # type: ignore[arg-type]
            # every kept row overlaps GuideLLM's measured window
            ends = rows["start_s"] + rows["e2e_s"].fill_null(0.0)
            assert (ends >= lo - 1e-9).all() and (rows["start_s"] <= hi + 1e-9).all()


def test_a_mapped_file_with_end_times_and_latencies_gets_starts(tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    csv.write_text(
        "finished_ms,latency_ms,ok\n"
        "1000250,250,ok\n"
        "1000700,400,ok\n"
        "1001900,,error\n"
        "1001300,500,ok\n"
    )
    mapping = parse_mapping(["end=finished_ms:ms", "e2e=latency_ms:ms", "status=ok"])
    trace = sources.load_file(csv, "generic", mapping=mapping)
    starts = trace.requests.sort("seq")["start_s"].to_list()
    # end - e2e: 1000.0, 1000.3, (no latency), 1000.8 s -> from the first send
    assert starts[0] == pytest.approx(0.0)
    assert starts[1] == pytest.approx(0.3)
    assert starts[2] is None
    assert starts[3] == pytest.approx(0.8)


def test_docstrings_name_where_start_times_come_from() -> None:
    for fmt, pattern in {
        "guidellm": r"start_s = request_start",
        "aiperf": r"start_s = `request_start_ns`",
        "vllm": r"`start_times`",
        "generic": r"end - e2e",
    }.items():
        doc = " ".join((sources.FORMATS[fmt].__doc__ or "").split())
        assert re.search(pattern, doc), fmt
