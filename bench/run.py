"""Benchmark: ingest and report a generated 1,000,000-request vLLM detailed trace.

Prints seconds per stage, requests/s ingested, and the ratio of loadlens's ingest time to
DuckDB's own bare read of the same file (the baseline, measured in the same run).

    make bench                      # 1,000,000 requests
    python bench/run.py --requests 100000
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import orjson

from loadlens import api
from loadlens.config import parse_slos
from loadlens.report.brief import build_brief
from loadlens.report.render import render_pdf
from loadlens.warehouse import Warehouse

OUT = Path(__file__).parent / "out"


def generate(path: Path, n: int, seed: int = 7) -> None:
    """A vLLM `--save-detailed` result with n requests: short outputs keep the file ~100 MB."""
    rng = random.Random(seed)
    ttfts = [round(rng.lognormvariate(-2.5, 0.6), 6) for _ in range(n)]
    out_lens = [rng.randint(4, 12) for _ in range(n)]
    itls = [[round(rng.lognormvariate(-4.3, 0.3), 6) for _ in range(k - 1)] for k in out_lens]
    errors = ["" if rng.random() > 0.001 else "HTTP 500" for _ in range(n)]
    duration = sum(t + sum(i) for t, i in zip(ttfts, itls, strict=True)) / 256
    doc: dict[str, Any] = {
        "date": "20251102-101500",
        "endpoint_type": "openai-chat",
        "backend": "openai-chat",
        "label": None,
        "model_id": "bench/model",
        "tokenizer_id": "bench/model",
        "num_prompts": n,
        "request_rate": "inf",
        "burstiness": 1.0,
        "max_concurrency": 256,
        "duration": duration,
        "completed": n - errors.count("HTTP 500"),
        "failed": errors.count("HTTP 500"),
        "request_throughput": n / duration,
        "input_lens": [rng.randint(100, 2000) for _ in range(n)],
        "output_lens": out_lens,
        "ttfts": ttfts,
        "itls": itls,
        "generated_texts": [""] * n,
        "errors": errors,
        "mean_ttft_ms": 1000 * sum(ttfts) / n,
    }
    path.write_bytes(orjson.dumps(doc))


def timed(label: str, fn: Callable[[], Any], times: dict[str, float]) -> Any:
    start = time.perf_counter()
    result = fn()
    times[label] = time.perf_counter() - start
    return result


def duckdb_bare_read(path: Path) -> None:
    """DuckDB parsing the same file into a table: what a bare JSON read costs."""
    con = duckdb.connect()
    size = path.stat().st_size
    con.execute(
        f"CREATE TABLE raw AS SELECT * FROM read_json('{path}', "
        f"maximum_object_size={size + 1024}, records=true)"
    )
    con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    trace = OUT / f"vllm-detailed-{args.requests}.json"
    if not trace.exists():
        t0 = time.perf_counter()
        generate(trace, args.requests)
        print(f"generated {trace} in {time.perf_counter() - t0:.1f} s")
    size_mb = trace.stat().st_size / 1e6
    print(f"trace: {args.requests:,} requests, {size_mb:,.0f} MB")

    times: dict[str, float] = {}
    timed("duckdb bare read (baseline)", lambda: duckdb_bare_read(trace), times)
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "bench.duckdb") as wh:
        traces, _ = timed("parse + check", lambda: api.load_traces([trace]), times)
        timed("warehouse write", lambda: wh.ingest(traces, "bench"), times)
        slos = parse_slos("p95_e2e<10s,p95_ttft<2s")
        analysis = timed("models + findings", lambda: api.analyze(wh, None, slos), times)
        brief = timed("charts + brief", lambda: build_brief(analysis), times)
        timed("pdf", lambda: render_pdf(brief), times)

    ingest_s = times["parse + check"] + times["warehouse write"]
    baseline_s = times["duckdb bare read (baseline)"]
    width = max(len(k) for k in times)
    for label, seconds in times.items():
        print(f"  {label:<{width}}  {seconds:7.2f} s")
    print(f"ingest: {args.requests / ingest_s:,.0f} requests/s ({ingest_s:.2f} s)")
    print(f"ingest / duckdb bare read: {ingest_s / baseline_s:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
