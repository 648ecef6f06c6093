"""USL fit, latency knee and the stable operating zone."""

from __future__ import annotations

import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadlens.analysis.saturation import fit_usl, latency_knee, operating_zones, slo_boundary
from loadlens.config import parse_slos

LOADS = [1, 2, 4, 8, 16, 32, 48, 64, 96, 128]


def _levels(loads, tps, p95=None, ttft=None) -> pl.DataFrame:
    n = len(loads)
    return pl.DataFrame(
        {
            "deployment": ["d"] * n,
            "load_mode": ["concurrency"] * n,
            "load_value": [float(x) for x in loads],
            "request_throughput_rps": tps,
            "p95_e2e_s": p95 or [1.0] * n,
            "p95_ttft_s": ttft or [0.1] * n,
            "n_e2e_s": [500] * n,
        }
    )


@settings(max_examples=40, deadline=None)
@given(
    lam=st.floats(0.5, 50),
    sigma=st.floats(0.0, 0.2),
    kappa=st.floats(0.0, 0.002),
    seed=st.integers(0, 10_000),
)
def test_usl_fit_recovers_known_parameters(lam, sigma, kappa, seed) -> None:
    rng = random.Random(seed)
    truth = [lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1)) for n in LOADS]
    noisy = [x * (1 + rng.gauss(0, 0.01)) for x in truth]
    (fit,) = fit_usl(_levels(LOADS, noisy))
    assert fit.lam == pytest.approx(lam, rel=0.05)
    assert fit.sigma == pytest.approx(sigma, abs=0.02)
    assert fit.kappa == pytest.approx(kappa, abs=2e-4)
    assert fit.r2 > 0.95
    for n, x in zip(LOADS, truth, strict=True):
        assert fit.throughput(n) == pytest.approx(x, rel=0.05)


def test_usl_peak_concurrency() -> None:
    truth = [10 * n / (1 + 0.05 * (n - 1) + 0.001 * n * (n - 1)) for n in LOADS]
    (fit,) = fit_usl(_levels(LOADS, truth))
    assert fit.peak_concurrency == pytest.approx((0.95 / 0.001) ** 0.5, rel=0.02)
    linear = fit_usl(_levels(LOADS, [3.0 * n for n in LOADS]))[0]
    assert linear.kappa == pytest.approx(0, abs=1e-9) and linear.peak_concurrency == float("inf")


def test_knee_is_where_latency_turns_steep_and_absent_on_a_line() -> None:
    loads = [1, 10, 20, 30, 40, 50]
    ttft = [0.05, 0.06, 0.08, 0.12, 1.5, 4.0]
    (knee,) = latency_knee(_levels(loads, [1.0] * 6, ttft=ttft))
    assert knee.load == 30 and knee.metric == "p95_ttft_s"
    straight = _levels(loads, [1.0] * 6, p95=[1, 2, 3, 4, 5, 6], ttft=[0.1] * 6)
    assert latency_knee(straight) == []


def test_zone_is_headroom_below_the_lower_of_slo_limit_and_knee() -> None:
    loads = [10, 20, 40, 60]
    lv = _levels(loads, [1.0] * 4, p95=[4.0, 6.0, 8.0, 12.0], ttft=[0.1, 0.1, 0.2, 3.0])
    boundary = slo_boundary(lv, parse_slos("p95_e2e<10s")[0])
    (zone,) = operating_zones(boundary, latency_knee(lv), headroom=0.8)
    assert zone.slo_limit == pytest.approx(50) and zone.knee == 40
    assert zone.max_load == pytest.approx(32) and zone.bound_by == "knee"


def test_no_knee_in_a_flat_latency_curve() -> None:
    from loadlens.analysis.saturation import latency_knee

    # 94 -> 119 ms over the sweep, with one bump: noise, not a turn to steep.
    flat = _levels([0.5, 1, 2], [1.0, 2.0, 3.0], p95=[0.094, 0.113, 0.119])
    assert latency_knee(flat, ("p95_e2e_s",)) == []


def test_usl_peak_with_contention_past_one_is_at_one_request() -> None:
    from loadlens.analysis.saturation import UslFit

    fields = {f: 0.0 for f in UslFit.__dataclass_fields__}
    fit = UslFit(**{**fields, "deployment": "d", "sigma": 1.3, "kappa": 0.01})
    assert fit.peak_concurrency == 1.0
