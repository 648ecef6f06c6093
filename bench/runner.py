"""Benchmark: how much load the sweep runner can apply, and how much latency it adds.

`loadlens serve-sim --profile instant` (no compute model: every step takes --step-ms, no
batch limit) runs in its own process; the runner sweeps closed-loop levels up to 1,000
concurrent streams, with one and with two client processes. For each level it prints the
streamed tokens/s the client handled, its added latency (measured TTFT/E2E minus the
server's own stamps for the same request, p50/p99), and the CPU each process used (share
of one core over the level, which includes writing and ingesting it).

With `--peer-guidellm PATH` (a `guidellm` executable, e.g. from a throwaway venv) the same
levels run through GuideLLM's concurrent profile against the same server, and the table
ends with the ratios peer / loadlens. GuideLLM sends no request id, so for both clients
"added" is also given as quantile(client TTFT) − quantile(server TTFT) over the level.

    make bench-runner
    python bench/runner.py --levels 100,1000 --tokens 30 --peer-guidellm /tmp/g/bin/guidellm
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from loadlens import sources
from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.sweep import Target, sweep
from loadlens.runner.workloads import synthetic
from loadlens.warehouse import Warehouse

PROMPT_WORDS = 64


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) of this process and its joined children, or of another."""
    if pid is None:
        t = os.times()
        return t.user + t.system + t.children_user + t.children_system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


@dataclass
class Result:
    client: str
    streams: int
    requests: int
    errors: int
    tok_s: float
    added_ttft: tuple[float, float] | None  # per request, p50/p99 (ms)
    added_e2e: tuple[float, float] | None
    shift_ttft: tuple[float, float]  # quantile differences, p50/p99 (ms)
    cpu: tuple[float, float]  # client, server: share of one core
    cpu_ms: float | None = None  # client CPU per request while the level ran (ms)

    def line(self) -> str:
        def pair(p: tuple[float, float] | None) -> str:
            return f"{p[0]:>7.1f} / {p[1]:<7.1f}" if p else f"{'—':>7} / {'—':<7}"

        return (
            f"{self.client:<12}{self.streams:>8}{self.requests:>9}{self.errors:>7}"
            f"{self.tok_s:>9,.0f}  {pair(self.added_ttft)} {pair(self.added_e2e)} "
            f"{pair(self.shift_ttft)} {self.cpu[0]:>6.0%} / {self.cpu[1]:<5.0%}"
            + (f"{self.cpu_ms:>9.2f}" if self.cpu_ms is not None else f"{'—':>9}")
        )


HEADER = (
    f"{'client':<12}{'streams':>8}{'requests':>9}{'errors':>7}{'tok/s':>9}  "
    f"{'added TTFT p50/p99':>17} {'added E2E p50/p99':>17} {'TTFT shift p50/p99':>18} "
    f"{'CPU client/server':>17}{'CPU ms/req':>11}"
)


class Bench:
    def __init__(self, base: str, server_pid: int, tmp: Path, wh: Warehouse, args: Any) -> None:
        self.base, self.server_pid, self.tmp, self.wh, self.args = base, server_pid, tmp, wh, args

    def stamps(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.base}/sim/requests", timeout=30) as resp:
            return json.loads(resp.read())

    def ours(self, n: int, workers: int) -> Result:
        level, deployment = Level("concurrency", n), f"b{n}w{workers}"
        seen = len(self.stamps())
        started, cpu = time.perf_counter(), (cpu_seconds(), cpu_seconds(self.server_pid))
        sweep(
            Target(f"{self.base}/v1", "bench", use_nvml=False, timeout_s=120),
            synthetic(PROMPT_WORDS, self.args.tokens),
            [level],
            Plan(requests=n * self.args.rounds, warmup=0, workers=workers),
            deployment=deployment,
            out_dir=self.tmp / "runs",
            warehouse=self.wh,
        )
        cpu = self._cpu(started, cpu)
        runs = self.wh.runs([deployment])
        rows = self.wh.requests(runs["run_id"].to_list())
        server = [s for s in self.stamps()[seen:] if s["token_times"]]
        by_id = {s["request_id"]: s for s in server}
        added = []
        for r in rows.filter(pl.col("status") == "ok").iter_rows(named=True):
            if s := by_id.get(f"loadlens-{level.key}-{r['seq']}"):
                added.append(
                    (
                        r["ttft_s"] - (s["token_times"][0] - s["arrival"]),
                        r["e2e_s"] - (s["token_times"][-1] - s["arrival"]),
                    )
                )
        ttft, e2e = [a for a, _ in added], [b for _, b in added]
        client = json.loads(runs["workload"][0]).get("client", {})
        return Result(
            f"loadlens×{workers}",
            n,
            rows.height,
            int((rows["status"] != "ok").sum()),
            rows["output_tokens"].fill_null(0).sum() / runs["duration_s"][0],
            (pct(ttft, 0.5) * 1e3, pct(ttft, 0.99) * 1e3),
            (pct(e2e, 0.5) * 1e3, pct(e2e, 0.99) * 1e3),
            self._shift(rows["ttft_s"].drop_nulls().to_list(), server),
            cpu,
            client["cpu_s"] * 1e3 / rows.height if client.get("cpu_s") else None,
        )

    def lean(self, n: int, uvloop: bool = False) -> Result:
        """The lean reference client (bench/lean_client.py) in a process of its own."""
        tag = f"{n}{'u' if uvloop else ''}"
        seen = len(self.stamps())
        started, cpu = time.perf_counter(), (cpu_seconds(), cpu_seconds(self.server_pid))
        done = subprocess.run(
            [
                sys.executable,
                str(Path(__file__).with_name("lean_client.py")),
                self.base,
                *("--streams", str(n), "--requests", str(n * self.args.rounds)),
                *("--tokens", str(self.args.tokens), "--tag", tag),
                *(["--uvloop"] if uvloop else []),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=600,
        )
        cpu = self._cpu(started, cpu)
        out = json.loads(done.stdout)
        by_id = {s["request_id"]: s for s in self.stamps()[seen:] if s["token_times"]}
        ttft, e2e, client_ttft = [], [], []
        for r in out["records"]:
            if (s := by_id.get(r["rid"])) and r["chunks"]:
                client_ttft.append(r["chunks"][0] - r["sent"])
                ttft.append(client_ttft[-1] - (s["token_times"][0] - s["arrival"]))
                e2e.append((r["chunks"][-1] - r["sent"]) - (s["token_times"][-1] - s["arrival"]))
        server = list(by_id.values())
        return Result(
            "lean+uvloop" if uvloop else "lean",
            n,
            len(out["records"]),
            n * self.args.rounds - len(ttft),
            len(out["records"]) * self.args.tokens / out["wall_s"],
            (pct(ttft, 0.5) * 1e3, pct(ttft, 0.99) * 1e3),
            (pct(e2e, 0.5) * 1e3, pct(e2e, 0.99) * 1e3),
            self._shift(client_ttft, server),
            cpu,
            out["cpu_s"] * 1e3 / max(1, len(out["records"])),
        )

    def guidellm(self, n: int, exe: str) -> Result:
        prompts = self.tmp / "prompts.jsonl"
        if not prompts.exists():
            rng = random.Random(7)
            prompts.write_text(
                "".join(
                    json.dumps(
                        {
                            "prompt": " ".join(f"w{rng.randrange(8000)}" for _ in range(64)),
                            "output_tokens_count": self.args.tokens,
                        }
                    )
                    + "\n"
                    for _ in range(4000)
                )
            )
        out = self.tmp / f"guidellm-c{n}.json"
        seen = len(self.stamps())
        started, cpu = time.perf_counter(), (cpu_seconds(), cpu_seconds(self.server_pid))
        subprocess.run(
            [
                exe,
                "run",
                "--backend",
                f"kind=openai_http,target={self.base},request_format=/v1/chat/completions",
                "--profile",
                "kind=concurrent",
                "--override",
                "profile.streams",
                str(n),
                "--constraint",
                f"kind=max_requests,count={n * self.args.rounds}",
                "--data",
                f"kind=json_file,path={prompts}",
                "--tokenizer",
                f"kind=huggingface_auto,model={self.args.tokenizer}",
                "--output",
                f"kind=json,path={out}",
                "--disable-console-interactive",
            ],
            check=True,
            capture_output=True,
            timeout=600,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        cpu = self._cpu(started, cpu)
        trace = sources.load_file(out)  # loadlens's own GuideLLM loader
        rows, run = trace.requests, trace.runs[0]
        server = [s for s in self.stamps()[seen:] if s["token_times"]]
        return Result(
            "guidellm",
            n,
            rows.height,
            int((rows["status"] != "ok").sum()),
            rows["output_tokens"].fill_null(0).sum() / (run.duration_s or float("nan")),
            None,
            None,
            self._shift(rows["ttft_s"].drop_nulls().to_list(), server),
            cpu,
        )

    def _cpu(self, started: float, before: tuple[float, float]) -> tuple[float, float]:
        elapsed = time.perf_counter() - started
        return (
            (cpu_seconds() - before[0]) / elapsed,
            (cpu_seconds(self.server_pid) - before[1]) / elapsed,
        )

    @staticmethod
    def _shift(client_ttft: list[float], server: list[dict]) -> tuple[float, float]:
        srv = [s["token_times"][0] - s["arrival"] for s in server]
        return tuple(  # type: ignore[return-value]
            (pct(client_ttft, q) - pct(srv, q)) * 1e3 for q in (0.5, 0.99)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="10,100,500,1000")
    parser.add_argument("--tokens", type=int, default=30, help="output tokens per request")
    parser.add_argument("--step-ms", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=2, help="requests per stream per level")
    parser.add_argument("--workers", default="1,2", help="client processes to compare")
    parser.add_argument("--peer-guidellm", help="a guidellm executable to compare with")
    parser.add_argument("--tokenizer", default="/tmp/ll-tokenizer", help="for the peer")
    args = parser.parse_args()
    server = subprocess.Popen(
        [
            *(sys.executable, "-m", "loadlens", "serve-sim", "--port", "0"),
            *("--profile", "instant", "--step-ms", str(args.step_ms), "--max-seconds", "3600"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = re.search(r"127\.0\.0\.1:(\d+)/v1", server.stdout.readline()).group(1)  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        print(f"serve-sim instant, {args.step_ms:g} ms per token, {args.tokens} tokens/request")
        print(HEADER)
        with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "b.duckdb") as wh:
            bench = Bench(base, server.pid, Path(tmp), wh, args)
            bench.ours(2, 1)  # warm the client's first-call code paths outside any level
            for n in (int(v) for v in args.levels.split(",")):
                results = [
                    bench.ours(n, int(w))
                    for w in args.workers.split(",")
                    if int(w) == 1 or n >= 100  # one process is enough below 100
                ]
                lean = bench.lean(n)
                results.append(lean)
                if importlib.util.find_spec("uvloop"):
                    results.append(bench.lean(n, uvloop=True))
                for r in results:
                    print(r.line())
                for r in results:
                    if r.client.startswith("loadlens") and r.added_ttft and lean.added_ttft:
                        print(
                            f"{'  ' + r.client + ' / lean':<28}{r.tok_s / lean.tok_s:>9.2f}×  "
                            f"added TTFT p99 {r.added_ttft[1] / lean.added_ttft[1]:.2f}× "
                            f"({r.added_ttft[1] - lean.added_ttft[1]:+.1f} ms)"
                            + (
                                f", CPU/request {r.cpu_ms / lean.cpu_ms:.2f}×"
                                if r.cpu_ms and lean.cpu_ms
                                else ""
                            )
                        )
                if args.peer_guidellm:
                    peer = bench.guidellm(n, args.peer_guidellm)
                    print(peer.line())
                    one = results[0]
                    print(
                        f"{'  peer/ours':<12}{'':>24}{peer.tok_s / one.tok_s:>9.2f}  "
                        f"{'':>35}{peer.shift_ttft[0] / one.shift_ttft[0]:>7.1f} / "
                        f"{peer.shift_ttft[1] / one.shift_ttft[1]:<7.1f}"
                    )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
