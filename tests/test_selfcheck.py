"""The client's measurement of itself: send lag, event-loop lag, CPU share, disturbed."""

from __future__ import annotations

import asyncio
import time

import pytest

from loadlens.runner.client import Record
from loadlens.runner.loadgen import Level, Plan, run_level
from loadlens.runner.selfcheck import ClientLoad, Monitor, quantile, verdict


def test_quantile_is_numpys_linear() -> None:
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert quantile([1.0, 2.0, 3.0, 4.0], 0.99) == pytest.approx(3.97)
    assert quantile([], 0.5) is None


def test_an_idle_client_is_not_disturbed() -> None:
    load = ClientLoad(loop_lags=[0.0002] * 100, cpu_s=0.5, wall_s=10.0)
    v = verdict([0.0003] * 200, load, p50_ttft_s=0.040)
    assert v["disturbed"] is False and v["disturbed_why"] is None
    assert v["sent_late_1ms"] == 0 and v["cpu_share"] == 0.05


@pytest.mark.parametrize(
    ("sends", "lags", "cpu", "why"),
    [
        ([0.0003] * 98 + [0.05, 0.06], [0.0002] * 100, 0.5, "p99 send lag"),
        ([0.0003] * 100, [0.0002] * 90 + [0.03] * 10, 0.5, "p99 event-loop lag"),
        ([0.0003] * 100, [0.0002] * 100, 9.5, "busy 95% of a core"),
    ],
)
def test_lag_against_ttft_or_a_busy_core_disturbs(sends, lags, cpu, why) -> None:
    v = verdict(sends, ClientLoad(loop_lags=lags, cpu_s=cpu, wall_s=10.0), p50_ttft_s=0.040)
    assert v["disturbed"] is True and why in v["disturbed_why"]


def test_the_monitor_sees_a_blocked_loop() -> None:
    async def main() -> ClientLoad:
        async with Monitor() as m:
            await asyncio.sleep(0.05)
            time.sleep(0.08)  # the loop is blocked: every stamp would absorb this
            await asyncio.sleep(0.05)
        return m.load

    load = asyncio.run(main())
    assert max(load.loop_lags) >= 0.06
    assert load.wall_s >= 0.18 and load.cpu_s >= 0.0


@pytest.mark.parametrize("level", [Level("concurrency", 2), Level("rate", 50)])
def test_every_recorded_request_says_when_it_was_due(level: Level) -> None:
    async def send(seq: int) -> Record:
        sent = time.perf_counter()
        await asyncio.sleep(0.01)
        return Record(seq=seq, sent=sent, chunks=[sent + 0.005], ended=time.perf_counter())

    records = asyncio.run(run_level(send, level, Plan(requests=8, warmup=2)))
    assert len(records) == 8 and all(r.due is not None for r in records)
    assert all(r.sent - r.due < 0.02 for r in records)  # nothing here delays a send
    if level.mode == "concurrency":
        # a stream's next request is due when its previous one ended
        ends = sorted(r.ended for r in records)
        assert sum(r.due in ends for r in records) >= 6


def test_a_disturbed_level_is_a_warning_that_names_the_lag_and_the_remedy() -> None:
    import json
    from types import SimpleNamespace

    import polars as pl

    from loadlens.analysis.shortfall import client_disturbed
    from loadlens.findings import client_disturbed as finding
    from loadlens.report.brief import _verdict_cell

    why = "p99 send lag 85.0 ms is over 5% of p50 TTFT (40 ms)"
    client = verdict([0.0003] * 98 + [0.085] * 2, ClientLoad([0.0001], 0.1, 1.0), 0.040)
    assert client["disturbed_why"] == why
    runs = pl.DataFrame(
        {
            "run_id": ["a", "b"],
            "deployment": ["d", "d"],
            "load_mode": ["concurrency", "concurrency"],
            "load_value": [10.0, 1000.0],
            "num_requests": [100, 2000],
            "workload": [
                json.dumps({"client": {"disturbed": False}}),
                json.dumps({"client": client}),
            ],
        }
    )
    disturbed = client_disturbed(runs)
    assert list(disturbed) == ["b"]
    a = SimpleNamespace(runs=runs, disturbed=disturbed, missed={"b": ("p95 TTFT",)})
    (f,) = finding.find(a)
    assert f.severity == "warning" and "At concurrency 1,000" in f.sentence
    assert why in f.sentence and "--workers" in f.sentence and "p95 TTFT" in f.sentence
    assert _verdict_cell(("p95 TTFT",), True) == "misses p95 TTFT (client lagged)"
    assert _verdict_cell((), False) == "meets"


def test_a_starved_client_marks_its_level_disturbed_and_an_idle_one_does_not(
    tmp_path,
) -> None:
    import json
    import threading

    from tests.test_runner import _serve

    from loadlens.runner.sweep import Target, sweep
    from loadlens.runner.workloads import synthetic
    from loadlens.warehouse import Warehouse

    def measure(server: str, name: str) -> dict:
        with Warehouse(tmp_path / f"{name}.duckdb") as wh:
            sweep(
                Target(f"{server}/v1", "loadlens-sim", use_nvml=False),
                synthetic(20, 8),
                [Level("concurrency", 4)],
                Plan(requests=40),
                deployment=name,
                out_dir=tmp_path / name,
                warehouse=wh,
            )
            return json.loads(wh.runs([name])["workload"][0])["client"]

    for server in _serve("--profile", "instant", "--step-ms", "100"):
        idle = measure(server, "idle")
        stop = threading.Event()

        def burn(stop: threading.Event = stop) -> None:
            # holds the GIL in slices: the event loop waits its turn
            while not stop.is_set():
                sum(i * i for i in range(200_000))

        burner = threading.Thread(target=burn, daemon=True)
        burner.start()
        try:
            starved = measure(server, "starved")
        finally:
            stop.set()
            burner.join()
    assert idle["disturbed"] is False, idle
    assert starved["disturbed"] is True, starved
    assert starved["loop_lag_p99_s"] > idle["loop_lag_p99_s"]


def test_the_runner_takes_uvloop_when_present_unless_told_not_to(monkeypatch) -> None:
    import importlib.util

    from loadlens.runner import loop

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    expected = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    assert loop.name() == expected and loop.run(answer()) == 42
    monkeypatch.setenv("LOADLENS_NO_UVLOOP", "1")
    assert loop.name() == "asyncio" and loop.run(answer()) == 42


def test_partial_scraping_is_a_note_with_its_counts() -> None:
    import json
    from types import SimpleNamespace

    import polars as pl

    from loadlens.findings import scrape

    notes = {
        "planned": 30,
        "done": 27,
        "skipped": {"body_over_limit": 3, "timeout": 0},
        "dropped_non_finite": 12,
        "dropped_unreadable": 0,
        "lag_max_s": 0.012,
    }
    runs = pl.DataFrame(
        {
            "run_id": ["a", "b"],
            "deployment": ["d", "d"],
            "load_mode": ["concurrency", "concurrency"],
            "load_value": [32.0, 64.0],
            "num_requests": [100, 100],
            "workload": [
                json.dumps({"scrape": notes}),
                json.dumps({"scrape": {**notes, "skipped": {}, "dropped_non_finite": 0}}),
            ],
        }
    )
    (f,) = scrape.find(SimpleNamespace(runs=runs))
    assert f.severity == "info" and "At concurrency 32" in f.sentence
    assert "3 of 30 scrapes were skipped (body over its size limit: 3)" in f.sentence
    assert "12 samples that were not finite numbers were dropped" in f.sentence


def test_the_cli_says_how_much_of_the_scraping_was_skipped(capsys) -> None:
    from pathlib import Path

    from loadlens.cli import _SweepProgress
    from loadlens.runner.sweep import LevelOutcome

    progress = _SweepProgress.__new__(_SweepProgress)
    outcome = LevelOutcome(
        Level("concurrency", 4),
        Path("x"),
        10,
        {},
        scrape={"planned": 30, "done": 27, "skipped": {"timeout": 3}},
    )
    progress.finish(outcome)
    said = capsys.readouterr().err
    assert "3 of 30 scrapes skipped (timeout 3)" in said
