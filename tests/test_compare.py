"""Options compared: ranked on SLO capacity or cost, ties said as ties, and the frontier."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import SHARED_TRACES

from loadlens.analysis.compare import Recommendation, cost_latency_points, recommend
from loadlens.analysis.cost import Cost, Prices
from loadlens.analysis.saturation import Level, OperatingZone, SloBoundary
from loadlens.config import SLO, error_budget
from loadlens.report.compare import recommendation_sentence, table

P95 = SLO(metric="e2e_s", statistic="p95", threshold_s=10.0)
BUDGET = error_budget()
LOADS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)


def crossed(
    name: str,
    last: float,
    first: float,
    load: float,
    lo: float | None,
    hi: float | None,
    mode: str = "concurrency",
    ci: bool = True,
) -> SloBoundary:
    """P95 E2E crossed between `last` and `first`, at `load`, range lo–hi."""
    return SloBoundary(
        name,
        mode,
        P95,
        Level(last, 8.0, 7.0 if ci else None, 9.0 if ci else None, 100),
        Level(first, 12.0, 11.0 if ci else None, 13.0 if ci else None, 100),
        load,
        lo,
        hi,
        64.0,
    )


def never(name: str, top: float, mode: str = "concurrency") -> SloBoundary:
    return SloBoundary(name, mode, P95, Level(top, 5.0, 4.0, 6.0, 100), None, None, None, None, top)


def at_lowest(name: str, slo: SLO, mode: str = "concurrency") -> SloBoundary:
    return SloBoundary(
        name, mode, slo, None, Level(1.0, 0.87, None, None, 100), None, None, None, 64.0
    )


def zone(name: str, b: SloBoundary, knee: float | None = None) -> OperatingZone:
    limit = b.boundary_load
    ceiling = min(v for v in (limit, knee, b.max_load_measured) if v is not None)
    return OperatingZone(name, b.load_mode, 0.8 * ceiling, limit, knee, 0.8)


def levels(errors: dict[str, float] | None = None, modes: dict[str, str] | None = None, *names):
    names = names or ("a", "b")
    rows = [
        {
            "deployment": n,
            "load_mode": (modes or {}).get(n, "concurrency"),
            "load_value": x,
            "error_rate": (errors or {}).get(n, 0.0),
        }
        for n in names
        for x in LOADS
    ]
    return pl.DataFrame(rows)


def cost(name: str, per_user: float, mode: str = "concurrency") -> Cost:
    return Cost(name, 10.0, mode, 1, 1, 1, 1, 1, 1, 1, 1, 1, per_user * 100, per_user,
                None, None)  # fmt: skip


def test_ranks_on_slo_capacity_not_on_the_knee_lowered_zone() -> None:
    # a holds the SLO to ≈ 48 but its latency knee at 16 puts its zone at 12.8; b holds it
    # only to ≈ 30 (zone 24). The old rank on zone load picked b.
    a, b = crossed("a", 32, 64, 48, 44, 52), crossed("b", 16, 32, 30, 27, 33)
    rec = recommend([a, b], [zone("a", a, knee=16), zone("b", b)], [], {}, levels())
    assert rec and rec.best == "a" and rec.runner_up == "b" and rec.basis == "capacity"
    assert not rec.tie
    text = recommendation_sentence(rec)
    assert text.startswith("Choose a:")
    assert "≈ concurrency 48" in text and "≈ concurrency 30" in text
    assert "Plan a at concurrency 13" in text and "knee" in text  # the zone, and why


def test_overlapping_ranges_are_a_tie_said_as_one() -> None:
    # Both met the SLO at 4 and breached it at 8: however narrow the chords' ranges, the
    # crossings may lie anywhere up to 8 (latency bends upward between levels).
    a, b = crossed("a", 4, 8, 4.6, 4.5, 4.7), crossed("b", 4, 8, 4.4, 4.3, 4.5)
    rec = recommend([a, b], [zone("a", a), zone("b", b)], [], {"a": 1, "b": 1}, levels())
    assert rec and rec.basis == "tie" and rec.tie and set(rec.tied) == {"a", "b"}
    text = recommendation_sentence(rec)
    assert "indistinguishable at this sample size" in text
    assert "Choose" not in text and "4 vs 4" not in text and " vs " not in text
    assert [a.kind for a in rec.advice] == ["measure_between"]
    assert "To separate them: measure concurrencies between 4 and 8." in text
    # Adjacent whole-user levels leave nothing to measure between: equal at this resolution.
    a, b = crossed("a", 3, 4, 3.6, 3.5, 3.7), crossed("b", 3, 4, 3.5, 3.4, 3.6)
    rec = recommend([a, b], [], [], {}, levels())
    assert rec and rec.tie and not rec.advice
    assert "their capacities are equal" in recommendation_sentence(rec)


def test_intervals_straddling_the_slo_ask_for_more_requests() -> None:
    # b's p95 at 32 is within the SLO but its interval reaches past it: b's crossing may
    # lie below 32, into a's range.
    a = crossed("a", 16, 32, 24, 20, 28)
    b = SloBoundary(
        "b", "concurrency", P95, Level(32, 9.5, 8.0, 11.0, 40), Level(64, 14, 9.0, 20, 40),
        36.0, None, None, 64.0,
    )  # fmt: skip
    rec = recommend([a, b], [], [], {}, levels())
    assert rec and rec.tie and rec.best == "b"
    assert [v.kind for v in rec.advice] == ["more_requests"]
    text = recommendation_sentence(rec)
    assert "run more requests per level at concurrency 32–64" in text


def test_gaps_between_levels_ask_for_loads_in_between() -> None:
    # Summary statistics only: no intervals, the crossings are known to lie between levels.
    a = crossed("a", 16, 64, 40, None, None, ci=False)
    b = crossed("b", 32, 64, 50, None, None, ci=False)
    rec = recommend([a, b], [], [], {}, levels())
    assert rec and rec.tie and [v.kind for v in rec.advice] == ["measure_between"]
    assert "measure concurrencies between 32 and 64" in recommendation_sentence(rec)
    columns, rows, _notes = table(rec, 0.95)
    # No interval anywhere: no "range" in a header or a cell.
    assert all("range" not in c["label"] for c in columns)
    assert all("range" not in v for r in rows for v in r.values())


def test_never_breached_is_a_lower_bound_only() -> None:
    a, b = never("a", 16), crossed("b", 16, 32, 24, 20, 28)
    rec = recommend([a, b], [zone("a", a), zone("b", b)], [], {}, levels())
    assert rec and rec.tie  # a may hold anywhere from 16 up: b's 20–28 cannot be told apart
    text = recommendation_sentence(rec)
    assert "at least that, a lower bound only" in text
    assert "measure a above concurrency 16, to see how far it goes" in text
    rows = table(rec, 0.95)[1]
    assert next(r for r in rows if r["option"] == "a")["measured"] == "≥ 16"
    # Far enough apart, a lower bound still wins.
    rec = recommend([never("a", 64), b], [], [], {}, levels())
    assert rec and rec.best == "a" and not rec.tie


def test_no_per_gpu_without_gpu_counts() -> None:
    # Hosted APIs: no GPU count; the ranking is per replica and never says "per GPU".
    a, b = crossed("a", 32, 64, 48, 44, 52), crossed("b", 8, 16, 12, 10, 14)
    for gpus in ({}, {"a": None, "b": None}, {"a": 2, "b": None}):
        rec = recommend([a, b], [], [], gpus, levels())
        assert rec and rec.best == "a" and not rec.per_gpu
        text = recommendation_sentence(rec)
        assert "per GPU" not in text and "per replica" in text
        _columns, rows, notes = table(rec, 0.95)
        assert next(r for r in rows if r["option"] == "b")["per_gpu"] == "–"
        assert any("GPUs per replica unknown" in n for n in notes)


def test_capacity_per_gpu_when_every_count_is_known() -> None:
    # tp2 carries more per replica (≈ 80 against ≈ 55), tp1 more per GPU (55 against 40).
    tp2, tp1 = crossed("tp2", 64, 96, 80, 75, 85), crossed("tp1", 48, 64, 55, 50, 60)
    frame = levels(None, None, "tp2", "tp1")
    rec = recommend([tp2, tp1], [], [], {"tp2": 2, "tp1": 1}, frame)
    assert rec and rec.best == "tp1" and rec.per_gpu and rec.basis == "capacity"
    text = recommendation_sentence(rec)
    assert "55 per GPU (1 per replica)" in text and "40 per GPU (2 per replica)" in text
    rec = recommend([tp2, tp1], [], [], {"tp2": 2, "tp1": None}, frame)
    assert rec and rec.best == "tp2" and not rec.per_gpu


def test_cost_basis_when_every_option_is_priced() -> None:
    fast, cheap = crossed("fast", 32, 64, 50, 45, 55), crossed("cheap", 16, 32, 30, 27, 33)
    costs = [cost("fast", 0.50), cost("cheap", 0.40)]
    rec = recommend(
        [fast, cheap], [], costs, {"fast": 1, "cheap": 1}, levels(None, None, "fast", "cheap")
    )
    assert rec and rec.basis == "cost" and rec.best == "cheap" and rec.runner_up == "fast"
    assert rec.cost_ratio == pytest.approx(0.25)
    text = recommendation_sentence(rec)
    assert text.startswith("Choose cheap:") and "costs 25% more" in text
    columns = [c["key"] for c in table(rec, 0.95)[0]]
    assert {"per_user", "monthly", "replicas"} <= set(columns)
    # One price missing: back to capacity.
    rec = recommend([fast, cheap], [], costs[:1], {}, levels(None, None, "fast", "cheap"))
    assert rec and rec.basis == "capacity" and rec.best == "fast"


def test_equal_costs_fall_back_on_capacity() -> None:
    # Same replicas, same bill: cost picks neither; capacity does where it can.
    big, small = crossed("big", 32, 64, 50, 45, 55), crossed("small", 8, 16, 12, 10, 14)
    costs = [cost("big", 0.40), cost("small", 0.40)]
    rec = recommend([small, big], [], costs, {}, levels(None, None, "small", "big"))
    assert rec and rec.basis == "capacity" and rec.best == "big" and rec.cost_ratio == 0
    text = recommendation_sentence(rec)
    assert text.startswith("Choose big:") and "they cost the same at this user profile" in text
    # Same bill and overlapping capacities: a tie, said once.
    a, b = crossed("a", 4, 8, 4.6, 4.5, 4.7), crossed("b", 4, 8, 4.4, 4.3, 4.5)
    rec = recommend([a, b], [], [cost("a", 0.4), cost("b", 0.4)], {}, levels())
    assert rec and rec.basis == "tie"
    text = recommendation_sentence(rec)
    assert "cost the same at this user profile ($40/month each) and are indistinguishable" in text
    assert "Choose" not in text


def test_mixed_load_modes_are_not_ranked() -> None:
    a, b = crossed("a", 32, 64, 48, 44, 52), crossed("b", 2, 4, 3, 2.5, 3.5, mode="rate")
    modes = levels(None, {"b": "rate"})
    rec = recommend([a, b], [], [], {}, modes)
    assert rec and rec.basis == "none" and rec.best is None and rec.why_none == "mixed_modes"
    text = recommendation_sentence(rec)
    assert "not ranked" in text and "Choose" not in text
    assert "concurrency" in text and "request rate" in text
    assert "Load mode" in [c["label"] for c in table(rec, 0.95)[0]]
    # Priced, they compare on $ per user, which does not depend on the load's unit.
    rec = recommend([a, b], [], [cost("a", 0.5), cost("b", 0.3, "rate")], {}, modes)
    assert rec and rec.basis == "cost" and rec.best == "b"


def test_an_option_over_its_error_budget_has_no_capacity() -> None:
    # a is fast but fails 87% of its requests from the first level: the budget binds.
    a, b = at_lowest("a", BUDGET), crossed("b", 8, 16, 12, 10, 14)
    rec = recommend([a, b], [zone("b", b)], [], {}, levels({"a": 0.87}))
    assert rec and rec.best == "b" and rec.basis == "capacity"
    cap = rec.option("a")
    assert cap and not cap.has_capacity and cap.worst_error_rate == pytest.approx(0.87)
    text = recommendation_sentence(rec)
    assert "a meets the SLOs at no measured load: it breaches error rate ≤ 1% already at" in text
    rows = {r["option"]: r for r in table(rec, 0.95)[1]}
    assert rows["a"]["measured"] == "none" and rows["a"]["errors_worst"] == "87% at 1"
    assert rows["b"]["errors_at"] == "0%"
    # Neither meets it: nothing to recommend.
    rec = recommend([a, at_lowest("b", P95)], [], [], {}, levels({"a": 0.87}))
    assert rec and rec.basis == "none" and rec.why_none == "no_capacity"
    assert recommendation_sentence(rec).startswith("No option meets every SLO")


def test_range_header_follows_the_confidence_level() -> None:
    a, b = crossed("a", 32, 64, 48, 44, 52), crossed("b", 8, 16, 12, 10, 14)
    rec = recommend([a, b], [], [], {}, levels())
    assert rec
    labels = [c["label"] for c in table(rec, 0.9)[0]]
    assert "Interpolated (range: 90% CI)" in labels and not any("95%" in x for x in labels)
    row = table(rec, 0.9)[1][0]
    assert row["interpolated"] == "≈ 48 (range 44–52)"


def test_pareto_frontier_keeps_only_undominated_levels() -> None:
    frame = pl.DataFrame(
        {
            "deployment": ["a", "a", "b", "b"],
            "load_value": [1.0, 10.0, 1.0, 10.0],
            "p95_e2e_s": [1.0, 3.0, 2.0, 4.0],
            "output_throughput_tps": [100.0, 900.0, 50.0, 400.0],
        }
    )
    points = cost_latency_points(frame, {"a": Prices(3.6), "b": Prices(3.6)})
    frontier = points.filter("pareto").select("deployment", "load_value").rows()
    assert frontier == [("a", 1.0), ("a", 10.0)]  # b is slower and dearer at both levels


LLMPERF = SHARED_TRACES / "llmperf"
STUDIES = {
    "yi-vllm": LLMPERF / "llmperf-repo-4xa10g-yi15-34b-vllm-concurrency-1-64",
    "yi-tgi": LLMPERF / "llmperf-repo-4xa10g-yi15-34b-tgi-concurrency-1-64",
}


def _consistent(rec: Recommendation) -> None:
    """The recommendation agrees with the capacities it ranks."""
    brackets = {
        (o.boundary.last_ok.load, o.boundary.first_breach.load)
        for o in rec.options
        if o.boundary and o.boundary.last_ok and o.boundary.first_breach
    }
    if len(brackets) == 1 and len(rec.options) > 1 and all(o.has_capacity for o in rec.options):
        # Met at the same load and breached at the same next one: equal options.
        assert rec.basis == "tie" or rec.basis == "cost"
    if rec.basis in ("capacity", "tie"):
        best = rec.option(rec.best)
        assert best is not None and best.has_capacity
        for other in rec.options:
            if other.option == best.option or not other.has_capacity:
                continue
            own, theirs = (
                (best.point_per_gpu, other.point_per_gpu)
                if rec.per_gpu
                else (best.point, other.point)
            )
            assert own is not None and theirs is not None and own >= theirs
            if rec.basis == "capacity":  # a clear winner: the ranges do not overlap
                assert other.hi is not None and best.lo is not None
                assert other.hi < best.lo or (best.lower_bound_only and other.hi < best.measured)


@pytest.mark.skipif(not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent")
def test_compare_on_two_real_llmperf_studies(tmp_path: Path) -> None:
    from loadlens import api
    from loadlens.warehouse import Warehouse

    db = tmp_path / "lab.duckdb"
    with Warehouse(db) as wh:
        for name, path in STUDIES.items():
            api.ingest(wh, [path], deployment=name)
    for slo in ("p95_e2e<10s", "p95_e2e<20s,p95_ttft<2s"):
        _check_compare(db, slo, tmp_path / "compare.json")


def _check_compare(db: Path, slo: str, out: Path) -> None:
    from typer.testing import CliRunner

    from loadlens import api
    from loadlens.cli import app
    from loadlens.config import parse_slos
    from loadlens.warehouse import Warehouse

    result = CliRunner().invoke(
        app, ["compare", *STUDIES, "--db", str(db), "--slo", slo, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    html_out = out.with_suffix(".html")
    result = CliRunner().invoke(
        app, ["compare", *STUDIES, "--db", str(db), "--slo", slo, "--out", str(html_out)]
    )
    assert result.exit_code == 0, result.output
    html = html_out.read_text()
    assert "per GPU (" not in html and "95% range" not in html
    brief = json.loads(out.read_text())
    assert brief["recommendation"].replace('"', "&#34;")[:60] in html
    text = brief["recommendation"]
    # 4xA10G per replica is not recorded in the files: no per-GPU claim.
    assert "per GPU" not in text and not re.search(r"\b(\d+) vs \1\b", text)
    rows = {r["option"]: r for r in brief["rows"]}
    assert set(rows) == set(STUDIES)
    assert all(r["per_gpu"] == "–" for r in rows.values())
    assert all(r["errors_worst"] != "" for r in rows.values())

    with Warehouse(db, read_only=True) as wh:
        analysis = api.analyze(wh, list(STUDIES), parse_slos(slo))
    rec = analysis.recommendation
    assert rec is not None and rec.basis == brief["basis"]
    _consistent(rec)
    if rec.basis == "capacity":
        assert text.startswith(f"Choose {rec.best}:")
        best = rec.option(rec.best)
        assert best is not None
        # The sentence quotes the capacity the table shows for it.
        shown = rows[rec.best]["interpolated"].split(" (")[0].removeprefix("≈ ")
        assert shown and shown in text
    elif rec.basis == "tie":
        assert "indistinguishable at this sample size" in text and "Choose" not in text
        assert rec.advice
