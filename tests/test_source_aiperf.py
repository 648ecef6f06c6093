"""AIPerf artifacts: detection, per-request rows, the tool's own summary reproduced from the
rows, summary-only fallback, version drift (0.3 vs 0.13) and bad input.

The v0.13 and v0.3 fixtures are unmodified `aiperf profile` output against `loadlens
serve-sim`; the others are hand-written in other releases' layouts, with made-up numbers,
including multi-run aggregates (see tests/fixtures/aiperf/README.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import FIXTURES, one_level, trace_levels

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import aiperf

DIR = FIXTURES / "aiperf"
C2 = DIR / "v0.13-c2"  # 40 requests + 4 warm-up, concurrency 2
C8 = DIR / "v0.13-c8-faults"  # 48 requests + 4 warm-up, concurrency 8, 5 failures
OLD = DIR / "v0.3-c4"  # aiperf 0.3.0, 32 requests, concurrency 4
RUNS = [C2, C8, OLD]
RECORDS = "profile_export.jsonl"
SUMMARY = "profile_export_aiperf.json"
CSV = "profile_export_aiperf.csv"
# AIPerf summary metric -> the loadlens metric computed from rows with the same definition.
SAME_DEFINITION = {
    "time_to_first_token": "ttft_s",
    "request_latency": "e2e_s",
    "inter_token_latency": "tpot_s",  # AIPerf's ITL: (latency - TTFT) / (OSL - 1) per request
    "inter_chunk_latency": "itl_s",  # AIPerf's pooled chunk gaps: our ITL samples
}


def _summary(run: Path) -> dict:
    return json.loads((run / SUMMARY).read_text())


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / RECORDS).read_text().splitlines()]


# ----------------------------------------------------------------------------- detection


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_detects_all_three_files_and_reads_them_as_one_run(run: Path) -> None:
    for name in (RECORDS, SUMMARY, CSV):
        assert sources.detect(run / name) is aiperf, name
    assert aiperf.partners(run / RECORDS) == [run / SUMMARY, run / CSV]
    kept, skipped = sources.plan([run])
    assert kept == [run / RECORDS]
    assert {s.path.name for s in skipped} == {SUMMARY, CSV}


def test_other_tools_files_are_not_aiperf(tmp_path: Path) -> None:
    others = [
        f
        for f in FIXTURES.rglob("*")
        if f.is_file() and DIR not in f.parents and f.suffix in {".json", ".jsonl", ".csv"}
    ]
    assert any("genai-perf" in str(f) for f in others)  # the look-alike summaries
    for f in others:
        assert not aiperf.detect(f, sources.read_head(f)), f
    other = tmp_path / "x.jsonl"
    other.write_text('{"metrics": {}, "hello": 1}\n')
    assert not aiperf.detect(other, sources.read_head(other))


# ----------------------------------------------------------------------------- golden rows


def test_golden_rows_exclude_warmup() -> None:
    lines = _lines(C2)
    assert [r["metadata"]["benchmark_phase"] for r in lines].count("warmup") == 4
    trace = sources.load_file(C2 / RECORDS)
    (run,) = trace.runs
    assert trace.source.tool_version == "0.13.0"
    assert (run.load_mode, run.load_value) == ("concurrency", 2.0)
    assert run.model == "loadlens-sim"
    assert run.num_requests == 40 and run.num_errors == 0
    assert run.workload["warmup_request_count"] == 4
    req = trace.requests.sort("seq")
    assert req.height == 40
    first = next(r for r in lines if r["metadata"]["benchmark_phase"] == "profiling")
    row = req.row(0, named=True)
    m = first["metrics"]
    assert row["ttft_s"] == pytest.approx(m["time_to_first_token"]["value"] / 1000)
    assert row["e2e_s"] == pytest.approx(m["request_latency"]["value"] / 1000)
    assert row["itl_s"] == pytest.approx([v / 1000 for v in m["inter_chunk_latency"]["value"]])
    assert (row["input_tokens"], row["output_tokens"]) == (128, 32)
    # AIPerf's request latency ends at the last chunk: TTFT plus the chunk gaps.
    assert row["e2e_s"] == pytest.approx(row["ttft_s"] + sum(row["itl_s"]), rel=1e-9)
    assert req["start_s"].min() >= 0 and req["start_s"].max() < run.duration_s


def test_failed_requests_are_rows_with_their_error() -> None:
    trace = sources.load_file(C8 / RECORDS)
    (run,) = trace.runs
    assert run.num_requests == 48 and run.num_errors == 5
    failed = trace.requests.filter(pl.col("status") != "ok")
    assert failed["status"].to_list() == ["error"] * 5
    assert failed["error"].str.starts_with("500 Internal Server Error").sum() == 4
    assert failed["error"].str.contains("ClientPayloadError").sum() == 1  # dropped stream
    assert failed["e2e_s"].null_count() == 5
    doc = _summary(C8)
    assert run.num_requests == doc["completed_request_count"]["avg"]
    assert run.num_errors == doc["error_request_count"]["avg"]


# ----------------------------------------------------------------------------- vs summary


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_rows_reproduce_aiperf_summary(run: Path) -> None:
    """Every mean/percentile/std AIPerf reports, from loadlens's rows (numpy-linear
    percentiles, population std), and its throughputs from the run's window."""
    doc = _summary(run)
    trace = sources.load_file(run / RECORDS)
    row = one_level(trace)
    assert row["basis"] == "requests"
    ok = trace.requests.filter(pl.col("status") == "ok")
    with_tpot = ok.with_columns(
        tpot_s=(pl.col("e2e_s") - pl.col("ttft_s")) / (pl.col("output_tokens") - 1)
    )
    checked = 0
    for key, metric in SAME_DEFINITION.items():
        stats = doc[key]
        assert stats["unit"] == "ms"
        n = len(ok) * 31 if metric == "itl_s" else len(ok)
        assert stats["count"] == n if "count" in stats else True
        for stat in ("p50", "p90", "p95", "p99"):
            assert row[f"{stat}_{metric}"] == pytest.approx(stats[stat] / 1000, rel=1e-6), (
                key,
                stat,
            )
            checked += 1
        assert row[f"mean_{metric}"] == pytest.approx(stats["avg"] / 1000, rel=1e-9), key
        samples = with_tpot.select(pl.col(metric).explode() if metric == "itl_s" else metric)
        std = samples.to_series().std(ddof=0)
        assert std == pytest.approx(stats["std"] / 1000, rel=1e-6), key
        checked += 2
    assert checked == 24
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"]["avg"])
    assert row["output_throughput_tps"] == pytest.approx(doc["output_token_throughput"]["avg"])
    if "total_token_throughput" in doc:  # from 0.13
        assert row["total_token_throughput_tps"] == pytest.approx(
            doc["total_token_throughput"]["avg"]
        )


def test_aiperf_itl_is_tpot_not_the_pooled_chunk_gaps() -> None:
    """AIPerf's "Inter Token Latency" leaves the first token out and averages per request:
    it is TPOT. Its mean equals the pooled chunk-gap mean only because every request here
    streamed the same 32 tokens; the percentiles differ."""
    doc = _summary(C2)
    row = one_level(sources.load_file(C2 / RECORDS))
    assert row["p50_tpot_s"] == pytest.approx(doc["inter_token_latency"]["p50"] / 1000)
    assert row["p99_itl_s"] == pytest.approx(doc["inter_chunk_latency"]["p99"] / 1000)
    assert row["p99_itl_s"] > 1.5 * row["p99_tpot_s"]


def test_warmup_would_change_the_numbers() -> None:
    """Warm-up requests are in the JSONL; AIPerf's summary leaves them out, and so do we."""
    doc = _summary(C2)
    every = [r["metrics"]["time_to_first_token"]["value"] for r in _lines(C2)]
    assert len(every) == 44
    assert sum(every) / 44 != pytest.approx(doc["time_to_first_token"]["avg"], rel=1e-3)
    row = one_level(sources.load_file(C2 / RECORDS))
    assert row["mean_ttft_s"] == pytest.approx(doc["time_to_first_token"]["avg"] / 1000)


def test_duration_is_the_window_aiperf_divided_by() -> None:
    doc = _summary(C2)
    (run,) = sources.load_file(C2 / RECORDS).runs
    assert run.duration_s == pytest.approx(40 / doc["request_throughput"]["avg"], rel=1e-6)
    # 0.13 divides by the profiling phase, not by its "Benchmark Duration"
    assert run.duration_s != pytest.approx(doc["benchmark_duration"]["avg"], rel=1e-4)
    doc = _summary(OLD)
    (run,) = sources.load_file(OLD / RECORDS).runs
    assert run.duration_s == pytest.approx(doc["benchmark_duration"]["avg"])


# ----------------------------------------------------------------------------- fallbacks


def test_summary_alone_is_summary_only(tmp_path: Path) -> None:
    shutil.copy(C2 / SUMMARY, tmp_path / SUMMARY)
    doc = _summary(C2)
    kept, _ = sources.plan([tmp_path])
    assert kept == [tmp_path / SUMMARY]
    trace = sources.load_file(tmp_path / SUMMARY)
    assert trace.requests.is_empty()
    (run,) = trace.runs
    assert (run.load_mode, run.load_value, run.num_requests) == ("concurrency", 2.0, 40)
    row = one_level(trace)
    assert row["basis"] == "summary"
    assert row["p95_e2e_s"] == pytest.approx(doc["request_latency"]["p95"] / 1000)
    assert row["p50_tpot_s"] == pytest.approx(doc["inter_token_latency"]["p50"] / 1000)
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"]["avg"])


def test_csv_alone_is_summary_only_rounded(tmp_path: Path) -> None:
    shutil.copy(C8 / CSV, tmp_path / CSV)
    doc = _summary(C8)
    trace = sources.load_file(tmp_path / CSV)
    row = one_level(trace)
    assert row["basis"] == "summary"
    # the CSV rounds to 0.01 ms / 0.01 req/s
    assert row["p99_ttft_s"] == pytest.approx(doc["time_to_first_token"]["p99"] / 1000, abs=6e-6)
    assert row["request_throughput_rps"] == pytest.approx(
        doc["request_throughput"]["avg"], abs=0.006
    )


def test_records_without_summary_still_load(tmp_path: Path) -> None:
    shutil.copy(C2 / RECORDS, tmp_path / RECORDS)
    trace = sources.load_file(tmp_path / RECORDS)
    (run,) = trace.runs
    assert run.load_mode == "unknown"  # the load level is only in the summary's config
    assert trace.requests.height == 40 and trace.run_stats.is_empty()
    tool_window = 40 / _summary(C2)["request_throughput"]["avg"]
    assert run.duration_s == pytest.approx(tool_window, rel=1e-3)


def test_version_drift_old_layout() -> None:
    trace = sources.load_file(OLD / RECORDS)
    (run,) = trace.runs
    assert trace.source.tool_version is None  # 0.3 does not write its version
    assert (run.load_mode, run.load_value) == ("concurrency", 4.0)
    assert run.model == "loadlens-sim"
    assert run.workload["warmup_request_count"] == 2
    assert "aiperf_version" not in _summary(OLD)
    assert "credit_issued_ns" not in _lines(OLD)[0]["metadata"]


# ----------------------------------------------------------------------------- bad input


def _write(tmp_path: Path, lines: list[dict] | str, name: str = RECORDS) -> Path:
    path = tmp_path / name
    text = lines if isinstance(lines, str) else "\n".join(json.dumps(r) for r in lines) + "\n"
    path.write_text(text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(TraceFormatError) as info:
        sources.load_file(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_truncated_jsonl_is_rejected(tmp_path: Path) -> None:
    text = (C2 / RECORDS).read_text()
    path = _write(tmp_path, text[: len(text) // 2])
    message = _error(path)
    assert "not valid JSON" in message and ":23" in message


def test_missing_start_time_is_rejected(tmp_path: Path) -> None:
    lines = _lines(C2)
    del lines[7]["metadata"]["request_start_ns"]
    message = _error(_write(tmp_path, lines))
    assert "metadata.request_start_ns" in message and ":8" in message


def test_ok_request_without_latency_is_rejected(tmp_path: Path) -> None:
    lines = _lines(C2)
    del lines[9]["metrics"]["request_latency"]
    message = _error(_write(tmp_path, lines))
    assert "metrics.request_latency" in message and ":10" in message


def test_negative_ttft_is_rejected(tmp_path: Path) -> None:
    lines = _lines(C2)
    lines[5]["metrics"]["time_to_first_token"]["value"] = -3.0
    message = _error(_write(tmp_path, lines))
    assert "ttft_s" in message and "-0.003" in message


def test_truncated_summary_is_rejected(tmp_path: Path) -> None:
    text = (C2 / SUMMARY).read_text()
    path = _write(tmp_path, text[:2000], SUMMARY)
    assert "not valid JSON" in _error(path)


def test_a_whole_artifact_directory_ingests_passing_over_side_files(tmp_path: Path) -> None:
    artifact = tmp_path / "artifacts" / "run-c2"
    shutil.copytree(C2, artifact)
    (artifact / "inputs.json").write_text('{"data": []}')
    (artifact / "phase_manifest.json").write_text("{}")
    (artifact / "server_metrics_export.json").write_text("{}")
    (artifact / "phases").mkdir()
    (artifact / "phases" / "profiling.json").write_text("{}")
    files, skipped = sources.plan([tmp_path / "artifacts"])
    assert [f.name for f in files] == [RECORDS]
    reasons = {s.path.name: s.reason for s in skipped}
    assert "beside its traces" in reasons["inputs.json"]
    assert "side output" in reasons["profiling.json"]
    assert reasons[SUMMARY].startswith("read together with")
    # Named explicitly, a side file is still refused: only a walk passes over it.
    with pytest.raises(TraceFormatError, match="matches no known trace format"):
        sources.load_file(artifact / "inputs.json")


# ----------------------------------------------------------------------------- every layout
# Hand-written fixtures in the layouts of other releases (see tests/fixtures/aiperf/README.md).

V01 = DIR / "v0.1-summary"  # 0.1: metrics nested under "records", TTFT tagged "ttft"
V08 = DIR / "v0.8-summary-only"  # 0.8: summary JSON + CSV, capped rate, 3 failed requests
SWEEP = DIR / "v0.8-sweep"  # 0.8: --concurrency 2,4 (per-value dirs + sweep_aggregate/)
TRIALS = DIR / "v0.8-confidence"  # 0.8: --num-profile-runs 3 (profile_runs/ + aggregate/)
SWEEP_ALONE = DIR / "v0.13-sweep-aggregate-alone"  # 0.13: sweep aggregate, rate 1,2,4


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_v01_records_keyed_summary() -> None:
    doc = _json(V01 / SUMMARY)["records"]
    assert "ttft" in doc and "time_to_first_token" not in doc and "p10" not in doc["ttft"]
    assert sources.detect(V01 / SUMMARY) is aiperf and sources.detect(V01 / CSV) is aiperf
    kept, skipped = sources.plan([V01])
    assert kept == [V01 / SUMMARY] and [s.path for s in skipped] == [V01 / CSV]
    trace = sources.load_file(V01 / SUMMARY)
    (run,) = trace.runs
    assert trace.source.tool_version is None  # 0.1 does not write it
    assert (run.load_mode, run.load_value, run.model) == ("concurrency", 4.0, "tiny-chat")
    assert (run.num_requests, run.num_errors) == (24, 0)
    assert (run.workload["input_tokens"], run.workload["output_tokens"]) == (256, 64)
    row = one_level(trace)
    assert row["p50_ttft_s"] == pytest.approx(doc["ttft"]["p50"] / 1000)
    assert row["p95_e2e_s"] == pytest.approx(doc["request_latency"]["p95"] / 1000)
    assert row["p99_tpot_s"] == pytest.approx(doc["inter_token_latency"]["p99"] / 1000)
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"]["avg"])
    assert run.duration_s == pytest.approx(doc["benchmark_duration"]["avg"])


def test_v01_csv_alone(tmp_path: Path) -> None:
    shutil.copy(V01 / CSV, tmp_path / CSV)
    doc = _json(V01 / SUMMARY)["records"]
    trace = sources.load_file(tmp_path / CSV)
    (run,) = trace.runs
    assert run.load_mode == "unknown"  # the CSV carries no config
    assert run.num_requests == 24
    row = one_level(trace)
    assert row["p99_ttft_s"] == pytest.approx(doc["ttft"]["p99"] / 1000, abs=6e-6)


def test_v08_summary_only_counts_errors_and_finds_the_binding_cap() -> None:
    doc = _json(V08 / SUMMARY)
    assert doc["input_config"]["loadgen"]["request_rate"] == 200.0
    trace = sources.load_file(V08 / SUMMARY)
    (run,) = trace.runs
    assert trace.source.tool_version == "0.8.0"
    # --request-rate 200 --concurrency 8 achieved ~7 req/s: the cap set the load
    assert (run.load_mode, run.load_value) == ("concurrency", 8.0)
    assert run.workload["request_rate"] == 200.0
    assert run.workload["dataset"] == "mooncake_trace"
    assert (run.num_requests, run.num_errors) == (33, 3)
    assert run.num_errors == sum(e["count"] for e in doc["error_summary"])
    row = one_level(trace)
    assert (row["n_requests"], row["n_errors"]) == (33, 3)
    assert run.duration_s == pytest.approx(doc["benchmark_duration"]["avg"])


def test_v08_csv_alone_keeps_counts(tmp_path: Path) -> None:
    shutil.copy(V08 / CSV, tmp_path / CSV)
    (run,) = sources.load_file(tmp_path / CSV).runs
    assert (run.num_requests, run.num_errors) == (33, 3)
    assert run.duration_s == pytest.approx(_json(V08 / SUMMARY)["benchmark_duration"]["avg"], 1e-3)


def test_a_rate_that_held_is_a_rate(tmp_path: Path) -> None:
    doc = _json(V08 / SUMMARY)
    doc["input_config"]["loadgen"]["request_rate"] = 5.0  # achieved ~7.5 sent/s: not capped
    path = tmp_path / SUMMARY
    path.write_text(json.dumps(doc))
    (run,) = sources.load_file(path).runs
    assert (run.load_mode, run.load_value) == ("rate", 5.0)
    assert run.workload["max_concurrency"] == 8


def test_sweep_runs_are_loaded_and_the_sweep_aggregate_passed_over() -> None:
    kept, skipped = sources.plan([SWEEP])
    assert [f.parent.name for f in kept] == ["concurrency_2", "concurrency_4"]
    assert {s.path.name for s in skipped} == {"profile_export_aiperf_sweep.json", SWEEP_CSV}
    assert all(s.reason.startswith("read together with") for s in skipped)
    loads = [sources.load_file(f).runs[0] for f in kept]
    assert [(r.load_mode, r.load_value) for r in loads] == [
        ("concurrency", 2.0),
        ("concurrency", 4),
    ]


SWEEP_CSV = "profile_export_aiperf_sweep.csv"


@pytest.mark.parametrize("name", ["profile_export_aiperf_sweep.json", SWEEP_CSV])
def test_sweep_aggregate_alone_is_a_level_per_value(name: str, tmp_path: Path) -> None:
    shutil.copy(SWEEP / "sweep_aggregate" / name, tmp_path / name)
    kept, _ = sources.plan([tmp_path])
    assert kept == [tmp_path / name]
    trace = sources.load_file(tmp_path / name)
    assert [(r.run_key, r.load_mode, r.load_value) for r in trace.runs] == [
        ("concurrency=2", "concurrency", 2.0),
        ("concurrency=4", "concurrency", 4.0),
    ]
    levels = trace_levels(trace)
    rounding = 6e-6 if name.endswith(".csv") else 1e-12
    for run, folder in zip(trace.runs, ("concurrency_2", "concurrency_4"), strict=True):
        doc = _json(SWEEP / folder / SUMMARY)
        row = levels[run.run_key]
        assert run.num_requests == doc["request_count"]["avg"]
        for key, metric in SAME_DEFINITION.items():
            for stat in ("p50", "p90", "p95", "p99"):
                want = doc[key][stat] / 1000
                assert row[f"{stat}_{metric}"] == pytest.approx(want, abs=rounding), (key, stat)
        assert row["request_throughput_rps"] == pytest.approx(
            doc["request_throughput"]["avg"], abs=0.006
        )


def test_v013_sweep_aggregate_per_metric_layout() -> None:
    path = SWEEP_ALONE / "sweep_aggregate" / "profile_export_aiperf_sweep.json"
    combos = _json(path)["per_combination_metrics"]
    assert "time_to_first_token" in combos[0]["metrics"]  # not flattened in 0.13
    trace = sources.load_file(path)
    assert [(r.load_mode, r.load_value) for r in trace.runs] == [
        ("rate", 1.0),
        ("rate", 2.0),
        ("rate", 4.0),
    ]
    for run, combo in zip(trace.runs, combos, strict=True):
        row = trace_levels(trace)[run.run_key]
        ttft = combo["metrics"]["time_to_first_token"]
        assert row["p99_ttft_s"] == pytest.approx(ttft["p99"] / 1000)
        assert row["mean_ttft_s"] == pytest.approx(ttft["mean"] / 1000)
        assert run.num_requests == combo["metrics"]["request_count"]["mean"]
    csv_trace = sources.load_file(path.with_suffix(".csv"))  # means only, rounded
    assert [r.load_value for r in csv_trace.runs] == [1.0, 2.0, 4.0]
    csv_row = trace_levels(csv_trace)["request_rate=1"]
    assert csv_row["mean_ttft_s"] == pytest.approx(
        combos[0]["metrics"]["time_to_first_token"]["mean"] / 1000, abs=6e-6
    )
    assert csv_row["p99_ttft_s"] is None  # the sweep CSV publishes no percentiles in 0.13


def test_trials_are_loaded_and_the_confidence_aggregate_passed_over() -> None:
    kept, skipped = sources.plan([TRIALS])
    assert [f.parent.name for f in kept] == ["run_0001", "run_0002", "run_0003"]
    assert {s.path.name for s in skipped} == {
        "profile_export_aiperf_aggregate.json",
        "profile_export_aiperf_aggregate.csv",
        "profile_export_aiperf_collated.json",
    }


def test_confidence_aggregate_alone_is_one_level(tmp_path: Path) -> None:
    shutil.copytree(TRIALS / "aggregate", tmp_path / "aggregate")
    kept, skipped = sources.plan([tmp_path])
    assert [f.name for f in kept] == ["profile_export_aiperf_aggregate.json"]
    assert len(skipped) == 2  # its CSV and collated twins, read with it
    trace = sources.load_file(kept[0])
    (run,) = trace.runs
    assert trace.source.tool_version == "0.8.0"
    assert run.workload["profile_runs"] == 3 and run.load_mode == "unknown"
    trials = [_json(f) for f in sorted(TRIALS.glob("profile_runs/*/" + SUMMARY))]
    row = one_level(trace)
    mean_rps = sum(t["request_throughput"]["avg"] for t in trials) / 3
    assert row["request_throughput_rps"] == pytest.approx(mean_rps)
    assert run.num_requests == 16
    # percentiles come from the requests pooled over the trials (the collated file)
    pooled = _json(TRIALS / "aggregate" / "profile_export_aiperf_collated.json")["metrics"]
    assert row["p99_e2e_s"] == pytest.approx(pooled["request_latency"]["combined"]["p99"] / 1000)
    # ITL (chunk gaps) is not collated: the mean of the trials' p99 stands
    mean_p99 = sum(t["inter_chunk_latency"]["p99"] for t in trials) / 3
    assert row["p99_itl_s"] == pytest.approx(mean_p99 / 1000)


def test_confidence_csv_alone(tmp_path: Path) -> None:
    name = "profile_export_aiperf_aggregate.csv"
    shutil.copy(TRIALS / "aggregate" / name, tmp_path / name)
    trace = sources.load_file(tmp_path / name)
    trials = [_json(f) for f in sorted(TRIALS.glob("profile_runs/*/" + SUMMARY))]
    row = one_level(trace)
    mean_p99 = sum(t["time_to_first_token"]["p99"] for t in trials) / 3
    assert row["p99_ttft_s"] == pytest.approx(mean_p99 / 1000, abs=6e-6)
    assert trace.runs[0].num_requests == 16


@pytest.mark.parametrize(
    "name", ["profile_export_aiperf_aggregate.csv", SWEEP_CSV], ids=["confidence", "sweep"]
)
def test_truncated_aggregate_csv_is_refused(name: str, tmp_path: Path) -> None:
    folder = TRIALS / "aggregate" if "aggregate" in name else SWEEP / "sweep_aggregate"
    text = (folder / name).read_text()
    path = tmp_path / name
    path.write_text(text[: int(len(text) * 0.97)])
    assert "truncated" in _error(path)


def test_side_files_of_newer_releases_are_passed_over(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(V08, run)
    for name in (
        "profile_export_raw.jsonl",
        "profile_export_aiperf_timeslices.json",
        "profile_export_aiperf_timeslices.csv",
        "run_config.json",
    ):
        (run / name).write_text("{}\n")
    kept, skipped = sources.plan([tmp_path])
    assert kept == [run / SUMMARY]
    assert sum("beside its traces" in s.reason for s in skipped) == 4
