"""Regenerate sample_data/ deterministically: `make sample-data` (or run this file).

Two simulated deployments of one model (src/loadlens/sim.py), swept over concurrency,
written as vLLM `bench serve --save-result --save-detailed` files plus the server signals
a Prometheus scrape would have seen, as `<file>.metrics.jsonl` beside each, and a README.
Fixed seeds: running it twice gives byte-identical files.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from loadlens.sim import (  # noqa: E402
    PROFILES,
    Workload,
    simulate,
    to_vllm_result,
    write_vllm_result,
)

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
LEVELS = (1, 5, 10, 20, 40, 60, 80)
REQUESTS_PER_LEVEL = 200  # p99 rests on two requests: intended, the brief says so
WORKLOAD = Workload(
    input_tokens_mean=512, input_tokens_sd=128, output_tokens_mean=256, output_tokens_sd=64
)
PAUSE = timedelta(seconds=60)  # between levels: each sweep "ran" one level after another
HEADER = (
    f"{'deployment':<15}{'conc':>5}{'p95 TTFT':>10}{'p95 E2E':>9}{'TPOT':>9}"
    f"{'tok/s':>8}{'preempt':>8}"
)


def sweep(d: int, name: str) -> list[str]:
    profile = PROFILES[name]
    folder = HERE / name
    folder.mkdir(exist_ok=True)
    started = datetime(2025, 11, 2, 10 + 4 * d, 0)  # the A100 sweep that afternoon
    rows = []
    for level in LEVELS:
        result = simulate(profile, WORKLOAD, level, REQUESTS_PER_LEVEL, seed=1000 * d + level)
        doc = to_vllm_result(
            result,
            model_id=MODEL,
            concurrency=level,
            num_prompts=REQUESTS_PER_LEVEL,
            date=started.strftime("%Y%m%d-%H%M%S"),
        )
        started += timedelta(seconds=math.ceil(result.duration_s)) + PAUSE
        write_vllm_result(folder / f"vllm-c{level}.json", doc)
        (folder / f"vllm-c{level}.metrics.jsonl").write_text(
            "".join(
                json.dumps({"t_s": t, "signal": s, "value": round(v, 6)}) + "\n"
                for t, s, v in result.server_samples
            )
        )
        rows.append(
            f"{name:<15}{level:>5}{doc['p95_ttft_ms'] / 1000:>9.2f}s"
            f"{doc['p95_e2el_ms'] / 1000:>8.2f}s{doc['mean_tpot_ms']:>7.1f}ms"
            f"{doc['output_throughput']:>8.0f}{result.preemptions:>8}"
        )
        print(rows[-1])
    return rows


def readme(table: list[str]) -> str:
    fields = [f.name for f in dataclasses.fields(next(iter(PROFILES.values())))][1:]
    profiles = "\n".join(
        f"| {f} | " + " | ".join(f"{getattr(p, f):g}" for p in PROFILES.values()) + " |"
        for f in fields
    )
    w = WORKLOAD
    return f"""# Sample data (simulated)

Nothing here was measured on a GPU. These traces come from loadlens's own model of a
continuous-batching server (`src/loadlens/sim.py`: batch slots, a KV-cache budget,
prefill that stalls decode, preemption by recompute), driven by a closed-loop client:
N users, each sending its next request when the previous one completes. They exist so
that `loadlens demo` and the tests have realistic saturation to analyse.

Regenerate (deterministic; byte-identical every time):

    make sample-data        # or: .venv/bin/python sample_data/generate.py

## Layout

- `<deployment>/vllm-c<N>.json`: one load level at concurrency N, in the format of
  `vllm bench serve --save-result --save-detailed` (summary metrics as with
  `--percentile-metrics ttft,tpot,itl,e2el --metric-percentiles 50,90,95,99`),
  {REQUESTS_PER_LEVEL} requests each. Times are rounded to microseconds.
- `<deployment>/vllm-c<N>.metrics.jsonl`: the server's signals sampled every second of
  that run, one `{{"t_s", "signal", "value"}}` object a line (`kv_cache_usage` as a
  fraction, `requests_running`, `requests_waiting`, `preemptions_total`).
- `loadlens.toml`: the SLOs and deployment attributes `loadlens demo` uses.

## Workload

Model id `{MODEL}`; prompts of {w.input_tokens_mean:g} ± {w.input_tokens_sd:g} tokens,
outputs forced to {w.output_tokens_mean:g} ± {w.output_tokens_sd:g} tokens (normal,
clipped to at least 16 and 8); concurrency {", ".join(map(str, LEVELS))}.

## Server profiles (seconds; `decode_step_per_kv_token_s` per resident KV token)

| parameter | {" | ".join(PROFILES)} |
|---|{"---|" * len(PROFILES)}
{profiles}

## What the generator printed

```
{HEADER}
{chr(10).join(table)}
```
"""


def main() -> None:
    print(HEADER)
    table = [row for d, name in enumerate(PROFILES) for row in sweep(d, name)]
    (HERE / "README.md").write_text(readme(table))
    files = sorted(p for p in HERE.rglob("*") if p.is_file() and p.parent != HERE)
    print(f"{len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
