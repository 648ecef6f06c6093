"""Regenerate sample_data/ deterministically: `make sample-data` (or run this file).

Two simulated deployments of one model (src/loadlens/sim.py), swept over concurrency
(closed loop), and the A100 also over an open-loop request rate past its capacity, written
as vLLM `bench serve --save-result --save-detailed` files (with each request's send time,
`start_times`, as newer vLLM clients save it) plus the server signals a Prometheus scrape
would have seen, as `<file>.metrics.jsonl` beside each, and a README.
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
# Open-loop rates (requests/s, Poisson) per deployment: the A100 serves about 4.6 req/s at
# most, so the top rates queue for as long as requests keep arriving.
RATES = {"a100-vllm-tp1": (2, 3, 4, 5, 6)}
# Poisson arrivals near capacity vary a lot from seed to seed (at 4 req/s, the KV-cache
# peak ranged 69-93% over six seeds): this one was picked to show strain before a breach.
RATE_SEED = 514
REQUESTS_PER_LEVEL = 200  # p99 rests on two requests: intended, the brief says so
CLOCK_ORIGIN_S = 81_234.5  # vLLM saves time.perf_counter() readings: any origin
WORKLOAD = Workload(
    input_tokens_mean=512, input_tokens_sd=128, output_tokens_mean=256, output_tokens_sd=64
)
PAUSE = timedelta(seconds=60)  # between levels: each sweep "ran" one level after another
HEADER = (
    f"{'deployment':<15}{'load':>9}{'p95 TTFT':>10}{'p95 E2E':>9}{'TPOT':>9}"
    f"{'tok/s':>8}{'preempt':>8}{'max wait':>9}{'KV peak':>8}"
)


def sweep(d: int, name: str) -> list[str]:
    profile = PROFILES[name]
    folder = HERE / name
    folder.mkdir(exist_ok=True)
    started = datetime(2025, 11, 2, 10 + 4 * d, 0)  # the A100 sweep that afternoon
    levels: list[tuple[str, int | None, float | None]] = [
        (f"vllm-c{c}", c, None) for c in LEVELS
    ] + [(f"vllm-r{r:g}", None, r) for r in RATES.get(name, ())]
    rows = []
    for stem, concurrency, rate in levels:
        seed = 1000 * d + (concurrency if rate is None else RATE_SEED + round(10 * rate))
        result = simulate(
            profile, WORKLOAD, concurrency or 0, REQUESTS_PER_LEVEL, seed=seed, rate=rate
        )
        doc = to_vllm_result(
            result,
            model_id=MODEL,
            concurrency=concurrency,
            num_prompts=REQUESTS_PER_LEVEL,
            date=started.strftime("%Y%m%d-%H%M%S"),
            request_rate=rate,
            clock_origin_s=CLOCK_ORIGIN_S + (started - datetime(2025, 11, 2)).total_seconds(),
        )
        started += timedelta(seconds=math.ceil(result.duration_s)) + PAUSE
        write_vllm_result(folder / f"{stem}.json", doc)
        (folder / f"{stem}.metrics.jsonl").write_text(
            "".join(
                json.dumps({"t_s": t, "signal": s, "value": round(v, 6)}) + "\n"
                for t, s, v in result.server_samples
            )
        )
        signals: dict[str, list[float]] = {}
        for _, signal, value in result.server_samples:
            signals.setdefault(signal, []).append(value)
        load = f"c{concurrency}" if rate is None else f"{rate:g} req/s"
        rows.append(
            f"{name:<15}{load:>9}{doc['p95_ttft_ms'] / 1000:>9.2f}s"
            f"{doc['p95_e2el_ms'] / 1000:>8.2f}s{doc['mean_tpot_ms']:>7.1f}ms"
            f"{doc['output_throughput']:>8.0f}{result.preemptions:>8}"
            f"{max(signals['requests_waiting']):>9.0f}{max(signals['kv_cache_usage']):>8.0%}"
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
    rates = "; ".join(f"{n}: {', '.join(f'{r:g}' for r in rs)} req/s" for n, rs in RATES.items())
    return f"""# Sample data (simulated)

Nothing here was measured on a GPU. These traces come from loadlens's own model of a
continuous-batching server (`src/loadlens/sim.py`: batch slots, a KV-cache budget,
prefill that stalls decode, preemption by recompute), driven by two kinds of client: a
closed loop (N users, each sending its next request when the previous one completes) and
an open loop (Poisson arrivals at a fixed rate, whatever the server keeps up with). They
exist so that `loadlens demo` and the tests have realistic saturation to analyse: a
deployment that runs out of KV cache before it breaks its SLOs, and a rate above its
capacity, where the queue grows for as long as requests keep arriving.

Regenerate (deterministic; byte-identical every time):

    make sample-data        # or: .venv/bin/python sample_data/generate.py

## Layout

- `<deployment>/vllm-c<N>.json`: one load level at concurrency N (closed loop), and
  `<deployment>/vllm-r<R>.json` one at R requests/s (open loop, `request_rate` R,
  `max_concurrency` null), in the format of `vllm bench serve --save-result
  --save-detailed` as newer vLLM clients write it: per-request arrays including
  `start_times` (each request's send time, a `time.perf_counter()` reading), summary
  metrics as with `--percentile-metrics ttft,tpot,itl,e2el --metric-percentiles
  50,90,95,99`; {REQUESTS_PER_LEVEL} requests each. Times are rounded to microseconds.
- `<deployment>/<run>.metrics.jsonl`: the server's signals sampled every second of
  that run, one `{{"t_s", "signal", "value"}}` object a line (`kv_cache_usage` as a
  fraction, `requests_running`, `requests_waiting`, `preemptions_total`), `t_s` from the
  run's first send.
- `loadlens.toml`: the SLOs and deployment attributes `loadlens demo` uses.

## Workload

Model id `{MODEL}`; prompts of {w.input_tokens_mean:g} ± {w.input_tokens_sd:g} tokens,
outputs forced to {w.output_tokens_mean:g} ± {w.output_tokens_sd:g} tokens (normal,
clipped to at least 16 and 8); concurrency {", ".join(map(str, LEVELS))} on each
deployment; request rates {rates}. Near capacity, Poisson arrivals vary a lot from seed
to seed (at 4 req/s on the A100, the KV-cache peak ranged 69-93% over six seeds): the
rate levels' seed (`RATE_SEED`) was picked to show strain before the SLO breaks.

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
