"""genai-bench run files: detection, metadata partner, units, scenario grammar, bad input."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import FIXTURES, one_level, pct

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import genai_bench

DIR = FIXTURES / "genai-bench" / "v0.0.5-ms-d100-c1-c2"
C1 = DIR / "D100_100_text-to-text_num_concurrency_1_time_6s.json"
C2 = DIR / "D100_100_text-to-text_num_concurrency_2_time_4s.json"
META = DIR / "experiment_metadata.json"


def _doc(path: Path = C2) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _write(tmp_path: Path, doc: Any, name: str = C2.name, *, with_meta: bool = False) -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    if with_meta:
        shutil.copy(META, tmp_path / META.name)
    return path


def test_detects_its_files_and_nothing_else() -> None:
    for f in sorted(DIR.glob("*.json")):
        assert sources.detect(f) is genai_bench, f
    for f in sorted(FIXTURES.rglob("*")):
        if not f.is_file() or f.suffix not in (".json", ".jsonl", ".csv", ".yaml"):
            continue
        head = sources.read_head(f)
        hits = [
            n
            for n, m in sources.FORMATS.items()
            if getattr(m, "AUTO_DETECT", True) and m.detect(f, head)
        ]
        assert len(hits) <= 1, (f, hits)
        if DIR not in f.parents:
            assert not genai_bench.detect(f, head), f


def test_metadata_is_read_with_every_run_and_passed_over_in_a_walk() -> None:
    assert genai_bench.partners(C1) == [META] and genai_bench.partners(META) == []
    files, skipped = sources.plan([DIR])
    assert files == [C1, C2]
    assert any(s.path == META and "genai-bench" in s.reason for s in skipped)
    # Files listed one by one (a shell glob): the metadata is read with its runs.
    files, skipped = sources.plan([META, C1, C2])
    assert files == [C1, C2]
    assert any(s.path == META and "read together" in s.reason for s in skipped)


def test_metadata_alone_is_refused_by_name() -> None:
    with pytest.raises(TraceFormatError, match="experiment metadata") as e:
        sources.load_file(META)
    assert str(META) in str(e.value)


def test_golden_run_rows_and_metadata() -> None:
    doc = _doc(C2)
    trace = sources.load_file(C2)
    (run,) = trace.runs
    assert (run.load_mode, run.load_value) == ("concurrency", 2.0)
    assert run.num_requests == 6 and run.num_errors == 1
    assert run.duration_s == doc["aggregated_metrics"]["run_duration"]
    assert run.model == "test/model"
    assert run.workload["input_tokens"] == 100 and run.workload["output_tokens"] == 100
    assert run.workload["dataset"] == "D(100,100)"
    assert run.workload["distribution"] == "deterministic"
    assert run.workload["task"] == "text-to-text"
    assert run.params["engine"] == "SGLang 0.4.9" and run.params["hardware"] == "2x H100"
    assert "cmd" not in run.params and "cmd" not in run.workload
    assert trace.source.tool_version == "0.0.5" and trace.source.tool == "genai-bench"
    rows = trace.requests.sort("seq")
    first, failed = rows.row(0, named=True), rows.row(2, named=True)
    raw = doc["individual_request_metrics"][0]
    assert first["ttft_s"] == pytest.approx(raw["ttft"] / 1000)  # written in ms
    assert first["e2e_s"] == pytest.approx(raw["e2e_latency"] / 1000)
    assert (first["input_tokens"], first["output_tokens"]) == (100, 100)
    assert first["start_s"] is None and first["itl_s"] is None  # genai-bench records neither
    assert failed["status"] == "error" and failed["error"].startswith("HTTP 500: {")
    assert "Internal server error" in failed["error"]


@pytest.mark.parametrize("path", [C1, C2], ids=["c1", "c2"])
def test_numbers_match_genai_benchs_summary(path: Path) -> None:
    agg = _doc(path)["aggregated_metrics"]
    row = one_level(sources.load_file(path))
    assert row["basis"] == "requests"
    for key, metric in (("ttft", "ttft_s"), ("e2e_latency", "e2e_s"), ("tpot", "tpot_s")):
        for stat in ("mean", "p50", "p90", "p95", "p99"):
            assert row[f"{stat}_{metric}"] == pytest.approx(agg["stats"][key][stat] / 1000)
    assert row["n_errors"] == agg["num_error_requests"]
    assert row["n_requests"] == agg["num_requests"]
    assert row["request_throughput_rps"] == pytest.approx(agg["requests_per_second"])
    assert row["output_throughput_tps"] == pytest.approx(agg["mean_output_throughput_tokens_per_s"])
    assert row["total_token_throughput_tps"] == pytest.approx(
        agg["mean_total_tokens_throughput_tokens_per_s"]
    )


def test_summary_goes_to_run_stats_in_seconds() -> None:
    agg = _doc(C1)["aggregated_metrics"]
    stats = sources.load_file(C1).run_stats
    got = {(r["metric"], r["statistic"]): r["value"] for r in stats.iter_rows(named=True)}
    assert got[("e2e_s", "p99")] == pytest.approx(agg["stats"]["e2e_latency"]["p99"] / 1000)
    assert got[("ttft_s", "std")] == pytest.approx(agg["stats"]["ttft"]["stddev"] / 1000)
    assert got[("request_throughput_rps", "value")] == agg["requests_per_second"]
    assert got[("output_throughput_tps", "value")] == agg["mean_output_throughput_tokens_per_s"]


def test_seconds_when_the_file_predates_the_time_unit(tmp_path: Path) -> None:
    doc = _doc(C1)
    del doc["_time_unit"]
    for rec in doc["individual_request_metrics"]:
        for key in ("ttft", "tpot", "e2e_latency", "output_latency"):
            rec[key] /= 1000
    row = one_level(sources.load_file(_write(tmp_path, doc, C1.name)))
    e2e = [r["e2e_latency"] for r in doc["individual_request_metrics"]]
    assert row["p95_e2e_s"] == pytest.approx(pct(e2e, 0.95))
    assert row["mean_e2e_s"] == pytest.approx(statistics.fmean(e2e))


def test_without_metadata_the_run_still_loads(tmp_path: Path) -> None:
    trace = sources.load_file(_write(tmp_path, _doc(C2)))
    (run,) = trace.runs
    assert run.model is None and trace.source.tool_version is None and run.params == {}
    assert run.workload["task"] == "text-to-text"  # from the file name
    assert (run.load_mode, run.load_value, run.num_errors) == ("concurrency", 2.0, 1)


def test_non_streaming_placeholder_ttft_is_not_a_latency(tmp_path: Path) -> None:
    doc = _doc(C1)
    for rec in doc["individual_request_metrics"]:
        rec["ttft"] = 1.0000000002  # ms: the baseten fork's start_time + 0.001
    trace = sources.load_file(_write(tmp_path, doc, C1.name))
    assert trace.requests["ttft_s"].is_null().all()
    assert trace.runs[0].workload["streaming"] is False
    assert not trace.run_stats.filter(trace.run_stats["metric"].is_in(["ttft_s", "tpot_s"])).height
    row = one_level(trace)
    assert row["p50_ttft_s"] is None and row["p50_e2e_s"] is not None


def test_a_completion_without_output_tokens_is_an_error(tmp_path: Path) -> None:
    doc = _doc(C1)
    doc["individual_request_metrics"][1]["num_output_tokens"] = 0
    trace = sources.load_file(_write(tmp_path, doc, C1.name))
    row = trace.requests.sort("seq").row(1, named=True)
    assert row["status"] == "error" and "no output tokens" in row["error"]
    assert trace.runs[0].num_errors == 1


def test_timeouts_are_timeouts(tmp_path: Path) -> None:
    doc = _doc(C2)
    doc["individual_request_metrics"][2]["error_code"] = 408
    doc["individual_request_metrics"][2]["error_message"] = "Request timed out"
    row = sources.load_file(_write(tmp_path, doc)).requests.sort("seq").row(2, named=True)
    assert row["status"] == "timeout" and row["error"] == "HTTP 408: Request timed out"


def test_open_loop_qps_is_a_rate(tmp_path: Path) -> None:
    doc = _doc(C2)
    doc["aggregated_metrics"]["num_concurrency"] = 2.5  # the async runner's --qps-level
    (run,) = sources.load_file(_write(tmp_path, doc)).runs
    assert (run.load_mode, run.load_value) == ("rate", 2.5)


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("D(100,1000)", {"input_tokens": 100, "output_tokens": 1000}),
        ("D100_1000", {"input_tokens": 100, "output_tokens": 1000}),
        (
            "N(2000,200)/(200,20)",
            {
                "input_tokens": 2000,
                "input_tokens_stddev": 200,
                "output_tokens": 200,
                "output_tokens_stddev": 20,
                "distribution": "normal",
            },
        ),
        ("N2000_200_200_20", {"input_tokens": 2000, "output_tokens": 200}),
        (
            "U(100,200)/(300,500)",
            {"input_tokens": 150, "output_tokens": 400, "input_tokens_min": 100},
        ),
        ("U(1000,100)", {"input_tokens_max": 1000, "output_tokens_max": 100}),
        ("E(1024)", {"input_tokens": 1024, "distribution": "embedding"}),
        ("R(1024,100)", {"tokens_per_document": 1024, "tokens_per_query": 100}),
        ("I(512,512,2)", {"image_width": 512, "num_images": 2}),
        ("dataset", {"dataset": "dataset", "distribution": "dataset"}),
        ("X(1,2)", {"dataset": "X(1,2)"}),
    ],
)
def test_scenario_grammar(scenario: str, expected: dict[str, Any]) -> None:
    got = genai_bench.scenario_workload(scenario)
    assert got["scenario"] == scenario
    assert expected.items() <= got.items()
    if scenario.startswith("X"):
        assert "input_tokens" not in got


# ----------------------------------------------------------------------------- bad input


def test_a_truncated_file_is_refused_by_name(tmp_path: Path) -> None:
    data = C2.read_bytes()
    path = tmp_path / C2.name
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceFormatError) as e:
        genai_bench.load(path)
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.__setitem__("aggregated_metrics", []), "aggregated_metrics"),
        (lambda d: d.pop("individual_request_metrics"), "individual_request_metrics"),
        (lambda d: d.__setitem__("individual_request_metrics", {}), "individual_request_metrics"),
        (
            lambda d: d["individual_request_metrics"].__setitem__(0, "request"),
            "individual_request_metrics[0]",
        ),
        (
            lambda d: d["individual_request_metrics"][0].__setitem__("ttft", "fast"),
            "individual_request_metrics[0].ttft",
        ),
        (
            lambda d: d["individual_request_metrics"][1].__setitem__("e2e_latency", None),
            "individual_request_metrics[1].e2e_latency",
        ),
        (
            lambda d: d["individual_request_metrics"][0].__setitem__("num_output_tokens", 9.5),
            "individual_request_metrics[0].num_output_tokens",
        ),
        (
            lambda d: d["individual_request_metrics"][0].__setitem__("num_input_tokens", True),
            "individual_request_metrics[0].num_input_tokens",
        ),
        (
            lambda d: d["individual_request_metrics"][2].__setitem__("error_code", [500]),
            "individual_request_metrics[2].error_code",
        ),
        (
            lambda d: d["individual_request_metrics"][2].__setitem__("error_message", 5),
            "individual_request_metrics[2].error_message",
        ),
        (
            lambda d: d["aggregated_metrics"].__setitem__("num_concurrency", "two"),
            "aggregated_metrics.num_concurrency",
        ),
        (
            lambda d: d["aggregated_metrics"].__setitem__("run_duration", "long"),
            "aggregated_metrics.run_duration",
        ),
        (
            lambda d: d["aggregated_metrics"]["stats"]["ttft"].__setitem__("p99", "slow"),
            "aggregated_metrics.stats.ttft.p99",
        ),
        (lambda d: d["aggregated_metrics"].__setitem__("stats", 3), "aggregated_metrics.stats"),
        (lambda d: d.__setitem__("_time_unit", "minutes"), "_time_unit"),
    ],
)
def test_wrong_field_types_are_refused_by_name(tmp_path: Path, edit: Any, field: str) -> None:
    doc = _doc(C2)
    edit(doc)
    path = _write(tmp_path, doc)
    with pytest.raises(TraceFormatError) as e:
        genai_bench.load(path)
    assert e.value.field == field and str(path) in str(e.value)


def test_a_bad_metadata_file_is_refused_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc(C2), with_meta=True)
    meta = json.loads(META.read_text())
    meta["server_gpu_count"] = ["2"]
    (tmp_path / META.name).write_text(json.dumps(meta))
    with pytest.raises(TraceFormatError) as e:
        genai_bench.load(path)
    assert e.value.field == "server_gpu_count" and META.name in str(e.value)
    (tmp_path / META.name).write_text("{not json")
    with pytest.raises(TraceFormatError, match=META.name):
        genai_bench.load(path)


def test_not_an_object_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "[1, 2]")
    with pytest.raises(TraceFormatError, match="JSON object"):
        genai_bench.load(path)
