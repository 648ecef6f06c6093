"""The story over time in the capacity brief: a figure per series for the highest level
within every SLO beside the first to miss one, every timed level as small multiples, the
early warning named in the decision, unsustainable levels and cold starts marked in the
level table, and the warm-up policy in the method notes.

Built on the sample data's A100 (sample_data/generate.py): a concurrency sweep and an
open-loop rate sweep past its capacity (about 4.6 req/s), vLLM files with `start_times`."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import SAMPLE_DATA, pct

from loadlens import api
from loadlens.analysis.result import Analysis
from loadlens.analysis.timeline import timeline
from loadlens.config import load_config
from loadlens.report.brief import Brief, build_brief, story_levels, warning_sentence
from loadlens.warehouse import Warehouse

A100 = SAMPLE_DATA / "a100-vllm-tp1"


def _analyze(exclude_warmup: str = "0") -> tuple[Analysis, pl.DataFrame, pl.DataFrame]:
    config = load_config(SAMPLE_DATA / "loadlens.toml")
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "w.duckdb") as wh:
        api.ingest(wh, [A100], "a100-vllm-tp1")
        analysis = api.analyze(
            wh, None, config.slos, 0.95, 0.8, config, exclude_warmup=exclude_warmup
        )
        ids = analysis.runs["run_id"].to_list()
        return analysis, wh.requests(ids, gaps=False), wh.server_samples(ids)


@pytest.fixture(scope="module")
def story() -> tuple[Analysis, Brief, pl.DataFrame, pl.DataFrame]:
    analysis, requests, samples = _analyze()
    # The brief lays out `Analysis.timelines`: here filled by the test itself, from the
    # model, so the layout is tested apart from which levels api.analyze times.
    timelines = {r: timeline(requests, samples, r) for r in analysis.runs["run_id"]}
    analysis = dataclasses.replace(analysis, timelines=timelines)
    return analysis, build_brief(analysis), requests, samples


def _run(analysis: Analysis, mode: str, load: float) -> str:
    row = analysis.level("a100-vllm-tp1", mode, load)
    assert row is not None, (mode, load)
    return str(row["run_id"])


def test_story_levels_are_the_last_within_slo_and_the_first_breach(story) -> None:
    analysis, *_ = story
    picked = {(name, mode): roles for name, mode, roles in story_levels(analysis)}
    assert picked[("a100-vllm-tp1", "rate")] == [
        (_run(analysis, "rate", 4), "within"),
        (_run(analysis, "rate", 5), "breach"),
    ]
    assert picked[("a100-vllm-tp1", "concurrency")] == [
        (_run(analysis, "concurrency", 20), "within"),
        (_run(analysis, "concurrency", 40), "breach"),
    ]


def test_story_figure_per_series_titled_with_its_loads(story) -> None:
    _, brief, *_ = story
    by_title = {s["title"]: s for s in brief.stories}
    assert set(by_title) == {
        "a100-vllm-tp1, concurrency sweep: concurrency 20 and concurrency 40 over time",
        "a100-vllm-tp1, request-rate sweep: 4 req/s and 5 req/s over time",
    }
    rate = by_title["a100-vllm-tp1, request-rate sweep: 4 req/s and 5 req/s over time"]
    assert rate["svg"].startswith("<svg")
    for text in (
        "4 req/s: meets every SLO",
        "5 req/s: unsustainable; misses p95 E2E",
        "waiting (server)",
        "KV-cache usage",
        "p95 TTFT",
        "Seconds into the run",
    ):
        assert text in rate["svg"], text
    assert "Early warning at 4 req/s: KV-cache usage peaks at 93%" in rate["note"]
    assert not brief.story_notes


def test_appendix_has_every_timed_level_as_small_multiples(story) -> None:
    _, brief, *_ = story
    assert [g["title"] for g in brief.story_grids] == [
        "a100-vllm-tp1, concurrency sweep",
        "a100-vllm-tp1, request-rate sweep",
    ]
    rate = brief.story_grids[1]
    assert "Latency kept growing (unsustainable): 5, 6." in rate["note"]
    for load in ("2", "3", "4", "5", "6"):
        assert f">{load}</text>" in rate["svg"], load
    # one legend, one y scale per row: the two rows' titles once each
    assert rate["svg"].count(">p95 latency (s)</text>") == 1


def test_decision_names_the_early_warning_with_its_numbers(story) -> None:
    _, brief, *_ = story
    # Independently of loadlens: the KV-cache peak from the samples file and the headroom
    # from the p95 of the file's own E2E latencies.
    samples = [
        json.loads(line) for line in (A100 / "vllm-r4.metrics.jsonl").read_text().splitlines()
    ]
    kv = max(s["value"] for s in samples if s["signal"] == "kv_cache_usage")
    doc = json.loads((A100 / "vllm-r4.json").read_text())
    e2e = [
        t + sum(g)
        for t, g, e in zip(doc["ttfts"], doc["itls"], doc["errors"], strict=True)
        if not e
    ]
    headroom = 1 - pct(e2e, 0.95) / 10
    assert kv >= 0.9 and pct(e2e, 0.95) < 10
    expected = (
        f"at 4 req/s, a100-vllm-tp1 meets every SLO ({headroom:.0%} headroom on p95 E2E) "
        f"but KV-cache usage peaks at {kv:.0%}; at 5 req/s it misses p95 E2E and falls behind"
    )
    assert expected in brief.decision, brief.decision
    assert brief.decision.count("Early warning") == 1
    assert warning_sentence([]) == ""


def test_level_table_marks_unsustainable_levels_and_cold_starts(story) -> None:
    analysis, brief, *_ = story
    rows = {r["load"]: r for r in brief.level_tables["a100-vllm-tp1"]}
    assert rows["5 req/s"]["verdict"] == "unsustainable; misses p95 E2E"
    assert rows["6 req/s"]["verdict"].startswith("unsustainable; misses")
    assert rows["4 req/s"]["verdict"] == "meets" and rows["4 req/s"]["miss"] == ""
    cold = {r["load"]: r["cold"] for r in brief.level_tables["a100-vllm-tp1"] if r["cold"]}
    assert cold == {
        f"concurrency {analysis.runs.filter(pl.col('run_id') == k)['load_value'][0]:g}": (
            f"{'first wave' if c.first_wave else 'cold start'} ×{c.n_slow}"
        )
        for k, c in analysis.cold_starts.items()
        if k in set(analysis.runs.filter(pl.col("deployment") == "a100-vllm-tp1")["run_id"])
    }


def test_method_notes_name_the_warmup_policy(story) -> None:
    _, brief, *_ = story
    assert any(
        n.startswith("Warm-up: every request is in the statistics (--exclude-warmup 0)")
        for n in brief.method_notes
    ), brief.method_notes
    auto, *_ = _analyze("auto")
    notes = build_brief(auto, with_charts=False).method_notes
    left = sum(auto.excluded.values())
    assert left > 0
    assert any(
        n.startswith("Warm-up: --exclude-warmup auto") and f"({left:,} requests in all)" in n
        for n in notes
    ), notes
    rows = build_brief(auto, with_charts=False).level_tables["a100-vllm-tp1"]
    assert any(r["cold"].endswith(", left out") for r in rows)


def test_without_timelines_the_brief_says_so(story) -> None:
    analysis, *_ = story
    bare = dataclasses.replace(analysis, timelines={})
    brief = build_brief(bare)
    assert brief.stories == [] and brief.story_grids == []
    assert brief.story_notes == [
        "a100-vllm-tp1, concurrency sweep: no story over time at concurrency 20, concurrency "
        "40 (its requests carry no send times, or too few)",
        "a100-vllm-tp1, request-rate sweep: no story over time at 4 req/s, 5 req/s (its "
        "requests carry no send times, or too few)",
    ]
