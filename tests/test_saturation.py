"""SLO boundary interpolation, its uncertainty, the binding SLO, throughput plateaus."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadlens.analysis.saturation import max_load_within_slos, slo_boundary, throughput_plateaus
from loadlens.config import parse_slos

E2E = parse_slos("p95_e2e<10s")[0]


def _levels(loads, p95, lo=None, hi=None, tps=None, deployment="d") -> pl.DataFrame:
    n = len(loads)
    return pl.DataFrame(
        {
            "deployment": [deployment] * n,
            "load_mode": ["concurrency"] * n,
            "load_value": [float(x) for x in loads],
            "p95_e2e_s": p95,
            "p95_e2e_s_lo": lo or [None] * n,
            "p95_e2e_s_hi": hi or [None] * n,
            "n_e2e_s": [200] * n,
            "output_throughput_tps": tps or [1.0] * n,
        },
        schema_overrides={"p95_e2e_s_lo": pl.Float64, "p95_e2e_s_hi": pl.Float64},
    )


def test_boundary_is_interpolated_between_last_ok_and_first_breach() -> None:
    (b,) = slo_boundary(_levels([10, 20, 40, 60], [4.0, 6.0, 8.0, 12.0]), E2E)
    assert b.status == "crossed"
    assert (b.last_ok.load, b.first_breach.load) == (40, 60)  # type: ignore[union-attr]
    assert b.boundary_load == pytest.approx(50.0)


def test_uncertainty_range_comes_from_the_confidence_bounds() -> None:
    lv = _levels([20, 40, 60], [6.0, 8.0, 12.0], lo=[5.5, 7.0, 11.0], hi=[6.5, 9.0, 14.0])
    (b,) = slo_boundary(lv, E2E)
    assert b.boundary_lo == pytest.approx(40 + 20 * (10 - 9) / (14 - 9))
    assert b.boundary_hi == pytest.approx(40 + 20 * (10 - 7) / (11 - 7))
    assert b.boundary_lo < b.boundary_load < b.boundary_hi  # type: ignore[operator]


def test_unbounded_side_is_reported_as_unknown() -> None:
    lv = _levels([40, 60], [8.0, 12.0], lo=[7.0, 9.0], hi=[10.5, None])
    (b,) = slo_boundary(lv, E2E)
    assert b.boundary_lo is None  # the upper bound at 40 already exceeds the SLO
    assert b.boundary_hi is None  # the lower bound at 60 still meets it


def test_never_breached_and_breached_at_lowest() -> None:
    (ok,) = slo_boundary(_levels([1, 5], [1.0, 2.0]), E2E)
    assert ok.status == "never_breached" and ok.last_ok.load == 5  # type: ignore[union-attr]
    (bad,) = slo_boundary(_levels([1, 5], [11.0, 20.0]), E2E)
    assert bad.status == "breached_at_lowest" and bad.last_ok is None


def test_first_breach_wins_over_a_later_recovery() -> None:
    (b,) = slo_boundary(_levels([10, 20, 40], [5.0, 11.0, 9.0]), E2E)
    assert b.first_breach.load == 20 and b.last_ok.load == 10  # type: ignore[union-attr]


@given(st.lists(st.floats(min_value=0.1, max_value=30), min_size=2, max_size=8).map(sorted))
def test_boundary_lies_between_the_levels_around_it(values: list[float]) -> None:
    loads = [10 * (i + 1) for i in range(len(values))]
    (b,) = slo_boundary(_levels(loads, values), E2E)
    if b.status == "crossed":
        assert b.last_ok.load <= b.boundary_load <= b.first_breach.load  # type: ignore[union-attr,operator]


def test_binding_slo_is_the_one_reached_first() -> None:
    ttft = parse_slos("p95_ttft<2s")[0]
    lv = _levels([10, 20, 40], [4.0, 6.0, 12.0]).with_columns(
        p95_ttft_s=pl.Series([0.5, 3.0, 9.0]), n_ttft_s=pl.lit(200)
    )
    bounds = slo_boundary(lv, E2E) + slo_boundary(lv, ttft)
    (binding,) = max_load_within_slos(bounds).values()
    assert binding.slo == ttft and binding.last_ok.load == 10  # type: ignore[union-attr]


def test_plateau_is_the_first_doubling_with_little_gain() -> None:
    lv = _levels([5, 10, 20, 40, 80], [1.0] * 5, tps=[500.0, 950.0, 1700.0, 2500.0, 2600.0])
    (p,) = throughput_plateaus(lv)
    assert (p.from_load, p.to_load) == (40, 80) and p.gain == pytest.approx(0.04)
    assert throughput_plateaus(_levels([5, 10], [1.0, 1.0], tps=[100.0, 190.0])) == []


def test_rate_saturation_is_where_completions_fall_behind_the_offer() -> None:
    from loadlens.analysis.saturation import rate_saturation

    lv = _levels([1, 2, 4, 8], [1.0] * 4).with_columns(
        load_mode=pl.lit("rate"),
        request_throughput_rps=pl.Series([1.0, 1.98, 3.9, 5.2]),
        n_requests=pl.lit(400),
    )
    (r,) = rate_saturation(lv)
    assert (r.offered_rps, r.last_kept_up_rps) == (8, 4)
    # 30 requests a level: a 35% shortfall is within what Poisson arrivals alone can do.
    assert rate_saturation(lv.with_columns(n_requests=pl.lit(30))) == []


def test_collapse_needs_falling_throughput_and_rising_latency() -> None:
    from loadlens.analysis.saturation import collapse

    lv = _levels([10, 20, 40], [2.0, 3.0, 6.0]).with_columns(
        request_throughput_rps=pl.Series([5.0, 9.0, 7.0])
    )
    (c,) = collapse(lv)
    assert (c.from_load, c.to_load) == (20, 40)
    flat = lv.with_columns(request_throughput_rps=pl.Series([5.0, 9.0, 8.9]))
    assert collapse(flat) == []
    jitter = lv.with_columns(p95_e2e_s=pl.Series([2.0, 3.0, 3.1]))  # +3%: no climb
    assert collapse(jitter) == []
    # A dip a heavier level wins back is noise (llama.cpp on CPU: 1.85, 1.67, 1.98 req/s).
    dip = _levels([1, 2, 8], [0.57, 1.26, 4.2]).with_columns(
        request_throughput_rps=pl.Series([1.85, 1.67, 1.98])
    )
    assert collapse(dip) == []
