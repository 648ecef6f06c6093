"""Hugging Face `inference-benchmarker` results JSON (`results/<tokenizer>_<date>.json`).

One file holds one benchmark session (`BenchmarkReportWriter`, src/writers.rs): the run
`config` (max_vus, duration, benchmark_kind Throughput/Sweep/Rate, token options, model),
then `results`, one entry per step, each with its executor config and aggregated metrics
only: the tool keeps no per-request data in the file, so every run is summary-only.

Steps become runs keyed by their id: `throughput` (ConstantVUs: load mode concurrency =
max_vus) and `constant@R.RRreq/s` (ConstantArrivalRate: mode rate = the exact `config.rate`).
The `warmup` step (one VU, there to warm JIT and caches; the tool itself never reports it
as a level) is not loaded as a run.

Units and definitions (src/results.rs, src/requests.rs):
- `*_ms` blocks hold p50..p99 and `avg` in milliseconds (Duration truncated to microseconds);
  percentiles use numpy's linear interpolation, over successful requests only.
- `inter_token_latency_ms` is per request (time from first to last token) / (tokens - 1),
  then summarised over requests: that is TPOT, so it is stored as `tpot_s`, not `itl_s`
  (loadlens's itl_s is the pooled distribution of individual gaps).
- `e2e_latency_ms` ends at the stream's `[DONE]`.
- `token_throughput_secs` counts generated tokens only (output throughput); `request_rate`
  is successful requests per second; `duration_ms` runs from the start of the first
  response collected to the end of the last one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from loadlens.errors import TraceFormatError
from loadlens.trace import (
    RunMeta,
    SourceInfo,
    Trace,
    count,
    file_sha256,
    make_run,
    number,
    stats_frame,
)

NAME = "inference-benchmarker"
TOOL = "inference-benchmarker"
LATENCY = {
    "time_to_first_token_ms": "ttft_s",
    "inter_token_latency_ms": "tpot_s",
    "e2e_latency_ms": "e2e_s",
}
STATISTICS = ("p50", "p60", "p70", "p80", "p90", "p95", "p99", "avg")
REQUIRED = ("id", "executor_type", "config", "total_requests", "failed_requests", "duration_ms")
SKIPPED_STEPS = {"warmup"}


def detect(path: Path, head: bytes) -> bool:
    """A JSON object with the writer's config and per-step metric blocks."""
    if path.suffix.lower() != ".json" or not head.lstrip().startswith(b"{"):
        return False
    return (
        b'"benchmark_kind"' in head
        and b'"executor_type"' in head
        and b'"inter_token_latency_ms"' in head
    )


def _load_level(path: Path, i: int, step: dict[str, Any]) -> tuple[str, float | None]:
    cfg = step["config"]
    if not isinstance(cfg, dict):
        raise TraceFormatError(path, "expected an object", field=f"results[{i}].config")
    kind = step["executor_type"]
    if kind == "ConstantArrivalRate":
        return "rate", number(path, cfg.get("rate"), f"results[{i}].config.rate", required=True)
    if kind == "ConstantVUs":
        return "concurrency", number(
            path, cfg.get("max_vus"), f"results[{i}].config.max_vus", required=True
        )
    raise TraceFormatError(
        path,
        f"unknown executor_type {kind!r}; expected ConstantVUs or ConstantArrivalRate",
        field=f"results[{i}].executor_type",
    )


def _stats(path: Path, i: int, step: dict[str, Any]) -> list[tuple[str, str, float]]:
    rows: list[tuple[str, str, float]] = []
    for key, metric in LATENCY.items():
        block = step.get(key)
        if not isinstance(block, dict):
            raise TraceFormatError(path, "missing or not an object", field=f"results[{i}].{key}")
        for stat in STATISTICS:
            value = number(path, block.get(stat), f"results[{i}].{key}.{stat}", required=True)
            assert value is not None
            rows.append((metric, "mean" if stat == "avg" else stat, value / 1000.0))
    duration_s = number(path, step["duration_ms"], f"results[{i}].duration_ms", required=True)
    assert duration_s is not None
    duration_s /= 1000.0
    rate = number(path, step.get("request_rate"), f"results[{i}].request_rate")
    tput = number(path, step.get("token_throughput_secs"), f"results[{i}].token_throughput_secs")
    if rate is not None:
        rows.append(("request_throughput_rps", "value", rate))
    if tput is not None:
        rows.append(("output_throughput_tps", "value", tput))
    out_tokens = step.get("total_tokens")
    in_tokens = step.get("total_tokens_sent")
    if isinstance(out_tokens, int) and isinstance(in_tokens, int) and duration_s > 0:
        # Not a field of the tool: its own two token totals over its own duration
        # (duration_ms is truncated to whole ms; the tool's token rate uses the exact one).
        rows.append(("total_token_throughput_tps", "value", (out_tokens + in_tokens) / duration_s))
    return rows


def load(path: Path) -> Trace:
    """One results file: one summary-only run per measured step (warm-up excluded)."""
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise TraceFormatError(path, f"not valid JSON ({e})", hint="truncated file?") from None
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected a JSON object at the top level")
    config = doc.get("config")
    steps = doc.get("results")
    if not isinstance(config, dict):
        raise TraceFormatError(path, "missing or not an object", field="config")
    if not isinstance(steps, list):
        raise TraceFormatError(path, "missing or not a list", field="results")
    workload = {
        k: config[k]
        for k in (
            "benchmark_kind",
            "prompt_options",
            "decode_options",
            "tokenizer",
            "profile",
            "run_id",
            "meta",
        )
        if config.get(k) is not None
    }
    runs: list[RunMeta] = []
    stats: list[tuple[str, str, str, float]] = []
    seen: set[str] = set()
    for i, step in enumerate(steps):
        if not isinstance(step, dict):
            raise TraceFormatError(path, "expected an object", field=f"results[{i}]")
        for key in REQUIRED:
            if key not in step:
                raise TraceFormatError(path, "missing", field=f"results[{i}].{key}")
        run_key = str(step["id"])
        if run_key in SKIPPED_STEPS:
            continue
        if run_key in seen:
            raise TraceFormatError(path, f"step id {run_key!r} appears twice", field="results.id")
        seen.add(run_key)
        mode, value = _load_level(path, i, step)
        total = number(path, step["total_requests"], f"results[{i}].total_requests", required=True)
        failed = number(
            path, step["failed_requests"], f"results[{i}].failed_requests", required=True
        )
        duration_ms = number(path, step["duration_ms"], f"results[{i}].duration_ms", required=True)
        assert total is not None and failed is not None and duration_ms is not None
        runs.append(
            make_run(
                path,
                run_key=run_key,
                load_mode=mode,
                load_value=value,
                duration_s=duration_ms / 1000.0,
                model=config.get("model_name"),
                workload=workload
                | {
                    "executor_type": step["executor_type"],
                    "max_vus": step["config"].get("max_vus"),
                    "step_duration_secs": step["config"].get("duration_secs"),
                    "session_start_time": doc.get("start_time"),
                },
                num_requests=count(path, total, f"results[{i}].total_requests"),
                num_errors=count(path, failed, f"results[{i}].failed_requests"),
            )
        )
        stats.extend((run_key, m, s, v) for m, s, v in _stats(path, i, step))
    if not runs:
        raise TraceFormatError(
            path, "holds no measured step (only a warm-up, or none)", field="results"
        )
    run_stats = stats_frame(stats)
    return Trace(
        source=SourceInfo(
            path=str(path),
            sha256=file_sha256(path),
            format=NAME,
            tool=TOOL,
            tool_version=None,  # the results file records no version
        ),
        runs=tuple(runs),
        run_stats=run_stats,
    )
