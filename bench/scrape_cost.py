"""Benchmark: what scraping a large /metrics costs the latency the runner measures.

`loadlens serve-sim --profile instant` serves the requests; a second process serves a
Prometheus exposition of ~4 MB (100k series, the mapped vLLM gauges among them), since
serve-sim's own /metrics is small. One closed-loop level at concurrency 32 runs for
`--seconds` three ways in the same run, on the same server:

- `none`:     no scraping;
- `scraper`:  the runner's Sampler (a process of its own) scraping every second;
- `on-loop`:  the scraper as it was before issue 12, inline below: fetched and parsed
              (prometheus_client) on the event loop that times the requests.

It prints p50/p95 TTFT of each and the ratio to `none` (target for `scraper`: p95 within
5%), with the scraper's own notes (scrapes done, how late they began).

    make bench-scrape
    python bench/scrape_cost.py --seconds 30 --series 100000 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import polars as pl

import loadlens.runner.sweep as sweep_module
from loadlens.runner.loadgen import Level, Plan
from loadlens.runner.scrape import Sampler, parse_metrics
from loadlens.runner.sweep import Target, sweep
from loadlens.runner.workloads import synthetic
from loadlens.warehouse import Warehouse


def exposition(series: int) -> bytes:
    """~40 bytes a series: a histogram-like family of `series` samples, and the gauges
    the runner maps."""
    head = (
        "# HELP vllm:num_requests_running Requests running.\n"
        "# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{model_name="bench"} 12\n'
        "# TYPE vllm:num_requests_waiting gauge\n"
        'vllm:num_requests_waiting{model_name="bench"} 3\n'
        "# TYPE vllm:kv_cache_usage_perc gauge\n"
        'vllm:kv_cache_usage_perc{model_name="bench"} 0.42\n'
        "# HELP pad_seconds Padding.\n# TYPE pad_seconds histogram\n"
    )
    lines = [f'pad_seconds_bucket{{s="{i}",le="+Inf"}} {i % 977}\n' for i in range(series)]
    return (head + "".join(lines)).encode()


def serve_metrics(series: int) -> None:
    """The padded /metrics, in this process (run as `--serve-metrics`)."""
    from aiohttp import web

    body = exposition(series)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/plain")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"metrics {len(body)} bytes on http://127.0.0.1:{port}/metrics", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())


class OnLoopSampler:
    """The scraper before issue 12: fetch and parse on the timing loop (for the baseline)."""

    def __init__(self, urls: list[str], period_s: float = 1.0, **_: Any) -> None:
        self.urls, self.period_s = urls, period_s
        self.samples: list[tuple[float, str, float]] = []
        self.failures: dict[str, str] = {}
        self.scrapes = 0
        self.active = True

    async def __aenter__(self) -> OnLoopSampler:
        timeout = aiohttp.ClientTimeout(total=max(0.5, self.period_s) * 10)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._session.close()

    async def _loop(self) -> None:
        from prometheus_client.parser import text_string_to_metric_families

        while True:
            started = time.perf_counter()
            for url in self.urls:
                async with self._session.get(url) as resp:
                    text = await resp.text()
                for family in text_string_to_metric_families(text):  # the old full parse
                    for _ in family.samples:
                        pass
                self.samples += [(started, s, v) for s, v in parse_metrics(text).items()]
                self.scrapes += 1
            await asyncio.sleep(max(0.0, self.period_s - (time.perf_counter() - started)))

    def notes(self) -> dict[str, Any]:
        return {"on_loop": True, "done": self.scrapes}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[int(q * (len(ordered) - 1))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=25.0, help="per level")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--series", type=int, default=100_000)
    parser.add_argument("--tokens", type=int, default=16, help="output tokens per request")
    parser.add_argument("--step-ms", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=1, help="of none/scraper, alternated")
    parser.add_argument("--no-on-loop", action="store_true", help="skip the old way")
    parser.add_argument("--serve-metrics", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_metrics:
        serve_metrics(args.series)
        return

    def start(cmd: list[str], pattern: str) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(pattern, line)
        assert match, f"{cmd[2:4]} did not start: {line!r}"
        return proc, line

    sim, line = start(
        [
            *(sys.executable, "-m", "loadlens", "serve-sim", "--port", "0", "--profile"),
            *("instant", "--step-ms", str(args.step_ms), "--max-seconds", "3600"),
        ],
        r"127\.0\.0\.1:(\d+)/v1",
    )
    port = re.search(r"127\.0\.0\.1:(\d+)", line).group(1)  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    metrics, mline = start(
        [sys.executable, __file__, "--serve-metrics", "--series", str(args.series)],
        r"metrics (\d+) bytes on (\S+)",
    )
    size, metrics_url = re.search(r"metrics (\d+) bytes on (\S+)", mline).groups()  # type: ignore[union-attr]
    print(
        f"serve-sim instant {args.step_ms:g} ms/token, {args.tokens} tokens/request; "
        f"c{args.concurrency} for {args.seconds:g} s a level; /metrics {int(size) / 1e6:.1f} MB "
        f"({args.series:,} series) every 1 s"
    )
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "b.duckdb") as wh:
            text = exposition(args.series).decode()
            t0 = time.perf_counter()
            parsed = parse_metrics(text)
            print(f"runner's parse of one exposition: {(time.perf_counter() - t0) * 1e3:.0f} ms")
            assert parsed, "the padded exposition maps no signal"

            def level(way: str, n: int) -> None:
                urls = () if way == "none" else (metrics_url,)
                if way == "on-loop":
                    sweep_module.Sampler = OnLoopSampler  # type: ignore[misc,assignment]
                try:
                    sweep(
                        Target(f"{base}/v1", "bench", use_nvml=False, metrics_urls=urls),
                        synthetic(64, args.tokens),
                        [Level("concurrency", args.concurrency)],
                        Plan(requests=None, duration_s=args.seconds, warmup=args.concurrency),
                        deployment=f"{way}-{n}",
                        out_dir=Path(tmp) / "runs",
                        warehouse=wh,
                    )
                finally:
                    sweep_module.Sampler = Sampler  # type: ignore[misc]
                runs = wh.runs([f"{way}-{n}"])
                rows = wh.requests(runs["run_id"].to_list()).filter(pl.col("status") == "ok")
                ttft = rows["ttft_s"].drop_nulls().to_list()
                workload = json.loads(runs["workload"][0])
                results.setdefault(way, []).append(
                    {
                        "n": len(ttft),
                        "p50": pct(ttft, 0.5),
                        "p95": pct(ttft, 0.95),
                        "scrape": workload.get("scrape"),
                    }
                )
                r = results[way][-1]
                print(
                    f"  {way:<8} {r['n']:>6} requests  p50 TTFT {r['p50'] * 1e3:7.1f} ms  "
                    f"p95 TTFT {r['p95'] * 1e3:7.1f} ms",
                    flush=True,
                )

            level("none", -1)  # warm the client's code paths; not counted
            results.clear()
            for n in range(args.rounds):
                level("none", n)
                level("scraper", n)
            if not args.no_on_loop:
                level("on-loop", 0)
    finally:
        for proc in (sim, metrics):
            proc.terminate()
            proc.wait(timeout=10)

    def mean(way: str, key: str) -> float:
        return sum(r[key] for r in results[way]) / len(results[way])

    print()
    print(f"{'scraping':<10}{'p50 TTFT':>10}{'p95 TTFT':>10}{'p95 / none':>12}")
    for way in results:
        print(
            f"{way:<10}{mean(way, 'p50') * 1e3:>8.1f} ms{mean(way, 'p95') * 1e3:>7.1f} ms"
            f"{mean(way, 'p95') / mean('none', 'p95'):>12.3f}"
        )
    for r in results.get("scraper", []):
        s = r["scrape"] or {}
        print(
            f"scraper: {s.get('done')}/{s.get('planned')} scrapes done, skipped "
            f"{s.get('skipped')}, lag p50 {s.get('lag_p50_s')} s, max {s.get('lag_max_s')} s"
        )


if __name__ == "__main__":
    main()
