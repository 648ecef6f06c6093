"""`vllm bench sweep serve` trees: every measured level once, summaries not choked on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, trace_levels

from loadlens import sources
from loadlens.errors import TraceFormatError
from loadlens.sources import vllm, vllm_sweep

DIR = FIXTURES / "vllm_sweep"
EXP = DIR / "sim-sweep"
COMBOS = ("BENCH--max_concurrency=1", "BENCH--max_concurrency=4", "BENCH--max_concurrency=16")


def test_detection_is_exclusive() -> None:
    assert sources.detect(EXP / "summary.csv") is vllm_sweep
    assert sources.detect(DIR / "server-failed" / "summary.csv") is vllm_sweep
    assert sources.detect(DIR / "server-failed" / "SERVE-default-failure.json") is vllm_sweep
    c4 = EXP / COMBOS[1]
    assert sources.detect(c4 / "summary.json") is vllm_sweep
    assert sources.detect(c4 / "run=0.json") is vllm  # an ordinary bench serve result
    assert sources.detect(EXP / "BENCH--max_concurrency=64" / "run=0.failure.json") is vllm_sweep
    for f in sorted(FIXTURES.rglob("*")):
        if f.is_file() and f.suffix in (".json", ".jsonl", ".csv") and DIR not in f.parents:
            assert not vllm_sweep.detect(f, sources.read_head(f)), f


def test_experiment_ingests_each_measured_run_once() -> None:
    files, skipped = sources.plan([DIR])
    assert files == [
        DIR / "serve-params" / "summary.csv",
        DIR / "server-failed" / "summary.csv",
        EXP / "summary.csv",
    ]
    reasons = {s.path.name for s in skipped if "read together" in s.reason}
    assert {"summary.json", "run=0.json", "run=0.failure.json"} <= reasons
    assert "warmup.json" in {s.path.name for s in skipped}
    trace = sources.load_file(EXP / "summary.csv")
    keys = [r.run_key for r in trace.runs]
    assert keys == [f"{c}/run={n}" for c in COMBOS for n in (0, 1)]  # no warm-ups
    assert [r.load_value for r in trace.runs] == [1.0, 1.0, 4.0, 4.0, 16.0, 16.0]
    assert all(r.load_mode == "concurrency" and r.num_requests == 30 for r in trace.runs)
    assert trace.runs[2].workload["sweep_combination"] == COMBOS[1]
    assert trace.runs[2].workload["run_number"] == 0
    assert trace.requests.height == 6 * 30
    assert set(trace.requests["run_key"]) == set(keys)
    assert sources.load_file(DIR / "server-failed" / "summary.csv").runs == ()


def test_combination_folder_alone_reads_its_summary_json() -> None:
    files, _ = sources.plan([EXP / COMBOS[1]])
    assert files == [EXP / COMBOS[1] / "summary.json"]
    trace = sources.load_file(files[0])
    assert [r.run_key for r in trace.runs] == ["run=0", "run=1"]


def test_numbers_match_each_runs_vllm_summary_fields() -> None:
    """Each level's statistics, recomputed from its rows, equal the run file's own."""
    trace = sources.load_file(EXP / "summary.csv")
    rows = trace_levels(trace)
    names = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "itl_s", "e2el": "e2e_s"}
    for key, row in rows.items():
        combo, run = key.split("/")
        doc = json.loads((EXP / combo / f"{run}.json").read_text())
        for short, metric in names.items():
            for stat in ("mean", "p50", "p90", "p95", "p99"):
                assert row[f"{stat}_{metric}"] == pytest.approx(
                    doc[f"{stat}_{short}_ms"] / 1000, rel=1e-9
                ), (key, stat, metric)
        assert row["request_throughput_rps"] == pytest.approx(doc["request_throughput"])
        assert row["output_throughput_tps"] == pytest.approx(doc["output_throughput"])


def test_csv_alone_loads_summary_only(tmp_path: Path) -> None:
    shutil.copy(EXP / "summary.csv", tmp_path / "summary.csv")
    trace = sources.load_file(tmp_path / "summary.csv")
    assert trace.requests.is_empty() and len(trace.runs) == 6
    doc = json.loads((EXP / COMBOS[2] / "run=1.json").read_text())
    run = trace.runs[5]
    assert (run.load_mode, run.load_value, run.num_requests) == ("concurrency", 16.0, 30)
    row = list(trace_levels(trace).values())[5]
    assert row["basis"] == "summary"
    assert row["p95_e2e_s"] == pytest.approx(doc["p95_e2el_ms"] / 1000, rel=1e-12)


def test_interrupted_combination_loads_its_run_files(tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    shutil.copytree(EXP, exp)
    (exp / COMBOS[0] / "summary.json").unlink()
    trace = sources.load_file(exp / "summary.csv")
    assert [r.run_key for r in trace.runs][:2] == [f"{COMBOS[0]}/run=0", f"{COMBOS[0]}/run=1"]
    assert len(trace.runs) == 6


def test_interrupted_folder_without_the_csv_passes_over_its_warmup(tmp_path: Path) -> None:
    folder = tmp_path / "combo"
    shutil.copytree(EXP / COMBOS[0], folder)
    (folder / "summary.json").unlink()
    (folder / "warmup.json").write_text((folder / "run=0.json").read_text())
    files, skipped = sources.plan([folder])
    assert [f.name for f in files] == ["run=0.json", "run=1.json"]
    assert any(s.path.name == "warmup.json" and "beside" in s.reason for s in skipped)


def test_failure_record_alone_is_no_run() -> None:
    path = EXP / "BENCH--max_concurrency=64" / "run=0.failure.json"
    assert sources.load_file(path).runs == ()


def test_bad_summary_json_is_rejected(tmp_path: Path) -> None:
    text = (EXP / COMBOS[1] / "summary.json").read_text()
    bad = tmp_path / "summary.json"
    bad.write_text(text[: len(text) // 2])
    with pytest.raises(TraceFormatError, match="not valid JSON"):
        sources.load_file(bad, "vllm-sweep")
    docs = json.loads(text)
    docs[1]["ttfts"][2] = -1.0
    bad.write_text(json.dumps(docs))
    with pytest.raises(TraceFormatError, match="request #2") as info:
        sources.load_file(bad)
    assert "ttft_s" in str(info.value)
    bad.write_text(json.dumps([{"run_number": 0, "completed": 1}]))
    with pytest.raises(TraceFormatError, match="mean_ttft_ms"):
        sources.load_file(bad)


def test_serve_params_sweep_keeps_each_runs_server_args() -> None:
    """`--serve-params`: the `vllm serve` overrides named in the SERVE part of the folder."""
    trace = sources.load_file(DIR / "serve-params" / "summary.csv")
    got = sorted(
        (r.params["server_args"]["max_num_seqs"], r.load_value, r.num_requests) for r in trace.runs
    )
    assert got == [(32, 8.0, 64), (32, 32.0, 64), (128, 8.0, 64), (128, 32.0, 64)]
    for r in trace.runs:
        assert r.params["server_args"]["enable_chunked_prefill"] is True
        assert "max_concurrency" not in r.params["server_args"]  # a bench override
        assert r.workload["mean_input_tokens"] == 512.0


def test_server_args_only_from_the_serve_part() -> None:
    doc = {"max_num_seqs": 8, "max_concurrency": 8, "model_id": "a/b"}
    assert vllm_sweep.server_args(doc, "BENCH--max_concurrency=8") == {}
    assert vllm_sweep.server_args(doc, "SERVE--max_num_seqs=8-BENCH--max_concurrency=8") == {
        "max_num_seqs": 8
    }
    named = vllm_sweep.server_args({"_benchmark_name": "big"}, "SERVE--big")
    assert named == {"combination": "big"}
