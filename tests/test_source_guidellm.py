"""GuideLLM reports (0.8.1 JSON/YAML/CSV, 0.3.1 JSON, hand-written 0.6 JSON, 0.3 / 0.6 /
0.7 CSV): detection, rows, summaries, load levels, workload, bad input.

The top-level and v0.3 fixtures are GuideLLM's unmodified output against `loadlens
serve-sim`; the others are hand-written in the layout of the version they name
(tests/fixtures/guidellm/README.md). GuideLLM's percentiles are the inverse of the
empirical CDF (the smallest value whose cumulative share reaches p), not numpy's linear
interpolation, so each of its numbers is checked exactly against that computation over
loadlens's rows, and loadlens's own (linear) percentiles against the bracket of order
statistics around the same rank.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from tests.conftest import FIXTURES, tool_stat, trace_levels

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import guidellm
from loadlens.trace import Trace

DIR = FIXTURES / "guidellm"
CONCURRENT = DIR / "concurrent.json"  # 0.8.1, concurrent 1 and 4 streams, 10% warm-up/cool-down
CONCURRENT_CSV = DIR / "concurrent.csv"  # the same run's CSV: summary only
SWEEP = DIR / "sweep-faults.yaml"  # 0.8.1 sweep (synchronous, throughput, constant), HTTP 500s
OLD = DIR / "v0.3" / "constant.json"  # 0.3.1, constant 4 and 8 req/s
V06 = DIR / "v0.6" / "benchmarks.json"  # hand-written 0.6: synchronous, concurrent@2, faults
OLD_CSV = DIR / "v0.3-csv" / "benchmarks.csv"  # hand-written 0.2/0.3 CSV
KIND_CSV = DIR / "v0.6-csv" / "benchmarks.csv"  # hand-written 0.6 CSV, Strategy kind alone
SWEEP_CSV = DIR / "v0.7-csv-sweep" / "benchmarks.csv"  # hand-written 0.7 CSV sweep
DETAILED = [CONCURRENT, SWEEP, OLD]
HAND_WRITTEN = [V06, OLD_CSV, KIND_CSV, SWEEP_CSV]


def _raw(path: Path) -> dict[str, Any]:
    if path.suffix == ".yaml":
        return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
    return json.loads(path.read_text())


def inverse_cdf(values: list[float], p: float, weights: list[float] | None = None) -> float:
    """GuideLLM's percentile: sort, normalise weights, first value whose cumsum >= p."""
    weights = weights or [1.0] * len(values)
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(w for _, w in pairs)
    cum = 0.0
    for value, w in pairs:
        cum += w / total
        if cum >= p:
            return value
    return pairs[-1][0]


def _linear_bracket(values: list[float], p: float) -> tuple[float, float]:
    s = sorted(values)
    rank = p * (len(s) - 1)
    return s[math.floor(rank)], s[math.ceil(rank)]


# --------------------------------------------------------------------------- detection


def test_detects_guidellm_files_and_nothing_else(tmp_path: Path) -> None:
    for path in [*DETAILED, CONCURRENT_CSV, *HAND_WRITTEN]:
        head = sources.read_head(path)
        matching = [
            n for n, m in sources.FORMATS.items() if hasattr(m, "detect") and m.detect(path, head)
        ]
        assert matching == ["guidellm"], (path, matching)
    others = [
        p
        for p in FIXTURES.rglob("*")
        if p.is_file() and DIR not in p.parents and p.suffix.lower() not in sources.NOT_TRACES
    ]
    assert others, "expected other tools' fixtures"
    for path in others:
        assert not guidellm.detect(path, sources.read_head(path)), path
    other = tmp_path / "benchmarks.json"
    other.write_text(json.dumps({"benchmarks": [{"name": "x"}]}))
    assert not guidellm.detect(other, sources.read_head(other))


def test_the_csv_beside_the_json_is_its_partner_not_a_second_run() -> None:
    assert guidellm.partners(CONCURRENT) == [CONCURRENT_CSV]
    assert guidellm.partners(CONCURRENT_CSV) == []
    files, skipped = sources.plan([DIR])
    assert CONCURRENT_CSV not in files and CONCURRENT in files
    assert any(s.path == CONCURRENT_CSV and "concurrent.json" in s.reason for s in skipped)


# --------------------------------------------------------------------------- golden rows


def test_concurrent_golden_runs_and_rows() -> None:
    doc = _raw(CONCURRENT)
    trace = sources.load_file(CONCURRENT)
    assert (trace.source.tool, trace.source.tool_version) == ("guidellm", "0.8.1")
    modes = [(r.load_mode, r.load_value) for r in trace.runs]
    assert modes == [("concurrency", 1.0), ("concurrency", 4.0)]
    first, second = trace.runs
    assert first.model == "loadlens-sim" and first.workload["strategy"] == "concurrent@1"
    assert first.workload["warmup"] == 0.1 and first.workload["cooldown"] == 0.1
    # 20 requests sent; warm-up and cool-down ones outside the measured window are dropped,
    # as GuideLLM's own summary drops them.
    totals = doc["benchmarks"][0]["metrics"]["request_totals"]
    assert first.num_requests == totals["total"] == 14
    assert first.workload["outside_measured_window"] == 6
    assert first.duration_s == pytest.approx(doc["benchmarks"][0]["duration"])
    assert second.num_requests == 20 and second.num_errors == 0
    rows = trace.requests.filter(pl.col("run_key") == "0").sort("seq")
    assert rows["start_s"][0] == 0.0 and rows["start_s"].is_sorted()
    assert rows["itl_s"].is_null().all()  # GuideLLM keeps no per-token times
    raw = min(
        (
            r
            for r in doc["benchmarks"][0]["requests"]["successful"]
            if r["request_start_time"] >= doc["benchmarks"][0]["start_time"]
        ),
        key=lambda r: r["request_start_time"],
    )
    row = rows.filter(pl.col("e2e_s") == raw["request_latency"]).row(0, named=True)
    assert row["ttft_s"] == pytest.approx(raw["time_to_first_token_ms"] / 1000, rel=1e-12)
    assert (row["input_tokens"], row["output_tokens"]) == (raw["prompt_tokens"], 32)
    assert row["status"] == "ok" and row["error"] is None


def test_sweep_yaml_load_modes_and_errors() -> None:
    trace = sources.load_file(SWEEP)
    modes = [(r.load_mode, r.load_value) for r in trace.runs]
    assert modes[:2] == [("concurrency", 1.0), ("throughput", None)]
    assert modes[2][0] == "rate" and modes[2][1] == pytest.approx(18.649047543430623)
    assert trace.runs[1].workload["max_concurrency"] == 512
    assert [r.num_errors for r in trace.runs] == [2, 0, 1]
    failed = trace.requests.filter(pl.col("status") != "ok")
    assert failed.height == 3 and set(failed["status"]) == {"error"}
    assert failed["error"].str.contains("500 Internal Server Error").all()
    assert failed["e2e_s"].is_null().all() and failed["ttft_s"].is_null().all()


def test_old_layout_v0_3() -> None:
    trace = sources.load_file(OLD)
    assert trace.source.tool_version is None  # 0.3 files carry no version
    assert [(r.load_mode, r.load_value) for r in trace.runs] == [("rate", 4.0), ("rate", 8.0)]
    assert trace.runs[0].workload["layout"] == "guidellm<=0.3"
    assert [r.num_requests for r in trace.runs] == [15, 15]
    raw = _raw(OLD)["benchmarks"][0]["requests"]["successful"]
    first = min(raw, key=lambda r: r["start_time"])
    row = trace.requests.filter(pl.col("run_key") == "0").sort("seq").row(0, named=True)
    assert row["e2e_s"] == pytest.approx(first["end_time"] - first["start_time"])
    assert row["ttft_s"] == pytest.approx(first["first_token_time"] - first["start_time"])


# --------------------------------------------------------------------------- vs the tool


def _windowed(trace: Trace, run_key: str) -> dict[str, list[dict[str, Any]]]:
    """The ok rows each GuideLLM summary counts: its measured window (>= 0.4) by metric."""
    run = next(r for r in trace.runs if r.run_key == run_key)
    ok = trace.requests.filter((pl.col("run_key") == run_key) & (pl.col("status") == "ok"))
    rows = ok.to_dicts()
    lo, hi = run.workload.get("measured_window_s", (-math.inf, math.inf))
    for r in rows:
        r["first"] = r["start_s"] + r["ttft_s"]
        r["end"] = r["start_s"] + r["e2e_s"]
    return {
        "e2e": rows,  # the loader keeps exactly the rows overlapping the window
        # TTFT spans [start, first token]; ITL spans [first token, end]
        "ttft": [r for r in rows if r["first"] >= lo and r["start_s"] <= hi],
        "itl": [r for r in rows if r["end"] >= lo and r["first"] <= hi],
        "done": [r for r in rows if lo <= r["end"] <= hi],  # completions in the window
        "first_in": [r for r in rows if lo <= r["first"] <= hi],
    }


@pytest.mark.parametrize("golden", DETAILED, ids=lambda p: p.name)
def test_tool_summary_is_reproduced_from_the_rows(golden: Path) -> None:
    trace = sources.load_file(golden)
    mine = trace_levels(trace)
    for run in trace.runs:
        k = run.run_key
        row = mine[k]
        assert row["basis"] == "requests"
        win = _windowed(trace, k)
        for metric, rows, field in (
            ("e2e_s", win["e2e"], "e2e_s"),
            ("ttft_s", win["ttft"], "ttft_s"),
        ):
            values = [r[field] for r in rows]
            mean = sum(values) / len(values)
            assert tool_stat(trace, k, metric, "mean") == pytest.approx(mean, rel=1e-9)
            std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
            assert tool_stat(trace, k, metric, "std") == pytest.approx(std, rel=1e-6, abs=1e-12)
            assert tool_stat(trace, k, metric, "median") == tool_stat(trace, k, metric, "p50")
            for p in (50, 90, 95, 99):
                tool = tool_stat(trace, k, metric, f"p{p}")
                assert tool == pytest.approx(inverse_cdf(values, p / 100), rel=1e-9), (k, p)
            # loadlens interpolates linearly over all its rows (numpy's default): the same
            # rank, between the two order statistics around it.
            all_values = [r[field] for r in win["e2e"]]
            for p in (50, 90, 95, 99):
                lo, hi = _linear_bracket(all_values, p / 100)
                assert lo <= row[f"p{p}_{metric}"] <= hi
        # Where the windows agree (every level but concurrent@4, whose TTFT window leaves out
        # a request whose first token came before it), loadlens's mean is the tool's.
        assert row["mean_e2e_s"] == pytest.approx(tool_stat(trace, k, "e2e_s", "mean"), rel=1e-9)
        if len(win["ttft"]) == len(win["e2e"]):
            assert row["mean_ttft_s"] == pytest.approx(
                tool_stat(trace, k, "ttft_s", "mean"), rel=1e-9
            )

        # GuideLLM's ITL is a request's (last token - first token) / (out - 1), weighted by
        # out - 1: loadlens's TPOT (e2e - ttft) / (out - 1) ends at request_end, after the
        # last token (the usage chunk and [DONE]), so it is a little longer, never shorter.
        itl = win["itl"]
        tpot = [(r["e2e_s"] - r["ttft_s"]) / (r["output_tokens"] - 1) for r in itl]
        weights = [r["output_tokens"] - 1.0 for r in itl]
        weighted = sum(t * w for t, w in zip(tpot, weights, strict=True)) / sum(weights)
        tool_itl = tool_stat(trace, k, "tpot_s", "mean")
        assert tool_itl <= weighted <= tool_itl * 1.01
        assert tool_stat(trace, k, "itl_s", "mean") == tool_itl  # the mean of all gaps
        assert row["mean_tpot_s"] == pytest.approx(tool_itl, rel=0.01)
        for p in (50, 90, 95, 99):
            tool = tool_stat(trace, k, "tpot_s", f"p{p}")
            assert inverse_cdf(tpot, p / 100, weights) == pytest.approx(tool, rel=0.01)
        assert row.get("p95_itl_s") is None  # no per-token gaps recorded: not invented

        # Throughput: GuideLLM counts completions inside its window per second of it;
        # loadlens counts every kept row (those overlapping the window) over the same span.
        duration = run.duration_s
        rps = tool_stat(trace, k, "request_throughput_rps", "value")
        assert rps == pytest.approx(len(win["done"]) / duration, rel=1e-9)
        assert row["request_throughput_rps"] == pytest.approx(len(win["e2e"]) / duration)
        # Token rates: GuideLLM spreads a request's output tokens from its first to its last
        # token and books its prompt tokens at the first token, counting what falls inside.
        out_tps = tool_stat(trace, k, "output_throughput_tps", "value")
        assert row["output_throughput_tps"] == pytest.approx(out_tps, rel=0.01)
        prompt_tps = tool_stat(trace, k, "total_token_throughput_tps", "value") - out_tps
        if "measured_window_s" in run.workload:  # >= 0.4
            booked = sum(r["input_tokens"] for r in win["first_in"]) / duration
            assert prompt_tps == pytest.approx(booked, rel=1e-6)


# --------------------------------------------------------------------------- summary only


def test_csv_loads_summary_only_with_the_json_summary() -> None:
    full = sources.load_file(CONCURRENT)
    summary = sources.load_file(CONCURRENT_CSV)
    assert summary.requests.is_empty()
    assert summary.source.tool_version == "0.8.1"
    assert [(r.load_mode, r.load_value, r.num_requests) for r in summary.runs] == [
        (r.load_mode, r.load_value, r.num_requests) for r in full.runs
    ]
    for a, b in zip(summary.runs, full.runs, strict=True):
        assert a.duration_s == pytest.approx(b.duration_s, rel=1e-12)
    keys = ["run_key", "metric", "statistic"]
    joined = summary.run_stats.join(full.run_stats, on=keys, how="full", suffix="_json")
    assert joined["value"].null_count() == 0 and joined["value_json"].null_count() == 0
    for r in joined.iter_rows(named=True):
        assert r["value"] == pytest.approx(r["value_json"], rel=1e-12), r
    row = trace_levels(summary)["1"]
    assert row["basis"] == "summary"
    assert row["p95_e2e_s"] == tool_stat(full, "1", "e2e_s", "p95")
    assert row["p95_e2e_s_hi"] is None


def test_sampled_requests_load_summary_only(tmp_path: Path) -> None:
    doc = _raw(CONCURRENT)
    doc["benchmarks"][0]["config"]["sample_size"] = 5
    successful = doc["benchmarks"][0]["requests"]["successful"]
    doc["benchmarks"][0]["requests"]["successful"] = successful[:5]
    path = tmp_path / "sampled.json"
    path.write_text(json.dumps(doc))
    trace = sources.load_file(path)
    assert trace.requests.filter(pl.col("run_key") == "0").is_empty()
    assert trace.runs[0].workload["requests_sampled"] is True
    assert trace.runs[0].num_requests == 14
    assert trace_levels(trace)["0"]["basis"] == "summary"
    assert trace.requests.filter(pl.col("run_key") == "1").height == 20


# --------------------------------------------------------------------------- bad input


def _bad(tmp_path: Path, name: str, text: str, fmt: str | None = "guidellm") -> str:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(TraceFormatError) as info:
        sources.load_file(path, fmt)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_truncated_files_are_rejected(tmp_path: Path) -> None:
    text = CONCURRENT.read_text()
    assert "not valid JSON" in _bad(tmp_path, "cut.json", text[: len(text) // 2])
    text = SWEEP.read_text()
    assert "not valid YAML" in _bad(tmp_path, "cut.yaml", text[: len(text) // 3] + "\n  - [")
    lines = CONCURRENT_CSV.read_text().splitlines()
    cut = "\n".join([*lines[:4], lines[4][: len(lines[4]) // 2]])
    message = _bad(tmp_path, "cut.csv", cut)
    assert "cells" in message and ":5" in message


def test_missing_fields_are_named(tmp_path: Path) -> None:
    message = _bad(tmp_path, "none.json", json.dumps({"metadata": {"guidellm_version": "0.8"}}))
    assert "'benchmarks'" in message
    doc = _raw(CONCURRENT)
    del doc["benchmarks"][1]["config"]["strategy"]
    message = _bad(tmp_path, "nostrategy.json", json.dumps(doc))
    assert "benchmarks[1].config.strategy" in message
    doc = _raw(OLD)
    doc["benchmarks"][0]["requests"]["successful"][2]["request_latency"] = "fast"
    message = _bad(tmp_path, "badlatency.json", json.dumps(doc))
    assert "benchmarks[0].requests.successful[2].request_latency" in message and "fast" in message


def test_impossible_latency_is_rejected(tmp_path: Path) -> None:
    doc = _raw(CONCURRENT)
    bench = doc["benchmarks"][1]
    bench["requests"]["successful"][3]["request_latency"] = -0.25
    message = _bad(tmp_path, "negative.json", json.dumps(doc))
    assert "e2e_s" in message and "-0.25" in message
    doc = _raw(OLD)
    doc["benchmarks"][0]["requests"]["successful"][0]["request_latency"] = None
    message = _bad(tmp_path, "nolatency.json", json.dumps(doc))
    assert "successful request needs its end-to-end latency" in message


def test_bad_load_level_is_named(tmp_path: Path) -> None:
    doc = _raw(OLD)
    doc["benchmarks"][1]["args"]["strategy"]["rate"] = "fast"
    message = _bad(tmp_path, "badrate.json", json.dumps(doc))
    assert "benchmarks[1].args.strategy.rate" in message and "fast" in message
    table = list(csv.reader(io.StringIO(KIND_CSV.read_text())))
    profile = table[1].index("Profile")
    table[3][profile] = json.dumps({"type_": "concurrent", "constraints": {}})
    out = io.StringIO()
    csv.writer(out).writerows(table[:4])
    message = _bad(tmp_path, "nolevel.csv", out.getvalue())
    assert "Benchmark / Strategy" in message and "streams" in message and ":4" in message


# --------------------------------------------------------------------------- other versions


def test_v0_6_report_layout() -> None:
    """metadata v1 + top-level args; the model only in each request's body."""
    doc = _raw(V06)
    trace = sources.load_file(V06)
    assert trace.source.tool_version == "0.6.0"
    assert [(r.load_mode, r.load_value) for r in trace.runs] == [
        ("concurrency", 1.0),
        ("concurrency", 2.0),
    ]
    first, second = trace.runs
    assert {r.model for r in trace.runs} == {"acme/tiny-chat-1b"}
    assert first.params == {"target": "http://10.0.0.7:8000"}
    # Data written as Python's str() of a dict.
    assert (first.workload["input_tokens"], first.workload["output_tokens"]) == (64, 4)
    assert first.workload["dataset"] == "synthetic"
    # Sampling declared (20) but every request kept: the rows are loaded.
    assert first.workload["sampling"] == 20 and "requests_sampled" not in first.workload
    totals = doc["benchmarks"][1]["metrics"]["request_totals"]
    assert second.num_requests == totals["total"] == 4
    # Errored and incomplete both count as errors; incomplete ones are "cancelled".
    assert second.num_errors == totals["errored"] + totals["incomplete"] == 2
    rows = trace.requests.filter(pl.col("run_key") == "1")
    statuses = dict(zip(rows["status"], rows["error"], strict=True))
    assert "400 Bad Request" in statuses["error"]
    assert statuses["cancelled"] == guidellm.INCOMPLETE
    level = trace_levels(trace)["1"]
    # Levels count the errored one as a failure; the incomplete one, cancelled when the run
    # ended, is neither served nor refused, so it stays out of the error budget.
    assert (level["n_requests"], level["n_errors"], level["n_cancelled"]) == (4, 1, 1)
    # The summary loadlens keeps is GuideLLM's, by name.
    dist = doc["benchmarks"][1]["metrics"]["request_latency"]["successful"]
    assert tool_stat(trace, "1", "e2e_s", "p95") == dist["percentiles"]["p95"]
    assert level["p50_ttft_s"] == pytest.approx(0.165)  # two requests: linear midpoint


def test_zero_output_success_is_an_error(tmp_path: Path) -> None:
    doc = _raw(V06)
    doc["benchmarks"][0]["requests"]["successful"][1]["output_tokens"] = 0
    path = tmp_path / "empty.json"
    path.write_text(json.dumps(doc))
    trace = sources.load_file(path)
    assert trace.runs[0].num_errors == 1
    bad = trace.requests.filter((pl.col("run_key") == "0") & (pl.col("status") != "ok"))
    assert bad["error"].to_list() == [guidellm.NO_OUTPUT]
    assert bad["e2e_s"].is_null().all() and bad["ttft_s"].is_null().all()


@pytest.mark.parametrize("rate", ["inf", math.inf, "Infinity"])
def test_an_infinite_rate_is_a_throughput_run(tmp_path: Path, rate: Any) -> None:
    doc = _raw(OLD)
    doc["benchmarks"][0]["args"]["strategy"]["rate"] = rate
    path = tmp_path / "inf.json"
    path.write_text(json.dumps(doc))  # Python's json: a bare Infinity for math.inf
    if rate is math.inf:
        assert "Infinity" in path.read_text()
    trace = sources.load_file(path)
    assert (trace.runs[0].load_mode, trace.runs[0].load_value) == ("throughput", None)
    assert (trace.runs[1].load_mode, trace.runs[1].load_value) == ("rate", 8.0)


def test_trace_replay_has_no_single_level(tmp_path: Path) -> None:
    doc = _raw(CONCURRENT)
    doc["benchmarks"][0]["config"]["strategy"] = {"type_": "trace", "time_scale": 2.0}
    path = tmp_path / "trace.json"
    path.write_text(json.dumps(doc))
    run = sources.load_file(path).runs[0]
    assert (run.load_mode, run.load_value) == ("unknown", None)
    assert run.workload["time_scale"] == 2.0 and run.workload["strategy"] == "trace"


def test_old_csv_layout() -> None:
    trace = sources.load_file(OLD_CSV)
    assert trace.requests.is_empty() and trace.source.tool_version is None
    assert [(r.load_mode, r.load_value) for r in trace.runs] == [
        ("concurrency", 1.0),
        ("rate", 4.0),
    ]
    _, rate = trace.runs
    assert (rate.num_requests, rate.num_errors) == (8, 2)  # 6 ok, 1 errored, 1 incomplete
    assert rate.model == "acme/tiny-chat-1b" and rate.params == {"target": "http://localhost:8000"}
    assert (rate.workload["input_tokens"], rate.workload["output_tokens"]) == (256, 32)
    assert "max_duration" not in rate.workload  # Infinity: no limit
    assert rate.duration_s == 5.0
    # Latencies: the 6 successful values (made up), GuideLLM's inverse-CDF percentiles.
    latencies = [1.5, 1.6, 1.9, 1.4, 2.2, 1.7]
    assert tool_stat(trace, "1", "e2e_s", "p95") == inverse_cdf(latencies, 0.95) == 2.2
    assert tool_stat(trace, "1", "e2e_s", "p50") == tool_stat(trace, "1", "e2e_s", "median") == 1.6
    assert tool_stat(trace, "1", "ttft_s", "mean") == pytest.approx(1.030 / 6)
    assert tool_stat(trace, "1", "request_throughput_rps", "value") == pytest.approx(1.2)
    row = trace_levels(trace)["1"]
    assert row["basis"] == "summary" and row["p95_e2e_s"] == 2.2 and row["n_errors"] == 2


def test_csv_whose_strategy_cell_names_only_the_kind() -> None:
    trace = sources.load_file(KIND_CSV)
    assert trace.source.tool_version == "0.6.1"
    assert [(r.load_mode, r.load_value) for r in trace.runs] == [
        ("concurrency", 2.0),
        ("concurrency", 8.0),
    ]
    assert {r.model for r in trace.runs} == {"acme/tiny-chat-1b"}  # from Runtime Info args
    assert trace.runs[1].workload["input_tokens"] == 512
    assert [(r.num_requests, r.num_errors) for r in trace.runs] == [(12, 0), (12, 2)]


def test_csv_sweep_rates_follow_guidellms_rule() -> None:
    trace = sources.load_file(SWEEP_CSV)
    assert trace.source.tool_version == "0.7.2"
    assert [(r.load_mode, r.load_value) for r in trace.runs] == [
        ("concurrency", 1.0),
        ("throughput", None),
        ("rate", 2.25),
        ("rate", 4.0),
    ]
    assert "rate_source" in trace.runs[2].workload and "rate_source" not in trace.runs[0].workload
    assert trace.runs[0].workload["dataset"] == "synthetic_text"
    assert trace.runs[0].params == {"target": "http://10.1.2.3:8000"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("prompt_tokens=256,output_tokens=128", {"input_tokens": 256, "output_tokens": 128}),
        (["{'prefix_tokens': 10, 'prompt_tokens': 20}"], {"input_tokens": 30}),
        ('{"prompt_tokens": 8, "output_tokens": 2}', {"input_tokens": 8, "output_tokens": 2}),
        ("openai/gsm8k", {"dataset": "openai/gsm8k"}),
        ([{"kind": "json_file", "path": "/d/p.jsonl"}], {"dataset": "/d/p.jsonl"}),
        (
            [
                {
                    "kind": "synthetic_text",
                    "prompt_tokens": 100,
                    "output_tokens": 10,
                    "prefix_buckets": [
                        {"bucket_weight": 1, "prefix_count": 1, "prefix_tokens": 20},
                        {"bucket_weight": 3, "prefix_count": 2, "prefix_tokens": 40},
                    ],
                }
            ],
            {"input_tokens": 135, "output_tokens": 10, "dataset": "synthetic_text"},
        ),
        (None, {}),
    ],
)
def test_data_settings_give_the_workload_keys(data: Any, expected: dict[str, Any]) -> None:
    got = guidellm._data_workload(data)
    assert {k: got[k] for k in expected} == expected
