"""Server signals during a level: Prometheus `/metrics` of the engine (vLLM, SGLang, TGI,
llama.cpp) or a DCGM exporter, and NVML when a GPU is on this machine.

Engine metric names map to canonical signals in one table. A signal the server does not
expose is absent from the samples, never recorded as zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

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


def parse_metrics(text: str) -> dict[str, float]:
    """Canonical signals from one Prometheus text exposition."""
    values: dict[str, list[float]] = {}
    how: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            mapped = METRIC_SIGNALS.get(sample.name)
            if mapped is None:
                continue
            signal, combine, scale = mapped
            if not math.isfinite(sample.value):
                continue  # NaN/Inf is no reading: dropped, never stored as a null sample
            values.setdefault(signal, []).append(sample.value * scale)
            how[signal] = combine
    return {s: (sum(v) if how[s] == "sum" else sum(v) / len(v)) for s, v in values.items() if v}


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


class Sampler:
    """Samples every `period_s` in the background while a level runs."""

    def __init__(self, urls: list[str], period_s: float = 1.0, use_nvml: bool = True) -> None:
        self.urls = urls
        self.period_s = period_s
        self.nvml = nvml_reader() if use_nvml else None
        self.samples: list[tuple[float, str, float]] = []  # (perf_counter, signal, value)
        self.failures: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        return bool(self.urls) or self.nvml is not None

    async def __aenter__(self) -> Sampler:
        if self.active:
            timeout = aiohttp.ClientTimeout(total=max(0.5, self.period_s))
            self._session = aiohttp.ClientSession(timeout=timeout)
            self._task = asyncio.create_task(self._loop())
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            await self._sample()  # a closing sample: counters' totals for the level
            await self._session.close()

    async def _sample(self) -> None:
        t = time.perf_counter()
        for url in self.urls:
            try:
                async with self._session.get(url) as resp:
                    resp.raise_for_status()
                    signals = parse_metrics(await resp.text())
            except (aiohttp.ClientError, TimeoutError, ValueError) as e:
                self.failures[url] = f"{type(e).__name__}: {e}"
                continue
            self.samples += [(t, s, v) for s, v in signals.items()]
        if self.nvml is not None:
            self.samples += [(t, s, v) for s, v in self.nvml().items()]

    async def _loop(self) -> None:
        while True:
            started = time.perf_counter()
            await self._sample()
            await asyncio.sleep(max(0.0, self.period_s - (time.perf_counter() - started)))
