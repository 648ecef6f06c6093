"""vLLM result files real GPUs wrote (../shared/traces/vllm): every study ingests, and
loadlens's numbers agree with the raw per-request arrays (recomputed here with the standard
library) and with vLLM's own summary fields, by vLLM's definitions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SHARED_TRACES, levels_by_run_id, pct, trace_levels

from loadlens import sources

ROOT = SHARED_TRACES / "vllm"
QPS = ROOT / "llmk8s-azure-nd96asr-a100-llama33-70b-tp8-qps-sweep"
ANYSCALE = ROOT / "anyscale-8xh100-qwen3-0.6b-fp8-synthetic-c64-c256"
DOWN = ROOT / "scicom-runpod-8xb200-glm47-fp8-tp4dp2-ctx-sweep-server-down-all-failed"
CTX = ROOT / "scicom-runpod-8xb200-glm47-fp8-tp8-ctx1k-15k-c100"
STUDIES = {QPS: 4, ANYSCALE: 12, DOWN: 4, CTX: 5}  # study: load levels
REL = 0.01  # the brief's bar; most numbers below agree to float precision

pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason=f"{ROOT} is absent")


def _files(study: Path) -> list[Path]:
    return sorted(study.rglob("*.json"))


def _level(path: Path) -> tuple[Any, dict[str, Any]]:
    trace = sources.load_file(path)
    assert trace.source.format == "vllm"
    (run,) = trace.runs
    return trace, trace_levels(trace)[run.run_key]


@pytest.mark.parametrize("study", list(STUDIES), ids=lambda p: p.name)
def test_every_study_ingests_every_level(study: Path) -> None:
    files, _ = sources.plan([study])
    assert len(files) == STUDIES[study]
    for f in files:
        assert sources.detect(f).NAME == "vllm"
        assert len(sources.load_file(f).runs) == 1


@pytest.mark.parametrize("path", _files(QPS) if QPS.is_dir() else [], ids=lambda p: p.name)
def test_per_request_numbers_agree_with_the_raw_arrays_and_vllms_summary(path: Path) -> None:
    doc = json.loads(path.read_text())
    trace, row = _level(path)
    ok = [i for i, e in enumerate(doc["errors"]) if not e and doc["output_lens"][i] > 0]
    ttft = [doc["ttfts"][i] for i in ok]
    e2e = [doc["ttfts"][i] + sum(doc["itls"][i]) for i in ok]
    for q in (0.5, 0.95, 0.99):
        p = f"p{round(q * 100)}"
        assert row[f"{p}_ttft_s"] == pytest.approx(pct(ttft, q), rel=1e-9)
        assert row[f"{p}_e2e_s"] == pytest.approx(pct(e2e, q), rel=1e-9)
    assert row["n_requests"] == len(doc["ttfts"]) == doc["num_prompts"]
    assert row["n_errors"] == len(doc["ttfts"]) - len(ok) == 0
    out = sum(doc["output_lens"][i] for i in ok)
    assert row["request_throughput_rps"] == pytest.approx(len(ok) / doc["duration"], rel=1e-12)
    assert row["output_throughput_tps"] == pytest.approx(out / doc["duration"], rel=1e-12)
    # vLLM's own summary: same definitions (completed / duration; numpy's percentiles of
    # the same samples; its TPOT is (latency - ttft) / (output - 1), latency = ttft + gaps).
    assert len(ok) == doc["completed"]
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"], rel=1e-9)
    assert row["output_throughput_tps"] == pytest.approx(doc["output_throughput"], rel=1e-9)
    # TPOT to 1e-6: vLLM subtracts two clock readings, we sum the gaps between them.
    for short, metric, rel in (
        ("ttft", "ttft_s", 1e-9),
        ("tpot", "tpot_s", 1e-6),
        ("itl", "itl_s", 1e-9),
    ):
        assert row[f"mean_{metric}"] == pytest.approx(doc[f"mean_{short}_ms"] / 1000, rel=rel)
        assert row[f"p50_{metric}"] == pytest.approx(doc[f"median_{short}_ms"] / 1000, rel=rel)
        assert row[f"p99_{metric}"] == pytest.approx(doc[f"p99_{short}_ms"] / 1000, rel=rel)
    # vLLM 0.8.3 writes no `failed`: every prompt was sent, so the rest failed.
    assert "failed" not in doc and trace.runs[0].num_errors == 0


def test_qps_sweep_load_levels() -> None:
    levels = {}
    for f in _files(QPS):
        (run,) = sources.load_file(f).runs
        levels[f.stem.rsplit("_", 1)[1]] = (run.load_mode, run.load_value)
        assert run.model == "meta-llama/Llama-3.3-70B-Instruct"
        assert run.workload["mean_input_tokens"] == pytest.approx(213.3, abs=0.1)
        assert "input_tokens" not in run.workload  # ShareGPT: lengths vary, no target
    # request_rate "inf" without max_concurrency: every prompt sent at once.
    assert levels == {
        "01": ("rate", 1.0),
        "04": ("rate", 4.0),
        "16": ("rate", 16.0),
        "inf": ("throughput", None),
    }


SUMMARY_FILES = [f for s in (ANYSCALE, DOWN, CTX) if s.is_dir() for f in _files(s)]


@pytest.mark.parametrize("path", SUMMARY_FILES, ids=lambda p: f"{p.parent.name[:20]}/{p.name}")
def test_summary_numbers_are_vllms(path: Path) -> None:
    doc = json.loads(path.read_text().replace("Infinity", "1e999"))
    trace = sources.load_file(path)
    (run,) = trace.runs
    assert run.num_requests == doc["completed"] + doc["failed"] == doc["num_prompts"]
    assert run.num_errors == doc["failed"]
    # request_rate "inf" with max_concurrency: a closed loop of that many users.
    assert (run.load_mode, run.load_value) == ("concurrency", float(doc["max_concurrency"]))
    assert run.duration_s == doc["duration"]
    if doc["completed"] == 0:
        # All failed: vLLM's 0.0 latencies are placeholders, not latencies; its
        # throughputs of 0 are true.
        assert set(trace.run_stats["metric"]) == {
            "request_throughput_rps",
            "output_throughput_tps",
            "total_token_throughput_tps",
        }
        assert set(trace.run_stats["value"]) == {0.0}
        assert "mean_input_tokens" not in run.workload
        return
    row = trace_levels(trace)[run.run_key]
    assert row["basis"] == "summary"
    assert row["n_requests"] == run.num_requests and row["n_errors"] == doc["failed"]
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"], rel=1e-12)
    assert row["output_throughput_tps"] == pytest.approx(doc["output_throughput"], rel=1e-12)
    assert row["p99_ttft_s"] == pytest.approx(doc["p99_ttft_ms"] / 1000, rel=1e-12)
    assert row["p50_ttft_s"] == pytest.approx(doc["median_ttft_ms"] / 1000, rel=1e-12)
    assert row["p50_e2e_s"] == pytest.approx(doc["median_e2el_ms"] / 1000, rel=1e-12)
    assert row["p99_e2e_s"] == pytest.approx(doc["p99_e2el_ms"] / 1000, rel=1e-12)
    assert run.workload["mean_input_tokens"] == round(
        doc["total_input_tokens"] / doc["completed"], 1
    )


def test_server_down_sweep_drops_placeholder_zeros() -> None:
    """The study's four levels together, as a brief sees them: the three dead levels have
    every request failed and no latency at all (not latencies of 0)."""
    traces = [sources.load_file(f) for f in _files(DOWN)]
    together = levels_by_run_id(traces)
    rows = {
        f.name.split("_")[4]: together[t.run_id("0")]
        for f, t in zip(_files(DOWN), traces, strict=True)
    }
    assert rows["CTX1024"]["n_errors"] == 0 and rows["CTX1024"]["p50_e2e_s"] > 1
    for ctx in ("CTX2048", "CTX4096", "CTX8192"):
        assert rows[ctx]["n_requests"] == rows[ctx]["n_errors"] == 100
        assert rows[ctx]["error_rate"] == 1.0
        assert rows[ctx]["p50_ttft_s"] is None and rows[ctx]["p99_e2e_s"] is None
        assert rows[ctx]["request_throughput_rps"] == 0.0


def test_an_all_failed_level_alone_has_levels() -> None:
    path = next(f for f in _files(DOWN) if "CTX2048" in f.name)
    row = trace_levels(sources.load_file(path))["0"]
    assert row["n_errors"] == 100 and row["p50_e2e_s"] is None


def test_input_length_sweep_levels_are_told_apart() -> None:
    means = {}
    for f in _files(CTX):
        (run,) = sources.load_file(f).runs
        n = int(f.name.split("_CTX")[1].split("_")[0])
        means[n] = run.workload["mean_input_tokens"]
        # The file records no length target; every request had the same input length
        # (vLLM's random dataset), so that is the target. Outputs varied (a few stopped
        # short of 128): no output target is claimed.
        assert run.workload["input_tokens"] == n
        assert run.workload["mean_output_tokens"] == pytest.approx(128, abs=0.1)
    assert means == {n: float(n) for n in (1024, 2048, 4096, 8192, 15000)}


def test_anyscale_workloads_are_told_apart() -> None:
    seen = set()
    for f in _files(ANYSCALE):
        (run,) = sources.load_file(f).runs
        w = run.workload
        isl, osl = f.parent.name.removeprefix("isl").split("_osl")
        assert (w["mean_input_tokens"], w["mean_output_tokens"]) == (float(isl), float(osl))
        assert (w["input_tokens"], w["output_tokens"]) == (int(isl), int(osl))
        assert math.isinf(w["burstiness"])  # written as a bare Infinity token
        seen.add((f.parts[-3], w["mean_input_tokens"], run.load_value))
    assert len(seen) == 12
