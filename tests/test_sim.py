"""The simulator: deterministic, self-consistent, and saturating the way a server does."""

from __future__ import annotations

import pytest
from tests.conftest import pct

from loadlens.sim import ServerProfile, Workload, simulate, to_vllm_result

PROFILE = ServerProfile(
    name="t",
    max_num_seqs=8,
    kv_cache_tokens=1500,
    prefill_s_per_token=1e-4,
    decode_step_base_s=0.01,
    decode_step_per_seq_s=0.001,
    decode_step_per_kv_token_s=1e-7,
)
WORKLOAD = Workload(
    input_tokens_mean=200, input_tokens_sd=40, output_tokens_mean=60, output_tokens_sd=10
)


def test_same_seed_same_trace_and_times_add_up() -> None:
    a = simulate(PROFILE, WORKLOAD, concurrency=4, num_requests=40, seed=3)
    b = simulate(PROFILE, WORKLOAD, concurrency=4, num_requests=40, seed=3)
    assert [r.token_times for r in a.requests] == [r.token_times for r in b.requests]
    for r in a.requests:
        assert len(r.token_times) == r.output_tokens and len(r.itl_s) == r.output_tokens - 1
        assert r.e2e_s == pytest.approx(r.ttft_s + sum(r.itl_s))  # type: ignore[operator]


def test_more_load_means_queueing_and_preemption() -> None:
    light = simulate(PROFILE, WORKLOAD, concurrency=2, num_requests=60, seed=1)
    heavy = simulate(PROFILE, WORKLOAD, concurrency=30, num_requests=60, seed=1)
    p95 = lambda res: pct([r.ttft_s for r in res.requests], 0.95)  # noqa: E731
    assert p95(heavy) > 5 * p95(light)
    assert heavy.preemptions > 0 and light.preemptions == 0
    assert max(v for _, s, v in heavy.server_samples if s == "requests_waiting") > 0
    assert max(v for _, s, v in heavy.server_samples if s == "kv_cache_usage") <= 1.0


def test_errors_and_vllm_layout() -> None:
    result = simulate(
        PROFILE, Workload(error_rate=0.2, output_tokens_mean=20, output_tokens_sd=2), 4, 50, seed=9
    )
    doc = to_vllm_result(result, model_id="m", concurrency=4, date="20250101-000000")
    failed = [e for e in doc["errors"] if e]
    assert doc["failed"] == len(failed) > 0 and doc["completed"] == 50 - len(failed)
    ok = [i for i, e in enumerate(doc["errors"]) if not e]
    e2e = [doc["ttfts"][i] + sum(doc["itls"][i]) for i in ok]
    assert doc["p95_e2el_ms"] == pytest.approx(pct(e2e, 0.95) * 1000)
    assert doc["median_ttft_ms"] == pytest.approx(pct([doc["ttfts"][i] for i in ok], 0.5) * 1000)
    assert list(doc)[:10] == [
        "date",
        "endpoint_type",
        "backend",
        "label",
        "model_id",
        "tokenizer_id",
        "num_prompts",
        "request_rate",
        "burstiness",
        "max_concurrency",
    ]
