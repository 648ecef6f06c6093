"""genai-bench (sgl-project/genai-bench) `genai-bench benchmark`: one JSON file per run.

Each run (one traffic scenario at one concurrency or batch size) is written as
`<scenario>_<task>_[<model>_]<iteration_type>_<value>_time_<s>s.json` holding
`aggregated_metrics` (run settings, `run_duration`, throughputs, and `stats`: min/max/mean/
stddev/p25..p99 of every per-request field) and `individual_request_metrics` (one object per
request: `ttft`, `tpot`, `e2e_latency`, `num_input_tokens`, `num_output_tokens`,
`error_code`, `error_message`, ...). genai-bench records no per-request start time
(`RequestLevelMetrics` has none, to genai-bench 7fd04d8, July 2026) nor an end time, and
lists the requests as their results reached its collector: start_s is null. Latencies are
in `_time_unit` (`s` or `ms`, `--metrics-time-unit`, since 0.0.3); files without it predate
the option and are in seconds. `experiment_metadata.json` beside them (version, model,
server engine and GPUs, the command) is read with every run file and never loaded alone.

genai-bench's summary uses our definitions: numpy's linear percentiles over completed
requests, and completed requests / tokens over `run_duration` (the run's wall clock), so
the rows reproduce it. Differences, all by definition: a request that completed with no
output tokens is an error here (genai-bench counts it completed); requests dropped by
`--warmup-ratio`/`--cooldown-ratio` stay in our rows; a non-streaming run
(`--disable-streaming`) records a fixed 1 ms placeholder as TTFT (baseten fork), which is
not a latency: those runs have no TTFT (and so no TPOT) here.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.sources.jsonfile import read_json_object
from loadlens.trace import (
    SourceInfo,
    Trace,
    file_sha256,
    make_run,
    number,
    requests_from_rows,
    stats_frame,
)

NAME = "genai-bench"
TOOL = "genai-bench"
METADATA = "experiment_metadata.json"
# A directory walk passes over the metadata: every run file beside it reads it.
SIDE_FILES = (METADATA,)
METHOD_NOTE = (
    "genai-bench's own summary uses loadlens's definitions (linear percentiles over completed "
    "requests; completed requests and tokens over the run's wall-clock duration), so they "
    "agree; requests that completed with no output tokens count as errors here, and "
    "non-streaming runs have no TTFT or TPOT (genai-bench records a 1 ms placeholder)."
)
# Fields genai-bench converts with --metrics-time-unit (TimeUnitConverter.LATENCY_FIELDS).
LATENCY_FIELDS = ("ttft", "tpot", "e2e_latency", "output_latency")
STAT_METRICS = {"ttft": "ttft_s", "tpot": "tpot_s", "e2e_latency": "e2e_s"}
STATISTICS = {
    "min": "min",
    "max": "max",
    "mean": "mean",
    "stddev": "std",
    "p25": "p25",
    "p50": "p50",
    "p75": "p75",
    "p90": "p90",
    "p95": "p95",
    "p99": "p99",
}
THROUGHPUTS = {
    "requests_per_second": "request_throughput_rps",
    "mean_output_throughput_tokens_per_s": "output_throughput_tps",
    "mean_input_throughput_tokens_per_s": "input_throughput_tps",
    "mean_total_tokens_throughput_tokens_per_s": "total_token_throughput_tps",
}
UNITS = {"s": 1.0, "ms": 1e-3}
# The baseten fork's non-streaming requests: time_at_first_token = start_time + 0.001.
PLACEHOLDER_TTFT_S = 0.001
# Tasks whose responses carry no generated text (output metrics are set to 0 by design).
NO_TEXT_OUTPUT = ("embeddings", "rerank", "image", "speech")
TASK_IN_NAME = re.compile(r"_((?:[a-z]+-)+to-[a-z]+)_")
# genai-bench's scenario grammar (genai_bench/scenarios): kind -> accepted number counts.
SCENARIO_SHAPES = {
    "D": (2,),
    "N": (4,),
    "U": (2, 4),
    "E": (1,),
    "R": (2,),
    "I": (2, 3),
    "A": (1,),
}
DISTRIBUTIONS = {
    "D": "deterministic",
    "N": "normal",
    "U": "uniform",
    "E": "embedding",
    "R": "rerank",
    "I": "image",
    "A": "audio",
    "dataset": "dataset",
}


# ----------------------------------------------------------------------------- detection


def _is_result(head: bytes) -> bool:
    return (
        head.lstrip().startswith(b"{")
        and b'"aggregated_metrics"' in head
        and b'"individual_request_metrics"' in head
        and b'"iteration_type"' in head
    )


def _is_metadata(head: bytes) -> bool:
    return (
        head.lstrip().startswith(b"{")
        and b'"benchmark_version"' in head
        and b'"traffic_scenario"' in head
        and b'"api_backend"' in head
    )


def detect(path: Path, head: bytes) -> bool:
    """A genai-bench run result, or the experiment metadata written beside them."""
    if path.suffix.lower() != ".json":
        return False
    return _is_result(head) or _is_metadata(head)


def partners(path: Path) -> list[Path]:
    """The experiment metadata beside a run file (read with every run of the experiment)."""
    metadata = path.with_name(METADATA)
    if path.name != METADATA and metadata.is_file():
        return [metadata]
    return []


# ----------------------------------------------------------------------------- scenario


def scenario_workload(scenario: str) -> dict[str, Any]:
    """Workload keys from a traffic scenario, as written (`N(2000,200)/(200,20)`) or as
    sanitized into file names (`N2000_200_200_20`): D(in,out) deterministic, N(mean_in,
    sd_in)/(mean_out,sd_out) normal, U(max_in,max_out) or U(min_in,max_in)/(min_out,max_out)
    uniform (min 1 when absent), E(tokens/doc), R(tokens/doc,tokens/query), I(w,h[,n]),
    A(n), `dataset`. Targets of ranges are their means. An unknown shape keeps the name."""
    out: dict[str, Any] = {"dataset": scenario, "scenario": scenario}
    m = re.fullmatch(r"([A-Za-z]+)(.*)", scenario.strip())
    if not m:
        return out
    kind, rest = m.group(1), m.group(2)
    nums = [int(n) for n in re.findall(r"\d+", rest)]
    if kind == "dataset" and not nums:
        out["distribution"] = "dataset"
        return out
    if kind not in SCENARIO_SHAPES or len(nums) not in SCENARIO_SHAPES[kind]:
        return out
    out["distribution"] = DISTRIBUTIONS[kind]
    if kind == "D":
        out |= {"input_tokens": nums[0], "output_tokens": nums[1]}
    elif kind == "N":
        out |= {
            "input_tokens": nums[0],
            "input_tokens_stddev": nums[1],
            "output_tokens": nums[2],
            "output_tokens_stddev": nums[3],
        }
    elif kind == "U":
        lo_in, hi_in, lo_out, hi_out = (
            (nums[0], nums[1], nums[2], nums[3]) if len(nums) == 4 else (1, nums[0], 1, nums[1])
        )
        out |= {
            "input_tokens": _mid(lo_in, hi_in),
            "output_tokens": _mid(lo_out, hi_out),
            "input_tokens_min": lo_in,
            "input_tokens_max": hi_in,
            "output_tokens_min": lo_out,
            "output_tokens_max": hi_out,
        }
    elif kind == "E":
        out |= {"input_tokens": nums[0], "tokens_per_document": nums[0]}
    elif kind == "R":
        out |= {"tokens_per_document": nums[0], "tokens_per_query": nums[1]}
    elif kind == "I":
        out |= {"image_width": nums[0], "image_height": nums[1]}
        if len(nums) == 3:
            out["num_images"] = nums[2]
    elif kind == "A":
        out["audio_length"] = nums[0]
    return out


def _mid(lo: int, hi: int) -> int | float:
    mid = (lo + hi) / 2
    return int(mid) if mid.is_integer() else mid


# ----------------------------------------------------------------------------- metadata


def _metadata(path: Path) -> dict[str, Any]:
    doc = read_json_object(path)
    if "benchmark_version" not in doc:
        raise TraceFormatError(
            path, "missing", field="benchmark_version", hint="expected genai-bench's metadata"
        )
    for key in (
        "benchmark_version",
        "cmd",
        "api_backend",
        "api_model_name",
        "model",
        "task",
        "server_engine",
        "server_version",
        "server_gpu_type",
        "server_model_tokenizer",
        "dataset_path",
        "metrics_time_unit",
    ):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise TraceFormatError(path, f"expected text, got {doc[key]!r}", field=key)
    count = doc.get("server_gpu_count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, str | int)):
        raise TraceFormatError(
            path, f"expected a GPU count, got {count!r}", field="server_gpu_count"
        )
    params = doc.get("additional_request_params")
    if params is not None and not isinstance(params, dict):
        raise TraceFormatError(
            path, f"expected an object, got {params!r}", field="additional_request_params"
        )
    return doc


def _cmd_flags(cmd: str | None) -> dict[str, str]:
    """The few flags of the recorded command that change what the numbers mean (the
    command itself is never kept: it may carry an API key)."""
    flags: dict[str, str] = {}
    tokens = (cmd or "").split()
    wanted = ("--warmup-ratio", "--cooldown-ratio", "--qps-level", "--disable-streaming")
    for i, token in enumerate(tokens):
        name, _, inline = token.partition("=")
        if name in wanted:
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            value = inline or ("" if following.startswith("--") else following)
            flags[name] = value or "True"
    return flags


def _params(meta: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    engine = " ".join(str(meta[k]) for k in ("server_engine", "server_version") if meta.get(k))
    if engine:
        params["engine"] = engine
    gpu, count = meta.get("server_gpu_type"), meta.get("server_gpu_count")
    if gpu:
        params["hardware"] = f"{count}x {gpu}" if count not in (None, "") else str(gpu)
    if count not in (None, ""):
        params["gpu_count"] = count
    for key in ("api_backend", "server_model_tokenizer"):
        if meta.get(key):
            params[key] = meta[key]
    return params


# ----------------------------------------------------------------------------- requests


def _number(path: Path, value: Any, field: str, scale: float = 1.0) -> float | None:
    got = number(path, value, field)
    return None if got is None else got * scale


def _count(path: Path, value: Any, field: str) -> int | None:
    got = number(path, value, field)
    if got is None:
        return None
    if not got.is_integer() or got < 0:
        raise TraceFormatError(path, f"expected a token count, got {value!r}", field=field)
    return int(got)


def _error_text(code: Any, message: Any) -> str:
    text = " ".join(str(message).split()) if message else ""
    label = f"HTTP {code}" if isinstance(code, int) and 100 <= code < 600 else f"error {code}"
    return f"{label}: {text}" if text else label


def _requests(
    path: Path, records: Any, scale: float, run_key: str, *, text_output: bool
) -> pl.DataFrame:
    if not isinstance(records, list):
        raise TraceFormatError(
            path,
            f"expected an array of per-request objects, got {type(records).__name__}",
            field="individual_request_metrics",
        )
    rows = []
    for i, rec in enumerate(records):
        where = f"individual_request_metrics[{i}]"
        if not isinstance(rec, dict):
            raise TraceFormatError(path, "expected an object", field=where)
        code = rec.get("error_code")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int | str)):
            raise TraceFormatError(
                path, f"expected an error code, got {code!r}", field=f"{where}.error_code"
            )
        message = rec.get("error_message")
        if message is not None and not isinstance(message, str):
            raise TraceFormatError(
                path, f"expected text, got {message!r}", field=f"{where}.error_message"
            )
        ttft = _number(path, rec.get("ttft"), f"{where}.ttft", scale)
        e2e = _number(path, rec.get("e2e_latency"), f"{where}.e2e_latency", scale)
        _number(path, rec.get("tpot"), f"{where}.tpot", scale)  # checked; we derive TPOT
        inp = _count(path, rec.get("num_input_tokens"), f"{where}.num_input_tokens")
        out = _count(path, rec.get("num_output_tokens"), f"{where}.num_output_tokens")
        failed = bool(code)  # genai-bench's own test: `if metrics.error_code:`
        status, error = "ok", None
        if failed:
            status = "timeout" if code in (408, "408") else "error"
            error = _error_text(code, message)
        elif e2e is None:
            raise TraceFormatError(
                path,
                "a completed request (no error_code) needs its latency",
                field=f"{where}.e2e_latency",
            )
        elif text_output and out == 0:
            status, error = "error", "no output tokens (genai-bench counted it as completed)"
        rows.append(
            {
                "seq": i,
                "ttft_s": ttft if not failed else None,
                "e2e_s": e2e if not failed else None,
                "input_tokens": inp,
                "output_tokens": out,
                "status": status,
                "error": error,
            }
        )
    return requests_from_rows(path, rows, run_key)


def _placeholder_ttft(requests: pl.DataFrame) -> bool:
    """Every completed request's TTFT is the fork's fixed 1 ms: a non-streaming run."""
    ttft = requests.filter(pl.col("status") == "ok")["ttft_s"].drop_nulls()
    return ttft.len() > 0 and bool(((ttft - PLACEHOLDER_TTFT_S).abs() < 1e-6).all())


# ----------------------------------------------------------------------------- summary


def _run_stats(
    path: Path, agg: dict[str, Any], scale: float, run_key: str, *, streaming: bool
) -> pl.DataFrame:
    rows: list[tuple[str, str, float]] = []
    stats = agg.get("stats")
    if stats is not None and not isinstance(stats, dict):
        raise TraceFormatError(
            path, f"expected an object, got {stats!r}", field="aggregated_metrics.stats"
        )
    for key, metric in STAT_METRICS.items():
        if not streaming and key in ("ttft", "tpot"):
            continue  # the 1 ms placeholder TTFT, and TPOT derived from it
        block = (stats or {}).get(key)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise TraceFormatError(
                path, f"expected an object, got {block!r}", field=f"aggregated_metrics.stats.{key}"
            )
        for stat, statistic in STATISTICS.items():
            value = _number(path, block.get(stat), f"aggregated_metrics.stats.{key}.{stat}", scale)
            if value is not None:
                rows.append((metric, statistic, value))
    for key, metric in THROUGHPUTS.items():
        value = _number(path, agg.get(key), f"aggregated_metrics.{key}")
        if value is not None:
            rows.append((metric, "value", value))
    return stats_frame(rows, run_key)


def _text(path: Path, agg: dict[str, Any], key: str) -> str | None:
    value = agg.get(key)
    if value is not None and not isinstance(value, str):
        raise TraceFormatError(
            path, f"expected text, got {value!r}", field=f"aggregated_metrics.{key}"
        )
    return value


# ----------------------------------------------------------------------------- load


def load(path: Path) -> Trace:
    """One genai-bench run file (with the experiment metadata beside it, when present)."""
    doc = read_json_object(path)
    if "aggregated_metrics" not in doc and "benchmark_version" in doc:
        raise TraceFormatError(
            path,
            "is genai-bench's experiment metadata, not a run",
            hint="ingest the <scenario>_..._time_<n>s.json files beside it; they read it",
        )
    agg = doc.get("aggregated_metrics")
    if not isinstance(agg, dict):
        raise TraceFormatError(
            path,
            "missing or not an object" if agg is None else f"expected an object, got {agg!r}",
            field="aggregated_metrics",
            hint="expected a genai-bench run result",
        )
    if "individual_request_metrics" not in doc:
        raise TraceFormatError(path, "missing", field="individual_request_metrics")
    meta_path = path.with_name(METADATA)
    meta = _metadata(meta_path) if meta_path.is_file() else {}
    unit = doc.get("_time_unit", meta.get("metrics_time_unit") or "s")
    if unit not in UNITS:
        raise TraceFormatError(path, f"expected 's' or 'ms', got {unit!r}", field="_time_unit")
    scale = UNITS[unit]
    flags = _cmd_flags(meta.get("cmd"))

    scenario = _text(path, agg, "scenario")
    task = meta.get("task")
    named = TASK_IN_NAME.search(path.name)
    if named:
        task = task or named.group(1)
        scenario = scenario or path.name[: named.start()]
    iteration_type = _text(path, agg, "iteration_type") or "num_concurrency"
    concurrency = number(path, agg.get("num_concurrency"), "aggregated_metrics.num_concurrency")
    batch = number(path, agg.get("batch_size"), "aggregated_metrics.batch_size")
    duration = number(path, agg.get("run_duration"), "aggregated_metrics.run_duration")
    rate = "--qps-level" in flags or (concurrency is not None and not concurrency.is_integer())
    level = batch if iteration_type == "batch_size" else concurrency
    run_key = f"{scenario or 'run'} {iteration_type}={_fmt(level)}"

    text_output = not (task and any(t in task.split("-to-")[-1] for t in NO_TEXT_OUTPUT)) and not (
        scenario and scenario[:1] in ("E", "R")
    )
    requests = _requests(
        path, doc["individual_request_metrics"], scale, run_key, text_output=text_output
    )
    disabled = flags.get("--disable-streaming", "False").lower() in ("true", "1", "yes")
    streaming = not (disabled or _placeholder_ttft(requests))
    if not streaming:
        requests = requests.with_columns(ttft_s=pl.lit(None, dtype=pl.Float64))

    workload: dict[str, Any] = scenario_workload(scenario) if scenario else {}
    dataset_path = meta.get("dataset_path")
    if scenario == "dataset" and dataset_path not in (None, "None"):
        workload["dataset"] = dataset_path
    if task:
        workload["task"] = task
    if iteration_type == "batch_size" or (batch is not None and batch != 1):
        workload["batch_size"] = batch
    if not streaming:
        workload["streaming"] = False
    for flag, key in (("--warmup-ratio", "warmup_ratio"), ("--cooldown-ratio", "cooldown_ratio")):
        if flag in flags:
            workload[key] = flags[flag]
    if meta.get("additional_request_params"):
        workload["additional_request_params"] = meta["additional_request_params"]
    reasoning = _reasoning_tokens(path, doc["individual_request_metrics"])
    if reasoning:
        workload["reasoning_tokens_in_output"] = reasoning

    run = make_run(
        path,
        run_key=run_key,
        load_mode="rate" if rate else "concurrency" if concurrency is not None else "unknown",
        load_value=concurrency,
        duration_s=duration,
        model=meta.get("api_model_name") or meta.get("model"),
        workload=workload,
        params=_params(meta),
        num_requests=requests.height,
        num_errors=int((requests["status"] != "ok").sum()),
    )
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        tool_version=meta.get("benchmark_version"),
    )
    return Trace(
        source=source,
        runs=(run,),
        requests=requests,
        run_stats=_run_stats(path, agg, scale, run_key, streaming=streaming),
    )


def _reasoning_tokens(path: Path, records: list[Any]) -> int:
    """Reasoning tokens of completed requests (0.0.5+ records them; they are counted in
    `num_output_tokens`, as the server's completion_tokens count them)."""
    total = 0
    for i, rec in enumerate(records):
        if rec.get("error_code"):
            continue
        total += (
            _count(
                path,
                rec.get("num_reasoning_tokens"),
                f"individual_request_metrics[{i}].num_reasoning_tokens",
            )
            or 0
        )
    return total


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return str(int(value)) if math.isfinite(value) and value.is_integer() else str(value)
