"""Requested vs delivered load: client shortfall, server saturation, and levels within noise,
on constructed frames and on real studies; the findings that word them."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from tests.conftest import SHARED_TRACES

from loadlens import sources
from loadlens.analysis.levels import levels
from loadlens.analysis.saturation import RateSaturation, rate_saturation
from loadlens.analysis.shortfall import Shortfall, delivered_load, schedule_lag, shortfalls
from loadlens.findings import littles_law, load_shortfall
from loadlens.findings import rate_saturation as rate_saturation_finding
from loadlens.trace import REQUEST_SCHEMA, empty
from loadlens.warehouse import Warehouse

STATS_SCHEMA = {
    "run_id": pl.String,
    "metric": pl.String,
    "statistic": pl.String,
    "value": pl.Float64,
}
needs_traces = pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent")


def _runs(rows: list[dict]) -> pl.DataFrame:
    base = {"deployment": "d", "num_errors": 0, "workload": None}
    return pl.DataFrame(
        [base | r for r in rows],
        schema={
            "run_id": pl.String,
            "deployment": pl.String,
            "load_mode": pl.String,
            "load_value": pl.Float64,
            "duration_s": pl.Float64,
            "num_requests": pl.Int64,
            "num_errors": pl.Int64,
            "workload": pl.String,
        },
    )


def _requests(run_id: str, starts: list[float], e2e: list[float]) -> pl.DataFrame:
    n = len(starts)
    return pl.DataFrame(
        {
            "run_id": [run_id] * n,
            "seq": list(range(n)),
            "start_s": starts,
            "ttft_s": [e / 10 for e in e2e],
            "e2e_s": e2e,
            "input_tokens": [100] * n,
            "output_tokens": [50] * n,
            "itl_s": [None] * n,
            "status": ["ok"] * n,
            "error": [None] * n,
        },
        schema=REQUEST_SCHEMA,
    )


def _analyse(
    runs: pl.DataFrame, requests: pl.DataFrame | None = None, stats: pl.DataFrame | None = None
) -> dict[str, Shortfall]:
    requests = requests if requests is not None else _no_requests()
    stats = stats if stats is not None else pl.DataFrame(schema=STATS_SCHEMA)
    lv = levels(runs, requests, stats)
    return {s.run_id: s for s in shortfalls(lv, runs, requests, stats)}


def _no_requests() -> pl.DataFrame:
    return empty(REQUEST_SCHEMA)


def _summary_stats(run_id: str, mean_e2e: float, rps: float, **extra: float) -> list[tuple]:
    rows = [(run_id, "e2e_s", "mean", mean_e2e), (run_id, "request_throughput_rps", "value", rps)]
    return rows + [(run_id, m, s, v) for (m, s), v in _split(extra).items()]


def _split(extra: dict[str, float]) -> dict[tuple[str, str], float]:
    return {tuple(k.split("__")): v for k, v in extra.items()}  # type: ignore[misc]


def _stats(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=STATS_SCHEMA, orient="row")


# --- constructed frames, one per class --------------------------------------------------


def test_fewer_requests_than_the_concurrency_is_a_client_shortfall() -> None:
    runs = _runs(
        [
            dict(
                run_id="a",
                load_mode="concurrency",
                load_value=128.0,
                duration_s=40.0,
                num_requests=100,
            )
        ]
    )
    (s,) = _analyse(runs, stats=_stats(_summary_stats("a", 37.0, 2.5))).values()
    assert s.status == "client_shortfall" and s.cause == "too_few_requests"
    assert s.delivered_max == 100 and s.requested == 128
    assert s.delivered == pytest.approx(2.5 * 37.0)  # Little's law: 92.5 on average


def test_a_completed_count_stands_for_the_sent_one_when_no_failure_is_recorded() -> None:
    runs = _runs(
        [
            dict(
                run_id="a",
                load_mode="concurrency",
                load_value=128.0,
                duration_s=40.0,
                num_requests=None,
                num_errors=None,
                workload=json.dumps({"completed": 100}),
            )
        ]
    )
    (s,) = _analyse(runs, stats=_stats(_summary_stats("a", 37.0, 2.5))).values()
    assert (s.status, s.cause, s.n_from_completed) == ("client_shortfall", "too_few_requests", True)


def test_a_closed_loop_below_what_its_drain_explains_is_client_pacing() -> None:
    # 1000 requests at c64 over 600 s, longest 20 s: the drain allows down to 97%; 38 held.
    runs = _runs(
        [
            dict(
                run_id="a",
                load_mode="concurrency",
                load_value=64.0,
                duration_s=600.0,
                num_requests=1000,
            )
        ]
    )
    stats = _stats(_summary_stats("a", 2.0, 19.0, e2e_s__max=20.0))
    (s,) = _analyse(runs, stats=stats).values()
    assert s.status == "client_shortfall" and s.cause == "client_pacing"
    assert s.drain_floor == pytest.approx(1 - 20 / 600)
    assert s.delivered == pytest.approx(38.0)


def test_a_closed_loop_whose_drain_explains_the_gap_is_ok_with_a_note() -> None:
    # 64 requests at c64: one wave, the run is its own drain.
    runs = _runs(
        [
            dict(
                run_id="a",
                load_mode="concurrency",
                load_value=64.0,
                duration_s=14.0,
                num_requests=64,
            )
        ]
    )
    stats = _stats(_summary_stats("a", 9.0, 64 / 14, e2e_s__max=12.0))
    (s,) = _analyse(runs, stats=stats).values()
    assert s.status == "ok" and s.drain_note
    assert not load_shortfall.find(SimpleNamespace(shortfalls=[s]))
    (note,) = littles_law.find(SimpleNamespace(shortfalls=[s]))
    assert note.severity == "info" and "start and drain explain it" in note.sentence


def test_a_closed_loop_without_its_longest_request_is_unknown() -> None:
    runs = _runs(
        [
            dict(
                run_id="a",
                load_mode="concurrency",
                load_value=64.0,
                duration_s=600.0,
                num_requests=10000,
            )
        ]
    )
    (s,) = _analyse(runs, stats=_stats(_summary_stats("a", 2.0, 19.0))).values()
    assert (s.status, s.cause) == ("unknown", "drain_unknown") and s.drain_note


def test_send_times_of_a_closed_loop_show_the_client_pacing() -> None:
    # c4, but the client sends one request at a time: one in flight while sending.
    starts = [float(i) for i in range(40)]
    runs = _runs(
        [
            dict(
                run_id="a",
                load_mode="concurrency",
                load_value=4.0,
                duration_s=40.0,
                num_requests=40,
            )
        ]
    )
    (s,) = _analyse(runs, _requests("a", starts, [0.9] * 40)).values()
    assert s.status == "client_shortfall" and s.basis == "send_window"
    assert s.delivered == pytest.approx(0.9, abs=0.05)


def test_a_rate_schedule_behind_is_a_client_shortfall_with_optimistic_latency() -> None:
    # asked 10 req/s for 400 requests; the client managed 5 req/s.
    starts = [i / 5 for i in range(400)]
    runs = _runs(
        [dict(run_id="a", load_mode="rate", load_value=10.0, duration_s=81.0, num_requests=400)]
    )
    (s,) = _analyse(runs, _requests("a", starts, [1.0] * 400)).values()
    assert s.status == "client_shortfall" and s.cause == "send_rate"
    assert s.delivered == pytest.approx(5.0)
    assert s.latency_excludes_wait and s.max_schedule_delay_s == pytest.approx(79.8 - 40, abs=0.2)
    (f,) = load_shortfall.find(SimpleNamespace(shortfalls=[s]))
    assert "the client sent only 5 req/s" in f.sentence and "optimistic" in f.sentence
    assert "queue" not in f.sentence and "fell short, not the server" in f.sentence


def test_a_late_start_then_catch_up_is_flagged_optimistic_though_the_rate_was_met() -> None:
    # The first 10 sends (due 0.5 s apart) all leave at 5 s; then on schedule.
    starts = [5.0 + i * 0.001 for i in range(10)] + [(i + 1) * 0.5 for i in range(10, 60)]
    runs = _runs(
        [dict(run_id="a", load_mode="rate", load_value=2.0, duration_s=31.0, num_requests=60)]
    )
    (s,) = _analyse(runs, _requests("a", starts, [1.0] * 60)).values()
    assert s.status == "ok" and s.latency_excludes_wait
    assert s.max_schedule_delay_s == pytest.approx(4.5)
    (f,) = load_shortfall.find(SimpleNamespace(shortfalls=[s]))
    assert "behind its schedule" in f.sentence and "optimistic" in f.sentence


def test_poisson_sends_at_the_asked_rate_are_within_noise() -> None:
    import random

    rng = random.Random(7)
    t, starts = 0.0, []
    for _ in range(500):
        t += rng.expovariate(8.0)
        starts.append(t)
    behind, _, _ = schedule_lag(starts, 8.0)
    assert not behind
    runs = _runs(
        [dict(run_id="a", load_mode="rate", load_value=8.0, duration_s=t + 1, num_requests=500)]
    )
    (s,) = _analyse(runs, _requests("a", starts, [0.5] * 500)).values()
    assert s.status == "ok" and not s.latency_excludes_wait
    assert s.tolerance == pytest.approx(max(0.05, 2 / 499**0.5))


def test_sent_as_asked_completed_less_is_server_saturation() -> None:
    runs = _runs(
        [dict(run_id="a", load_mode="rate", load_value=4.0, duration_s=1500.0, num_requests=4800)]
    )
    stats = _stats(
        [
            *_summary_stats("a", 80.0, 0.5),
            ("a", "achieved_rate_rps", "value", 4.0),
            ("a", "schedule_delay_s", "mean", 0.0005),
        ]
    )
    (s,) = _analyse(runs, stats=stats).values()
    assert s.status == "server_saturation" and s.basis == "tool_achieved_rate"
    assert not s.latency_excludes_wait


def test_a_tool_achieved_rate_below_the_asked_one_is_a_client_shortfall() -> None:
    runs = _runs(
        [dict(run_id="a", load_mode="rate", load_value=20.0, duration_s=600.0, num_requests=8400)]
    )
    stats = _stats(
        [
            *_summary_stats("a", 1.0, 14.0),
            ("a", "achieved_rate_rps", "value", 14.0),
            ("a", "schedule_delay_s", "mean", 0.4),
        ]
    )
    (s,) = _analyse(runs, stats=stats).values()
    assert (s.status, s.cause) == ("client_shortfall", "tool_rate")
    assert s.latency_excludes_wait and s.schedule_delay_s == 0.4


def test_an_in_flight_cap_bounds_an_open_loops_send_rate() -> None:
    runs = _runs(
        [
            dict(
                run_id="a",
                load_mode="rate",
                load_value=16.0,
                duration_s=60.0,
                num_requests=600,
                workload=json.dumps({"max_concurrency": 32}),
            )
        ]
    )
    (s,) = _analyse(runs, stats=_stats(_summary_stats("a", 6.4, 5.0))).values()
    assert (s.status, s.cause) == ("client_shortfall", "concurrency_cap")
    assert s.delivered == pytest.approx(5.0)


def test_completions_at_the_asked_rate_without_send_times_are_ok() -> None:
    runs = _runs(
        [dict(run_id="a", load_mode="rate", load_value=1.0, duration_s=205.0, num_requests=200)]
    )
    (s,) = _analyse(runs, stats=_stats(_summary_stats("a", 5.0, 0.975))).values()
    assert s.status == "ok" and s.basis == "served_rate"


def test_the_delivered_frame_has_a_row_per_level() -> None:
    runs = _runs(
        [
            dict(
                run_id="a",
                load_mode="concurrency",
                load_value=128.0,
                duration_s=40.0,
                num_requests=100,
            ),
            dict(
                run_id="b",
                load_mode="throughput",
                load_value=None,
                duration_s=40.0,
                num_requests=100,
            ),
        ]
    )
    stats = _stats(_summary_stats("a", 37.0, 2.5) + _summary_stats("b", 37.0, 2.5))
    lv = levels(runs, _no_requests(), stats)
    frame = delivered_load(lv, runs, _no_requests(), stats)
    by = {r["run_id"]: r for r in frame.iter_rows(named=True)}
    assert by["a"]["shortfall_status"] == "client_shortfall" and by["a"]["delivered_max"] == 100
    assert by["b"]["shortfall_status"] == "unknown"


# --- findings --------------------------------------------------------------------------


def _shortfall(**kw: object) -> Shortfall:
    base: dict = dict(
        run_id="a",
        deployment="d",
        load_mode="rate",
        requested=4.0,
        delivered=4.0,
        delivered_max=None,
        tolerance=0.05,
        status="ok",
        cause="",
        basis="tool_achieved_rate",
        n_requests=4800,
        n_from_completed=False,
        mean_in_flight=40.0,
        throughput_rps=0.5,
        mean_latency_s=80.0,
        served_rps=0.5,
        longest_s=None,
        duration_s=1500.0,
        drain_floor=None,
        cap=None,
        latency_excludes_wait=False,
        schedule_delay_s=None,
        max_schedule_delay_s=None,
    )
    return Shortfall(**(base | kw))


def test_the_shortfall_finding_labels_both_loads_and_blames_the_client() -> None:
    s = _shortfall(
        load_mode="concurrency",
        requested=128.0,
        delivered=94.4,
        delivered_max=100.0,
        status="client_shortfall",
        cause="too_few_requests",
        basis="request_count",
        n_requests=100,
    )
    (f,) = load_shortfall.find(SimpleNamespace(shortfalls=[s], levels=None))
    assert "asked for concurrency 128, the client had only 100 requests: at most 100 in flight" in (
        f.sentence
    )
    assert "queue grows" not in f.sentence and "capacity claims" in f.sentence
    assert f.severity == "warning" and f.evidence["delivered_max"] == 100
    assert load_shortfall.level_label(s) == "asked 128 / delivered ≤ 100"


def test_rate_saturation_is_silent_where_the_client_fell_short() -> None:
    sat = RateSaturation("d", 4.0, 0.5, None)
    short = _shortfall(delivered=2.0, status="client_shortfall", cause="tool_rate")
    assert not rate_saturation_finding.find(SimpleNamespace(saturations=[sat], shortfalls=[short]))
    server = _shortfall(status="server_saturation")
    (f,) = rate_saturation_finding.find(SimpleNamespace(saturations=[sat], shortfalls=[server]))
    assert "queue grows" in f.sentence and "sent 4 req/s as asked" in f.sentence
    unknown = _shortfall(delivered=None, status="unknown", cause="sends_unrecorded", basis="")
    (g,) = rate_saturation_finding.find(SimpleNamespace(saturations=[sat], shortfalls=[unknown]))
    assert "if the client sent as asked" in g.sentence and "does not record" in g.sentence


# --- real studies ----------------------------------------------------------------------


def _warehouse(tmp_path: Path, *studies: str) -> tuple[pl.DataFrame, list[Shortfall], Warehouse]:
    wh = Warehouse(tmp_path / "w.duckdb")
    for study in studies:
        files, _ = sources.plan([SHARED_TRACES / study], None)
        wh.ingest([sources.load_file(f, None) for f in files], study.split("/")[-1][:24])
    runs = wh.runs()
    ids = runs["run_id"].to_list()
    requests, stats = wh.requests(ids), wh.run_stats(ids)
    lv = levels(runs, requests, stats)
    return lv, shortfalls(lv, runs, requests, stats), wh


@needs_traces
def test_tonyli15_100_prompts_at_c128_is_a_client_shortfall(tmp_path: Path) -> None:
    lv, found, _ = _warehouse(
        tmp_path, "sglang/tonyli15-gh200-a100-pd-1pXd-decode-scaling-qwen25-3b"
    )
    c128 = [s for s in found if s.requested == 128]
    assert len(c128) == 4
    for s in c128:
        assert (s.status, s.cause, s.delivered_max) == ("client_shortfall", "too_few_requests", 100)
        assert s.delivered is not None and s.delivered <= 100
    assert all(s.status != "client_shortfall" for s in found if s.requested == 64)
    findings = load_shortfall.find(SimpleNamespace(shortfalls=found, levels=lv))
    assert len(findings) == 4
    assert all("only 100 requests" in f.sentence and "queue" not in f.sentence for f in findings)


@needs_traces
def test_inference_perf_achieved_rate_is_the_delivered_load(tmp_path: Path) -> None:
    lv, found, wh = _warehouse(
        tmp_path,
        "inference-perf/inference-sim-h100-mixtral-8x7b-tp2-codegen-rate5-rate10",
        "inference-perf/inference-sim-h100-llama2-7b-tp1-reasoning-overload-4068-failures",
    )
    stats = wh.run_stats(lv["run_id"].to_list())
    achieved = dict(
        stats.filter(pl.col("metric") == "achieved_rate_rps").select("run_id", "value").iter_rows()
    )
    assert len(achieved) == 3
    for s in found:
        assert s.basis == "tool_achieved_rate" and s.delivered == achieved[s.run_id]
        assert not s.latency_excludes_wait  # sub-millisecond schedule delays
    by_rate = {s.requested: s for s in found}
    assert by_rate[5.0].status == by_rate[10.0].status == "ok"
    # The overload study sent 4 req/s as asked and completed far less: the server's.
    assert by_rate[4.0].status == "server_saturation"
    sat = rate_saturation(lv)
    (f,) = rate_saturation_finding.find(SimpleNamespace(saturations=sat, shortfalls=found))
    assert "as asked" in f.sentence and "queue grows" in f.sentence
