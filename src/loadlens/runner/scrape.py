"""Server signals during a level: Prometheus `/metrics` of the engine (vLLM, SGLang, TGI,
llama.cpp) or a DCGM exporter, and NVML when a GPU is on this machine.

Engine metric names map to canonical signals in one table. A signal the server does not
expose is absent from the samples, never recorded as zero.

Scraping runs in a process of its own (`python -m loadlens.runner.scrape`), never on the
event loop that times the requests: fetching and parsing a 4 MB exposition there (100k
series) once turned a p95 TTFT of 40 ms into 2 s. The scraper keeps its own schedule, one
scrape per URL every period; a scrape that has not answered by the next one is abandoned,
not queued; a body over `max_body_bytes` is not read past the bound, and one of more than
`max_series` lines is not parsed: either scrape is skipped, and counted by its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from loadlens.runner.selfcheck import quantile

# sample name -> (canonical signal, how label sets combine, scale to canonical units)
METRIC_SIGNALS: dict[str, tuple[str, str, float]] = {
    # vLLM (V1 names first; V0's gpu_cache_usage_perc is the same 0..1 fraction)
    "vllm:num_requests_running": ("requests_running", "sum", 1.0),
    "vllm:num_requests_waiting": ("requests_waiting", "sum", 1.0),
    "vllm:kv_cache_usage_perc": ("kv_cache_usage", "mean", 1.0),
    "vllm:gpu_cache_usage_perc": ("kv_cache_usage", "mean", 1.0),
    "vllm:num_preemptions_total": ("preemptions_total", "sum", 1.0),
    "vllm:prompt_tokens_total": ("prompt_tokens_total", "sum", 1.0),
    "vllm:generation_tokens_total": ("generation_tokens_total", "sum", 1.0),
    # SGLang
    "sglang:num_running_reqs": ("requests_running", "sum", 1.0),
    "sglang:num_queue_reqs": ("requests_waiting", "sum", 1.0),
    "sglang:token_usage": ("kv_cache_usage", "mean", 1.0),
    "sglang:prompt_tokens_total": ("prompt_tokens_total", "sum", 1.0),
    "sglang:generation_tokens_total": ("generation_tokens_total", "sum", 1.0),
    # Hugging Face TGI
    "tgi_batch_current_size": ("requests_running", "sum", 1.0),
    "tgi_queue_size": ("requests_waiting", "sum", 1.0),
    # llama.cpp server (--metrics): requests in slots, requests deferred for want of a
    # slot (its queue), token counters and the seconds spent in prompt and generation
    # (checked against a running llama-server by the engine tests).
    "llamacpp:requests_processing": ("requests_running", "sum", 1.0),
    "llamacpp:requests_deferred": ("requests_waiting", "sum", 1.0),
    "llamacpp:kv_cache_usage_ratio": ("kv_cache_usage", "mean", 1.0),  # older releases
    "llamacpp:prompt_tokens_total": ("prompt_tokens_total", "sum", 1.0),
    "llamacpp:tokens_predicted_total": ("generation_tokens_total", "sum", 1.0),
    "llamacpp:prompt_seconds_total": ("prompt_seconds_total", "sum", 1.0),
    "llamacpp:tokens_predicted_seconds_total": ("generation_seconds_total", "sum", 1.0),
    "llamacpp:n_decode_total": ("decode_steps_total", "sum", 1.0),
    "llamacpp:n_busy_slots_per_decode": ("busy_slots_per_step", "mean", 1.0),
    # NVIDIA DCGM exporter
    "DCGM_FI_DEV_GPU_UTIL": ("gpu_util", "mean", 0.01),
    "DCGM_FI_DEV_FB_USED": ("gpu_mem_used_bytes", "sum", 2**20),
    "DCGM_FI_DEV_POWER_USAGE": ("power_w", "sum", 1.0),
}

MAX_BODY_BYTES = 16 * 2**20  # a larger exposition is skipped, not read past this
MAX_SERIES = 250_000  # sample lines; a larger exposition is skipped, not parsed
STARTUP_TIMEOUT_S = 30.0  # for the scraper process to start
STOP_MARGIN_S = 10.0  # beyond its closing scrape (one period), for it to report and exit

# the names searched for: none that begins with another (its lines are found with that one)
_SEARCHED = tuple(
    n for n in METRIC_SIGNALS if not any(n.startswith(o) and n != o for o in METRIC_SIGNALS)
)
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# after the name: optional {labels} (quoted values may hold `}` and escapes), the value
_REST = re.compile(
    r'(?:\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?[ \t]+(\S+)'
    r"(?:[ \t]+-?\d+(?:\.\d+)?)?(?:[ \t]+#.*)?[ \t]*"  # timestamp, OpenMetrics exemplar
)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|Inf|NaN)")


@dataclass(frozen=True)
class Exposition:
    """What one /metrics body says, mapped: canonical signals, and how many samples of
    known metrics were dropped as no reading (NaN, ±Inf, or infinite once scaled) or as
    unreadable lines."""

    signals: dict[str, float]
    non_finite: int = 0
    unreadable: int = 0


def read_exposition(text: str) -> Exposition:
    """Canonical signals from one Prometheus (or OpenMetrics) text exposition.

    Only the lines of the metrics in METRIC_SIGNALS are parsed, found by searching the
    text for each name at a line's start (a string search, ~1 ms a name in 4 MB), so an
    exposition of 100k other series costs a few scans rather than a parse of each line,
    and one bad line costs that line, not the scrape."""
    values: dict[str, list[float]] = {}
    non_finite = unreadable = 0
    for line in _known_lines(text):
        name = _NAME.match(line)
        mapped = METRIC_SIGNALS.get(name.group()) if name else None
        if name is None or mapped is None:
            continue  # another metric whose name begins with a known one
        rest = _REST.fullmatch(line, name.end())
        if rest is None or not _NUMBER.fullmatch(rest.group(1)):
            unreadable += 1
            continue
        signal, _, scale = mapped
        value = float(rest.group(1)) * scale
        if not math.isfinite(value):
            non_finite += 1  # NaN/Inf is no reading: dropped, never stored as a null sample
            continue
        values.setdefault(signal, []).append(value)
    signals: dict[str, float] = {}
    for signal, vs in values.items():
        how = next(h for n, (s, h, _) in METRIC_SIGNALS.items() if s == signal)
        combined = sum(vs) if how == "sum" else sum(vs) / len(vs)
        if math.isfinite(combined):
            signals[signal] = combined
        else:
            non_finite += len(vs)
    return Exposition(signals, non_finite, unreadable)


def _known_lines(text: str) -> list[str]:
    """The lines of `text` that begin with a name of METRIC_SIGNALS (or a longer one)."""
    lines = []
    for name in _SEARCHED:
        found = 0 if text.startswith(name) else text.find("\n" + name)
        while found >= 0:
            at = found + (text[found] == "\n")  # the line's first character
            end = text.find("\n", at)
            lines.append(text[at : end if end >= 0 else len(text)].rstrip("\r"))
            found = text.find("\n" + name, end) if end >= 0 else -1
    return lines


def parse_metrics(text: str) -> dict[str, float]:
    """Canonical signals from one Prometheus text exposition."""
    return read_exposition(text).signals


def nvml_reader() -> Callable[[], dict[str, float]] | None:
    """A reader of GPU utilisation, memory and power via NVML, or None without a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # no library, no driver or no device: no GPU telemetry
        return None
    if not handles:
        return None

    def read() -> dict[str, float]:
        util = [pynvml.nvmlDeviceGetUtilizationRates(h).gpu for h in handles]
        return {
            "gpu_util": sum(util) / len(util) / 100,
            "gpu_mem_used_bytes": float(
                sum(pynvml.nvmlDeviceGetMemoryInfo(h).used for h in handles)
            ),
            "power_w": sum(pynvml.nvmlDeviceGetPowerUsage(h) for h in handles) / 1000,
        }

    return read


@functools.cache
def nvml_available() -> bool:
    return nvml_reader() is not None


class Sampler:
    """Samples every `period_s` while a level runs, from a scraper process of its own.

    Timestamps are time.perf_counter(), CLOCK_MONOTONIC on Linux: one clock for every
    process of the machine, so samples line up with the requests' stamps."""

    def __init__(
        self,
        urls: list[str],
        period_s: float = 1.0,
        use_nvml: bool = True,
        *,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_series: int = MAX_SERIES,
    ) -> None:
        self.urls = list(urls)
        self.period_s = period_s
        self.use_nvml = use_nvml and nvml_available()
        self.max_body_bytes = max_body_bytes
        self.max_series = max_series
        self.samples: list[tuple[float, str, float]] = []  # (perf_counter, signal, value)
        self.failures: dict[str, str] = {}  # url (or "scraper") -> its last problem
        self.stats: dict[str, Any] = {}
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def active(self) -> bool:
        return bool(self.urls) or self.use_nvml

    async def __aenter__(self) -> Sampler:
        if self.active:
            await self._start()
        return self

    async def _start(self) -> None:
        config = {
            "urls": self.urls,
            "period_s": self.period_s,
            "use_nvml": self.use_nvml,
            "max_body_bytes": self.max_body_bytes,
            "max_series": self.max_series,
        }
        try:
            proc = self._proc = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "loadlens.runner.scrape"),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(config).encode() + b"\n")
            await proc.stdin.drain()
            ready = await asyncio.wait_for(proc.stdout.readline(), STARTUP_TIMEOUT_S)
            if ready.strip() != b"ready":
                raise RuntimeError("it exited before it was ready")
        except (OSError, TimeoutError, RuntimeError, ValueError) as e:
            self.failures["scraper"] = f"the scraper process could not start ({e or 'timeout'})"
            await self._kill()

    async def __aexit__(self, exc_type: Any, *exc: Any) -> None:
        proc = self._proc
        if proc is None:
            return
        if exc_type is not None:  # an interrupted level is not stored: nothing to collect
            await self._kill()
            return
        try:
            # Stop, with a closing scrape (counters' totals for the level), then the report.
            out, _ = await asyncio.wait_for(
                proc.communicate(b"stop\n"), self.period_s + STOP_MARGIN_S
            )
            self._absorb(out)
        except (TimeoutError, OSError, ValueError, KeyError, TypeError) as e:
            tail = (await _stderr_tail(proc)) or type(e).__name__
            self.failures["scraper"] = f"the scraper process failed: {tail}"
            await self._kill()

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)

    def _absorb(self, out: bytes) -> None:
        report = json.loads(out)
        self.samples = [
            (float(t), str(s), float(v))
            for t, s, v in report["samples"]
            if math.isfinite(float(v)) and math.isfinite(float(t))
        ]
        self.failures.update({str(k): str(v) for k, v in report["failures"].items()})
        self.stats = dict(report["stats"])

    def notes(self) -> dict[str, Any]:
        """How the scraping went, to keep with the level: scrapes planned (URLs × periods
        that came due, plus the closing one), done, skipped by reason (`timeout`,
        `body_over_limit`, `too_many_series`, `http_status`, `connection`, `missed`),
        how late they began against their schedule, and the samples dropped."""
        stats = self.stats
        return {
            "period_s": self.period_s,
            "urls": len(self.urls),
            "planned": int(stats.get("planned", 0)),
            "done": int(stats.get("done", 0)),
            "skipped": dict(stats.get("skipped", {})),
            "lag_p50_s": stats.get("lag_p50_s"),
            "lag_max_s": stats.get("lag_max_s"),
            "dropped_non_finite": int(stats.get("dropped_non_finite", 0)),
            "dropped_unreadable": int(stats.get("dropped_unreadable", 0)),
            "max_body_bytes": self.max_body_bytes,
            "max_series": self.max_series,
            **({"scraper_failed": True} if "scraper" in self.failures else {}),
        }


async def _stderr_tail(proc: asyncio.subprocess.Process) -> str:
    if proc.stderr is None:
        return ""
    try:
        err = await asyncio.wait_for(proc.stderr.read(), 1)
    except (TimeoutError, OSError, ValueError):
        return ""
    lines = [line for line in err.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


# ---- the scraper process -------------------------------------------------------------


class _Skip(Exception):
    def __init__(self, reason: str, problem: str) -> None:
        super().__init__(problem)
        self.reason = reason


class _Scraper:
    """One scraper process's state: its samples, failures and counts."""

    def __init__(self, config: dict[str, Any], session: aiohttp.ClientSession) -> None:
        self.urls: list[str] = list(config["urls"])
        self.period_s = float(config["period_s"])
        self.max_body = int(config["max_body_bytes"])
        self.max_series = int(config["max_series"])
        self.nvml = nvml_reader() if config["use_nvml"] else None
        self.session = session
        self.samples: list[tuple[float, str, float]] = []
        self.failures: dict[str, str] = {}
        self.planned = self.done = self.non_finite = self.unreadable = 0
        self.skipped: dict[str, int] = {}
        self.lags: list[float] = []

    def skip(self, url: str, reason: str, problem: str, n: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        self.failures[url] = problem

    async def sample(self, deadline: float) -> None:
        """One scrape of every URL, each abandoned at `deadline` (perf_counter)."""
        t = time.perf_counter()
        await asyncio.gather(*(self._one(url, t, deadline) for url in self.urls))
        if self.nvml is not None:
            with contextlib.suppress(Exception):  # a GPU gone mid-level: no reading
                self.samples += [(t, s, v) for s, v in self.nvml().items() if math.isfinite(v)]

    async def _one(self, url: str, t: float, deadline: float) -> None:
        self.planned += 1
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(loop.time() + (deadline - time.perf_counter())):
                body = await self._fetch(url)
        except TimeoutError:
            self.skip(url, "timeout", f"no answer within {self.period_s:g} s (abandoned)")
            return
        except _Skip as s:
            self.skip(url, s.reason, str(s))
            return
        except Exception as e:  # whatever the endpoint does, the scrape is what fails
            self.skip(url, "connection", f"{type(e).__name__}: {str(e)[:160]}")
            return
        series = body.count(b"\n") + 1 - body.count(b"\n#") - body.startswith(b"#")
        if series > self.max_series:
            self.skip(url, "too_many_series", f"{series:,} series, over {self.max_series:,}")
            return
        read = read_exposition(body.decode("utf-8", "replace"))
        self.done += 1
        self.non_finite += read.non_finite
        self.unreadable += read.unreadable
        self.samples += [(t, s, v) for s, v in read.signals.items()]

    async def _fetch(self, url: str) -> bytes:
        async with self.session.get(url) as resp:
            if resp.status != 200:
                raise _Skip("http_status", f"HTTP {resp.status}")
            over = _Skip("body_over_limit", f"body over the {self.max_body:,}-byte limit")
            if resp.content_length is not None and resp.content_length > self.max_body:
                raise over
            body = bytearray()
            async for chunk in resp.content.iter_any():
                body += chunk
                if len(body) > self.max_body:
                    raise over  # the connection is closed unread, not drained
            return bytes(body)

    def report(self) -> dict[str, Any]:
        return {
            "samples": self.samples,
            "failures": self.failures,
            "stats": {
                "planned": self.planned,
                "done": self.done,
                "skipped": self.skipped,
                "lag_p50_s": _us(quantile(self.lags, 0.5)),
                "lag_max_s": _us(max(self.lags, default=None)),
                "dropped_non_finite": self.non_finite,
                "dropped_unreadable": self.unreadable,
            },
        }


async def _scrape_until_stopped(config: dict[str, Any]) -> dict[str, Any]:
    """Scrape on schedule until the parent says stop (or goes away), then once more."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def wait_for_stop() -> None:
        sys.stdin.readline()  # "stop", or end of file when the parent is gone
        loop.call_soon_threadsafe(stop.set)

    timeout = aiohttp.ClientTimeout(total=None)  # each scrape has its own deadline
    async with aiohttp.ClientSession(timeout=timeout) as session:
        scraper = _Scraper(config, session)
        period = scraper.period_s
        threading.Thread(target=wait_for_stop, daemon=True).start()
        print("ready", flush=True)
        start, tick = time.perf_counter(), 0
        while not stop.is_set():
            due = start + tick * period
            now = time.perf_counter()
            if now >= due + period:  # scrapes that came due while one overran: not queued
                missed = int((now - due) // period)
                for url in scraper.urls:
                    scraper.skip(url, "missed", "scraper behind its schedule", missed)
                scraper.planned += missed * len(scraper.urls)
                tick += missed
                continue
            if now < due:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), due - now)
                if stop.is_set():
                    break
            scraper.lags.append(time.perf_counter() - due)
            await scraper.sample(due + period)
            tick += 1
        await scraper.sample(time.perf_counter() + period)  # closing: the level's totals
        return scraper.report()


def _main() -> None:
    # Below the client in the CPU's queue: on a busy machine the scrape waits, not the
    # process that timestamps the requests (how late it ran is in its notes).
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    config = json.loads(sys.stdin.readline())
    report = asyncio.run(_scrape_until_stopped(config))
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()


def _us(seconds: float | None) -> float | None:
    """Rounded to microseconds."""
    return None if seconds is None else round(seconds, 6)


if __name__ == "__main__":
    _main()
