"""Benchmark: ingest and report a generated 1,000,000-request vLLM detailed trace; then the
level statistics pushed down into DuckDB against the polars ones, at 1M, 3M and 10M requests.

Prints seconds per stage, requests/s ingested, and the ratio of loadlens's ingest time to
DuckDB's own bare read of the same file (the baseline, measured in the same run). The
analysis part builds warehouses of 7 load levels straight in DuckDB (generated, never
committed) and times, each in a fresh process so peak memory is its own, `level_metrics`
from the warehouse (SQL aggregates) against the polars implementation over every row it
replaced (`tests/test_pushdown.reference_levels`), and `report --format json` with each.

    make bench                      # 1,000,000 requests, then analysis at 1M, 3M, 10M
    python bench/run.py --requests 100000 --analysis 1000000,3000000
    python bench/run.py --requests 0 --analysis 3000000 --old-max 3000000
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import statistics
import subprocess
import sys
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


LEVELS = (1, 2, 4, 8, 16, 32, 64)
SLOS = "p95_e2e<10s,p95_ttft<2s"


def build_warehouse(path: Path, n: int, seed: int = 7) -> None:
    """A warehouse of one deployment, 7 concurrency levels, n requests in all, made by
    DuckDB itself: lognormal TTFT and inter-token gaps that grow with the load, 4-12 output
    tokens, 0.1% errors (the shape of `generate`, without a file to parse)."""
    with Warehouse(path) as wh:
        wh.describe("bench", {"hardware": "generated"})
        con = wh.con
        con.execute(f"SELECT setseed({1 / (seed + 1)})")
        con.execute(
            "INSERT INTO sources VALUES ('bench', 'generated', 'vllm', 'vllm', NULL, 'bench', "
            "now()::TIMESTAMP)"
        )
        per_level = n // len(LEVELS)
        for i, c in enumerate(LEVELS):
            run_id = f"bench-c{c:03d}"
            count = per_level + (n - per_level * len(LEVELS) if i == len(LEVELS) - 1 else 0)
            con.execute(
                "INSERT INTO runs VALUES (?, 'bench', 'bench', ?, 'concurrency', ?, NULL, "
                "NULL, 'bench/model', '{}', ?, NULL, NULL)",
                [run_id, f"c{c}", float(c), count],
            )
            slow = 1 + c / 16
            normal = "sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())"
            con.execute(
                f"""
                INSERT INTO requests
                SELECT run_id, seq, seq * 0.01 AS start_s, ttft_s,
                       CASE WHEN status = 'ok' THEN ttft_s + list_sum(itl_s) END AS e2e_s,
                       input_tokens, output_tokens,
                       CASE WHEN status = 'ok' THEN itl_s END, status,
                       CASE WHEN status = 'error' THEN 'HTTP 500' END
                FROM (
                    SELECT *, list_transform(range(output_tokens - 1),
                                             lambda x: {slow} * exp(-4.3 + 0.3 * {normal})) AS itl_s
                    FROM (
                        SELECT '{run_id}' AS run_id, range AS seq,
                               {slow} * exp(-2.5 + 0.6 * {normal}) AS ttft_s,
                               100 + (random() * 1900)::BIGINT AS input_tokens,
                               4 + (random() * 8)::BIGINT AS output_tokens,
                               CASE WHEN random() < 0.001 THEN 'error' ELSE 'ok' END AS status
                        FROM range({count})
                    )
                )
                """
            )
            con.execute(
                "UPDATE runs SET duration_s = (SELECT sum(e2e_s) FROM requests q "
                "WHERE q.run_id = runs.run_id) / load_value, "
                "num_errors = (SELECT count_if(status <> 'ok') FROM requests q "
                "WHERE q.run_id = runs.run_id) WHERE run_id = ?",
                [run_id],
            )
        con.execute("CHECKPOINT")


def measure(kind: str, db: Path) -> None:
    """One measurement in this (fresh) process: prints seconds and peak RSS as JSON."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from loadlens.analysis.levels import levels_from
    from loadlens.config import parse_slos, with_error_budget

    slos = with_error_budget(parse_slos(SLOS))
    start = time.perf_counter()
    if kind in ("levels-old", "levels-new"):
        with Warehouse(db, read_only=True) as wh:
            runs = wh.runs(None)
            ids = runs["run_id"].to_list()
            if kind == "levels-new":
                frame = levels_from(runs, wh.level_aggregates(ids, slos), wh.run_stats(ids), slos)
            else:
                from tests.test_pushdown import reference_levels

                frame = reference_levels(runs, wh.requests(ids), wh.run_stats(ids), slos)
        assert frame.height == len(LEVELS)
    else:
        from typer.testing import CliRunner

        from loadlens.cli import app

        if kind == "report-old":
            _use_polars_levels()
        result = CliRunner().invoke(
            app, ["report", "--db", str(db), "--format", "json", "--slo", SLOS]
        )
        assert result.exit_code == 0, result.output[-2000:]
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"seconds": seconds, "peak_bytes": peak}))


def _use_polars_levels() -> None:
    """Make api.analyze compute its level table the old way: polars over every row (read
    once: the rows the other analyses load are the same frame)."""
    from tests.test_pushdown import reference_levels

    from loadlens import api

    loaded: dict[tuple[str, ...], Any] = {}
    read = Warehouse.requests

    def requests(self: Warehouse, run_ids: list[str]) -> Any:
        key = tuple(run_ids)
        if key not in loaded:
            loaded[key] = read(self, run_ids)
        return loaded[key]

    Warehouse.requests = requests  # type: ignore[method-assign]
    Warehouse.level_aggregates = lambda self, ids, *a: (self, ids)  # type: ignore[method-assign,assignment]

    def polars_levels(runs: Any, handle: Any, run_stats: Any, slos: Any, confidence: Any) -> Any:
        wh, ids = handle
        return reference_levels(runs, wh.requests(ids), run_stats, slos, confidence)

    api.level_metrics = polars_levels


def run_measure(kind: str, db: Path, repeat: int) -> dict[str, float]:
    """The median seconds and peak memory of `repeat` fresh processes (the machine is shared:
    one run alone says little)."""
    results = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, __file__, "--measure", kind, str(db)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"{kind} at {db} failed:\n{done.stderr[-3000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in results) for k in ("seconds", "peak_bytes")}


def analysis_bench(sizes: list[int], old_max: int, report_max: int, repeat: int) -> None:
    """level_metrics and report --format json, pushed down vs polars, at each size."""
    rows = []
    with tempfile.TemporaryDirectory(dir=OUT) as tmp:
        for n in sizes:
            db = Path(tmp) / f"levels-{n}.duckdb"
            t0 = time.perf_counter()
            build_warehouse(db, n)
            print(f"built a {n:,}-request warehouse in {time.perf_counter() - t0:.1f} s")
            for what in ("levels", "report"):
                if what == "report" and n > report_max:
                    continue
                new = run_measure(f"{what}-new", db, repeat)
                old = run_measure(f"{what}-old", db, repeat) if n <= old_max else None
                rows.append((what, n, new, old))
                _print_row(what, n, new, old)
            db.unlink()
    print("\nwork                 requests   SQL s  SQL GB  polars s  polars GB  time  memory")
    for row in rows:
        _print_row(*row)
    new_levels = [(n, new) for what, n, new, _ in rows if what == "levels"]
    for (n0, a), (n1, b) in itertools.pairwise(new_levels):
        time_x, memory_x = b["seconds"] / a["seconds"], b["peak_bytes"] / a["peak_bytes"]
        print(
            f"level_metrics growth {n0:,} -> {n1:,} requests ({n1 / n0:.1f}x): "
            f"time {time_x:.2f}x, memory {memory_x:.2f}x"
        )


def _print_row(what: str, n: int, new: dict[str, float], old: dict[str, float] | None) -> None:
    label = "level_metrics" if what == "levels" else "report --format json"
    line = f"{label:<20} {n:>9,} {new['seconds']:7.2f} {new['peak_bytes'] / 1e9:7.2f}"
    if old:
        time_x, memory_x = old["seconds"] / new["seconds"], old["peak_bytes"] / new["peak_bytes"]
        line += f" {old['seconds']:9.2f} {old['peak_bytes'] / 1e9:10.2f}"
        line += f" {time_x:5.1f}x {memory_x:6.1f}x"
    else:
        line += "  (polars not run at this size)"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1_000_000, help="0 skips the ingest part")
    parser.add_argument(
        "--analysis",
        default="1000000,3000000,10000000",
        help="request counts of the level-statistics benchmark ('' skips it)",
    )
    parser.add_argument(
        "--old-max",
        type=int,
        default=3_000_000,
        help="largest size at which the polars implementation runs (it needs ~1.8 GB per 1M)",
    )
    parser.add_argument(
        "--report-max",
        type=int,
        default=10_000_000,
        help="largest size of the report timing (its other analyses still load every row)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument(
        "--files", type=int, default=500, help="small files for the many-files ingest (0 skips)"
    )
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure[0], Path(args.measure[1]))
        return
    OUT.mkdir(exist_ok=True)
    if args.requests:
        ingest_bench(args.requests)
    if args.files:
        many_files_bench(args.files, 2000)
    if args.analysis:
        analysis_bench(
            [int(x) for x in args.analysis.split(",")], args.old_max, args.report_max, args.repeat
        )


def ingest_bench(requests: int) -> None:
    """Ingest and report one generated vLLM file of `requests` requests."""
    trace = OUT / f"vllm-detailed-{requests}.json"
    if not trace.exists():
        t0 = time.perf_counter()
        generate(trace, requests)
        print(f"generated {trace} in {time.perf_counter() - t0:.1f} s")
    size_mb = trace.stat().st_size / 1e6
    print(f"trace: {requests:,} requests, {size_mb:,.0f} MB")

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
    print(f"ingest: {requests / ingest_s:,.0f} requests/s ({ingest_s:.2f} s)")
    print(f"ingest / duckdb bare read: {ingest_s / baseline_s:.2f}x (target <= 2x)")


def many_files_bench(files: int, per_file: int) -> None:
    """Ingest a folder of `files` small vLLM files against DuckDB's bare read of them."""
    folder = OUT / f"vllm-{files}x{per_file}"
    if not folder.exists():
        folder.mkdir(parents=True)
        for i in range(files):
            generate(folder / f"run-{i:04d}.json", per_file, seed=i)
    size_mb = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
    print(f"folder: {files} files x {per_file:,} requests, {size_mb:,.0f} MB")
    times: dict[str, float] = {}

    def bare() -> None:
        con = duckdb.connect()
        biggest = max(p.stat().st_size for p in folder.iterdir())
        con.execute(
            f"CREATE TABLE raw AS SELECT * FROM read_json('{folder}/*.json', "
            f"maximum_object_size={biggest + 1024}, records=true)"
        )
        con.close()

    timed("duckdb bare read (baseline)", bare, times)
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "bench.duckdb") as wh:
        traces, _ = timed("parse + check", lambda: api.load_traces([folder]), times)
        timed("warehouse write", lambda: wh.ingest(traces, "bench"), times)
    ingest_s = times["parse + check"] + times["warehouse write"]
    for label, seconds in times.items():
        print(f"  {label:<28}  {seconds:7.2f} s")
    print(
        f"ingest {files} files / duckdb bare read: "
        f"{ingest_s / times['duckdb bare read (baseline)']:.2f}x (target <= 2x); "
        f"{ingest_s / files * 1e3:.1f} ms per file"
    )


if __name__ == "__main__":
    main()
