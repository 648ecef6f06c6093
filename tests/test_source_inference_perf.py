"""inference-perf report directories: detection, stage split, numbers vs the tool's own."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import FIXTURES, trace_levels

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import inference_perf

HEAD = FIXTURES / "inference-perf" / "main-7de5ef2"  # 3 stages, rates 0.5/1/2, >=0.6 layout
OLD = FIXTURES / "inference-perf" / "v0.2.0"  # 2 stages, rates 1/2, <=0.4 layout
STATS = ("mean", "p50", "p90", "p95", "p99")
TOOL_STAT = {"mean": "mean", "p50": "median", "p90": "p90", "p95": "p95", "p99": "p99"}


def _stage(directory: Path, n: int) -> dict:
    return json.loads((directory / f"stage_{n}_lifecycle_metrics.json").read_text())


def _quantile(values: list[float], q: float) -> float:
    return pl.Series(values).quantile(q, "linear")  # type: ignore[return-value]


def test_every_report_file_is_detected_as_inference_perf_and_only_so() -> None:
    ours = sorted(p for d in (HEAD, OLD) for p in d.iterdir())
    assert len(ours) == 11
    for path in ours:
        head = sources.read_head(path)
        hits = [
            n
            for n, m in sources.FORMATS.items()
            if getattr(m, "AUTO_DETECT", True) and m.detect(path, head)
        ]
        assert hits == ["inference-perf"], path
    for path in FIXTURES.rglob("*.json"):
        if "inference-perf" not in path.parts:
            assert not inference_perf.detect(path, sources.read_head(path)), path


def test_directory_plan_loads_stages_and_reads_the_rest_with_them() -> None:
    files, skipped = sources.plan([HEAD])
    assert [f.name for f in files] == [f"stage_{n}_lifecycle_metrics.json" for n in range(3)]
    # The all-stages summary is never a run of its own.
    assert {s.path.name for s in skipped} == {
        "config.yaml",
        "per_request_lifecycle_metrics.json",
        "summary_lifecycle_metrics.json",
    }


def test_stage_runs_metadata_and_golden_rows() -> None:
    per_request = json.loads((HEAD / "per_request_lifecycle_metrics.json").read_text())
    first = min(per_request, key=lambda r: r["start_time"])
    trace = sources.load_file(HEAD / "stage_0_lifecycle_metrics.json")
    (run,) = trace.runs
    assert (run.run_key, run.load_mode, run.load_value) == ("stage_0", "rate", 0.5)
    assert run.model == "loadlens-sim"
    assert run.num_requests == 10 and run.num_errors == 3
    assert run.duration_s == pytest.approx(_stage(HEAD, 0)["benchmark_time_seconds"])
    assert run.workload["api_type"] == "completion" and run.workload["stage"] == 0
    assert run.workload["output_distribution"]["mean"] == 10.0
    assert trace.source.tool == "inference-perf"
    assert trace.source.tool_version == "report layout >=0.6"
    req = trace.requests.sort("seq")
    row = req.row(0, named=True)
    stamps = first["info"]["response_metrics"]["output_token_times"]
    assert row["start_s"] == 0.0
    assert row["ttft_s"] == pytest.approx(stamps[0] - first["start_time"], abs=1e-12)
    assert row["e2e_s"] == pytest.approx(first["end_time"] - first["start_time"], abs=1e-12)
    assert row["itl_s"] == pytest.approx([b - a for a, b in itertools.pairwise(stamps)], abs=1e-12)
    assert row["input_tokens"] == first["info"]["request_metrics"]["text"]["input_tokens"]
    assert row["output_tokens"] == first["info"]["response_metrics"]["output_tokens"]
    assert sorted(req["status"].to_list()).count("error") == 3
    errors = req.filter(pl.col("status") == "error")["error"].to_list()
    assert any(e.startswith("HTTP Error 500: ") for e in errors)
    assert any(e.startswith("ClientPayloadError: ") for e in errors)
    assert req.filter(pl.col("status") == "error")["ttft_s"].null_count() == 3


@pytest.mark.parametrize("directory,stages", [(HEAD, 3), (OLD, 2)])
def test_rows_reproduce_every_stage_summary(directory: Path, stages: int) -> None:
    """TTFT, E2E, ITL, throughputs and failure latency match the tool to 1e-9; TPOT by the
    documented relation (the tool's ends at the last token, loadlens's at the stream end)."""
    for n in range(stages):
        doc = _stage(directory, n)
        trace = sources.load_file(directory / f"stage_{n}_lifecycle_metrics.json")
        row = trace_levels(trace)[f"stage_{n}"]
        assert row["basis"] == "requests"
        latency = doc["successes"]["latency"]
        for tool_key, metric in [
            ("time_to_first_token", "ttft_s"),
            ("request_latency", "e2e_s"),
        ] + ([("inter_token_latency", "itl_s")] if directory == HEAD else []):
            for stat in STATS:
                expected = latency[tool_key][TOOL_STAT[stat]]
                assert row[f"{stat}_{metric}"] == pytest.approx(expected, rel=1e-9), (n, metric)
        throughput = doc["successes"]["throughput"]
        assert row["request_throughput_rps"] == pytest.approx(throughput["requests_per_sec"])
        assert row["output_throughput_tps"] == pytest.approx(throughput["output_tokens_per_sec"])
        assert row["total_token_throughput_tps"] == pytest.approx(
            throughput["total_tokens_per_sec"]
        )
        assert row["n_requests"] == doc["load_summary"]["count"]
        assert row["n_errors"] == doc["failures"]["count"]
        req = trace.requests
        ok = req.filter(pl.col("status") == "ok")
        failed = req.filter(pl.col("status") != "ok")["e2e_s"]
        assert failed.mean() == pytest.approx(doc["failures"]["request_latency"]["mean"])
        # NTPOT: E2E / output tokens per request.
        ntpot = (ok["e2e_s"] / ok["output_tokens"]).to_list()
        assert sum(ntpot) / len(ntpot) == pytest.approx(
            latency["normalized_time_per_output_token"]["mean"], rel=1e-9
        )
        # Tool TPOT = (last token - first token) / (n - 1); loadlens TPOT = (E2E - TTFT) /
        # (n - 1) also holds the tail after the last token, so it is never smaller.
        loadlens_tpot = ((ok["e2e_s"] - ok["ttft_s"]) / (ok["output_tokens"] - 1)).to_list()
        if directory == HEAD:
            pairs = zip(ok["itl_s"], ok["output_tokens"], strict=True)
            tool_tpot = [sum(g) / (k - 1) for g, k in pairs]
            for stat in STATS:
                expected = latency["time_per_output_token"][TOOL_STAT[stat]]
                got = (
                    sum(tool_tpot) / len(tool_tpot)
                    if stat == "mean"
                    else _quantile(tool_tpot, int(stat[1:]) / 100)
                )
                assert got == pytest.approx(expected, rel=1e-9)
            assert all(a >= b for a, b in zip(loadlens_tpot, tool_tpot, strict=True))
            assert row["mean_tpot_s"] == pytest.approx(
                latency["time_per_output_token"]["mean"], rel=0.01
            )  # measured +0.4..0.7%: the usage chunk and [DONE] after the last token
        else:
            # v0.2 stamped every SSE line (blank separators and [DONE] too): about two
            # stamps per token, so its "TPOT" is about half the per-token one. It is kept as
            # tpot_stamp_s; rows carry no ITL.
            assert ok["itl_s"].null_count() == ok.height
            stamp_tpot = trace.run_stats.filter(
                (pl.col("metric") == "tpot_stamp_s") & (pl.col("statistic") == "mean")
            )["value"][0]
            assert stamp_tpot == pytest.approx(latency["time_per_output_token"]["mean"])
            ratio = (sum(loadlens_tpot) / len(loadlens_tpot)) / stamp_tpot
            assert 2.0 < ratio < 3.0  # (2n + 1) stamps-gaps vs (n - 1) token gaps, n ~ 10


def test_old_layout_stamp_tpot_is_recomputed_from_the_raw_stamps() -> None:
    records = json.loads((OLD / "per_request_lifecycle_metrics.json").read_text())
    line_tpot = [
        (t[-1] - t[0]) / (len(t) - 1)
        for r in records
        if r["error"] is None and len(t := r["info"]["output_token_times"]) > 1
    ]
    summary = json.loads((OLD / "summary_lifecycle_metrics.json").read_text())
    expected = summary["successes"]["latency"]["time_per_output_token"]["mean"]
    assert sum(line_tpot) / len(line_tpot) == pytest.approx(expected, rel=1e-9)


def test_all_stage_rows_reproduce_the_summary_file() -> None:
    summary = json.loads((HEAD / "summary_lifecycle_metrics.json").read_text())
    rows = pl.concat(
        [sources.load_file(HEAD / f"stage_{n}_lifecycle_metrics.json").requests for n in range(3)]
    )
    ok = rows.filter(pl.col("status") == "ok")
    assert rows.height == summary["load_summary"]["count"]
    assert ok.height == summary["successes"]["count"]
    ttft = summary["successes"]["latency"]["time_to_first_token"]
    assert ok["ttft_s"].mean() == pytest.approx(ttft["mean"], rel=1e-9)
    assert _quantile(ok["ttft_s"].to_list(), 0.95) == pytest.approx(ttft["p95"], rel=1e-9)
    itl = ok["itl_s"].explode()
    assert itl.mean() == pytest.approx(
        summary["successes"]["latency"]["inter_token_latency"]["mean"], rel=1e-9
    )


def test_summary_only_when_the_per_request_file_is_absent(tmp_path: Path) -> None:
    for name in ("stage_0", "stage_1", "stage_2", "summary"):
        shutil.copy(HEAD / f"{name}_lifecycle_metrics.json", tmp_path)
    shutil.copy(HEAD / "config.yaml", tmp_path)
    files, _ = sources.plan([tmp_path])
    assert len(files) == 3
    trace = sources.load_file(tmp_path / "stage_1_lifecycle_metrics.json")
    assert trace.requests.is_empty()
    (run,) = trace.runs
    assert (run.load_mode, run.load_value, run.num_requests, run.num_errors) == (
        "rate",
        1.0,
        20,
        2,
    )
    row = trace_levels(trace)["stage_1"]
    doc = _stage(HEAD, 1)
    assert row["basis"] == "summary"
    assert row["p95_ttft_s"] == doc["successes"]["latency"]["time_to_first_token"]["p95"]
    assert row["p50_e2e_s"] == doc["successes"]["latency"]["request_latency"]["median"]
    assert row["request_throughput_rps"] == doc["successes"]["throughput"]["requests_per_sec"]


def test_a_lone_summary_is_one_run(tmp_path: Path) -> None:
    shutil.copy(OLD / "summary_lifecycle_metrics.json", tmp_path)
    files, _ = sources.plan([tmp_path])
    trace = sources.load_file(files[0])
    (run,) = trace.runs
    assert (run.run_key, run.load_mode, run.num_requests) == ("all", "unknown", 45)
    assert trace.source.tool_version == "report layout <=0.4"
    metrics = set(trace.run_stats["metric"])
    assert {"ttft_s", "e2e_s", "tpot_stamp_s", "itl_stamp_s"} <= metrics
    assert not {"tpot_s", "itl_s"} & metrics


def test_v05_layout_is_read_like_the_others(tmp_path: Path) -> None:
    """v0.5 kept the stream under info.response_info and the input count on info."""
    records = json.loads((HEAD / "per_request_lifecycle_metrics.json").read_text())
    for r in records:
        info = r["info"]
        r["info"] = {
            "input_tokens": info["request_metrics"]["text"]["input_tokens"],
            "extra_info": {},
            "lora_adapter": None,
            "response_info": info["response_metrics"],
        }
    (tmp_path / "per_request_lifecycle_metrics.json").write_text(json.dumps(records))
    for n in range(3):
        shutil.copy(HEAD / f"stage_{n}_lifecycle_metrics.json", tmp_path)
    new = sources.load_file(tmp_path / "stage_2_lifecycle_metrics.json")
    ref = sources.load_file(HEAD / "stage_2_lifecycle_metrics.json")
    assert new.source.tool_version == "report layout 0.5"
    assert new.requests.equals(ref.requests)


def _copy(tmp_path: Path, directory: Path = HEAD) -> Path:
    for f in directory.iterdir():
        shutil.copy(f, tmp_path)
    return tmp_path


def test_truncated_stage_file_names_the_file(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    path = d / "stage_1_lifecycle_metrics.json"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(
        TraceFormatError, match=r"stage_1_lifecycle_metrics\.json:\d+: not valid JSON"
    ):
        sources.load_file(d / "stage_0_lifecycle_metrics.json")


def test_missing_summary_section_names_the_field(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    path = d / "stage_0_lifecycle_metrics.json"
    doc = json.loads(path.read_text())
    del doc["successes"]
    path.write_text(json.dumps(doc))
    with pytest.raises(TraceFormatError, match="field 'successes'"):
        inference_perf.load(path)


def test_per_request_file_that_does_not_match_the_stages(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (d / "stage_2_lifecycle_metrics.json").unlink()
    with pytest.raises(TraceFormatError, match="holds 70 requests but the stage reports"):
        inference_perf.load(d / "stage_0_lifecycle_metrics.json")


def test_request_record_without_start_time(tmp_path: Path) -> None:
    d = _copy(tmp_path, OLD)
    path = d / "per_request_lifecycle_metrics.json"
    records = json.loads(path.read_text())
    del records[4]["start_time"]
    path.write_text(json.dumps(records))
    with pytest.raises(TraceFormatError, match=r"field '\[4\]\.start_time'"):
        inference_perf.load(d / "stage_0_lifecycle_metrics.json")


def test_truncated_per_request_file(tmp_path: Path) -> None:
    d = _copy(tmp_path, OLD)
    path = d / "per_request_lifecycle_metrics.json"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(
        TraceFormatError, match=r"per_request_lifecycle_metrics\.json:\d+: not valid"
    ):
        inference_perf.load(d / "stage_1_lifecycle_metrics.json")


def test_config_alone_is_an_error(tmp_path: Path) -> None:
    shutil.copy(HEAD / "config.yaml", tmp_path)
    with pytest.raises(TraceFormatError, match="no lifecycle report sits beside it"):
        sources.load_file(tmp_path / "config.yaml")


def test_dumped_config_gives_the_stages() -> None:
    cfg = inference_perf._config(HEAD / "config.yaml")
    assert cfg["load"]["stages"] == [
        {"rate": 0.5, "duration": 20, "num_requests": None, "concurrency_level": None},
        {"rate": 1.0, "duration": 20, "num_requests": None, "concurrency_level": None},
        {"rate": 2.0, "duration": 20, "num_requests": None, "concurrency_level": None},
    ]
    assert cfg["report"]["request_lifecycle"]["percentiles"][0] == 0.1
    assert cfg["server"]["base_url"] == "http://127.0.0.1:18131"


def test_old_summary_window_is_the_tools_throughput_divisor(tmp_path: Path) -> None:
    """Before v0.5 a stage report has no benchmark_time_seconds: its throughputs divide by
    first start to last end, so the window is successes / requests_per_sec."""
    for name in ("stage_0", "stage_1", "summary"):
        shutil.copy(OLD / f"{name}_lifecycle_metrics.json", tmp_path)
    shutil.copy(OLD / "config.yaml", tmp_path)
    doc = _stage(OLD, 1)
    assert "benchmark_time_seconds" not in doc
    (run,) = sources.load_file(tmp_path / "stage_1_lifecycle_metrics.json").runs
    ok = doc["successes"]
    assert run.duration_s == pytest.approx(ok["count"] / ok["throughput"]["requests_per_sec"])
    assert run.duration_s >= doc["load_summary"]["send_duration"]


def test_config_gives_dataset_targets_and_engine() -> None:
    (run,) = sources.load_file(HEAD / "stage_0_lifecycle_metrics.json").runs
    assert run.params == {"engine": "vllm"}
    w = run.workload
    assert (w["dataset"], w["input_tokens"], w["output_tokens"]) == ("random", 32.0, 10.0)


def test_shared_prefix_targets(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    config = (d / "config.yaml").read_text()
    shared = (
        "  shared_prefix:\n    system_prompt_len: 100\n    question_len: 50\n    output_len: 64\n"
    )
    config = config.replace("  type: random\n", "  type: shared_prefix\n", 1)
    config = config.replace("  shared_prefix: null\n", shared)
    (d / "config.yaml").write_text(config)
    (run,) = sources.load_file(d / "stage_0_lifecycle_metrics.json").runs
    w = run.workload
    assert (w["dataset"], w["input_tokens"], w["output_tokens"]) == ("shared_prefix", 150, 64)
