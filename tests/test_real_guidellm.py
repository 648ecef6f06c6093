"""GuideLLM files real runs wrote (../shared/traces/guidellm): loadlens against a stdlib
recompute from the raw per-request entries, and against GuideLLM's own summary by
GuideLLM's definitions (read in its source, vllm-project/guidellm):

* percentiles: the inverse empirical CDF, `pdf[searchsorted(cumsum(p), q, "left")]` over
  the sorted values (duplicates merged from 0.4 on); loadlens is numpy-linear, so the two
  may sit one order statistic apart: asserted as such, each exact by its own definition;
* request rate: successful completions inside the measured window / its duration (= ours);
* token rates: 0.2-era, tokens spread from first token to end over the benchmark span
  (this build books P + O - 1 tokens per request in its total); >= 0.4, the tokens of the
  window's successful requests over the span of their token events, not the window.

The 0.8.0.dev18 report (schema v2, a mock server) lists no requests: it is summary-only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.conftest import SHARED_TRACES, pct, tool_stat, trace_levels

from loadlens import sources

pytestmark = pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent")

DIR = SHARED_TRACES / "guidellm"
V02 = DIR / "grazdev-eks-a10g-qwen25-7b-throughput-1000req-v0.2-schema" / "benchmarks.json"
V06 = DIR / "inference-sim-codellama34b-tp1-sweep-v0.6dev-errored" / "guidellm-results.json"
V08 = (
    DIR
    / "llmd-benchmark-test-fixture-v0.8.0dev18-MOCK-SERVER-constant-2-4rps"
    / "guidellm_report_v2.json"
)
DETAILED = [V02, V06]
PCTS = (0.50, 0.95, 0.99)


def _raw(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())  # stdlib json: bare Infinity/NaN included


def inverse_cdf(values: list[float], q: float, merge: bool = True) -> tuple[float, int]:
    """GuideLLM's percentile and its index in the sorted values: sort, merge equal values
    (>= 0.4), cumulative share summed in order, first value whose share reaches q."""
    ordered = sorted(values)
    if merge:
        uniq: list[float] = []
        weights: list[float] = []
        for v in ordered:
            if uniq and uniq[-1] == v:
                weights[-1] += 1.0
            else:
                uniq.append(v)
                weights.append(1.0)
    else:
        uniq, weights = ordered, [1.0] * len(ordered)
    total = sum(weights)
    cum = 0.0
    for value, w in zip(uniq, weights, strict=True):
        cum += w / total
        if cum >= q:
            return value, ordered.index(value)
    return uniq[-1], len(ordered) - 1


def _entries(path: Path, bench: dict[str, Any]) -> dict[str, list[dict[str, float]]]:
    """Per status, the raw requests GuideLLM's summary counts, as plain seconds/tokens."""
    out: dict[str, list[dict[str, float]]] = {}
    old = "args" in bench
    for status in ("successful", "errored", "incomplete"):
        rows = []
        for r in bench["requests"][status]:
            if old:
                start, end, first = r["start_time"], r["end_time"], r.get("first_token_time")
                last, iters = r.get("last_token_time"), None
            else:
                t = r["info"]["timings"]
                # GuideLLM's request_start_time / request_end_time, from the timings
                start = t["request_start"] if t["request_start"] is not None else t["resolve_start"]
                end = t["request_end"] if t["request_end"] is not None else t["resolve_end"]
                first, last = t.get("first_token_iteration"), t.get("last_token_iteration")
                iters = t.get("token_iterations")
                if end < bench["start_time"] or start > bench["end_time"]:
                    continue  # outside the measured window
            rows.append(
                {
                    "start": start,
                    "end": end,
                    "first": first,
                    "last": last,
                    "iters": iters,
                    "e2e": end - start if status == "successful" else None,
                    "ttft": first - start if first is not None else None,
                    "prompt": r.get("prompt_tokens") or 0,
                    "out": r.get("output_tokens") or 0,
                    "itl_ms": r.get("inter_token_latency_ms"),
                }
            )
        out[status] = rows
    return out


# --------------------------------------------------------------------------- loads


def test_runs_as_the_files_say() -> None:
    old = sources.load_file(V02)
    (run,) = old.runs
    assert old.source.tool_version is None  # the 0.2-era layout writes no version
    assert (run.load_mode, run.load_value) == ("throughput", None)
    assert (run.num_requests, run.num_errors, run.model) == (1000, 0, "qwen2.5-7b")
    assert run.workload["input_tokens"] == 512 and run.workload["output_tokens"] == 128
    assert run.workload["dataset"] == "synthetic"
    assert run.params["target"] == "http://vllm.llm-serving.svc.cluster.local:8000"

    sweep = sources.load_file(V06)
    assert sweep.source.tool_version == "0.6.0.dev2"
    levels = [(r.load_mode, r.load_value) for r in sweep.runs]
    assert levels[:2] == [("concurrency", 1.0), ("throughput", None)]
    rates = _raw(V06)["benchmarks"][0]["config"]["profile"]["measured_rates"]
    assert [v for _, v in levels[2:]] == rates and {m for m, _ in levels[2:]} == {"rate"}
    assert [r.num_requests for r in sweep.runs] == [40] * 5
    assert [r.num_errors for r in sweep.runs] == [0, 1, 0, 0, 2]
    # No model is configured; each request's body names it.
    assert {r.model for r in sweep.runs} == {"codellama/CodeLlama-34b-Instruct-hf"}
    # Synthetic data: a 1024-token shared prefix + 2048 prompt tokens, 32 out.
    assert sweep.runs[0].workload["input_tokens"] == 3072
    assert sweep.runs[0].workload["output_tokens"] == 32
    assert sweep.runs[1].workload["max_concurrency"] == 512  # GuideLLM's default cap
    failed = sweep.requests.filter(pl.col("status") != "ok")
    assert failed.height == 3 and failed["error"].str.contains("400 Bad Request").all()

    v2 = sources.load_file(V08)
    assert v2.source.tool_version == "0.8.0.dev18"
    assert [(r.load_mode, r.load_value) for r in v2.runs] == [("rate", 2.0), ("rate", 4.0)]
    assert [(r.num_requests, r.num_errors) for r in v2.runs] == [(2, 0), (2, 0)]
    assert {r.model for r in v2.runs} == {"e2e-mock-model"}
    assert v2.requests.is_empty()  # its request lists are empty: summary only
    assert v2.runs[0].workload["output_tokens"] == 8
    assert v2.runs[0].params["target"] == "http://127.0.0.1:8765"


# --------------------------------------------------------------------------- stdlib recompute


@pytest.mark.parametrize("path", DETAILED, ids=lambda p: p.parent.name)
def test_loadlens_matches_a_stdlib_recompute_from_the_raw_entries(path: Path) -> None:
    doc = _raw(path)
    trace = sources.load_file(path)
    mine = trace_levels(trace)
    for run, bench in zip(trace.runs, doc["benchmarks"], strict=True):
        raw = _entries(path, bench)
        ok = raw["successful"]
        row = mine[run.run_key]
        assert row["basis"] == "requests"
        assert row["n_requests"] == sum(len(v) for v in raw.values())
        assert row["n_errors"] == len(raw["errored"]) + len(raw["incomplete"])
        for metric, key in (("ttft_s", "ttft"), ("e2e_s", "e2e")):
            values = [r[key] for r in ok if r[key] is not None]
            for q in PCTS:
                name = f"p{round(q * 100)}_{metric}"
                assert row[name] == pytest.approx(pct(values, q), rel=1e-9), name
        duration = bench["duration"]
        assert row["request_throughput_rps"] == pytest.approx(len(ok) / duration, rel=1e-12)
        out = sum(r["out"] for r in ok)
        assert row["output_throughput_tps"] == pytest.approx(out / duration, rel=1e-12)


# --------------------------------------------------------------------------- vs the tool


@pytest.mark.parametrize("path", DETAILED, ids=lambda p: p.parent.name)
def test_loadlens_against_guidellms_summary(path: Path) -> None:
    doc = _raw(path)
    trace = sources.load_file(path)
    mine = trace_levels(trace)
    merge = path != V02  # 0.2/0.3 keep equal values apart in the CDF
    for run, bench in zip(trace.runs, doc["benchmarks"], strict=True):
        k = run.run_key
        row = mine[k]
        raw = _entries(path, bench)
        ok = raw["successful"]
        totals = bench["request_totals"] if "args" in bench else bench["metrics"]["request_totals"]
        assert run.num_requests == totals["total"]
        assert run.num_errors == totals["errored"] + totals["incomplete"]
        assert row["n_requests"] - row["n_errors"] == totals["successful"]

        # Latency: means are the same number; percentiles each exact by its definition,
        # within one order statistic of each other.
        for metric, key, factor in (("ttft_s", "ttft", 1e-3), ("e2e_s", "e2e", 1.0)):
            values = [r[key] for r in ok if r[key] is not None]
            assert row[f"mean_{metric}"] == pytest.approx(tool_stat(trace, k, metric, "mean"))
            ordered = sorted(values)
            for q in PCTS:
                tool = tool_stat(trace, k, metric, f"p{round(q * 100)}")
                expected, at = inverse_cdf(values, q, merge)
                assert tool == pytest.approx(expected, rel=1e-6, abs=1e-9 * factor)
                ll = row[f"p{round(q * 100)}_{metric}"]
                if abs(ll - tool) <= 0.01 * tool:
                    continue
                rank = q * (len(values) - 1)
                lo, hi = min(math.floor(rank), at), max(math.ceil(rank), at)
                assert hi - lo <= 2, (k, metric, q)  # neighbouring order statistics
                assert ordered[lo] <= ll <= ordered[hi] and ordered[lo] <= tool <= ordered[hi]

        # ITL: GuideLLM's mean is token-weighted (the mean of all gaps); the same weighting
        # over loadlens's per-request TPOT, (e2e - ttft) / (out - 1), agrees within 1 %.
        multi = [r for r in ok if r["out"] > 1 and r["ttft"] is not None]
        weights = [r["out"] - 1 for r in multi]
        tool_itl = tool_stat(trace, k, "tpot_s", "mean")
        raw_itl = sum(r["itl_ms"] * w for r, w in zip(multi, weights, strict=True)) / sum(weights)
        assert tool_itl == pytest.approx(raw_itl / 1000, rel=1e-9)
        ours = [(r["e2e"] - r["ttft"]) / (r["out"] - 1) for r in multi]
        weighted = sum(t * w for t, w in zip(ours, weights, strict=True)) / sum(weights)
        assert weighted == pytest.approx(tool_itl, rel=0.01)
        assert tool_stat(trace, k, "itl_s", "mean") == tool_itl

        # Request rate: completions inside the window per second of it, = loadlens's
        # (these files set no warm-up or cool-down, so every kept request completed in it).
        assert "warmup" not in run.workload and "cooldown" not in run.workload
        duration = bench["duration"]
        done = [r for r in ok if bench["start_time"] <= r["end"] <= bench["end_time"] + 1e-9]
        # (GuideLLM merges events less than 0.1 ms apart, keeping the earlier time: when
        # the last completion ends the window, its span is up to 0.1 ms short.)
        tool_rps = tool_stat(trace, k, "request_throughput_rps", "value")
        assert tool_rps == pytest.approx(len(done) / duration, rel=1e-5)
        assert row["request_throughput_rps"] == pytest.approx(tool_rps, rel=1e-5)

        # Token rates, by each version's definition.
        out = sum(r["out"] for r in ok)
        prompt = sum(r["prompt"] for r in ok)
        tool_out = tool_stat(trace, k, "output_throughput_tps", "value")
        tool_total = tool_stat(trace, k, "total_token_throughput_tps", "value")
        assert row["output_throughput_tps"] == pytest.approx(out / duration, rel=1e-12)
        if path == V02:
            # Tokens spread from first token to end over the benchmark's span; the final
            # event is not counted (one token), and this build books P + O - 1 per request.
            assert tool_out == pytest.approx((out - 1) / duration, rel=1e-6)
            assert tool_total == pytest.approx((prompt + out - len(ok) - 1) / duration, rel=1e-6)
            assert row["output_throughput_tps"] == pytest.approx(tool_out, rel=1e-4)
            assert row["total_token_throughput_tps"] == pytest.approx(tool_total, rel=0.01)
        else:
            # >= 0.4: over the span of the token events, not the window.
            def event_times(r: dict[str, float]) -> list[float]:
                if r["first"] is None or r["last"] is None or (r["iters"] or 0) <= 1:
                    return [r["last"] if r["last"] is not None else r["end"]]
                return [r["first"], r["last"]]

            times = [t for r in ok for t in event_times(r)]
            span = max(times) - min(times)
            assert tool_out == pytest.approx(out / span, rel=1e-5)
            prompt_times = [r["first"] if r["first"] is not None else r["end"] for r in ok]
            total_span = max(times + prompt_times) - min(times + prompt_times)
            assert tool_total == pytest.approx((prompt + out) / total_span, rel=1e-5)
            ratio = row["output_throughput_tps"] / tool_out
            assert ratio == pytest.approx(span / duration, rel=1e-5)  # the two spans


def test_summary_only_v2_report_passes_the_tool_numbers_through() -> None:
    doc = _raw(V08)
    trace = sources.load_file(V08)
    mine = trace_levels(trace)
    for run, bench in zip(trace.runs, doc["benchmarks"], strict=True):
        assert not any(bench["requests"][s] for s in ("successful", "errored", "incomplete"))
        assert run.workload["requests_sampled"] is True
        row = mine[run.run_key]
        assert row["basis"] == "summary"
        metrics = bench["metrics"]
        assert row["n_requests"] == metrics["request_totals"]["total"]
        assert row["n_errors"] == 0
        for metric, name, factor in (
            ("e2e_s", "request_latency", 1.0),
            ("ttft_s", "time_to_first_token_ms", 1e-3),
        ):
            dist = metrics[name]["successful"]
            assert row[f"mean_{metric}"] == pytest.approx(dist["mean"] * factor, rel=1e-12)
            for q in ("p50", "p90", "p95", "p99"):
                expected = dist["percentiles"][q] * factor
                assert row[f"{q}_{metric}"] == pytest.approx(expected, rel=1e-12)
        for column, name in (
            ("request_throughput_rps", "requests_per_second"),
            ("output_throughput_tps", "output_tokens_per_second"),
            ("total_token_throughput_tps", "tokens_per_second"),
        ):
            expected = metrics[name]["successful"]["mean"]
            assert row[column] == pytest.approx(expected, rel=1e-12)
        assert run.duration_s == pytest.approx(bench["duration"], rel=1e-12)
