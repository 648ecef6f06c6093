"""SGLang bench_serving files real GPUs wrote (../shared/traces/sglang): every study ingests;
loadlens's numbers agree with the raw per-request arrays (recomputed with the standard
library) and with SGLang's own summary fields, by SGLang's definitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SHARED_TRACES, pct, trace_levels

from loadlens import sources
from loadlens.sources import sglang

ROOT = SHARED_TRACES / "sglang"
H100 = ROOT / "scicom-runpod-8xh100-llama31-70b-tp8-isl1k-8k-c100-details"
A100 = ROOT / "scicom-runpod-8xa100-gpt-oss-120b-tp8-isl1k-8k-c100-details"
PD = ROOT / "tonyli15-gh200-a100-pd-1pXd-decode-scaling-qwen25-3b"
OFFLINE = ROOT / "datacrunch-8xh200-deepseek-v2-dp-attention-offline"
STUDIES = {H100: 4, A100: 4, PD: 8, OFFLINE: 1}
NAMES = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "itl_s", "e2e_latency": "e2e_s"}

pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason=f"{ROOT} is absent")


def _files(study: Path) -> list[Path]:
    return sorted(study.glob("*.jsonl")) if study.is_dir() else []


def _doc(path: Path) -> dict[str, Any]:
    # One line per file here; SGLang writes the bare token Infinity for an unlimited rate.
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _level(path: Path) -> tuple[Any, dict[str, Any]]:
    trace = sources.load_file(path)
    assert trace.source.format == "sglang"
    (run,) = trace.runs
    return run, trace_levels(trace)[run.run_key]


@pytest.mark.parametrize("study", list(STUDIES), ids=lambda p: p.name)
def test_every_study_ingests_every_level(study: Path) -> None:
    files, _ = sources.plan([study])
    assert len(files) == STUDIES[study]
    for f in files:
        assert sources.detect(f) is sglang
        assert len(sources.load_file(f).runs) == 1


DETAILED = _files(H100) + _files(A100)


@pytest.mark.parametrize("path", DETAILED, ids=lambda p: p.name)
def test_per_request_numbers_agree_with_the_raw_arrays(path: Path) -> None:
    doc = _doc(path)
    _, row = _level(path)
    ok = [i for i, e in enumerate(doc["errors"]) if not e]
    ttft = [doc["ttfts"][i] for i in ok]
    e2e = [doc["ttfts"][i] + sum(doc["itls"][i]) for i in ok]
    for q in (0.5, 0.95, 0.99):
        p = f"p{round(q * 100)}"
        assert row[f"{p}_ttft_s"] == pytest.approx(pct(ttft, q), rel=1e-9)
        assert row[f"{p}_e2e_s"] == pytest.approx(pct(e2e, q), rel=1e-9)
    assert row["n_requests"] == len(doc["ttfts"]) == 100
    assert row["n_errors"] == len(doc["ttfts"]) - len(ok) == 0
    out = sum(doc["output_lens"][i] for i in ok)
    assert row["request_throughput_rps"] == pytest.approx(len(ok) / doc["duration"], rel=1e-12)
    assert row["output_throughput_tps"] == pytest.approx(out / doc["duration"], rel=1e-12)


@pytest.mark.parametrize("path", DETAILED, ids=lambda p: p.name)
def test_per_request_numbers_agree_with_sglangs_summary(path: Path) -> None:
    """TTFT and ITL to float precision. E2E and TPOT: SGLang stamps a request's latency at
    the stream's last chunk ([DONE] included), loadlens at the last content chunk (TTFT +
    gaps), so ours is never larger and, on these files, at most 0.002% smaller."""
    doc = _doc(path)
    _, row = _level(path)
    checked = 0
    for key, value in doc.items():
        m = sglang.SUMMARY_KEY.match(key)
        if not m or m.group(1) == "std":
            continue  # loadlens computes no standard deviation
        stat = {"median": "p50"}.get(m.group(1), m.group(1))
        ours, theirs = row[f"{stat}_{NAMES[m.group(2)]}"], value / 1000
        if m.group(2) in ("ttft", "itl"):
            assert ours == pytest.approx(theirs, rel=1e-9), key
        else:
            assert theirs * (1 - 1e-4) <= ours <= theirs * (1 + 1e-12), key
        checked += 1
    assert checked == 14  # mean, median, p99 of each; p90 of E2E and p95 of ITL too
    assert row["n_requests"] - row["n_errors"] == doc["completed"]
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"], rel=1e-12)
    assert row["output_throughput_tps"] == pytest.approx(doc["output_throughput"], rel=1e-12)
    assert row["total_token_throughput_tps"] == pytest.approx(doc["total_throughput"], rel=1e-12)


@pytest.mark.parametrize("study", [H100, A100], ids=lambda p: p.name)
def test_input_length_sweep_is_told_apart_and_keeps_the_server(study: Path) -> None:
    seen = {}
    for f in _files(study):
        run, _ = _level(f)
        doc = _doc(f)
        info = doc["server_info"]
        assert (run.load_mode, run.load_value) == ("concurrency", 100.0)  # rate inf, c100
        assert run.workload["dataset"] == "random" and run.workload["output_tokens"] == 128
        assert run.params["engine"] == f"sglang {info['version']}"
        assert run.params["server_args"]["tp_size"] == 8 == info["tp_size"]
        assert run.model == info["model_path"]
        seen[run.workload["input_tokens"]] = f.name
    assert sorted(seen) == [1024, 2048, 4096, 8192]
    assert all(f"_in{n}_" in name for n, name in seen.items())


@pytest.mark.parametrize("path", _files(PD), ids=lambda p: p.name)
def test_prefill_decode_summaries_are_sglangs(path: Path) -> None:
    doc = _doc(path)
    run, row = _level(path)
    assert row["basis"] == "summary"
    assert (run.load_mode, run.load_value) == ("concurrency", float(doc["max_concurrency"]))
    for key, metric in (
        ("p99_ttft_ms", "p99_ttft_s"),
        ("median_ttft_ms", "p50_ttft_s"),
        ("median_e2e_latency_ms", "p50_e2e_s"),
        ("p99_e2e_latency_ms", "p99_e2e_s"),
        ("mean_tpot_ms", "mean_tpot_s"),
    ):
        assert row[metric] == pytest.approx(doc[key] / 1000, rel=1e-12), key
    assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"], rel=1e-12)
    assert row["output_throughput_tps"] == pytest.approx(doc["output_throughput"], rel=1e-12)
    # What served it: a prefill/decode router's server_info lists both roles.
    prefill, decode = doc["server_info"]["prefill"][0], doc["server_info"]["decode"][0]
    assert run.params["engine"] == (
        f"sglang {prefill['version']} (prefill) / {decode['version']} (decode)"
    )
    args = run.params["server_args"]
    assert args["disaggregation"] == "prefill/decode"
    assert args["transfer_backend"] == prefill["disaggregation_transfer_backend"] == "nixl"
    assert run.model == "Qwen/Qwen2.5-3B-Instruct"
    # The number of decode workers is only in the user's tag, kept in the workload.
    assert run.workload["tag"] == path.stem
    assert (run.workload["input_tokens"], run.workload["output_tokens"]) == (
        doc["random_input_len"],
        doc["random_output_len"],
    )
    assert run.workload["completed"] == doc["completed"] == 100


def test_offline_rate_inf_run() -> None:
    (path,) = _files(OFFLINE)
    doc = json.loads(path.read_text())
    run, row = _level(path)
    assert doc["request_rate"] == float("inf") and doc["max_concurrency"] is None
    assert (run.load_mode, run.load_value) == ("throughput", None)  # every prompt at once
    assert row["p50_e2e_s"] == pytest.approx(doc["median_e2e_latency_ms"] / 1000, rel=1e-12)
    assert row["mean_e2e_s"] == pytest.approx(doc["mean_e2e_latency_ms"] / 1000, rel=1e-12)
    assert row["p50_ttft_s"] == pytest.approx(doc["median_ttft_ms"] / 1000, rel=1e-12)
    assert row["output_throughput_tps"] == pytest.approx(doc["output_throughput"], rel=1e-12)
    # This late-2024 schema has no request_throughput; SGLang's definition is
    # completed / duration.
    assert "request_throughput" not in doc
    expected = doc["completed"] / doc["duration"]
    assert row["request_throughput_rps"] == pytest.approx(expected, rel=1e-12)
    assert run.workload["input_tokens"] == 1 and run.workload["output_tokens"] == 512
