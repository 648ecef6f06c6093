"""Regenerate sample_data/ deterministically: `make sample-data`.

Two simulated deployments of one model (see src/loadlens/sim.py), swept over concurrency,
written as vLLM `bench serve --save-result --save-detailed` files plus the server signals
a Prometheus scrape would have seen, as `<file>.metrics.jsonl` beside each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from loadlens.sim import PROFILES, Workload, simulate, to_vllm_result  # noqa: E402

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
LEVELS = (1, 5, 10, 20, 40, 60, 80)
REQUESTS_PER_LEVEL = 200
WORKLOAD = Workload(
    input_tokens_mean=512, input_tokens_sd=128, output_tokens_mean=256, output_tokens_sd=64
)


def main() -> None:
    print(f"{'deployment':<15}{'conc':>5}{'p95 TTFT':>10}{'p95 E2E':>9}{'tok/s':>8}{'preempt':>8}")
    for d, (name, profile) in enumerate(PROFILES.items()):
        folder = HERE / name
        folder.mkdir(exist_ok=True)
        for level in LEVELS:
            result = simulate(profile, WORKLOAD, level, REQUESTS_PER_LEVEL, seed=1000 * d + level)
            date = f"20251102-{10 + d:02d}{level % 60:02d}00"
            doc = to_vllm_result(result, model_id=MODEL, concurrency=level, date=date)
            path = folder / f"vllm-c{level}.json"
            path.write_text(json.dumps(doc, separators=(",", ":")))
            metrics = folder / f"vllm-c{level}.metrics.jsonl"
            metrics.write_text(
                "".join(
                    json.dumps({"t_s": t, "signal": s, "value": round(v, 6)}) + "\n"
                    for t, s, v in result.server_samples
                )
            )
            print(
                f"{name:<15}{level:>5}{doc['p95_ttft_ms'] / 1000:>9.2f}s"
                f"{doc['p95_e2el_ms'] / 1000:>8.2f}s{doc['output_throughput']:>8.0f}"
                f"{result.preemptions:>8}"
            )


if __name__ == "__main__":
    main()
