"""The runner against a real engine: llama.cpp's llama-server with SmolLM2-135M on CPU.

Marked `engine`: `make test-engine` builds the engine once per machine (`make engine`) and
runs these; `make test` leaves them out. Without a built engine they skip, saying so.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest

from loadlens import testbed
from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.scrape import parse_metrics
from loadlens.runner.sweep import Target, sweep
from loadlens.runner.workloads import synthetic
from loadlens.warehouse import Warehouse

pytestmark = pytest.mark.engine

ENGINE = testbed.find()
needs_engine = pytest.mark.skipif(
    ENGINE is None, reason=f"no engine built in {testbed.CACHE}: run `make engine`"
)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[testbed.Running]:
    assert ENGINE is not None
    log = tmp_path_factory.mktemp("engine") / "llama-server.log"
    with testbed.serve(ENGINE, slots=8, context=8192, threads=1, max_seconds=1200, log=log) as s:
        yield s


def metrics(running: testbed.Running) -> dict[str, float]:
    with urllib.request.urlopen(running.metrics, timeout=10) as r:
        return parse_metrics(r.read().decode())


def target(running: testbed.Running, **kw: object) -> Target:
    return Target(
        running.api,
        testbed.MODEL_ALIAS,
        use_nvml=False,
        timeout_s=120.0,
        metrics_urls=(running.metrics,),
        **kw,  # type: ignore[arg-type]
    )


@needs_engine
def test_a_sweep_past_the_slots_loses_no_request_and_matches_the_servers_counters(
    engine: testbed.Running, tmp_path: Path
) -> None:
    before = metrics(engine)
    with Warehouse(tmp_path / "w.duckdb") as wh:
        outcomes = sweep(
            target(engine),
            synthetic(48, 16),
            [Level("concurrency", c) for c in (1, 4, 8, 16)],
            Plan(requests=40, warmup=0),
            deployment="llama",
            out_dir=tmp_path / "runs",
            warehouse=wh,
        )
        runs = wh.runs(["llama"])
        rows = wh.requests(runs["run_id"].to_list())
        samples = wh.server_samples(runs["run_id"].to_list())
    after = metrics(engine)
    assert [o.records for o in outcomes] == [40] * 4
    assert all(not o.errors for o in outcomes), [o.errors for o in outcomes]
    assert rows.filter(pl.col("status") != "ok").is_empty()
    # Every token the server says it generated, the client received and recorded.
    generated = after["generation_tokens_total"] - before["generation_tokens_total"]
    assert generated == rows["output_tokens"].sum() == 160 * 16
    # More users than slots: llama.cpp defers the rest, and the sweep saw its queue.
    waiting = samples.filter(pl.col("signal") == "requests_waiting")
    assert waiting["value"].max() > 0
    busy = samples.filter(pl.col("signal") == "requests_running")
    assert busy["value"].max() == engine.slots


@needs_engine
@pytest.mark.parametrize("api", ["chat", "completions"])
@pytest.mark.parametrize("stream", [True, False])
def test_chat_and_completions_streamed_and_not(
    engine: testbed.Running, tmp_path: Path, api: str, stream: bool
) -> None:
    with Warehouse(tmp_path / "w.duckdb") as wh:
        sweep(
            target(engine, api=api, stream=stream),
            synthetic(32, 8),
            [Level("concurrency", 2)],
            Plan(requests=6, warmup=0),
            deployment="llama",
            out_dir=tmp_path / "runs",
            warehouse=wh,
        )
        rows = wh.requests(wh.runs(["llama"])["run_id"].to_list())
    assert rows["status"].to_list() == ["ok"] * 6, rows["error"].to_list()
    assert rows["output_tokens"].to_list() == [8] * 6  # ignore_eos honoured
    assert rows["e2e_s"].min() > 0
    assert (rows["ttft_s"].null_count() == 0) if stream else (rows["ttft_s"].null_count() == 6)


@needs_engine
def test_llamacpp_metrics_map_to_canonical_signals(engine: testbed.Running) -> None:
    with urllib.request.urlopen(engine.metrics, timeout=10) as r:
        text = r.read().decode()
    got = parse_metrics(text)
    for signal in (
        "requests_running",
        "requests_waiting",
        "prompt_tokens_total",
        "generation_tokens_total",
        "prompt_seconds_total",
        "generation_seconds_total",
        "decode_steps_total",
        "busy_slots_per_step",
    ):
        assert signal in got, (signal, sorted(got))
    # The model answers under the alias the runner asks for.
    with urllib.request.urlopen(f"{engine.api}/models", timeout=10) as r:
        ids = [m["id"] for m in json.loads(r.read())["data"]]
    assert testbed.MODEL_ALIAS in ids
