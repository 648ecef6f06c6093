"""Each level as a story over time: cold starts, trends, spread, the timeline itself,
on constructed levels whose answer is known."""

from __future__ import annotations

import random

import polars as pl
import pytest

from loadlens.analysis.timeline import (
    cold_starts,
    mann_kendall,
    sen_slope,
    spreads,
    steadiness,
    timeline,
)


def _level(run_id: str, n: int, rate: float, latency, seed: int = 0) -> pl.DataFrame:
    """n requests sent at `rate`/s, request i taking latency(i, t) seconds to its first
    token and 0.5 s more to its end."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        t = i / rate
        ttft = latency(i, t, rng)
        rows.append(
            {
                "run_id": run_id,
                "seq": i,
                "start_s": t,
                "ttft_s": ttft,
                "e2e_s": ttft + 0.5,
                "itl_s": [0.02 + rng.random() * 0.002 for _ in range(20)],
                "status": "ok",
            }
        )
    return pl.DataFrame(rows)


def steady(i, t, rng):
    return 0.2 + rng.random() * 0.05


def growing(i, t, rng):
    # above capacity: each second of the run adds 50 ms of queueing
    return 0.2 + 0.05 * t + rng.random() * 0.05


def cold(i, t, rng):
    return 40 + rng.random() * 18 if i < 10 else 0.6 + rng.random() * 0.8


def test_mann_kendall_and_sen_on_known_series() -> None:
    s, p = mann_kendall([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert s == 28 and p < 0.001
    s, p = mann_kendall([8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0])
    assert s == -28 and p > 0.99
    slope, lo, hi = sen_slope([0, 1, 2, 3, 4, 5], [0, 2, 4, 6, 8, 10])
    assert slope == lo == hi == 2


def test_a_steady_level_is_sustainable_and_a_growing_queue_is_not() -> None:
    requests = pl.concat([_level("steady", 200, 10, steady), _level("grows", 200, 10, growing)])
    by_run = {s.run_id: s for s in steadiness(requests)}
    assert by_run["steady"].status == "sustainable"
    grows = by_run["grows"]
    assert grows.status == "unsustainable" and grows.p_value < 0.01
    assert grows.slope_lo <= 0.05 <= grows.slope_hi  # the true slope inside its CI
    assert grows.last_s > grows.first_s * 2


def test_too_few_requests_is_not_judged_and_says_why() -> None:
    (s,) = steadiness(_level("few", 10, 10, growing))
    assert s.status == "unknown" and "10 timed requests" in s.reason


def test_a_cold_start_is_found_with_what_it_cost_and_kept_out_of_the_trend() -> None:
    requests = _level("cold", 100, 5, cold)
    found = cold_starts(requests)
    c = found["cold"]
    assert (c.n_slow, c.n_rest) == (10, 90)
    assert c.slow_lo >= 40 and c.slow_hi <= 58 and c.rest_lo >= 0.6 and c.rest_hi <= 1.4
    assert not cold_starts(_level("warm", 100, 5, steady))
    # without the transient the level is steady; with it, it would look like a falling trend
    (s,) = steadiness(requests, found)
    assert s.status == "sustainable"


def test_spread_measures_what_users_feel() -> None:
    def bimodal(i, t, rng):
        return 0.2 if i % 10 else 3.0

    (calm,) = spreads(_level("calm", 100, 10, steady))
    (wild,) = spreads(_level("wild", 100, 10, bimodal))
    assert calm.p99_over_p50 < 1.2 and calm.slow_share == 0
    assert wild.p99_over_p50 > 4 and wild.slow_share == pytest.approx(0.1)
    assert calm.stall_share == 0


def test_the_timeline_tracks_in_flight_latency_and_the_servers_signals() -> None:
    requests = _level("grows", 200, 10, growing)
    samples = pl.DataFrame(
        {
            "run_id": ["grows"] * 20,
            "t_s": [float(i) for i in range(20)],
            "signal": ["requests_waiting"] * 20,
            "value": [float(i) for i in range(20)],
        }
    )
    tl = timeline(requests, samples, "grows", windows=10)
    assert tl.height == 10
    assert {"t_s", "in_flight", "completions_per_s", "p95_ttft_s", "requests_waiting"} <= set(
        tl.columns
    )
    assert tl["in_flight"][-2] > tl["in_flight"][0]  # the queue grows
    assert tl["p50_ttft_s"].drop_nulls()[-1] > tl["p50_ttft_s"][0] * 2
    waiting = tl["requests_waiting"].drop_nulls()
    assert waiting[-1] > waiting[0]
    total = (tl["completions_per_s"] * (tl["t_s"][1] - tl["t_s"][0])).sum()
    assert total == pytest.approx(200)


def test_the_early_warning_is_the_first_strained_level_that_still_meets_every_slo() -> None:
    from loadlens.analysis.strain import early_warnings
    from loadlens.config import parse_slos, with_error_budget

    slos = with_error_budget(parse_slos("p95_e2e<10s"))
    levels = pl.DataFrame(
        {
            "run_id": ["c1", "c10", "c40", "c60"],
            "deployment": ["d"] * 4,
            "load_mode": ["concurrency"] * 4,
            "load_value": [1.0, 10.0, 40.0, 60.0],
            "p50_tpot_s": [0.010, 0.012, 0.015, 0.030],
            "p95_e2e_s": [3.0, 4.0, 8.8, 12.0],
            "error_rate": [0.0] * 4,
        }
    )
    samples = pl.DataFrame(
        {
            "run_id": ["c10"] * 4 + ["c40"] * 6,
            "t_s": [float(i) for i in range(4)] + [float(i) for i in range(6)],
            "signal": ["requests_waiting"] * 4 + ["requests_waiting"] * 3 + ["kv_cache_usage"] * 3,
            "value": [0.0, 0.0, 1.0, 0.0, 2.0, 3.0, 0.0, 0.80, 0.94, 0.91],
        }
    )
    missed = {"c1": (), "c10": (), "c40": (), "c60": ("p95 E2E",)}
    (w,) = early_warnings(levels, samples, {}, missed, slos)
    assert (w.load, w.next_load, w.next_missed) == (40.0, 60.0, ("p95 E2E",))
    assert w.signals == pytest.approx({"waiting_share": 2 / 3, "kv_cache_peak": 0.94})
    assert w.headroom == pytest.approx(0.12) and w.tightest == "p95 E2E"
    # nothing strained below the breach: no warning
    assert not early_warnings(levels, samples.filter(pl.col("run_id") == "c10"), {}, missed, slos)


def test_a_cold_start_is_kept_unless_asked_and_then_left_out_of_every_statistic(
    tmp_path,
) -> None:
    from loadlens import api
    from loadlens.config import parse_slos
    from loadlens.sources import loadlens_native
    from loadlens.trace import RunMeta
    from loadlens.warehouse import Warehouse

    frame = _level("c4", 100, 5, cold).with_columns(
        run_key=pl.lit("c4"),
        input_tokens=pl.lit(100),
        output_tokens=pl.lit(21),
        error=pl.lit(None, dtype=pl.String),
    )
    path = tmp_path / "cold.jsonl"
    loadlens_native.write(
        path,
        [RunMeta(run_key="c4", load_mode="concurrency", load_value=4, num_requests=100)],
        frame.drop("run_id"),
    )
    with Warehouse(tmp_path / "w.duckdb") as wh:
        api.ingest(wh, [path], "dep")
        slos = parse_slos("p95_ttft<2s")
        kept = api.analyze(wh, None, slos)
        left = api.analyze(wh, None, slos, exclude_warmup="auto")
        first5 = api.analyze(wh, None, slos, exclude_warmup="5")
    assert kept.warmup == "kept" and not kept.excluded
    assert kept.levels["n_requests"][0] == 100 and kept.levels["p95_ttft_s"][0] > 40
    (run_id,) = left.excluded
    assert left.warmup == "auto" and left.excluded[run_id] == 10
    assert left.levels["n_requests"][0] == 90 and left.levels["p95_ttft_s"][0] < 1.5
    assert first5.levels["n_requests"][0] == 95
    said = {f.kind: f.sentence for f in kept.findings}
    assert "the first 10 requests waited" in said["cold_start"]
    assert "includes them" in said["cold_start"]
    said = {f.kind: f.sentence for f in left.findings}
    assert "left out of the statistics (10 requests, --exclude-warmup auto)" in said["cold_start"]


def test_every_timed_level_gets_its_timeline_in_the_analysis(tmp_path) -> None:
    from loadlens import api
    from loadlens.sources import loadlens_native
    from loadlens.trace import RunMeta
    from loadlens.warehouse import Warehouse

    frame = pl.concat(
        [_level("r10", 200, 10, growing), _level("few", 10, 10, steady)]
    ).with_columns(
        run_key=pl.col("run_id"),
        input_tokens=pl.lit(100),
        output_tokens=pl.lit(21),
        error=pl.lit(None, dtype=pl.String),
    )
    path = tmp_path / "t.jsonl"
    loadlens_native.write(
        path,
        [
            RunMeta(run_key="r10", load_mode="rate", load_value=10, num_requests=200),
            RunMeta(run_key="few", load_mode="rate", load_value=5, num_requests=10),
        ],
        frame.drop("run_id"),
    )
    with Warehouse(tmp_path / "w.duckdb") as wh:
        api.ingest(wh, [path], "dep")
        a = api.analyze(wh)
    keys = {v: r for r, v in zip(a.runs["run_id"], a.runs["load_value"], strict=True)}
    keys = {"r10": keys[10.0], "few": keys[5.0]}
    assert set(a.timelines) == {keys["r10"]}  # 10 timed requests are too few
    assert a.timelines[keys["r10"]]["in_flight"].max() > 5
    assert a.steadiness[keys["r10"]].status == "unsustainable"
    assert any(f.kind == "unsustainable" for f in a.findings)
    # the JSON brief carries each level's story in numbers
    import json

    from loadlens.report.brief import build_brief
    from loadlens.report.render import render_json

    doc = json.loads(render_json(build_brief(a), a))
    story = {x["run_id"]: x for x in doc["levels_over_time"]}
    assert story[keys["r10"]]["steadiness"]["status"] == "unsustainable"
    assert story[keys["r10"]]["spread"]["p99_over_p50"] > 1
    assert doc["warmup"] == {"policy": "kept", "excluded": {}}


def test_latency_that_turns_unpredictable_before_it_turns_slow_is_a_warning() -> None:
    from types import SimpleNamespace

    from loadlens.analysis.strain import unpredictable
    from loadlens.analysis.timeline import Spread
    from loadlens.findings import unpredictable as finding

    levels = pl.DataFrame(
        {
            "run_id": ["c1", "c10", "c20", "c40"],
            "deployment": ["d"] * 4,
            "load_mode": ["concurrency"] * 4,
            "load_value": [1.0, 10.0, 20.0, 40.0],
        }
    )
    spreads = {
        "c1": Spread("c1", 1.3, 0.1, 0.0, 0.0),
        "c10": Spread("c10", 1.6, 0.2, 0.01, 0.0),
        "c20": Spread("c20", 3.4, 0.6, 0.12, 0.02),
        "c40": Spread("c40", 5.0, 0.9, 0.3, 0.05),
    }
    missed = {"c1": (), "c10": (), "c20": (), "c40": ("p95 E2E",)}
    (u,) = unpredictable(levels, spreads, missed)
    assert (u.load, u.p99_over_p50, u.base_p99_over_p50) == (20.0, 3.4, 1.3)
    (f,) = finding.find(SimpleNamespace(unpredictable=[u]))
    assert f.severity == "warning" and "At concurrency 20 every SLO of d holds" in f.sentence
    assert "p99 E2E is 3.4× the median (1.3× at concurrency 1)" in f.sentence
    assert "12% of requests take over twice the median" in f.sentence
    # past the SLO it is slow, not a warning of it
    missed["c20"] = ("p95 E2E",)
    assert not unpredictable(levels, spreads, missed)
