"""The cost model: linear in price, inverse in throughput, replicas and break-even."""

from __future__ import annotations

import math

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadlens.analysis.cost import HOURS_PER_MONTH, HostedPrice, Prices, UserProfile, cost_at_zone
from loadlens.analysis.saturation import OperatingZone

ZONE = OperatingZone("d", "concurrency", 30.0, 40.0, None, 0.8)
PROFILE = UserProfile(users=10_000, requests_per_day=20, active_hours=8, peak_factor=2)


def _levels(scale: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "deployment": ["d"] * 3,
            "load_mode": ["concurrency"] * 3,
            "load_value": [10.0, 20.0, 40.0],
            "request_throughput_rps": [2.0 * scale, 4.0 * scale, 6.0 * scale],
            "output_throughput_tps": [500.0 * scale, 1000.0 * scale, 1500.0 * scale],
            "total_token_throughput_tps": [1500.0 * scale, 3000.0 * scale, 4500.0 * scale],
        }
    )


def test_operating_point_is_interpolated_and_costs_follow() -> None:
    c = cost_at_zone(_levels(), ZONE, Prices(2.0, 1), PROFILE)
    assert c is not None
    assert c.rps == pytest.approx(5.0) and c.output_tps == pytest.approx(1250.0)
    assert c.usd_per_1m_output == pytest.approx(2.0 / (1250 * 3600) * 1e6)
    assert c.usd_per_request == pytest.approx(2.0 / (5 * 3600))
    peak = 20 / (8 * 3600) * 2
    assert c.users_per_replica == pytest.approx(5.0 / peak)
    assert c.replicas == math.ceil(10_000 / (5.0 / peak))
    assert c.monthly_usd == pytest.approx(c.replicas * 2.0 * HOURS_PER_MONTH)


@given(st.floats(0.1, 50), st.floats(1.1, 10))
def test_cost_is_linear_in_price_and_inverse_in_throughput(price: float, k: float) -> None:
    base = cost_at_zone(_levels(), ZONE, Prices(price), PROFILE)
    dearer = cost_at_zone(_levels(), ZONE, Prices(price * k), PROFILE)
    faster = cost_at_zone(_levels(k), ZONE, Prices(price), PROFILE)
    assert base and dearer and faster
    assert dearer.usd_per_1m_output == pytest.approx(base.usd_per_1m_output * k)
    assert dearer.usd_per_request == pytest.approx(base.usd_per_request * k)
    assert faster.usd_per_1m_output == pytest.approx(base.usd_per_1m_output / k)
    assert faster.users_per_replica == pytest.approx(base.users_per_replica * k)


def test_break_even_only_when_a_full_replica_beats_the_api() -> None:
    cheap_api = cost_at_zone(_levels(), ZONE, Prices(2.0), PROFILE, HostedPrice(0.01, 0.01))
    assert cheap_api and cheap_api.break_even_users is None
    dear_api = cost_at_zone(_levels(), ZONE, Prices(2.0), PROFILE, HostedPrice(5.0, 15.0))
    assert dear_api and dear_api.break_even_users is not None
    per_user = dear_api.hosted_usd_per_user_month
    assert dear_api.break_even_users == pytest.approx(2.0 * HOURS_PER_MONTH / per_user)
    assert dear_api.break_even_users < dear_api.users_per_replica


def test_no_cost_where_the_zone_was_not_measured() -> None:
    far = OperatingZone("d", "concurrency", 80.0, None, None, 0.8)
    assert cost_at_zone(_levels(), far, Prices(2.0), PROFILE) is None
