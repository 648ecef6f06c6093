"""Ray LLMPerf results real runs wrote (shared/traces/llmperf): every study loads, and
loadlens's numbers agree with a standard-library recompute from the raw per-request file and
with LLMPerf's own summary, by LLMPerf's definitions (token_benchmark_ray.py
`metrics_summary`: pandas' linear quantiles of the requests without `error_code`; output
throughput = their output tokens / the test's wall time; completed per minute)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import SHARED_TRACES, one_level, pct

from loadlens import sources
from loadlens.sources import llmperf

ROOT = SHARED_TRACES / "llmperf"
pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason=f"{ROOT} is absent")
STUDIES = sorted(p for p in ROOT.iterdir() if p.is_dir()) if ROOT.is_dir() else []
PRIMARY = [f for study in STUDIES for f in sources.plan([study])[0]]
QUANTILES = ("p25", "p50", "p75", "p90", "p95", "p99")
REL = 0.01  # the brief's bound; measured agreement is exact to float rounding (< 1e-12)


def _id(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _ok(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["error_code"] is None]


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: p.name)
def test_every_file_is_loaded_or_passed_over_with_a_reason(study: Path) -> None:
    files, skipped = sources.plan([study])
    every = {f for f in study.rglob("*") if f.is_file()}
    assert every == set(files) | {s.path for s in skipped}
    assert all(s.reason for s in skipped)
    # Every summary is read with the per-request file it belongs to: nothing summary-only.
    for s in skipped:
        assert s.path.suffix == ".md" or "read together with" in s.reason, s
    for f in files:
        (run,) = sources.load_file(f).runs
        assert run.load_mode == "concurrency" and run.num_requests


def test_the_leaderboard_layout_pairs_individual_with_summary_of_the_same_name() -> None:
    for name in ("bedrock_13b", "perplexity_70b"):
        study = ROOT / f"leaderboard-{name}"
        individual = study / "individual" / f"{name}.json"
        assert llmperf.partners(individual) == [study / "summary" / f"{name}.json"]


def test_bedrock_failures_are_error_rows_with_code_and_message() -> None:
    path = ROOT / "leaderboard-bedrock_13b" / "individual" / "bedrock_13b.json"
    trace = sources.load_file(path)
    (run,) = trace.runs
    assert (run.num_requests, run.num_errors) == (150, 97)
    assert (run.load_mode, run.load_value, run.model) == (
        "concurrency",
        5.0,
        "meta.llama2-13b-chat-v1",
    )
    assert run.workload["input_tokens"] == 550 and run.workload["output_tokens"] == 150
    assert run.params == {"framework": "bedrock", "model_size": "13b"}
    assert trace.source.tool_version == "results 2023-08-31"
    errors = trace.requests.filter(status="error")
    assert errors.height == 97
    assert all(e.startswith("error -100: Output too few tokens ") for e in errors["error"])
    # They ran to the end (short answers refused by the leaderboard's check): measured.
    assert errors["e2e_s"].null_count() == 0


def test_rate_limited_requests_keep_no_placeholder_latency() -> None:
    path = ROOT / "leaderboard-perplexity_70b" / "individual" / "perplexity_70b.json"
    errors = sources.load_file(path).requests.filter(status="error")
    assert errors.height == 2
    assert all(e.startswith("HTTP 429: ") for e in errors["error"])
    assert errors["e2e_s"].null_count() == errors["ttft_s"].null_count() == 2


@pytest.mark.parametrize("path", PRIMARY, ids=_id)
def test_loadlens_agrees_with_a_stdlib_recompute_of_the_raw_file(path: Path) -> None:
    records = json.loads(path.read_text())
    ok = _ok(records)
    (summary_path,) = llmperf.partners(path)
    summary = json.loads(summary_path.read_text())
    row = one_level(sources.load_file(path))
    for raw_key, metric in (("ttft_s", "ttft_s"), ("end_to_end_latency_s", "e2e_s")):
        values = [r[raw_key] for r in ok]
        for q in (50, 95, 99):
            assert row[f"p{q}_{metric}"] == pytest.approx(pct(values, q / 100), rel=1e-12)
    assert row["n_requests"] == len(records)
    assert row["n_errors"] == len(records) - len(ok)
    # The test window LLMPerf divides by, from the two numbers it saved.
    window = (
        summary["results_num_completed_requests"]
        / summary["results_num_completed_requests_per_min"]
        * 60
    )
    assert row["request_throughput_rps"] == pytest.approx(len(ok) / window, rel=1e-12)
    tokens = sum(r["number_output_tokens"] for r in ok)
    assert row["output_throughput_tps"] == pytest.approx(tokens / window, rel=1e-12)


@pytest.mark.parametrize("path", PRIMARY, ids=_id)
def test_loadlens_agrees_with_llmperfs_summary(path: Path) -> None:
    (summary_path,) = llmperf.partners(path)
    summary = json.loads(summary_path.read_text())
    trace = sources.load_file(path)
    row = one_level(trace)
    ok = trace.requests.filter(status="ok")
    for short, metric in (("ttft_s", "ttft_s"), ("end_to_end_latency_s", "e2e_s")):
        for q in QUANTILES:
            expected = summary[f"results_{short}_quantiles_{q}"]
            # p25/p75 are not level columns: the same linear quantile of loadlens's rows.
            ours = row.get(f"{q}_{metric}") or pct(ok[metric].to_list(), int(q[1:]) / 100)
            assert ours == pytest.approx(expected, rel=REL)
        assert row[f"mean_{metric}"] == pytest.approx(summary[f"results_{short}_mean"], rel=REL)
        values = ok[metric].to_list()
        assert min(values) == pytest.approx(summary[f"results_{short}_min"], rel=REL)
        assert max(values) == pytest.approx(summary[f"results_{short}_max"], rel=REL)
        if len(values) > 1:
            spread = statistics.stdev(values)  # pandas' std: sample (n - 1)
            assert spread == pytest.approx(summary[f"results_{short}_stddev"], rel=REL)
    assert row["n_requests"] == summary["results_num_requests_started"]
    assert row["n_errors"] == summary["results_number_errors"]
    assert row["n_requests"] - row["n_errors"] == summary["results_num_completed_requests"]
    assert row["error_rate"] == pytest.approx(summary["results_error_rate"], rel=REL, abs=1e-12)
    assert row["output_throughput_tps"] == pytest.approx(
        summary["results_mean_output_throughput_token_per_s"], rel=REL
    )
    assert row["request_throughput_rps"] * 60 == pytest.approx(
        summary["results_num_completed_requests_per_min"], rel=REL
    )
    assert statistics.fmean(ok["output_tokens"].to_list()) == pytest.approx(
        summary["results_number_output_tokens_mean"], rel=REL
    )


@pytest.mark.parametrize("path", PRIMARY, ids=_id)
def test_request_output_throughput_by_llmperfs_definition_of_the_day(path: Path) -> None:
    """`results_request_output_throughput_token_per_s_*` are pandas quantiles of the
    per-request field. Since llmperf afd137a (April 2024) that field is output tokens / E2E
    (loadlens's rows reproduce it); before, it was streamed chunks / E2E while
    `number_output_tokens` is the Llama-2 tokenizer's recount: a different number by
    definition (METHOD_NOTE), so loadlens does not take it."""
    records = _ok(json.loads(path.read_text()))
    (summary_path,) = llmperf.partners(path)
    summary = json.loads(summary_path.read_text())
    field = [r["request_output_throughput_token_per_s"] for r in records]
    for q in QUANTILES:
        expected = summary[f"results_request_output_throughput_token_per_s_quantiles_{q}"]
        assert pct(field, int(q[1:]) / 100) == pytest.approx(expected, rel=1e-9)
    ok = sources.load_file(path).requests.filter(status="ok")
    ours = [t / e for t, e in zip(ok["output_tokens"], ok["e2e_s"], strict=True)]
    counts = [f * r["end_to_end_latency_s"] for f, r in zip(field, records, strict=True)]
    assert all(abs(c - round(c)) < 1e-6 for c in counts)  # a whole count over E2E
    tokens = [r["number_output_tokens"] for r in records]
    mean = summary["results_request_output_throughput_token_per_s_mean"]
    if [round(c) for c in counts] == tokens:
        assert statistics.fmean(ours) == pytest.approx(mean, rel=REL)
    else:  # chunks, not tokens: the documented pre-April-2024 definition
        chunks = [
            round(c) / r["end_to_end_latency_s"] for c, r in zip(counts, records, strict=True)
        ]
        assert statistics.fmean(chunks) == pytest.approx(mean, rel=1e-9)
        assert "chunks" in llmperf.METHOD_NOTE
