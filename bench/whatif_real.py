"""Benchmark: the what-if and the load interpolation against runs on a real engine.

llama.cpp's llama-server (`make engine`: SmolLM2-135M, one CPU thread, 8 slots) is swept at
concurrency 1, 2, 4, 8, 16 and 24 with 64-token outputs. From that sweep alone loadlens
predicts p95 E2E and TTFT
- with outputs cut to k = 0.5 and 0.7 of their length, at concurrency 4 (below the slots)
  and 16 (twice the slots: half the requests wait for one);
- with fewer users per replica, at concurrency 12 (interpolated between the measured 8 and
  16, as the replica what-if reads it);
then runs each change on the engine and prints predicted against measured, with the error.
The sweep and each check run in the same session, on the same server; one level measured
twice gives the run-to-run noise the errors compare with.

    make bench-whatif-real
    python bench/whatif_real.py --requests 48 --out bench/out/whatif_real.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import zlib
from pathlib import Path

import polars as pl

from loadlens import api, testbed
from loadlens.analysis.drivers import prefill_fit
from loadlens.analysis.saturation import value_at
from loadlens.analysis.whatif import predict_output_scale, prefill_stall
from loadlens.config import parse_slos
from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.sweep import Target, sweep
from loadlens.runner.workloads import synthetic
from loadlens.warehouse import Warehouse

INPUT, OUTPUT = 64, 64
SWEEP = (1, 2, 4, 8, 16, 24)
# The statistics to predict (not judged): p95, and the mean, which 2 samples above the
# p95 of a 48-request level do not shake.
SLOS = parse_slos("p95_e2e<100s,p95_ttft<100s,mean_e2e<100s,mean_ttft<100s")
STATS = ("p95_e2e_s", "p95_ttft_s", "mean_e2e_s", "mean_ttft_s")


def measure(
    wh: Warehouse, server: testbed.Running, name: str, levels: list[int], output: int, n: int
) -> pl.DataFrame:
    """Run `levels` with `output`-token outputs as deployment `name`; its level rows.

    Each run draws prompts of its own (a seed per name): a prompt the engine has seen is
    served from its prefix cache, which made a repeated run's TTFT 25x shorter.
    """
    sweep(
        Target(server.api, testbed.MODEL_ALIAS, use_nvml=False, timeout_s=600.0),
        synthetic(INPUT, output, seed=zlib.crc32(name.encode())),
        [Level("concurrency", c) for c in levels],
        Plan(requests=n, warmup=2),
        deployment=name,
        out_dir=Path(tempfile.mkdtemp()) / "runs",
        warehouse=wh,
    )
    return api.analyze(wh, [name], SLOS).levels


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=48, help="per level")
    parser.add_argument("--out", type=Path, default=Path("bench/out/whatif_real.md"))
    args = parser.parse_args()
    engine = testbed.find()
    if engine is None:
        print(f"no engine in {testbed.CACHE}: run `make engine` first", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, float, float]] = []
    db = Path(tempfile.mkdtemp()) / "w.duckdb"
    with testbed.serve(engine, slots=8, threads=1) as server, Warehouse(db) as wh:
        base = measure(wh, server, "base", list(SWEEP), OUTPUT, args.requests)
        runs = wh.runs(["base"])
        requests = wh.requests(runs["run_id"].to_list())
        lightest = runs.sort("load_value")["run_id"][0]
        _, slope = prefill_fit(requests, lightest)
        for c in (4, 16):
            level = base.filter(pl.col("load_value") == c).row(0, named=True)
            reqs = requests.filter(pl.col("run_id") == level["run_id"])
            stall = prefill_stall(reqs, level["achieved_concurrency"] or c, slope)
            for k in (0.5, 0.7):
                predicted = predict_output_scale(reqs, k, SLOS, stall_s=stall)
                got = measure(wh, server, f"k{k}-c{c}", [c], round(OUTPUT * k), args.requests)
                for col in STATS:
                    rows.append((f"outputs ×{k} at c{c}", col, predicted[col], got[col][0]))
        points = {col: sorted(zip(base["load_value"], base[col], strict=True)) for col in STATS}
        # The noise floor: the same level as the sweep's, measured again with fresh prompts.
        again = measure(wh, server, "repeat-c16", [16], OUTPUT, args.requests)
        for col in STATS:
            rows.append(("none (c16 measured again)", col, points[col][-2][1], again[col][0]))
        got = measure(wh, server, "c12", [12], OUTPUT, args.requests)
        for col, pts in points.items():
            predicted = value_at(pts, 12)
            assert predicted is not None
            rows.append(("fewer users: c12 from c8–c16", col, predicted, got[col][0]))
    lines = [
        f"What-if on {engine.engine}, {engine.model_name}; 8 slots, 1 thread; "
        f"{args.requests} requests per level, {INPUT}-token prompts, {OUTPUT}-token outputs.",
        "",
        "| change | statistic | predicted | measured | error |",
        "|---|---|---:|---:|---:|",
    ]
    for change, col, predicted, measured in rows:
        error = predicted / measured - 1
        stat, metric, _ = col.split("_")
        label = f"{stat} {metric.upper()}"
        lines.append(
            f"| {change} | {label} | {predicted:.3f} s | {measured:.3f} s | {error:+.0%} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
