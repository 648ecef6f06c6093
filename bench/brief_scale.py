"""Benchmark: one capacity brief over many deployments (the PDF and its charts).

N deployments × 7 closed-loop levels of 200 requests each (synthetic, with start times so
every level has its story), against `report --format json` of the same warehouse: the
ratio is what the brief's layout costs on top of the analysis.

    make bench-brief            # 50 deployments
    python bench/brief_scale.py --deployments 20
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

import polars as pl

from loadlens import api
from loadlens.config import parse_slos
from loadlens.report.brief import build_brief
from loadlens.report.render import render_json, render_pdf
from loadlens.sources import loadlens_native
from loadlens.trace import RunMeta
from loadlens.warehouse import Warehouse

LEVELS = (1, 5, 10, 20, 40, 60, 80)


def deployment_trace(path: Path, seed: int) -> None:
    rng = random.Random(seed)
    speed = rng.uniform(0.6, 1.6)
    runs, rows = [], []
    for c in LEVELS:
        key = f"c{c}"
        runs.append(RunMeta(run_key=key, load_mode="concurrency", load_value=c, num_requests=200))
        t = 0.0
        for i in range(200):
            ttft = speed * (0.05 + 0.002 * c) * rng.lognormvariate(0, 0.3)
            tpot = speed * (0.01 + 0.0003 * c)
            out = rng.randint(100, 300)
            rows.append(
                {
                    "run_key": key,
                    "seq": i,
                    "start_s": t,
                    "ttft_s": ttft,
                    "e2e_s": ttft + tpot * (out - 1),
                    "input_tokens": rng.randint(200, 800),
                    "output_tokens": out,
                    "itl_s": None,
                    "status": "ok",
                    "error": None,
                }
            )
            t += (ttft + tpot * out) / c
    loadlens_native.write(path, runs, pl.DataFrame(rows))


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "w.duckdb") as wh:
        for d in range(args.deployments):
            path = Path(tmp) / f"d{d}.jsonl"
            deployment_trace(path, d)
            api.ingest(wh, [path], f"option-{d:02d}")
        slos = parse_slos("p95_e2e<10s,p95_ttft<2s")
        t0 = time.perf_counter()
        analysis = api.analyze(wh, None, slos)
        t1 = time.perf_counter()
        brief = build_brief(analysis)
        json_s = t1 - t0 + _timed(lambda: render_json(brief, analysis))
        t2 = time.perf_counter()
        brief = build_brief(analysis)
        t3 = time.perf_counter()
        pdf = render_pdf(brief)
        t4 = time.perf_counter()
    pdf_s = (t1 - t0) + (t4 - t2)
    print(f"{args.deployments} deployments x {len(LEVELS)} levels x 200 requests")
    print(f"  analysis            {t1 - t0:6.2f} s")
    print(f"  brief (charts)      {t3 - t2:6.2f} s")
    print(f"  pdf (weasyprint)    {t4 - t3:6.2f} s  ({len(pdf) / 1e6:.1f} MB)")
    print(f"  json brief          {json_s:6.2f} s")
    print(
        f"PDF brief {pdf_s:.1f} s (target <= 15 s), {pdf_s / json_s:.1f}x the JSON brief; "
        f"peak memory {peak_gb():.2f} GB"
    )


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
