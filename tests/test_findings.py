"""A unit test per finding kind of the registry (`loadlens.findings.MODULES`), and one per
misstatement class of issue 10's "Words that are true".

Each test calls a module's `find(a)` with a `SimpleNamespace` carrying only the fields
that module reads (model results built as the analysis builds them, small frames) and
asserts the sentence's key words and numbers, the severity by the one rule of
`findings/__init__.py`, and that every number the sentence states is carried in
`evidence` (`assert_numbers_in_evidence`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

from loadlens import findings
from loadlens.analysis.axes import AxisFit, AxisPoint, AxisSweep
from loadlens.analysis.cost import Cost
from loadlens.analysis.coverage import SloCoverage
from loadlens.analysis.drivers import Drivers
from loadlens.analysis.saturation import (
    Collapse,
    Knee,
    Level,
    OperatingZone,
    Plateau,
    RateSaturation,
    RunVerdict,
    SloBoundary,
    UslFit,
    operating_zones,
)
from loadlens.analysis.shortfall import Shortfall
from loadlens.analysis.whatif import WhatIf
from loadlens.config import SLO, error_budget, format_share
from loadlens.findings import (
    capacity,
    collapse,
    cost,
    drivers,
    errors,
    littles_law,
    load_shortfall,
    operating_zone,
    rate_saturation,
    resent,
    sample_size,
    scalability,
    slo_breach,
    slo_stand_in,
    slo_unjudged,
    summary_only,
    throughput_plateau,
    usage_mismatch,
    whatif,
    workload_axis,
)
from loadlens.findings.format import (
    boundary_range,
    ci_label,
    exceeds,
    format_excess,
    where_levels,
)
from loadlens.findings.model import Finding

E2E = SLO(metric="e2e_s", statistic="p95", threshold_s=10.0)
TTFT = SLO(metric="ttft_s", statistic="p95", threshold_s=2.0)
BUDGET = error_budget(0.01)
SLOS = (E2E, TTFT, BUDGET)
DEP = "alpha"

# --- every number of a sentence is in its evidence ----------------------------------------

# A number as a reader sees it: 1,024 / 3.2 / 0.0049 / 16 (in 16×); not the digits of a
# word (p95, E2E, H100) nor of a unit glued to it (1M).
NUMBER = re.compile(r"(?<![\w.,])(?<!e-)(?<!e\+)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")


def sentence_numbers(f: Finding, slos: tuple[SLO, ...] = SLOS) -> list[tuple[float, int]]:
    """(value, decimals shown) of each number the sentence states. The deployment's name and
    the SLOs' own wording (`p95 E2E ≤ 10 s`: the objective, not a finding) are left out."""
    text = f.sentence
    if f.deployment:
        text = text.replace(f.deployment, "<deployment>")
    for s in sorted(slos, key=lambda s: -len(str(s))):
        text = text.replace(str(s), "<slo>")
    return [
        (float(m.group(1).replace(",", "") + (m.group(2) or "")), len(m.group(2) or ".") - 1)
        for m in NUMBER.finditer(text)
    ]


def _candidates(evidence: dict[str, Any], derived: tuple[float, ...]) -> list[float]:
    """Each evidence number as a sentence may show it: as is, in ms or µs, as a percent;
    numbers inside evidence strings; and the test's `derived` values (a ratio of two
    evidence numbers, the confidence level of a CI label: named at each call)."""
    values: list[float] = list(derived)
    for v in evidence.values():
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, int | float):
            values.append(float(v))
        elif isinstance(v, str):
            values += [
                float(m.group(0).replace(",", "")) for m in re.finditer(r"\d[\d,]*\.?\d*", v)
            ]
    out = []
    for v in values:
        if math.isfinite(v):
            out += [v, v * 1e3, v * 1e6, v * 100]
    return [abs(c) for c in out]


def unmatched_numbers(f: Finding, *derived: float, slos: tuple[SLO, ...] = SLOS) -> list[float]:
    """The sentence's numbers that no evidence value rounds to, at the digits shown."""
    cands = _candidates(f.evidence, derived)
    missing = []
    for value, decimals in sentence_numbers(f, slos):
        # the digits shown, and 3 significant digits (format_seconds, `:.3g`) either way
        tol = 0.5 * 10**-decimals + 1e-9 * value
        if not any(
            abs(c - value) <= tol or (value and abs(c - value) <= 0.005 * value) for c in cands
        ):
            missing.append(value)
    return missing


def assert_numbers_in_evidence(f: Finding, *derived: float, slos: tuple[SLO, ...] = SLOS) -> None:
    missing = unmatched_numbers(f, *derived, slos=slos)
    assert not missing, f"{missing} stated but not in evidence {f.evidence}: {f.sentence!r}"


def one(found: list[Finding]) -> Finding:
    assert len(found) == 1, [f.sentence for f in found]
    return found[0]


# --- the registry ---------------------------------------------------------------------------


def test_registry_covers_every_module_once_in_order() -> None:
    assert len(findings.REGISTRY) == len(findings.MODULES), "a module in MODULES is missing"
    names = [m.__name__.rsplit(".", 1)[1] for m in findings.REGISTRY]
    assert sorted(names) == sorted(findings.MODULES)
    for m in findings.REGISTRY:
        assert m.__name__.rsplit(".", 1)[1] == m.KIND, m.__name__
        assert m.SECTION in {"story", "notes"}, (m.KIND, m.SECTION)
        assert isinstance(m.ORDER, int) and callable(m.find)
    orders = [m.ORDER for m in findings.REGISTRY]
    assert len(set(orders)) == len(orders), "two modules share an ORDER"
    assert orders == sorted(orders)
    assert set(findings.STORY) | set(findings.NOTES) == set(findings.MODULES)
    # every note comes after the story
    story = [m.ORDER for m in findings.REGISTRY if m.SECTION == "story"]
    notes = [m.ORDER for m in findings.REGISTRY if m.SECTION == "notes"]
    assert max(story) < min(notes)


# --- builders -----------------------------------------------------------------------------


def lv(
    load: float, value: float, lo: float | None = None, hi: float | None = None, n: int | None = 400
) -> Level:
    return Level(load, value, lo, hi, n)


def boundary(
    slo: SLO = E2E,
    last_ok: Level | None = None,
    first: Level | None = None,
    *,
    mode: str = "concurrency",
    boundary_load: float | None = None,
    lo: float | None = None,
    hi: float | None = None,
    max_load: float | None = None,
    n_loads: int = 3,
    deployment: str = DEP,
) -> SloBoundary:
    loads = [x.load for x in (last_ok, first) if x is not None]
    return SloBoundary(
        deployment=deployment,
        load_mode=mode,
        slo=slo,
        last_ok=last_ok,
        first_breach=first,
        boundary_load=boundary_load,
        boundary_lo=lo,
        boundary_hi=hi,
        max_load_measured=max_load if max_load is not None else max(loads),
        n_loads=n_loads,
        min_load_measured=min(loads),
    )


def coverage(deployment: str = DEP, slos: tuple[SLO, ...] = SLOS) -> list[SloCoverage]:
    return [SloCoverage(s, deployment, s, (), ()) for s in slos]


# --- capacity -------------------------------------------------------------------------------


def capacity_analysis(
    *bs: SloBoundary, verdicts: tuple[RunVerdict, ...] = (), confidence: float = 0.95
) -> Any:
    return SimpleNamespace(
        binding=list(bs), verdicts=list(verdicts), coverage=coverage(), confidence=confidence
    )


def test_capacity_crossed_states_the_limit_and_its_range() -> None:
    b = boundary(
        E2E,
        lv(64, 8.0, 7.6, 8.4),
        lv(128, 16.0, 15.2, 16.9),
        boundary_load=100.2,
        lo=91.0,
        hi=109.7,
        max_load=256,
    )
    f = one(capacity.find(capacity_analysis(b)))
    assert f.severity == "info"  # a limit above a load that meets it: capacity, not a fault
    assert f.kind == "capacity" and f.deployment == DEP
    assert "meets every SLO (p95 E2E ≤ 10 s, p95 TTFT ≤ 2 s, error rate ≤ 1%)" in f.sentence
    assert "up to concurrency 64 and misses p95 E2E ≤ 10 s at concurrency 128" in f.sentence
    assert "about concurrency 100 (range 91–110)" in f.sentence
    assert "95% CI" in f.confidence
    assert_numbers_in_evidence(f)


def test_capacity_missed_at_the_lightest_load_is_critical_with_the_excess_as_a_multiple() -> None:
    b = boundary(E2E, None, lv(4, 159.4, 150.0, 170.0), max_load=16, n_loads=3)
    f = one(capacity.find(capacity_analysis(b)))
    assert f.severity == "critical"
    assert "already at the lightest measured load, concurrency 4" in f.sentence
    assert "(p95 E2E 159 s, 16× the SLO)" in f.sentence
    assert "1494%" not in f.sentence and "1,494%" not in f.sentence
    assert "measure lower loads to find its capacity" in f.sentence
    assert_numbers_in_evidence(f, 159.4 / 10.0)


def test_capacity_missed_at_concurrency_1_does_not_advise_lower_loads() -> None:
    b = boundary(TTFT, None, lv(1, 2.5, 2.3, 2.7), max_load=1, n_loads=1)
    f = one(capacity.find(capacity_analysis(b)))
    assert f.severity == "critical"
    assert "at its one measured load, concurrency 1" in f.sentence
    assert "measure lower loads" not in f.sentence
    assert "even one request at a time misses it" in f.sentence
    assert "25% over it" in f.sentence
    assert_numbers_in_evidence(f, 2.5 / 2.0 - 1)


def test_capacity_met_at_one_load_says_its_limit_is_unknown() -> None:
    b = boundary(E2E, lv(24, 6.0, 5.5, 6.5), None, max_load=24, n_loads=1)
    f = one(capacity.find(capacity_analysis(b)))
    assert f.severity == "info"
    assert "at its one measured load, concurrency 24" in f.sentence
    assert "where its limit lies is unknown" in f.sentence
    assert "every measured level" not in f.sentence and "all 1" not in f.sentence
    assert_numbers_in_evidence(f)


def test_capacity_of_a_burst_run_names_it_by_what_it_is() -> None:
    level = Level(load=math.nan, value=110.0, lo=108.0, hi=112.0, n=1200)
    misses = RunVerdict(DEP, "r1", "throughput", 1200, E2E, level)
    meets = RunVerdict(
        DEP, "r1", "throughput", 1200, BUDGET, Level(math.nan, 0.0, 0.0, 0.004, 1200)
    )
    f = one(capacity.find(capacity_analysis(verdicts=(misses, meets), confidence=0.9)))
    assert f.severity == "critical"
    assert f.sentence.startswith(
        "With all 1,200 requests sent at once, alpha misses p95 E2E ≤ 10 s"
    )
    assert "11× the SLO" in f.sentence
    assert "90% CI" in f.confidence and "95%" not in f.confidence

    ok = RunVerdict(DEP, "r2", "throughput", 500, E2E, Level(math.nan, 3.0, 2.9, 3.1, 500))
    g = one(capacity.find(capacity_analysis(verdicts=(ok,))))
    assert g.severity == "info"
    assert "meets every SLO it can be judged on with all 500 requests sent at once" in g.sentence


def test_capacity_of_a_burst_run_numbers_are_in_evidence() -> None:
    level = Level(load=math.nan, value=110.0, lo=108.0, hi=112.0, n=1200)
    v = RunVerdict(DEP, "r1", "throughput", 1200, E2E, level)
    assert_numbers_in_evidence(one(capacity.find(capacity_analysis(verdicts=(v,)))), 11.0)


# --- slo_unjudged -------------------------------------------------------------------------


def levels_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Level rows as api.analyze makes them: each series' base deployment beside it."""
    return pl.DataFrame(
        [{"base_deployment": r["deployment"], **r} for r in rows], infer_schema_length=None
    )


def test_slo_unjudged_says_what_the_files_carry_and_how_to_judge() -> None:
    levels = levels_frame(
        [
            {"run_id": "r1", "deployment": DEP, "load_mode": "concurrency", "load_value": 64.0},
            {"run_id": "r2", "deployment": DEP, "load_mode": "concurrency", "load_value": 128.0},
        ]
    )
    a = SimpleNamespace(
        coverage=[
            SloCoverage(E2E, DEP, None, ("r1", "r2"), ("mean", "p50", "p99")),
            SloCoverage(BUDGET, DEP, None, ("r1",), ()),
        ],
        levels=levels,
    )
    latency, budget = slo_unjudged.find(a)
    assert latency.severity == budget.severity == "warning"
    assert latency.sentence.startswith("p95 E2E ≤ 10 s cannot be judged on 2 runs of alpha")
    assert "(concurrency 64, 128)" in latency.sentence
    assert "carry mean, p50, p99 of E2E but no p95" in latency.sentence
    assert "--stand-in judges it on p99 (an upper bound)" in latency.sentence
    assert "1 run of alpha (concurrency 64): its file counts no requests" in budget.sentence
    for f in (latency, budget):
        assert_numbers_in_evidence(f, 64.0, 128.0)  # the loads, named from the level table


# --- slo_breach -------------------------------------------------------------------------------


def test_slo_breach_severity_follows_the_one_rule_and_says_multiples() -> None:
    crossed = boundary(E2E, lv(8, 9.0, 8.8, 9.2), lv(16, 159.4, 150.0, 170.0), boundary_load=8.1)
    lowest = boundary(TTFT, None, lv(8, 2.09, 1.98, 2.2), max_load=16)
    budget = boundary(BUDGET, None, lv(8, 0.5, 0.4, 0.6), max_load=16)
    a = SimpleNamespace(boundaries=[crossed, lowest, budget], confidence=0.9)
    found = slo_breach.find(a)
    assert [f.evidence["slo"] for f in found] == [str(E2E), str(TTFT)]  # budget: errors' to say
    warning, critical = found
    assert warning.severity == "warning" and critical.severity == "critical"
    assert warning.sentence == "At concurrency 16, p95 E2E of alpha (159 s) is 16× the 10 s SLO."
    assert "exceeds the 2 s SLO by 4.5%" in critical.sentence
    assert "its 90% CI reaches down to 1.98 s, so the breach is likely but not certain" in (
        critical.sentence
    )
    for f in found:
        assert "95%" not in f.sentence + f.confidence
        assert_numbers_in_evidence(f, 90.0, f.evidence["ratio"] - 1, slos=())  # type: ignore[operator]


# --- errors -----------------------------------------------------------------------------------


def error_levels() -> pl.DataFrame:
    base = {"deployment": DEP, "load_mode": "concurrency", "n_cancelled": 0}
    return levels_frame(
        [
            base
            | {
                "run_id": "r1",
                "load_value": 1.0,
                "n_requests": 100,
                "n_errors": 12,
                "error_rate": 0.12,
                "error_rate_lo": 0.07,
                "error_rate_hi": 0.2,
            },
            base
            | {
                "run_id": "r2",
                "load_value": 4.0,
                "n_requests": 200,
                "n_errors": 1,
                "error_rate": 0.005,
                "error_rate_lo": 0.001,
                "error_rate_hi": 0.028,
            },
            base
            | {
                "run_id": "r3",
                "load_value": 8.0,
                "n_requests": 150,
                "n_errors": 150,
                "error_rate": 1.0,
                "error_rate_lo": 0.975,
                "error_rate_hi": 1.0,
            },
            base
            | {
                "run_id": "r4",
                "load_value": 16.0,
                "n_requests": 50,
                "n_errors": 0,
                "error_rate": 0.0,
                "error_rate_lo": 0.0,
                "error_rate_hi": 0.07,
            },
        ]
    )


def errors_analysis(levels: pl.DataFrame, confidence: float = 0.95) -> Any:
    failures = pl.DataFrame(
        {
            "run_id": ["r1", "r1", "r2", "r3"],
            "kind": ["rate-limited (HTTP 429)", "timed out", "HTTP 500", "connection failed"],
            "n": [10, 2, 1, 150],
        }
    )
    return SimpleNamespace(
        levels=levels, failures=failures, error_budget=BUDGET, confidence=confidence
    )


def test_errors_by_kind_against_the_budget() -> None:
    lightest, within, all_failed = errors.find(errors_analysis(error_levels(), 0.9))
    # over budget at the lightest load: critical; every request failed: critical
    assert lightest.severity == "critical"
    assert lightest.sentence == (
        "At concurrency 1, 12% of alpha's requests failed (12 of 100): 10% rate-limited "
        "(HTTP 429), 2% timed out; over its 1% error budget, so this level does not meet the "
        "SLOs."
    )
    assert within.severity == "info" and "within its 1% error budget" in within.sentence
    assert all_failed.severity == "critical"
    assert "every one of alpha's 150 requests failed" in all_failed.sentence
    for f in (lightest, within, all_failed):
        assert "90% CI" in f.confidence and "95%" not in f.confidence


def test_errors_over_budget_above_a_load_that_meets_it_is_a_warning() -> None:
    levels = (
        error_levels()
        .filter(pl.col("run_id").is_in(["r2", "r4"]))
        .with_columns(n_errors=pl.Series([1, 5]), error_rate=pl.Series([0.005, 0.1]))
    )
    ok, over = errors.find(errors_analysis(levels))
    assert ok.severity == "info" and over.severity == "warning"
    assert "At concurrency 16, 10% of alpha's requests failed (5 of 50)" in over.sentence


def test_errors_numbers_are_in_evidence() -> None:
    level = (
        error_levels()
        .filter(pl.col("run_id") == "r1")
        .with_columns(
            load_value=pl.lit(8.0),
            n_requests=pl.lit(300),
            n_errors=pl.lit(45),
            error_rate=pl.lit(0.15),
            error_rate_lo=pl.lit(0.11),
            error_rate_hi=pl.lit(0.19),
        )
    )
    a = errors_analysis(level)
    a.error_budget = error_budget(0.02)
    a.failures = pl.DataFrame({"run_id": ["r1"], "kind": ["connection failed"], "n": [45]})
    f = one(errors.find(a))
    assert "over its 2% error budget" in f.sentence
    assert_numbers_in_evidence(f)


# --- drivers ----------------------------------------------------------------------------------


def drivers_analysis(confidence: float = 0.95) -> Any:
    d = Drivers(
        deployment=DEP,
        load_mode="concurrency",
        load=64.0,
        baseline_load=2.0,
        e2e_mean_s=9.05,
        baseline_e2e_mean_s=1.9,
        contributions_s={"queueing": 4.29, "decode_contention": 2.86},
        kv_cache_peak=0.93,
        preemptions=12.0,
        waiting_mean=3.4,
        n=64,
        per_output_token_s=0.0563,
        per_output_token_ci=(0.0273, 0.0853),
        baseline_per_output_token_s=0.0086,
    )
    flat = Drivers(
        deployment="beta",
        load_mode="concurrency",
        load=8.0,
        baseline_load=1.0,
        e2e_mean_s=1.02,
        baseline_e2e_mean_s=1.0,
        contributions_s={"queueing": 0.02},
        kv_cache_peak=None,
        preemptions=None,
        waiting_mean=None,
        n=50,
    )
    b = boundary(E2E, lv(32, 6.0), lv(64, 12.1), boundary_load=50.0)
    levels = levels_frame(
        [{"deployment": DEP, "load_mode": "concurrency", "load_value": 64.0, "p95_e2e_s": 12.1}]
    )
    return SimpleNamespace(drivers=[d, flat], binding=[b], levels=levels, confidence=confidence)


def test_drivers_split_the_growth_at_the_first_breach() -> None:
    f = one(drivers.find(drivers_analysis(0.9)))  # beta grew 2%: within noise, no cause named
    assert f.severity == "info" and f.deployment == DEP
    text = f.sentence
    assert text.startswith(
        "At concurrency 64, mean E2E of alpha grew from 1.9 s (at concurrency 2)"
    )
    assert "to 9.05 s (p95 12.1 s)" in text
    assert "queueing 60%" in text and "of the growth" in text
    assert "KV-cache usage peaked at 93%" in text and "12 preemptions" in text
    assert "(90% CI 27.3 ms–85.3 ms)" in text and "95%" not in text


def test_drivers_numbers_are_in_evidence() -> None:
    assert_numbers_in_evidence(one(drivers.find(drivers_analysis())))


# --- workload_axis ----------------------------------------------------------------------------


def axis_sweep(confidence: float = 0.95) -> AxisSweep:
    points = tuple(
        AxisPoint(
            series=f"{DEP} · in {n:,} tok",
            run_id=f"r{n}",
            value=float(n),
            stats={"p95_ttft_s": v, "mean_ttft_s": v * 0.8},
            n=100,
            mean_tokens=float(n),
        )
        for n, v in ((1024, 0.5), (4096, 1.5), (8192, 3.0))
    )
    fit = AxisFit(
        metric="ttft_s",
        basis="requests",
        n=300,
        n_runs=3,
        slope_s_per_token=0.00021,
        slope_lo=0.00018,
        slope_hi=0.00024,
        intercept_s=0.2,
        r2=0.9,
        significant=True,
        share_tokens=8192.0,
        share_reference_s=2.4,
        share_at_max=0.72,
    )
    return AxisSweep(
        base_deployment=DEP,
        load_mode="concurrency",
        load_value=100.0,
        axis="input_tokens",
        points=points,
        fit=fit,
        run_fit=fit,
        confidence=confidence,
    )


def test_workload_axis_moves_the_slo_latency_along_the_axis() -> None:
    a = SimpleNamespace(axes=[axis_sweep(0.9)], slos=SLOS, confidence=0.9)
    f = one(workload_axis.find(a))
    assert f.severity == "warning"  # over the SLO at some length
    text = f.sentence
    assert text.startswith(
        "At concurrency 100, p95 TTFT of alpha grows from 500 ms at 1,024 input tokens to 3 s "
        "at 8,192 (the 2 s SLO is crossed between 4,096 and 8,192)"
    )
    assert "TTFT grows 210 µs per input token (90% CI 180 µs–240 µs)" in text
    assert "at 8,192 tokens the per-token part of TTFT is 72% of mean TTFT" in text
    assert "prefill" not in text.lower()
    assert "95%" not in text + f.confidence and "90% interval" in f.confidence
    assert_numbers_in_evidence(f, 4096.0)


# --- whatif -------------------------------------------------------------------------------


def whatif_analysis(*ws: WhatIf) -> Any:
    levels = levels_frame(
        [
            {
                "deployment": DEP,
                "load_mode": "concurrency",
                "load_value": 64.0,
                "n_ok": 100,
                "request_throughput_rps": 2.0,
                "output_throughput_tps": 512.0,
            }
        ]
    )
    return SimpleNamespace(whatifs=list(ws), levels=levels, slos=SLOS)


def cut(at_cap: float | None = None, reasoning: float | None = None) -> WhatIf:
    return WhatIf(
        DEP,
        "concurrency",
        64.0,
        "output_scale",
        0.7,
        {"p95_e2e_s": 9.98, "p95_ttft_s": 0.127},
        "per-request model",
        at_cap_share=at_cap,
        reasoning_share=reasoning,
    )


def test_whatif_names_the_change_and_its_prediction() -> None:
    replicas = WhatIf(DEP, "concurrency", 64.0, "replicas", 2.0, {"p95_e2e_s": 6.06}, "levels")
    f = one(whatif.find(whatif_analysis(cut(), replicas)))
    assert f.severity == "info"
    assert f.sentence == (
        "To meet every latency SLO at concurrency 64 on alpha: outputs 30% shorter (mean 256 → "
        "179 tokens) gives p95 E2E 9.98 s, p95 TTFT 127 ms; or spreading the load over 2 "
        "replicas gives p95 E2E 6.06 s (predicted)."
    )
    assert "length cap" not in f.sentence and "reasoning" not in f.sentence


def test_whatif_numbers_are_in_evidence() -> None:
    assert_numbers_in_evidence(one(whatif.find(whatif_analysis(cut()))))


# --- operating_zone ---------------------------------------------------------------------------


def test_operating_zone_says_what_bounds_it() -> None:
    knee_first = OperatingZone(DEP, "concurrency", 0.8 * 32, 34.2, 32.0, 0.8)
    no_limit = OperatingZone("beta", "rate", 0.8 * 20, None, None, 0.8)
    f, g = operating_zone.find(SimpleNamespace(zones=[knee_first, no_limit]))
    assert f.severity == g.severity == "info"
    assert f.sentence == (
        "Stable operating zone of alpha: up to concurrency 26 per replica — 80% of the lower of "
        "its latency knee (32, where latency turns steep) and its SLO limit (about 34); the knee "
        "comes first, so the zone sits below what the SLO allows."
    )
    assert "up to 16 req/s per replica — 80% of the highest load measured" in g.sentence
    for z in (f, g):
        assert_numbers_in_evidence(z)


# --- cost -------------------------------------------------------------------------------------


def a_cost(hosted: float | None = None, break_even: float | None = None) -> Cost:
    return Cost(
        deployment=DEP,
        load=25.6,
        load_mode="concurrency",
        rps=4.21,
        output_tps=1077.0,
        total_tps=3000.0,
        replica_hour_usd=2.5,
        usd_per_1m_output=0.64,
        usd_per_1m_total=0.23,
        usd_per_request=0.000165,
        users_per_replica=350.0,
        replicas=3,
        monthly_usd=5475.0,
        usd_per_user_month=5.48,
        hosted_usd_per_user_month=hosted,
        break_even_users=break_even,
    )


def test_cost_at_the_stable_zone() -> None:
    f, g = cost.find(SimpleNamespace(costs=[a_cost(), a_cost(hosted=7.5, break_even=700.0)]))
    assert f.severity == "info"
    assert f.sentence == (
        "At its stable zone (concurrency 26, 4.21 req/s per replica), alpha costs $0.64 per 1M "
        "output tokens; 3 replica(s) serve the user profile for $5,475/month, $5.48 per user per "
        "month."
    )
    assert (
        "(cheaper than the hosted API's $7.50 at this user count; self-hosting pays from "
        "about 700 users)" in g.sentence
    )


def test_cost_numbers_are_in_evidence() -> None:
    for f in cost.find(SimpleNamespace(costs=[a_cost(), a_cost(hosted=7.5, break_even=700.0)])):
        assert_numbers_in_evidence(f)


# --- collapse -------------------------------------------------------------------------------


def test_collapse_is_critical_with_throughput_and_latency() -> None:
    c = Collapse(DEP, "concurrency", 32.0, 64.0, 5.27, 4.45, 6.06, 12.1)
    f = one(collapse.find(SimpleNamespace(collapses=[c])))
    assert f.severity == "critical"
    assert f.sentence == (
        "alpha collapses past concurrency 32: at 64 it completes 4.45 req/s instead of 5.27 "
        "(-16%) while p95 E2E rises from 6.06 s to 12.1 s."
    )
    assert_numbers_in_evidence(f, 4.45 / 5.27 - 1)


# --- load_shortfall -------------------------------------------------------------------------


def shortfall(**fields: Any) -> Shortfall:
    base: dict[str, Any] = {
        "run_id": "r1",
        "deployment": DEP,
        "load_mode": "concurrency",
        "requested": 128.0,
        "delivered": None,
        "delivered_max": None,
        "tolerance": None,
        "status": "ok",
        "cause": "",
        "basis": "",
        "n_requests": None,
        "n_from_completed": False,
        "mean_in_flight": None,
        "throughput_rps": None,
        "mean_latency_s": None,
        "served_rps": None,
        "longest_s": None,
        "duration_s": None,
        "drain_floor": None,
        "cap": None,
        "latency_excludes_wait": False,
        "schedule_delay_s": None,
        "max_schedule_delay_s": None,
    }
    return Shortfall(**(base | fields))


def test_load_shortfall_blames_the_client_not_the_server() -> None:
    few = shortfall(
        status="client_shortfall",
        cause="too_few_requests",
        basis="request_count",
        delivered=94.4,
        delivered_max=100.0,
        n_requests=100,
        n_from_completed=True,
    )
    rate = shortfall(
        run_id="r2",
        load_mode="rate",
        requested=20.0,
        delivered=14.2,
        tolerance=0.09,
        status="client_shortfall",
        cause="send_rate",
        basis="send_times",
        n_requests=500,
    )
    late = shortfall(
        run_id="r3",
        load_mode="rate",
        requested=2.0,
        status="ok",
        basis="send_times",
        latency_excludes_wait=True,
        schedule_delay_s=0.971,
        max_schedule_delay_s=5.98,
    )
    fine = shortfall(run_id="r4", status="ok")
    found = load_shortfall.find(SimpleNamespace(shortfalls=[few, rate, late, fine]))
    assert [f.severity for f in found] == ["warning"] * 3
    f, g, h = found
    assert f.sentence.startswith(
        "alpha: asked for concurrency 128, the client had only 100 requests (completed; the file "
        "records no failures): at most 100 in flight (on average 94.4, by Little's law)."
    )
    assert "The load generator fell short, not the server" in f.sentence
    assert "its queue grows" not in f.sentence
    assert "asked for 20 req/s, the client sent only 14.2 req/s (500 requests, noise ±9%)" in (
        g.sentence
    )
    assert "sent requests behind its schedule (on average 971 ms, up to 5.98 s)" in h.sentence
    assert "they are optimistic at this level" in h.sentence
    for x in found:
        assert_numbers_in_evidence(x)
    assert load_shortfall.level_label(few) == "asked 128 / delivered ≤ 100"
    assert load_shortfall.level_label(rate) == "asked 20 / delivered 14.2 req/s"


# --- rate_saturation --------------------------------------------------------------------------


def test_rate_saturation_only_where_the_client_sent_as_asked() -> None:
    r = RateSaturation(DEP, 16.0, 7.6, 4.0)
    f = one(rate_saturation.find(SimpleNamespace(saturations=[r], shortfalls=[])))
    assert f.severity == "critical"
    assert f.sentence == (
        "At 16 req/s offered, alpha completed only 7.60 req/s (48%): its queue grows for as long "
        "as that load lasts; it kept up at 4 req/s."
    )
    assert_numbers_in_evidence(f, 7.6 / 16)

    sent = shortfall(
        load_mode="rate",
        requested=16.0,
        delivered=15.9,
        status="server_saturation",
        basis="send_times",
    )
    g = one(rate_saturation.find(SimpleNamespace(saturations=[r], shortfalls=[sent])))
    assert "while the client sent 15.9 req/s as asked" in g.sentence
    assert_numbers_in_evidence(g, 7.6 / 16)

    short = shortfall(
        load_mode="rate",
        requested=16.0,
        delivered=9.0,
        status="client_shortfall",
        cause="send_rate",
        basis="send_times",
    )
    assert rate_saturation.find(SimpleNamespace(saturations=[r], shortfalls=[short])) == []


# --- throughput_plateau -----------------------------------------------------------------------


def test_throughput_plateau_is_a_warning() -> None:
    p = Plateau(DEP, "concurrency", 128.0, 256.0, 8731.0, 9286.0)
    f = one(throughput_plateau.find(SimpleNamespace(plateaus=[p])))
    assert f.severity == "warning"
    assert f.sentence == (
        "Throughput of alpha plateaus: going from concurrency 128 to 256 adds only 6% output "
        "tokens/s (8,731 → 9,286 tok/s); more load now buys latency, not work."
    )
    assert_numbers_in_evidence(f)
    down = one(
        throughput_plateau.find(
            SimpleNamespace(plateaus=[Plateau(DEP, "concurrency", 32.0, 64.0, 1038.0, 887.0)])
        )
    )
    assert "loses 15% of its output tokens/s" in down.sentence


# --- slo_stand_in -----------------------------------------------------------------------------


def test_slo_stand_in_says_the_pass_is_certain_and_the_breach_overstated() -> None:
    p99 = SLO(metric="e2e_s", statistic="p99", threshold_s=10.0)
    c = SloCoverage(E2E, DEP, p99, (), ("mean", "p99"))
    f = one(slo_stand_in.find(SimpleNamespace(coverage=[c, *coverage()])))
    assert f.severity == "info" and f.kind == "slo_stand_in"
    assert f.sentence == (
        "p95 E2E ≤ 10 s is judged on p99 E2E for alpha: its files carry no p95. p99 is at least "
        "p95, so a pass is certain and a breach may be overstated."
    )
    assert_numbers_in_evidence(f)


# --- scalability ------------------------------------------------------------------------------


def test_scalability_words_the_usl_fit_and_drops_poor_fits() -> None:
    peaked = UslFit(
        DEP, lam=0.5, sigma=0.043, kappa=0.00092, r2=0.992, n_points=6, max_load_measured=64
    )
    beyond = UslFit(
        "beta", lam=0.5, sigma=0.001, kappa=5.3e-6, r2=0.999, n_points=6, max_load_measured=256
    )
    endless = UslFit(
        "gamma", lam=0.5, sigma=0.015, kappa=0.0, r2=0.974, n_points=6, max_load_measured=256
    )
    poor = UslFit("delta", lam=0.5, sigma=0.1, kappa=0.01, r2=0.5, n_points=4, max_load_measured=8)
    found = scalability.find(SimpleNamespace(usl=[peaked, beyond, endless, poor]))
    assert [f.deployment for f in found] == [DEP, "beta", "gamma"]
    f, g, h = found
    assert all(x.severity == "info" for x in found)
    assert "R² 0.992 over 6 levels; contention σ = 0.043" in f.sentence
    assert "peaks near concurrency 32; past it, more load lowers throughput" in f.sentence
    assert "would peak near concurrency 434, beyond the 256 measured" in g.sentence
    assert "shows no coherency cost" in h.sentence


def test_scalability_numbers_are_in_evidence() -> None:
    beyond = UslFit(
        "beta", lam=0.5, sigma=0.001, kappa=5.3e-6, r2=0.999, n_points=6, max_load_measured=256
    )
    assert_numbers_in_evidence(one(scalability.find(SimpleNamespace(usl=[beyond]))))


# --- littles_law ------------------------------------------------------------------------------


def test_littles_law_explains_a_low_average_in_flight() -> None:
    drained = shortfall(
        requested=100.0,
        status="ok",
        mean_in_flight=77.9,
        throughput_rps=25.1,
        mean_latency_s=3.1,
        longest_s=3.94,
        duration_s=3.98,
    )
    untimed = shortfall(
        run_id="r2",
        requested=256.0,
        status="unknown",
        cause="failures_untimed",
        mean_in_flight=194.0,
        throughput_rps=27.1,
        mean_latency_s=7.17,
    )
    full = shortfall(run_id="r3", requested=64.0, status="ok", mean_in_flight=60.0)
    f, g = littles_law.find(SimpleNamespace(shortfalls=[drained, untimed, full]))
    assert f.severity == g.severity == "info"
    assert f.sentence.startswith(
        "At concurrency 100, alpha held on average 77.9 requests in flight (Little's law: "
        "25.1 req/s × 3.1 s): the run's own start and drain explain it (its longest request "
        "took 3.94 s of a 3.98 s run)."
    )
    assert "whether the client fell short cannot be told" in g.sentence
    for x in (f, g):
        assert_numbers_in_evidence(x)


# --- summary_only -----------------------------------------------------------------------------


def test_summary_only_counts_the_runs_without_rows() -> None:
    levels = levels_frame(
        [
            {"deployment": DEP, "basis": "summary"},
            {"deployment": DEP, "basis": "summary"},
            {"deployment": "beta", "basis": "summary"},
            {"deployment": "gamma", "basis": "requests"},
        ]
    )
    f, g = summary_only.find(SimpleNamespace(levels=levels))
    assert f.sentence.startswith("2 runs of alpha carry only the tool's summary statistics: their")
    assert g.sentence.startswith("1 run of beta carries only the tool's summary statistics: its")
    assert f.severity == g.severity == "info"
    for x in (f, g):
        assert_numbers_in_evidence(x)


# --- sample_size ------------------------------------------------------------------------------


def sample_levels(loads: list[float], n: list[int], deployment: str = DEP) -> pl.DataFrame:
    return levels_frame(
        [
            {
                "deployment": deployment,
                "basis": "requests",
                "load_mode": "concurrency",
                "load_value": load,
                "p95_e2e_s": 3.0,
                "p95_e2e_s_hi": None,
                "n_e2e_s": k,
                "p99_e2e_s": 3.5,
                "p99_e2e_s_hi": None,
            }
            for load, k in zip(loads, n, strict=True)
        ]
    )


def test_sample_size_on_one_level_says_its_only_level() -> None:
    a = SimpleNamespace(levels=sample_levels([1.0], [50]), slos=(E2E,), confidence=0.9)
    p95, p99 = sample_size.find(a)
    assert p95.sentence == (
        "p95 E2E of alpha rests on 50 samples at its only level, only about 3 above the "
        "percentile: too few for a 90% upper bound, so read it as indicative."
    )
    assert "fewer than one above the percentile" in p99.sentence
    for f in (p95, p99):
        assert f.severity == "info"
        assert "all 1 level" not in f.sentence and " per level" not in f.sentence
        assert "95%" not in f.sentence + f.confidence
        assert f.confidence.startswith("a 90% upper bound on")
        assert_numbers_in_evidence(f, 50 * (1 - 0.95), 90.0)


def test_sample_size_over_levels() -> None:
    a = SimpleNamespace(
        levels=sample_levels([1.0, 2.0, 4.0], [40, 60, 64]), slos=(E2E,), confidence=0.95
    )
    p95, _ = sample_size.find(a)
    assert "rests on 40–64 samples per level at all 3 levels" in p95.sentence
    assert "too few for a 95% upper bound" in p95.sentence
    assert sample_size.needed(0.95, 0.95) == 72 and sample_size.needed(0.99, 0.95) == 368


# --- the words of issue 10, class by class ----------------------------------------------------


def test_never_at_all_1_levels() -> None:
    assert where_levels(1, 1, "concurrency", [1.0]) == "at its only level"
    assert where_levels(3, 3, "concurrency", [1.0, 2.0, 4.0]) == "at all 3 levels"
    assert where_levels(1, 3, "concurrency", [4.0]) == "at concurrency 4"


@pytest.mark.parametrize("ratio", [1.00001, 1.0004, 1.001, 1.004, 1.046, 1.5, 1.999])
def test_never_by_0_percent(ratio: float) -> None:
    slo = SLO(metric="ttft_s", statistic="p95", threshold_s=0.03)
    said = exceeds(0.03 * ratio, slo)
    assert "by 0%" not in said and not re.search(r"(?<![\d.])0(\.0+)?%", said), said
    assert said.startswith("exceeds the 30 ms SLO by ")
    aside = format_excess(0.03 * ratio, 0.03)
    assert not re.search(r"(?<![\d.])0(\.0+)?%", aside), aside


def test_a_barely_breached_slo_is_critical_at_the_lightest_load_and_says_so_in_words() -> None:
    """The issue saw "exceeds the 30 ms SLO by 0%" beside a critical finding on the same
    breach: one severity rule, and the excess never rounds to nothing."""
    slo = SLO(metric="ttft_s", statistic="p95", threshold_s=0.03)
    b = boundary(slo, None, lv(4, 0.030004, 0.0299, 0.0301), max_load=8)
    breach = one(slo_breach.find(SimpleNamespace(boundaries=[b], confidence=0.95)))
    cap = one(
        capacity.find(
            SimpleNamespace(
                binding=[b], verdicts=[], coverage=coverage(slos=(slo,)), confidence=0.95
            )
        )
    )
    assert breach.severity == cap.severity == "critical"
    assert "by less than 0.1%" in breach.sentence and "by 0%" not in breach.sentence
    assert "less than 0.1% over it" in cap.sentence


@pytest.mark.parametrize("load", [1.0, 0.5])
def test_never_measure_lower_loads_below_concurrency_1(load: float) -> None:
    b = boundary(E2E, None, lv(load, 12.0), max_load=8)
    assert "measure lower loads" not in capacity.lower_loads_advice(b)
    assert "measure lower loads" in capacity.lower_loads_advice(
        boundary(E2E, None, lv(2.0, 12.0), max_load=8)
    )
    # a rate can always go lower
    assert "measure lower loads" in capacity.lower_loads_advice(
        boundary(E2E, None, lv(0.5, 12.0), mode="rate", max_load=8)
    )


def test_never_a_range_with_equal_ends() -> None:
    b = boundary(E2E, lv(2, 8.0), lv(4, 12.0), boundary_load=3.9, lo=3.6, hi=4.4)
    assert boundary_range(b) == "range about 4"
    b = boundary(E2E, lv(2, 8.0), lv(4, 12.0), boundary_load=3.9, lo=3.2, hi=4.4)
    assert boundary_range(b) == "range 3–4"
    # Open above, its lower end rounding to the breaching load: never "2 to more than 2".
    b = boundary(E2E, lv(1, 0.5), lv(2, 1.04), boundary_load=1.9, lo=1.6, hi=None)
    assert boundary_range(b) == "range 2 or more"
    f = one(
        capacity.find(
            capacity_analysis(
                boundary(E2E, lv(2, 8.0), lv(4, 12.0), boundary_load=3.9, lo=3.6, hi=4.4)
            )
        )
    )
    assert not re.search(r"range (\d+(?:\.\d+)?)–\1(?![\d.])", f.sentence), f.sentence


def test_never_a_stable_zone_from_a_single_level() -> None:
    one_load = boundary(E2E, lv(24, 6.0), None, max_load=24, n_loads=1)
    assert operating_zones([one_load], [Knee(DEP, "concurrency", 24.0, 6.0, "p95_e2e_s")]) == []
    two = boundary(E2E, lv(24, 6.0), None, max_load=48, n_loads=2)
    (zone,) = operating_zones([two], [])
    assert zone.max_load == pytest.approx(0.8 * 48)


def test_whatif_says_when_outputs_hit_max_tokens_or_are_reasoning() -> None:
    f = one(whatif.find(whatif_analysis(cut(at_cap=1.0))))
    assert "100% of outputs ran to the length cap, so this means lowering max_tokens" in f.sentence
    assert f.evidence["at_cap_share"] == 1.0
    g = one(whatif.find(whatif_analysis(cut(reasoning=0.8))))
    assert "80% of output tokens were reasoning, so shorter outputs mean less reasoning" in (
        g.sentence
    )
    # a cap most outputs did not reach is no caveat
    assert "length cap" not in one(whatif.find(whatif_analysis(cut(at_cap=0.3)))).sentence


def test_never_by_1494_percent() -> None:
    assert exceeds(159.4, E2E) == "is 16× the 10 s SLO"
    assert format_excess(159.4, 10.0) == "16× the SLO"
    assert format_excess(25.0, 10.0) == "2.5× the SLO"
    for ratio in (2.0, 3.3, 15.94, 121.0):
        assert not re.search(r"\d{3,}%", exceeds(10.0 * ratio, E2E) + format_excess(ratio, 1.0))


def test_the_ci_label_follows_the_confidence_asked() -> None:
    assert ci_label(0.9) == "90% CI" and ci_label(0.95) == "95% CI" and ci_label(0.99) == "99% CI"
    b = boundary(E2E, lv(64, 8.0, 7.6, 8.4), lv(128, 16.0, 15.2, 16.9), boundary_load=100.0)
    f = one(capacity.find(capacity_analysis(b, confidence=0.9)))
    assert "90% CI" in f.confidence and "95%" not in f.confidence
    d = one(drivers.find(drivers_analysis(0.9)))
    assert "90% CI" in d.sentence and "95%" not in d.sentence + d.confidence
    for e in errors.find(errors_analysis(error_levels(), 0.9)):
        assert "95%" not in e.sentence + e.confidence
    s = sample_size.find(
        SimpleNamespace(levels=sample_levels([1.0, 2.0], [50, 50]), slos=(E2E,), confidence=0.9)
    )
    assert s and all("95%" not in x.sentence + x.confidence for x in s)


def test_a_share_is_never_printed_in_scientific_notation() -> None:
    for value in (2.2e-19, 1e-9, 3e-7):
        assert "e-" not in format_share(value), format_share(value)


# --- series: one finding for what every variant of a deployment lacks ------------------------


def test_an_slo_every_variant_lacks_is_said_once_for_the_deployment() -> None:
    levels = pl.DataFrame(
        [
            {"run_id": f"r{i}", "deployment": f"{DEP} · in {n} tok", "base_deployment": DEP}
            | {"load_mode": "concurrency", "load_value": 100.0}
            for i, n in enumerate((1024, 2048, 4096))
        ]
    )
    coverage = [
        SloCoverage(E2E, f"{DEP} · in {n} tok", None, (f"r{i}",), ("mean", "p50", "p99"))
        for i, n in enumerate((1024, 2048, 4096))
    ]
    (f,) = slo_unjudged.find(SimpleNamespace(coverage=coverage, levels=levels))
    assert f.deployment == DEP and f.evidence["runs"] == 3
    assert f.sentence.startswith(f"p95 E2E ≤ 10 s cannot be judged on 3 runs of {DEP} (")


def test_a_tag_names_a_variant_by_what_differs() -> None:
    from loadlens.analysis.variants import distinct_part

    tags = {"pd_1p1d_n100_in512_c64", "pd_1p8d_n100_in512_c64"}
    assert distinct_part("pd_1p8d_n100_in512_c64", tags) == "1p8d"
    assert distinct_part("only", {"only"}) == "only"


def test_first_token_wait_is_not_called_queueing_when_the_servers_queue_was_empty() -> None:
    """llama.cpp on one CPU thread: TTFT grew 0.3 → 2.2 s at concurrency 8 of 8 slots with
    nothing waiting; the wait was for compute (others' prefills), not a queue."""
    a = drivers_analysis()
    (d, *_) = a.drivers
    a.drivers = [dataclasses.replace(d, waiting_mean=0.0)]
    (f,) = drivers.find(a)
    assert "queueing" not in f.sentence
    assert "first-token wait with the server's queue empty 60%" in f.sentence


def _runs_with(workload: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "run_id": "r1",
                "deployment": DEP,
                "load_mode": "concurrency",
                "load_value": 8.0,
                "num_requests": 60,
                "workload": json.dumps(workload),
            }
        ]
    )


def test_a_usage_report_the_stream_contradicts_is_said() -> None:
    runs = _runs_with(
        {
            "usage_mismatch": {
                "requests": 48,
                "server_completion_tokens": 30720,
                "streamed_chunks": 768,
            }
        }
    )
    (f,) = usage_mismatch.find(SimpleNamespace(runs=runs))
    assert f.severity == "warning" and "reported 30,720 completion tokens" in f.sentence
    assert "carried 768 chunks" in f.sentence and "counts the streamed tokens" in f.sentence
    assert usage_mismatch.find(SimpleNamespace(runs=_runs_with({}))) == []


def test_re_sent_requests_are_counted() -> None:
    (f,) = resent.find(SimpleNamespace(runs=_runs_with({"resent_requests": 32})))
    assert f.sentence.startswith("At concurrency 8, 32 sends of 60 requests met a kept-alive")
    assert f.evidence["resent"] == 32 and resent.find(SimpleNamespace(runs=_runs_with({}))) == []
