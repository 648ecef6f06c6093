"""What-if predictions, validated against the simulator: make the change, measure again."""

from __future__ import annotations

import polars as pl
import pytest

from loadlens.analysis.levels import request_metrics
from loadlens.analysis.whatif import predict_output_scale, prefill_stall, solve
from loadlens.config import parse_slos
from loadlens.sim import PROFILES, Workload, simulate

SLOS = parse_slos("p95_e2e<10s")


def _requests(profile: str, workload: Workload, concurrency: int, seed: int) -> pl.DataFrame:
    result = simulate(PROFILES[profile], workload, concurrency, 300, seed=seed)
    return pl.DataFrame(
        {
            "run_id": ["r"] * len(result.requests),
            "ttft_s": [r.ttft_s for r in result.requests],
            "e2e_s": [r.e2e_s for r in result.requests],
            "input_tokens": [r.input_tokens for r in result.requests],
            "output_tokens": [r.output_tokens for r in result.requests],
            "status": ["ok"] * len(result.requests),
        }
    )


def test_k_equal_one_predicts_what_was_measured() -> None:
    reqs = _requests("a100-vllm-tp1", Workload(), 20, seed=1)
    predicted = predict_output_scale(reqs, 1.0, SLOS)
    measured = request_metrics(reqs)["e2e_s"].quantile(0.95, "linear")
    assert predicted["p95_e2e_s"] == pytest.approx(measured, rel=1e-3)


@pytest.mark.parametrize(
    ("profile", "concurrency", "k"),
    [("a100-vllm-tp1", 20, 0.7), ("a100-vllm-tp1", 40, 0.75), ("h100-vllm-tp1", 60, 0.6)],
)
def test_shorter_outputs_predicted_within_15_percent(profile, concurrency, k) -> None:
    base = Workload()
    measured_now = _requests(profile, base, concurrency, 3)
    stall = prefill_stall(measured_now, concurrency, PROFILES[profile].prefill_s_per_token)
    predicted = predict_output_scale(measured_now, k, SLOS, stall)
    shorter = Workload(
        output_tokens_mean=base.output_tokens_mean * k, output_tokens_sd=base.output_tokens_sd * k
    )
    measured = _requests(profile, shorter, concurrency, 4)["e2e_s"].quantile(0.95, "linear")
    assert predicted["p95_e2e_s"] == pytest.approx(measured, rel=0.15), (
        predicted["p95_e2e_s"],
        measured,
    )


def test_solve_finds_the_smallest_output_cut_and_it_holds_when_run() -> None:
    from loadlens.analysis.levels import levels as level_metrics
    from loadlens.analysis.saturation import max_load_within_slos, slo_boundary

    frames, runs = [], []
    for i, c in enumerate((10, 20, 40)):
        frames.append(
            _requests("a100-vllm-tp1", Workload(), c, seed=10 + i).with_columns(
                run_id=pl.lit(f"c{c}"),
                seq=pl.int_range(pl.len()),
                start_s=pl.lit(None, dtype=pl.Float64),
                itl_s=pl.lit([], dtype=pl.List(pl.Float64)),
                error=pl.lit(None, dtype=pl.String),
            )
        )
        runs.append(
            {
                "run_id": f"c{c}",
                "deployment": "a100",
                "load_mode": "concurrency",
                "load_value": float(c),
                "duration_s": 100.0,
                "num_requests": 300,
                "num_errors": 0,
            }
        )
    requests = pl.concat(frames, how="diagonal_relaxed")
    run_frame = pl.DataFrame(runs)
    stats = pl.DataFrame(
        schema={
            "run_id": pl.String,
            "metric": pl.String,
            "statistic": pl.String,
            "value": pl.Float64,
        }
    )
    lv = level_metrics(run_frame, requests, stats, SLOS)
    binding = list(max_load_within_slos(slo_boundary(lv, SLOS[0])).values())
    (cut,) = [
        w for w in solve(lv, requests, run_frame, binding, SLOS) if w.change == "output_scale"
    ]
    assert 0.5 < cut.value < 1.0 and cut.predicted["p95_e2e_s"] <= 10.0
    k = cut.value
    rerun = _requests(
        "a100-vllm-tp1", Workload(output_tokens_mean=256 * k, output_tokens_sd=64 * k), 40, seed=99
    )
    measured = rerun["e2e_s"].quantile(0.95, "linear")
    assert measured == pytest.approx(cut.predicted["p95_e2e_s"], rel=0.15)
