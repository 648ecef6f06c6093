"""Each level as a story over time, on the real traces: every level whose requests carry
start times gets a timeline, its windows account for every timed request and all of the time
they were in flight, and its trend test gives a verdict (never an exception). Tools that
record no per-request start time get none invented."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest
from tests.conftest import SHARED_TRACES

from loadlens import api
from loadlens.analysis.timeline import MIN_REQUESTS, steadiness, timeline
from loadlens.warehouse import Warehouse

pytestmark = pytest.mark.skipif(
    not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent in this checkout"
)

# Tools whose result files (every layout in the corpus) record no per-request start time.
NO_START_TIMES = {"sglang", "genai-bench", "llmperf"}
# vLLM records them only from PR #32667 (January 2026); the corpus's files are older.
OLD_VLLM = "vllm/llmk8s-azure-nd96asr-a100-llama33-70b-tp8-qps-sweep"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[pl.DataFrame, pl.DataFrame]]:
    """Every study ingested as its own deployment (`<tool>/<study>`): runs and requests."""
    db = tmp_path_factory.mktemp("timelines") / "w.duckdb"
    with Warehouse(db) as wh:
        for study in sorted(p for p in SHARED_TRACES.glob("*/*") if p.is_dir()):
            api.ingest(wh, [study], f"{study.parent.name}/{study.name}")
        runs = wh.runs()
        requests = wh.requests(runs["run_id"].to_list(), gaps=False)
    yield runs, requests


def _timed_levels(runs: pl.DataFrame, requests: pl.DataFrame) -> list[dict]:
    counts = (
        requests.filter(pl.col("start_s").is_not_null() & pl.col("e2e_s").is_not_null())
        .group_by("run_id")
        .agg(timed=pl.len())
        .filter(pl.col("timed") >= MIN_REQUESTS)
    )
    return runs.join(counts, on="run_id").sort("deployment", "run_id").to_dicts()


def test_levels_with_start_times_are_found_on_the_real_traces(corpus) -> None:
    runs, requests = corpus
    levels = _timed_levels(runs, requests)
    tools = {r["deployment"].split("/")[0] for r in levels}
    assert "guidellm" in tools
    assert len(levels) >= 6  # GuideLLM: 1 throughput level + a 5-level sweep


def test_start_times_count_from_each_levels_first_send(corpus) -> None:
    _, requests = corpus
    timed = requests.filter(pl.col("start_s").is_not_null())
    per_level = timed.group_by("run_id").agg(
        lo=pl.col("start_s").min(), negative=(pl.col("start_s") < 0).sum()
    )
    assert per_level.height > 0
    for r in per_level.iter_rows(named=True):
        assert r["negative"] == 0, r
        assert r["lo"] == pytest.approx(0.0, abs=1e-9), r


def test_tools_that_record_no_start_time_get_none_invented(corpus) -> None:
    runs, requests = corpus
    rows = requests.join(runs.select("run_id", "deployment"), on="run_id")
    tool = pl.col("deployment").str.split("/").list.first()
    none = rows.filter(tool.is_in(NO_START_TIMES) | (pl.col("deployment") == OLD_VLLM))
    assert none.height > 2000  # genai-bench, LLMPerf, SGLang details, vLLM's QPS sweep
    assert none["start_s"].null_count() == none.height


def test_every_timed_level_tells_its_story(corpus) -> None:
    runs, requests = corpus
    levels = _timed_levels(runs, requests)
    assert levels
    verdicts = {s.run_id: s for s in steadiness(requests)}
    for level in levels:
        _check_level(level, requests, verdicts)


def _check_level(level: dict, requests: pl.DataFrame, verdicts: dict) -> None:
    run_id = level["run_id"]
    rows = requests.filter(
        (pl.col("run_id") == run_id)
        & pl.col("start_s").is_not_null()
        & pl.col("e2e_s").is_not_null()
    )
    frame = timeline(requests, pl.DataFrame(), run_id)
    assert frame.height > 0, level["deployment"]
    width = float(frame["t_s"][1] - frame["t_s"][0])
    assert width > 0
    # Every timed request completes in exactly one window...
    completed = float(frame["completions_per_s"].sum()) * width
    assert completed == pytest.approx(rows.height, rel=1e-9)
    assert rows.height == level["timed"]
    # ... which, where failed requests carry no latency, is every request that succeeded.
    ok = requests.filter((pl.col("run_id") == run_id) & (pl.col("status") == "ok")).height
    assert rows.height == ok == level["num_requests"] - level["num_errors"]
    # The windows hold all of the time the requests were in flight (Little's law, exactly).
    busy = float(frame["in_flight"].sum()) * width
    assert busy == pytest.approx(float(rows["e2e_s"].sum()), rel=1e-6)
    if level["load_mode"] == "concurrency":  # a closed loop never holds more than N open
        assert float(frame["in_flight"].max()) <= level["load_value"] * (1 + 1e-6)
    verdict = verdicts[run_id]
    assert verdict.status in {"sustainable", "unsustainable", "unknown"}
    if verdict.status != "unknown":
        assert verdict.p_value is not None and verdict.windows >= 4


def test_a_late_start_stays_in_the_window_not_in_the_start_times(corpus) -> None:
    """GuideLLM 0.6 dev's constant level at 1.95 req/s began 6.5 s before its first send
    (its requests were targeted from 0.5 s, sent in a burst): start_s counts from the send,
    the measured window says where the benchmark began."""
    runs, _ = corpus
    level = runs.filter(
        pl.col("deployment").str.contains("v0.6dev-errored")
        & (pl.col("load_mode") == "rate")
        & (pl.col("load_value") < 2.0)
    )
    assert level.height == 1
    window = pl.Series(level["workload"]).to_list()[0]
    lo, hi = _window(window)
    assert lo == pytest.approx(-6.496, abs=0.001)
    assert hi - lo == pytest.approx(level["duration_s"][0], rel=1e-6)


def _window(workload: object) -> tuple[float, float]:
    import json

    doc = json.loads(workload) if isinstance(workload, str) else workload
    assert isinstance(doc, dict)
    lo, hi = doc["measured_window_s"]
    return float(lo), float(hi)


def test_timeline_of_a_level_without_start_times_is_empty(corpus) -> None:
    runs, requests = corpus
    old = runs.filter(pl.col("deployment") == OLD_VLLM)
    assert old.height == 4
    for run_id in old["run_id"]:
        assert timeline(requests, pl.DataFrame(), run_id).is_empty()
