"""Benchmark: how much load the sweep runner can apply, and how much latency it adds.

`loadlens serve-sim --profile instant` (no compute model: every step takes --step-ms, no
batch limit) runs in its own process, so the server is not the bottleneck; the runner
sweeps closed-loop levels up to 1,000 concurrent streams. For each level it prints the
streamed tokens/s the client handled and its added latency: measured TTFT/E2E minus the
server's own stamps for the same request (p50/p99), the baseline measured in the same run,
and the CPU each process used (share of one core; the level includes writing and ingesting).

    make bench-runner
    python bench/runner.py --levels 100,1000 --tokens 30
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import polars as pl

from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.sweep import Target, sweep
from loadlens.runner.workloads import synthetic
from loadlens.warehouse import Warehouse


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process, or of another one from /proc."""
    if pid is None:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system  # joined workers
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="10,100,500,1000")
    parser.add_argument("--tokens", type=int, default=30, help="output tokens per request")
    parser.add_argument("--step-ms", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=2, help="requests per stream per level")
    parser.add_argument(
        "--workers", default="1,2", help="client processes to compare at each level"
    )
    args = parser.parse_args()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "loadlens.cli",
            "serve-sim",
            "--port",
            "0",
            "--profile",
            "instant",
            "--step-ms",
            str(args.step_ms),
            "--max-seconds",
            "1800",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = re.search(r"127\.0\.0\.1:(\d+)/v1", server.stdout.readline()).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        print(f"serve-sim instant, {args.step_ms:g} ms per token, {args.tokens} tokens/request")
        print(
            f"{'streams':>8} {'workers':>8} {'requests':>9} {'errors':>7} {'tok/s':>9} "
            f"{'added TTFT p50/p99 ms':>22} {'added E2E p50/p99 ms':>21} "
            f"{'CPU client/server':>18}"
        )
        with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "b.duckdb") as wh:
            # Warm the client's code paths (first-call imports) outside any measured level.
            sweep(
                Target(f"{base}/v1", "bench", use_nvml=False),
                synthetic(64, 4),
                [Level("concurrency", 2)],
                Plan(requests=4),
                deployment="warm-up",
                out_dir=Path(tmp) / "runs",
                warehouse=wh,
            )
            for n, workers in (
                (int(v), int(w)) for v in args.levels.split(",") for w in args.workers.split(",")
            ):
                if workers > 1 and n < 100:
                    continue  # one process is enough there
                level = Level("concurrency", n)
                started = time.perf_counter()
                cpu = cpu_seconds(), cpu_seconds(server.pid)
                sweep(
                    Target(f"{base}/v1", "bench", use_nvml=False, timeout_s=120),
                    synthetic(64, args.tokens),
                    [level],
                    Plan(requests=n * args.rounds, warmup=0, workers=workers),
                    deployment=f"b{n}w{workers}",
                    out_dir=Path(tmp) / "runs",
                    warehouse=wh,
                )
                elapsed = time.perf_counter() - started
                client_cpu = (cpu_seconds() - cpu[0]) / elapsed
                server_cpu = (cpu_seconds(server.pid) - cpu[1]) / elapsed
                runs = wh.runs([f"b{n}w{workers}"])
                rows = wh.requests(runs["run_id"].to_list())
                with urllib.request.urlopen(f"{base}/sim/requests", timeout=30) as resp:
                    stamped = {
                        r["request_id"]: r
                        for r in json.loads(resp.read())
                        if r["request_id"] and r["token_times"]
                    }
                added = []
                for r in rows.filter(pl.col("status") == "ok").iter_rows(named=True):
                    s = stamped.get(f"loadlens-{level.key}-{r['seq']}")
                    if s:
                        added.append(
                            (
                                r["ttft_s"] - (s["token_times"][0] - s["arrival"]),
                                r["e2e_s"] - (s["token_times"][-1] - s["arrival"]),
                            )
                        )
                ttft = sorted(a for a, _ in added)
                e2e = sorted(b for _, b in added)

                def pct(v: list[float], q: float) -> float:
                    return v[int(q * (len(v) - 1))] * 1000 if v else float("nan")

                tokens = rows["output_tokens"].fill_null(0).sum()
                wall = runs["duration_s"][0]
                print(
                    f"{n:>8} {workers:>8} {rows.height:>9} {(rows['status'] != 'ok').sum():>7} "
                    f"{tokens / wall:>9,.0f} {pct(ttft, 0.5):>10.1f} / {pct(ttft, 0.99):<9.1f}"
                    f"{pct(e2e, 0.5):>10.1f} / {pct(e2e, 0.99):<9.1f}"
                    f"{client_cpu:>10.0%} / {server_cpu:<6.0%}"
                )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
