"""A level through a local Ray cluster against serve-sim: every request matches the
server's own stamps, no sequence number is lost or doubled, the clock offsets are kept."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from tests.test_runner import _serve

from loadlens.runner import ray_workers
from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.sweep import Target
from loadlens.runner.workloads import synthetic

needs_ray = pytest.mark.skipif(not ray_workers.available(), reason="ray is not installed")


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    yield from _serve("--profile", "h100-vllm-tp1")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()


def _stamps(server: str) -> dict[str, dict]:
    with urllib.request.urlopen(f"{server}/sim/requests", timeout=10) as resp:
        return {r["request_id"]: r for r in json.loads(resp.read()) if r["request_id"]}


@needs_ray
@pytest.mark.parametrize("level", [Level("concurrency", 6), Level("rate", 10)])
def test_a_level_over_ray_actors_matches_the_servers_stamps(
    server: str, ray_local: None, level: Level
) -> None:
    target = Target(f"{server}/v1", "loadlens-sim", use_nvml=False)
    seen: list[int] = []
    loads: list = []
    records, offsets = asyncio.run(
        ray_workers.run_level_on_ray(
            "auto",
            target,
            synthetic(40, "12:3"),
            level,
            Plan(requests=18, warmup=2, workers=2),
            on_record=lambda r: seen.append(r.seq),
            loads=loads,
        )
    )
    assert sorted(r.seq for r in records) == list(range(2, 20))  # none lost, none twice
    assert sorted(seen) == list(range(2, 20))  # streamed back as they finished
    assert len(offsets) == 2 and all(o.rtt_s < 0.5 for o in offsets)
    assert len(loads) == 2 and all(x.wall_s > 0 and x.loop_lags for x in loads)
    assert all(r.due is not None and abs(r.sent - r.due) < 0.05 for r in records)
    assert all(abs(o.offset_s) <= o.rtt_s / 2 + 0.002 for o in offsets)  # one host's clock
    stamped = _stamps(server)
    for r in records:
        srv = stamped[f"loadlens-{level.key}-{r.seq}"]
        assert r.status == "ok" and r.chunks
        assert abs((r.chunks[0] - r.sent) - (srv["token_times"][0] - srv["arrival"])) < 0.010
        assert abs(r.sent - srv["arrival"]) < 0.010  # on the driver's clock
    note = ray_workers.offsets_note(offsets)["ray"]["workers"]
    assert [w["worker"] for w in note] == [0, 1] and all("clock_offset_s" in w for w in note)


def test_without_ray_the_flag_says_how_to_install(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(ray_workers, "available", lambda: False)
    with pytest.raises(ray_workers.ConfigError, match=r"pip install 'loadlens\[ray\]'"):
        ray_workers.connect("auto")


@needs_ray
def test_sweep_with_ray_stores_every_level_with_its_clock_offsets(
    server: str, ray_local: None, tmp_path: Path
) -> None:
    from loadlens.runner.sweep import sweep
    from loadlens.warehouse import Warehouse

    with Warehouse(tmp_path / "w.duckdb") as wh:
        outcomes = sweep(
            Target(f"{server}/v1", "loadlens-sim", use_nvml=False),
            synthetic(40, "12:3"),
            [Level("concurrency", 4), Level("rate", 8)],
            Plan(requests=12, workers=2, ray="auto"),
            deployment="ray",
            out_dir=tmp_path / "runs",
            warehouse=wh,
        )
        runs = wh.runs(["ray"])
        rows = wh.requests(runs["run_id"].to_list())
    assert [o.records for o in outcomes] == [12, 12]
    for workload in runs["workload"].to_list():
        notes = json.loads(workload)
        workers = notes["ray"]["workers"]
        assert [w["worker"] for w in workers] == [0, 1]
        assert all(abs(w["clock_offset_s"]) < 0.01 and w["clock_rtt_s"] > 0 for w in workers)
        assert "disturbed" in notes["client"]
    assert rows.group_by("run_id").agg(pl.col("seq").n_unique())["seq"].to_list() == [12, 12]
