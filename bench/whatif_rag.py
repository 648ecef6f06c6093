"""Benchmark: the RAG what-if, predicted from one sweep and measured on another.

Simulator (sim.py, both profiles): a closed-loop sweep with 512 ± 128-token prompts is the
base; from it alone loadlens predicts the same sweep with 4 chunks of 512 tokens added to
every prompt (+2,048) and 200 ms of retrieval. The second sweep is then simulated with
2,560 ± 128-token prompts (retrieval added to its TTFT and E2E as the client would see
it), and p95 TTFT, p95 E2E and the capacity within the SLO are printed predicted against
measured. With `--real`, the same on llama.cpp's llama-server (`make engine`, SmolLM2-135M
on CPU): a small sweep with 64 ± 32-token prompts and 16-token outputs, then one chunk of
512 tokens added.

    make bench-whatif-rag
    python bench/whatif_rag.py --real --out bench/out/whatif_rag.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zlib
from pathlib import Path

import polars as pl

from loadlens.analysis.levels import levels as level_metrics
from loadlens.analysis.rag import RagPrediction, RagSpec, capacity, predict
from loadlens.config import SLO, parse_slos
from loadlens.sim import PROFILES, Workload, simulate

STATS = ("p95_ttft_s", "p95_e2e_s")
SIM_SWEEP = (1, 2, 4, 8, 12, 16, 24, 32, 40)
SIM_SLOS = {
    "a100-vllm-tp1": parse_slos("p95_ttft<1s,p95_e2e<8s"),
    "h100-vllm-tp1": parse_slos("p95_ttft<0.5s,p95_e2e<4s"),
}
SKIP_BURST = False  # leave out each level's first `concurrency` requests (the start-up burst)
EMPTY_STATS = pl.DataFrame(
    schema={"run_id": pl.String, "metric": pl.String, "statistic": pl.String, "value": pl.Float64}
)


def sim_sweep(
    profile: str, input_mean: float, retrieval_s: float, n: int, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """runs, requests, server samples of a simulated closed-loop sweep."""
    runs, frames, samples = [], [], []
    for c in SIM_SWEEP:
        result = simulate(PROFILES[profile], Workload(input_tokens_mean=input_mean), c, n, seed + c)
        run_id = f"{profile}-{input_mean:g}-c{c}"
        frames.append(
            pl.DataFrame(
                {
                    "run_id": run_id,
                    "seq": [r.seq for r in result.requests],
                    "start_s": [r.start_s for r in result.requests],
                    "ttft_s": [(r.ttft_s or 0.0) + retrieval_s for r in result.requests],
                    "e2e_s": [(r.e2e_s or 0.0) + retrieval_s for r in result.requests],
                    "input_tokens": [r.input_tokens for r in result.requests],
                    "output_tokens": [r.output_tokens for r in result.requests],
                    "status": "ok",
                    "error": None,
                },
                schema_overrides={"error": pl.String},
            ).filter(pl.col("seq") >= (c if SKIP_BURST else 0))
        )
        samples.append(
            pl.DataFrame(
                [(run_id, t, s, v) for t, s, v in result.server_samples],
                schema={
                    "run_id": pl.String,
                    "t_s": pl.Float64,
                    "signal": pl.String,
                    "value": pl.Float64,
                },
                orient="row",
            )
        )
        # Client-side retrieval keeps each user busy longer: the duration the client measured.
        runs.append(
            {
                "run_id": run_id,
                "deployment": profile,
                "load_mode": "concurrency",
                "load_value": float(c),
                "duration_s": result.duration_s,
                "num_requests": n,
                "num_errors": 0,
            }
        )
    return pl.DataFrame(runs), pl.concat(frames), pl.concat(samples)


def rows_for(
    setting: str,
    pred: RagPrediction,
    measured: pl.DataFrame,
    slos: tuple[SLO, ...],
    loads: list[float],
) -> list[tuple[str, ...]]:
    """Table rows: each statistic at `loads`, then the capacity within SLO."""
    out = []
    for load in loads:
        level = pred.level(load)
        got = measured.filter(pl.col("load_value") == load)
        if level is None or got.is_empty():
            continue
        for col in STATS:
            p, lo, hi = level.predicted[col], level.lo[col], level.hi[col]
            m = got[col][0]
            inside = "yes" if lo <= m <= hi else "no"
            out.append(
                (
                    setting,
                    f"{col.split('_')[0]} {col.split('_')[1].upper()} at c{load:g}"
                    + (" (KV-bound)" if level.kv_bound else ""),
                    f"{level.measured[col]:.3f} s",
                    f"{p:.3f} s ({lo:.3f}–{hi:.3f})",
                    f"{m:.3f} s",
                    f"{p / m - 1:+.0%}",
                    inside,
                )
            )
    from loadlens.analysis.saturation import max_load_within_slos, slo_boundary

    truth = max_load_within_slos([b for s in slos for b in slo_boundary(measured, s)])
    actual = capacity(next(iter(truth.values()), None))
    after = pred.after
    cap = capacity(after)
    rng = (
        f" ({after.boundary_lo:.1f}–{after.boundary_hi:.1f})"
        if after and after.boundary_lo is not None and after.boundary_hi is not None
        else ""
    )
    out.append(
        (
            setting,
            "capacity within SLO (concurrency)",
            f"{capacity(pred.before) or 0:.1f}",
            f"{cap:.1f}{rng}" if cap is not None else "below lightest",
            f"{actual:.1f}" if actual is not None else "below lightest",
            f"{cap / actual - 1:+.0%}" if cap and actual else "–",
            "–",
        )
    )
    return out


def simulator(n: int) -> list[tuple[str, ...]]:
    spec = RagSpec(4, 512, 0.2)
    rows = []
    for profile, slos in SIM_SLOS.items():
        runs, reqs, samples = sim_sweep(profile, 512, 0.0, n, seed=1)
        lv = level_metrics(runs, reqs, EMPTY_STATS, slos)
        (pred,) = predict(lv, reqs, runs, samples, slos, spec)
        assert pred.refused is None, pred.refused
        runs2, reqs2, _ = sim_sweep(profile, 512 + spec.added_tokens, spec.retrieval_s, n, seed=7)
        measured = level_metrics(runs2, reqs2, EMPTY_STATS, slos)
        kv = f"KV {pred.kv_capacity_tokens:,.0f} tok → {pred.kv_sequences:.1f} seqs"
        setting = f"sim {profile} ({kv}; b fit {pred.slope.b * 1e6:.0f} µs/tok)"  # type: ignore[union-attr]
        rows += rows_for(setting, pred, measured, slos, [2.0, 8.0, 16.0, 32.0])
    return rows


def real_engine(n: int) -> list[tuple[str, ...]]:
    from loadlens import testbed
    from loadlens.runner.loadgen import Level, Plan
    from loadlens.runner.sweep import Target, sweep
    from loadlens.runner.workloads import synthetic
    from loadlens.warehouse import Warehouse

    engine = testbed.find()
    if engine is None:
        print(f"no engine in {testbed.CACHE}: run `make engine` first", file=sys.stderr)
        return []
    slos = parse_slos("p95_ttft<2s,p95_e2e<6s")
    spec = RagSpec(1, 512, 0.0)
    loads = [1, 2, 4]
    db = Path(tempfile.mkdtemp()) / "w.duckdb"
    # 4 slots of 1,024 tokens each: room for the longer prompts plus the outputs.
    print("real engine: two sweeps at concurrency 1, 2, 4 ...", file=sys.stderr, flush=True)
    with (
        testbed.serve(engine, slots=4, context=4 * 1024, threads=1) as server,
        Warehouse(db) as wh,
    ):
        for name, inputs in (("base", "64:32"), ("rag", f"{64 + spec.added_tokens}:32")):
            sweep(
                Target(
                    server.api,
                    testbed.MODEL_ALIAS,
                    use_nvml=False,
                    timeout_s=600.0,
                    metrics_urls=(server.metrics,),
                ),
                synthetic(inputs, "16", seed=zlib.crc32(name.encode())),
                [Level("concurrency", c) for c in loads],
                Plan(requests=n, warmup=2),
                deployment=name,
                out_dir=Path(tempfile.mkdtemp()) / "runs",
                warehouse=wh,
            )
        frames = {}
        for name in ("base", "rag"):
            runs = wh.runs([name])
            ids = runs["run_id"].to_list()
            requests = wh.requests(ids, gaps=False)
            lv = level_metrics(runs, requests, wh.run_stats(ids), slos)
            frames[name] = (lv, requests, runs, wh.server_samples(ids))
        (pred,) = predict(*frames["base"], slos, spec)
        measured = frames["rag"][0]
    if pred.refused:
        print(f"real engine: not predicted: {pred.refused}", file=sys.stderr)
        return []
    setting = f"llama.cpp {engine.model_name} (b fit {pred.slope.b * 1e6:.0f} µs/tok)"  # type: ignore[union-attr]
    return rows_for(setting, pred, measured, slos, [float(c) for c in loads])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="per simulated level")
    parser.add_argument("--real", action="store_true", help="also on the real engine (slow)")
    parser.add_argument("--real-requests", type=int, default=12, help="per real level")
    parser.add_argument("--out", type=Path, default=Path("bench/out/whatif_rag.md"))
    parser.add_argument(
        "--skip-burst",
        action="store_true",
        help="leave out each simulated level's start-up burst (its first c requests)",
    )
    args = parser.parse_args()
    global SKIP_BURST
    SKIP_BURST = args.skip_burst
    rows = simulator(args.requests)
    if args.real:
        rows += real_engine(args.real_requests)
    lines = [
        "RAG what-if: predicted from the base sweep, measured on the sweep with the longer "
        "prompts (and retrieval).",
        "",
        "| setting | statistic | base | predicted (range) | measured | error | in range |",
        "|---|---|---:|---:|---:|---:|:---:|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
