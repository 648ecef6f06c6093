"""Benchmark: how much load the sweep runner can apply, and how much latency it adds.

`loadlens serve-sim --profile instant` (no compute model: every step takes --step-ms, no
batch limit) runs in its own process; the runner sweeps closed-loop levels up to 1,000
concurrent streams, with one and with two client processes. For each level it prints the
streamed tokens/s the client handled, its added latency (measured TTFT/E2E minus the
server's own stamps for the same request, p50/p99), and the CPU each process used (share
of one core over the level, which includes writing and ingesting it).

Peer clients run the same levels against the same server, each in a throwaway venv that
`bench/peers/install.sh` makes (`make bench-peer` installs them and passes `--peers`):

* `--peer-guidellm EXE`: GuideLLM's concurrent profile. It sends no request id, so it is
  compared by "TTFT shift": quantile(client TTFT) − quantile(server TTFT) over the level.
* `--peer-vllm PYTHON`: vLLM's own `vllm bench serve` request function
  (`async_request_openai_chat_completions`), driven by bench/peers/vllm_client.py as
  `vllm bench serve --request-rate inf --max-concurrency N` does. It sends `x-request-id`,
  so added TTFT/E2E are per request (its TTFT starts before the body is encoded and sent).
* `--peer-aiperf EXE`: `aiperf profile --concurrency N`. It sends `X-Request-ID` and writes
  it in profile_export.jsonl: per-request added TTFT/E2E. Its CPU is that of its whole
  process tree, sampled, over the window from its first request's start to its last end.

Each peer row is followed by its ratios to loadlens×1 and to the lean client (tok/s, added
TTFT or TTFT shift p50/p99, CPU per request). A peer's "CPU client" share covers its whole
run, start-up included; its "CPU ms/req" only the level (AIPerf: first request start to
last end; GuideLLM: its benchmark window; vLLM's client: the gather of all requests).

    make bench-runner
    make bench-peer PEER_ARGS="--levels 10,100"
    python bench/runner.py --levels 100,1000 --tokens 30 --peers
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
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC
from functools import partial
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


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and all its live descendants (each with its reaped children)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return total / os.sysconf("SC_CLK_TCK")


class TreeSampler:
    """Samples (wall clock, CPU seconds) of a process tree every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.every, self.samples = pid, every, []  # type: list[tuple[float, float]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_cpu_seconds(self.pid)))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def at(self, t: float) -> float:
        """CPU seconds at wall-clock time t, interpolated between samples."""
        before = [s for s in self.samples if s[0] <= t] or self.samples[:1]
        after = [s for s in self.samples if s[0] >= t] or self.samples[-1:]
        (t0, c0), (t1, c1) = before[-1], after[0]
        return c0 if t1 <= t0 else c0 + (c1 - c0) * (t - t0) / (t1 - t0)


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
        self.versions: dict[str, str] = {}  # peer client -> the tool and version that ran

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
        sampler = self._run_tree(
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
            self.tmp / f"guidellm-c{n}.log",
            {**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        cpu = self._cpu(started, cpu)
        trace = sources.load_file(out)  # loadlens's own GuideLLM loader
        rows, run = trace.requests, trace.runs[0]
        self.versions["guidellm"] = f"guidellm {trace.source.tool_version or '?'}"
        level_cpu = None
        if run.started_at and run.duration_s:  # the benchmark's window (UTC)
            t0 = run.started_at.replace(tzinfo=UTC).timestamp()
            level_cpu = sampler.at(t0 + run.duration_s) - sampler.at(t0)
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
            level_cpu * 1e3 / max(1, rows.height) if level_cpu is not None else None,
        )

    def vllm(self, n: int, exe: str) -> Result:
        """vLLM's benchmark client (bench/peers/vllm_client.py in the peer venv)."""
        tag = f"{n}"
        seen = len(self.stamps())
        started, cpu = time.perf_counter(), (cpu_seconds(), cpu_seconds(self.server_pid))
        done = subprocess.run(
            [
                exe,
                str(Path(__file__).with_name("peers") / "vllm_client.py"),
                self.base,
                *("--streams", str(n), "--requests", str(n * self.args.rounds)),
                *("--tokens", str(self.args.tokens), "--tag", tag),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
        )
        cpu = self._cpu(started, cpu)
        out = json.loads(done.stdout)
        self.versions["vllm client"] = f"vllm {out['version']}"
        prefix = f"vllm-{tag}-"
        by_id = {
            s["request_id"]: s
            for s in self.stamps()[seen:]
            if s["token_times"] and (s["request_id"] or "").startswith(prefix)
        }
        by_id.pop(f"{prefix}test", None)  # vLLM's single-prompt test request, before the level
        ttft, e2e, client_ttft = [], [], []
        for r in out["records"]:
            if r["ok"]:
                client_ttft.append(r["ttft"])
                if s := by_id.get(r["rid"]):
                    ttft.append(r["ttft"] - (s["token_times"][0] - s["arrival"]))
                    e2e.append(r["latency"] - (s["token_times"][-1] - s["arrival"]))
        return Result(
            "vllm client",
            n,
            len(out["records"]),
            sum(not r["ok"] for r in out["records"]),
            sum(r["output_tokens"] or 0 for r in out["records"]) / out["wall_s"],
            (pct(ttft, 0.5) * 1e3, pct(ttft, 0.99) * 1e3),
            (pct(e2e, 0.5) * 1e3, pct(e2e, 0.99) * 1e3),
            self._shift(client_ttft, list(by_id.values())),
            cpu,
            out["cpu_s"] * 1e3 / max(1, len(out["records"])),
        )

    def aiperf(self, n: int, exe: str) -> Result:
        """`aiperf profile --concurrency N`, read back with loadlens's AIPerf loader."""
        tokenizer = Path(exe).resolve().parents[1] / "tokenizer"
        out = self.tmp / f"aiperf-c{n}"
        seen = len(self.stamps())
        started, cpu = time.perf_counter(), (cpu_seconds(), cpu_seconds(self.server_pid))
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
        }
        # AIPerf 0.13 in HF offline mode looks even a local tokenizer folder up in the hub
        # cache and fails; a local folder needs no network, so offline mode is left unset.
        sampler = self._run_tree(
            [
                exe,
                "profile",
                *("--model", "bench", "--url", self.base, "--endpoint-type", "chat"),
                "--streaming",
                *("--concurrency", str(n), "--request-count", str(n * self.args.rounds)),
                *("--isl", str(PROMPT_WORDS), "--osl", str(self.args.tokens)),
                *("--extra-inputs", "ignore_eos:true", "--tokenizer", str(tokenizer)),
                *("--artifact-dir", str(out), "--ui-type", "none", "--random-seed", "7"),
                "--no-server-metrics",  # the other clients do not scrape /metrics either
            ],
            self.tmp / f"aiperf-c{n}.log",
            env,
        )
        cpu = self._cpu(started, cpu)
        jsonl = out / "profile_export.jsonl"
        trace = sources.load_file(jsonl)  # loadlens's own AIPerf loader
        rows, run = trace.requests, trace.runs[0]
        records = [
            r
            for line in jsonl.read_text().splitlines()
            if line.strip()
            and (r := json.loads(line))["metadata"].get("benchmark_phase", "profiling")
            == "profiling"
        ]
        self.versions["aiperf"] = f"aiperf {trace.source.tool_version or '?'}"
        by_id = {s["request_id"]: s for s in self.stamps()[seen:] if s["token_times"]}
        ttft, e2e = [], []
        for r in records:
            m, s = r["metrics"], by_id.get(r["metadata"].get("x_request_id"))
            if s and not r.get("error") and "time_to_first_token" in m:
                ttft.append(
                    m["time_to_first_token"]["value"] / 1e3 - (s["token_times"][0] - s["arrival"])
                )
                e2e.append(
                    m["request_latency"]["value"] / 1e3 - (s["token_times"][-1] - s["arrival"])
                )
        ids = {r["metadata"].get("x_request_id") for r in records}
        window = (
            min(r["metadata"]["request_start_ns"] for r in records) / 1e9,
            max(r["metadata"]["request_end_ns"] for r in records) / 1e9,
        )
        level_cpu = sampler.at(window[1]) - sampler.at(window[0])
        return Result(
            "aiperf",
            n,
            rows.height,
            int((rows["status"] != "ok").sum()),
            rows["output_tokens"].fill_null(0).sum() / (run.duration_s or float("nan")),
            (pct(ttft, 0.5) * 1e3, pct(ttft, 0.99) * 1e3),
            (pct(e2e, 0.5) * 1e3, pct(e2e, 0.99) * 1e3),
            self._shift(
                rows["ttft_s"].drop_nulls().to_list(), [by_id[i] for i in ids if i in by_id]
            ),
            cpu,
            level_cpu * 1e3 / max(1, rows.height),
        )

    @staticmethod
    def _run_tree(cmd: list[str], log: Path, env: dict[str, str]) -> TreeSampler:
        """Run a peer to its end, sampling its process tree's CPU; output goes to `log`."""
        with log.open("w") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
            sampler = TreeSampler(proc.pid)
            try:
                rc = proc.wait(timeout=900)
            finally:
                sampler.stop()
        if rc:
            raise RuntimeError(f"{Path(cmd[0]).name} exited {rc}:\n{log.read_text()[-3000:]}")
        return sampler

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


def ratio_line(peer: Result, base: Result) -> str:
    """peer / base: tok/s, added TTFT (per request) where both have it, else TTFT shift, and
    CPU per request; each latency ratio with its difference in ms."""

    def versus(a: tuple[float, float], b: tuple[float, float]) -> str:
        return " / ".join(
            (f"{x / y:.2f}×" if y > 0.5 and x > 0 else "n/a") + f" ({x - y:+.1f} ms)"
            for x, y in zip(a, b, strict=True)
        )

    if peer.added_ttft and base.added_ttft:
        latency = "added TTFT p50/p99 " + versus(peer.added_ttft, base.added_ttft)
    else:
        latency = "TTFT shift p50/p99 " + versus(peer.shift_ttft, base.shift_ttft)
    cpu = (
        f", CPU/request {peer.cpu_ms / base.cpu_ms:.2f}×"
        if peer.cpu_ms and base.cpu_ms
        else ", CPU/request —"
    )
    return (
        f"{'  ' + peer.client + ' / ' + base.client:<28}"
        f"{peer.tok_s / base.tok_s:>9.2f}×  {latency}{cpu}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="10,100,500,1000")
    parser.add_argument("--tokens", type=int, default=30, help="output tokens per request")
    parser.add_argument("--step-ms", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=2, help="requests per stream per level")
    parser.add_argument("--workers", default="1,2", help="client processes to compare")
    parser.add_argument("--peer-guidellm", help="a guidellm executable to compare with")
    parser.add_argument("--tokenizer", default="/tmp/ll-tokenizer", help="for GuideLLM")
    parser.add_argument(
        "--peer-vllm", help="a Python with the vllm wheel (no deps) and aiohttp, regex, tqdm"
    )
    parser.add_argument(
        "--peer-aiperf", help="an aiperf executable (its venv's tokenizer/ beside bin/)"
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="every peer that bench/peers/install.sh installed under bench/ (missing: skipped)",
    )
    args = parser.parse_args()
    if args.peers:
        here = Path(__file__).parent
        found = {
            "peer_guidellm": (here / ".peer/bin/guidellm", here / ".peer/tokenizer"),
            "peer_vllm": (here / ".peer-vllm/bin/python", here / ".peer-vllm/bin/python"),
            "peer_aiperf": (here / ".peer-aiperf/bin/aiperf", here / ".peer-aiperf/tokenizer"),
        }
        for key, (exe, needs) in found.items():
            if getattr(args, key) is None:
                if exe.exists() and needs.exists():
                    setattr(args, key, str(exe))
                else:
                    print(f"{key.replace('_', '-')}: {exe} is not installed; skipped")
        if args.peer_guidellm and args.tokenizer == parser.get_default("tokenizer"):
            args.tokenizer = str(here / ".peer/tokenizer")
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
            peers = [
                partial(method, exe=exe)
                for method, exe in (
                    (bench.vllm, args.peer_vllm),
                    (bench.aiperf, args.peer_aiperf),
                    (bench.guidellm, args.peer_guidellm),
                )
                if exe
            ]
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
                for run_peer in peers:
                    peer = run_peer(n)
                    print(peer.line())
                    for base in (results[0], lean):
                        print(ratio_line(peer, base))
        if bench.versions:
            print("peers: " + ", ".join(sorted(set(bench.versions.values()))))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
