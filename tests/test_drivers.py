"""Latency drivers: the four causes add up to the growth, and each is found where it is."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadlens.analysis.drivers import decompose

RUNS = pl.DataFrame(
    {
        "run_id": ["a", "b"],
        "deployment": ["d", "d"],
        "load_mode": ["concurrency"] * 2,
        "load_value": [1.0, 10.0],
    }
)
NO_SAMPLES = pl.DataFrame(
    schema={"run_id": pl.String, "t_s": pl.Float64, "signal": pl.String, "value": pl.Float64}
)


def _requests(
    run_id: str, ttft: list[float], out: list[int], tpot: float, inputs: list[int]
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "run_id": [run_id] * len(ttft),
            "ttft_s": ttft,
            "e2e_s": [t + (o - 1) * tpot for t, o in zip(ttft, out, strict=True)],
            "output_tokens": out,
            "input_tokens": inputs,
            "status": ["ok"] * len(ttft),
        }
    )


def _one(light: pl.DataFrame, heavy: pl.DataFrame):
    (d,) = decompose(RUNS, pl.concat([light, heavy]), NO_SAMPLES)
    return d


def test_queueing_when_only_ttft_grows() -> None:
    light = _requests("a", [0.1, 0.2, 0.3], [100] * 3, 0.01, [100, 200, 300])
    heavy = _requests("b", [1.1, 1.2, 1.3], [100] * 3, 0.01, [100, 200, 300])
    d = _one(light, heavy)
    assert d.contributions_s["queueing"] == pytest.approx(1.0)
    assert d.ranked()[0] == ("queueing", pytest.approx(1.0))


def test_context_length_when_prompts_grow_at_the_prefill_rate() -> None:
    light = _requests("a", [0.1, 0.2, 0.3], [50] * 3, 0.01, [100, 200, 300])  # 1 ms/token
    heavy = _requests("b", [0.6, 0.7, 0.8], [50] * 3, 0.01, [600, 700, 800])
    d = _one(light, heavy)
    assert d.contributions_s["context_length"] == pytest.approx(0.5)
    assert d.contributions_s["queueing"] == pytest.approx(0.0, abs=1e-9)


def test_decode_contention_and_output_length() -> None:
    light = _requests("a", [0.1] * 3, [101] * 3, 0.01, [100, 200, 300])
    slower = _requests("b", [0.1] * 3, [101] * 3, 0.02, [100, 200, 300])
    assert _one(light, slower).contributions_s["decode_contention"] == pytest.approx(1.0)
    longer = _requests("b", [0.1] * 3, [201] * 3, 0.01, [100, 200, 300])
    assert _one(light, longer).contributions_s["output_length"] == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0.01, 5), st.integers(2, 400), st.integers(10, 4000)),
        min_size=3,
        max_size=20,
    ),
    st.floats(0.001, 0.1),
    st.floats(0.001, 0.1),
)
def test_causes_sum_to_the_growth(rows, tpot0, tpot1) -> None:
    ttft, out, inputs = (list(c) for c in zip(*rows, strict=True))
    light = _requests("a", [t / 10 for t in ttft], out, tpot0, inputs)
    heavy = _requests("b", ttft, [o + 7 for o in out], tpot1, [i * 2 for i in inputs])
    d = _one(light, heavy)
    assert sum(d.contributions_s.values()) == pytest.approx(d.growth_s, rel=1e-9, abs=1e-9)


def test_token_costs_recover_known_per_token_slopes() -> None:
    import random

    from loadlens.analysis.drivers import token_costs

    rng = random.Random(7)
    rows = []
    for _ in range(300):
        n_in, n_out = rng.randint(100, 900), rng.randint(50, 400)
        noise = rng.gauss(0, 0.05)
        rows.append(("varied", n_in, n_out, 0.05 + 1e-4 * n_in + 0.02 * n_out + noise, "ok"))
        rows.append(("forced", n_in, 256, 0.05 + 1e-4 * n_in + 0.02 * 256 + noise, "ok"))
    rows.append(("varied", 500, 100, None, "error"))  # failures are not fitted
    frame = pl.DataFrame(
        rows, schema=["run_id", "input_tokens", "output_tokens", "e2e_s", "status"], orient="row"
    )
    costs = {r["run_id"]: r for r in token_costs(frame).iter_rows(named=True)}
    varied, forced = costs["varied"], costs["forced"]
    assert varied["n"] == 300
    assert varied["per_output_token_s_lo"] < 0.02 < varied["per_output_token_s_hi"]
    assert varied["per_input_token_s_lo"] < 1e-4 < varied["per_input_token_s_hi"]
    assert varied["per_output_token_s"] == pytest.approx(0.02, rel=0.01)
    # Forced output lengths: nothing to regress on, so no slope rather than a made-up one.
    assert forced["per_output_token_s"] is None
    assert forced["per_input_token_s"] == pytest.approx(1e-4, rel=0.3)


def test_runs_without_prompt_lengths_still_decompose() -> None:
    runs = pl.DataFrame(
        {
            "run_id": ["a", "b"],
            "deployment": ["d", "d"],
            "load_mode": ["concurrency", "concurrency"],
            "load_value": [1.0, 8.0],
        }
    )
    requests = pl.DataFrame(
        {
            "run_id": ["a"] * 20 + ["b"] * 20,
            "ttft_s": [0.05] * 20 + [0.2] * 20,
            "e2e_s": [1.0] * 20 + [2.0] * 20,
            "input_tokens": pl.Series([None] * 40, dtype=pl.Int64),
            "output_tokens": [100] * 40,
            "status": ["ok"] * 40,
        }
    )
    (d,) = decompose(runs, requests, pl.DataFrame(schema={"run_id": pl.String}))
    assert d.contributions_s["context_length"] == 0.0
    assert sum(d.contributions_s.values()) == pytest.approx(1.0)
