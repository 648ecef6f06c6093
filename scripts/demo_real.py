"""`make demo-real`: a sweep against a real engine on this machine, and its capacity brief.

llama.cpp's llama-server (built by `make engine`) serves SmolLM2-135M on one CPU thread with
8 slots; the sweep goes past the slots (concurrency 1 to 24) so that requests queue, with
the server's /metrics scraped as it runs. The brief says what this is: a test bed for the
method, not a capacity figure.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from loadlens import testbed
from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.sweep import Target, sweep
from loadlens.runner.workloads import synthetic
from loadlens.warehouse import Warehouse

DEPLOYMENT = "llamacpp-smollm2-cpu"
CONCURRENCY = (1, 2, 4, 8, 12, 16, 24)
SLO = "p95_e2e<4s,p95_ttft<1s"  # scaled to a 135M model on CPU: a test bed, not production


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument(
        "--requests", type=int, default=72, help="per level (72: a p95 with an upper bound)"
    )
    args = parser.parse_args()
    engine = testbed.find()
    if engine is None:
        print(f"no engine in {testbed.CACHE}: run `make engine` first", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "real.duckdb"
    db.unlink(missing_ok=True)  # a fresh run every time, as `make demo` does
    shutil.rmtree(args.out / "real-runs", ignore_errors=True)
    with (
        testbed.serve(engine, slots=8, threads=1, log=args.out / "llama-server.log") as server,
        Warehouse(db) as wh,
    ):
        print(f"engine: {engine.engine}, {engine.model_name} at {server.api}", flush=True)
        sweep(
            Target(
                server.api,
                testbed.MODEL_ALIAS,
                use_nvml=False,
                timeout_s=300.0,
                metrics_urls=(server.metrics,),
            ),
            synthetic(64, 32),
            [Level("concurrency", c) for c in CONCURRENCY],
            Plan(requests=args.requests, warmup=2),
            deployment=DEPLOYMENT,
            out_dir=args.out / "real-runs",
            warehouse=wh,
            on_level_done=lambda o: print(
                f"  {o.level.key}: {o.records} requests, errors {o.errors or 'none'}", flush=True
            ),
        )
        wh.describe(
            DEPLOYMENT,
            {
                "model": engine.model_name,
                "engine": engine.engine,
                "hardware": "CPU, 1 thread, 8 slots",
                "note": testbed.NOTE,
            },
        )
    cli = [sys.executable, "-m", "loadlens"]
    for suffix in ("pdf", "md"):
        out = args.out / f"real-brief.{suffix}"
        subprocess.run([*cli, "report", "--db", str(db), "--slo", SLO, "-o", str(out)], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
