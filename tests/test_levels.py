"""Percentiles and their confidence intervals (properties), throughput, goodput, errors."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import pct

from loadlens.analysis.levels import (
    _binomial_cdf_table,
    latency_stats,
    levels,
    quantile_ci_ranks,
)
from loadlens.config import parse_slos

latencies = st.lists(
    st.floats(min_value=0.001, max_value=100, allow_nan=False), min_size=1, max_size=300
)


def _requests(e2e: list[float], run_id: str = "r1") -> pl.DataFrame:
    n = len(e2e)
    return pl.DataFrame(
        {
            "run_id": [run_id] * n,
            "seq": list(range(n)),
            "start_s": [None] * n,
            "ttft_s": [v / 10 for v in e2e],
            "e2e_s": e2e,
            "input_tokens": [100] * n,
            "output_tokens": [11] * n,
            "itl_s": [[(v - v / 10) / 10] * 10 for v in e2e],
            "status": ["ok"] * n,
            "error": [None] * n,
        },
        schema_overrides={"start_s": pl.Float64, "error": pl.String},
    )


@settings(max_examples=60, deadline=None)
@given(latencies)
def test_percentiles_match_numpy_definition_and_are_monotone(e2e: list[float]) -> None:
    stats = latency_stats(_requests(e2e)).filter(pl.col("metric") == "e2e_s")
    by = {r["statistic"]: r for r in stats.iter_rows(named=True)}
    values = [by[f"p{p}"]["value"] for p in (50, 90, 95, 99)]
    assert values == sorted(values)
    for p in (50, 90, 95, 99):
        assert by[f"p{p}"]["value"] == pytest.approx(pct(e2e, p / 100), rel=1e-9, abs=1e-12)
        lo, hi = by[f"p{p}"]["ci_lo"], by[f"p{p}"]["ci_hi"]
        if lo is not None and hi is not None:
            assert lo <= hi
        assert by[f"p{p}"]["n"] == len(e2e)


@settings(max_examples=80, deadline=None)
@given(st.integers(min_value=1, max_value=1500), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
def test_ci_ranks_cover_at_least_the_confidence(n: int, q: float) -> None:
    lo, hi = quantile_ci_ranks(n, q, 0.95)
    cdf = _binomial_cdf_table(n, q)
    # [x_(lo+1), x_(hi+1)] covers the quantile when lo+1 <= B <= hi; a missing side is open.
    p_below = cdf[lo] if lo is not None else 0.0
    p_upto = cdf[hi] if hi is not None else 1.0
    assert p_upto - p_below >= 0.95 - 1e-9
    if lo is not None and hi is not None:
        assert 0 <= lo < hi < n


def test_normal_approximation_agrees_with_exact_near_the_switch() -> None:
    exact = quantile_ci_ranks(2000, 0.95)
    approx = quantile_ci_ranks(2001, 0.95)
    assert exact[0] is not None and approx[0] is not None
    assert abs(exact[0] - approx[0]) <= 2 and abs(exact[1] - approx[1]) <= 3  # type: ignore[operator]


def test_small_samples_cannot_bound_high_percentiles() -> None:
    assert quantile_ci_ranks(50, 0.99)[1] is None
    assert quantile_ci_ranks(1000, 0.99)[1] is not None


def test_levels_throughput_goodput_errors_and_littles_law() -> None:
    req = _requests([1.0, 2.0, 3.0, 12.0]).vstack(
        _requests([0.5]).with_columns(
            status=pl.lit("error"),
            error=pl.lit("boom"),
            e2e_s=pl.lit(None, dtype=pl.Float64),
            ttft_s=pl.lit(None, dtype=pl.Float64),
            seq=pl.lit(4, dtype=pl.Int64),
        )
    )
    runs = pl.DataFrame(
        {
            "run_id": ["r1"],
            "deployment": ["d"],
            "load_mode": ["concurrency"],
            "load_value": [2.0],
            "duration_s": [10.0],
            "num_requests": [5],
            "num_errors": [1],
        }
    )
    stats = pl.DataFrame(
        schema={
            "run_id": pl.String,
            "metric": pl.String,
            "statistic": pl.String,
            "value": pl.Float64,
        }
    )
    row = levels(runs, req, stats, parse_slos("p95_e2e<10s")).row(0, named=True)
    assert (row["n_requests"], row["n_ok"], row["n_errors"]) == (5, 4, 1)
    assert row["error_rate"] == pytest.approx(0.2)
    assert row["request_throughput_rps"] == pytest.approx(0.4)
    assert row["output_throughput_tps"] == pytest.approx(4.4)
    assert row["goodput_rps"] == pytest.approx(0.3)  # the 12 s request misses the SLO
    assert row["achieved_concurrency"] == pytest.approx(0.4 * 4.5)
    assert row["achieved_ratio"] == pytest.approx(0.9)
    assert row["n_itl_s"] == 40 and row["mean_tpot_s"] == pytest.approx(
        sum((v - v / 10) / 10 for v in (1, 2, 3, 12)) / 4
    )
    assert not math.isnan(row["p95_e2e_s"])
