"""NVIDIA AIPerf (`aiperf profile`) artifacts, every released layout (0.1 to 0.13).

One artifact directory is one load level. AIPerf writes, per run:

* `profile_export.jsonl` (from 0.2): one record per request, `{"metadata": {...},
  "metrics": {name: {"value", "unit"}}, "error": {...} | null}`. Times are wall-clock
  nanoseconds in the metadata (`request_start_ns`, `request_end_ns`, from 0.13 also
  `credit_issued_ns`) and `{"value", "unit": "ms"}` metrics (`time_to_first_token`,
  `request_latency`, `inter_chunk_latency` list, `output_sequence_length`, ...). From 0.13
  the warm-up requests are in the file too (`benchmark_phase: "warmup"`); AIPerf leaves them
  out of its summary and so do we (their number goes into `workload`).
* `profile_export_aiperf.json`, the summary, each metric `{"unit", "avg", "p50", ..., "std"}`:
  0.1 nests them under `records` (TTFT tagged `ttft`, no p10); 0.2-0.3 write them flat at
  the top level without a version; from 0.4 with `schema_version` and `aiperf_version` (0.8
  adds `count` and `sum`). `profile_export_aiperf.csv` holds the same numbers rounded to
  0.01. The per-request file is primary: `partners()` names the summaries, read with it; a
  summary JSON reads its CSV twin; either summary alone is a summary-only run.
* From 0.7, several runs under one command (`--num-profile-runs N`, a comma list such as
  `--concurrency 8,16,32`) add, beside the per-run directories, a confidence aggregate
  (`aggregate/profile_export_aiperf_aggregate.{json,csv}`: each statistic's mean over the
  trials, keyed `time_to_first_token_p99`; from 0.8 also `profile_export_aiperf_collated.json`,
  percentiles of the pooled requests) and a sweep aggregate
  (`sweep_aggregate/profile_export_aiperf_sweep.{json,csv}`: one entry per swept value).
  Where the per-run directories are there too, each run is loaded from its own files and the
  aggregates, which only summarise them, are passed over (a run names them as partners);
  alone, an aggregate is read: the confidence one as one level, the sweep one as a level per
  swept value.

Definitions (checked against the tool's summary in the tests):

* AIPerf's "Inter Token Latency" is per request (request_latency - TTFT) / (OSL - 1): it
  excludes the first token, and is what loadlens calls TPOT, so it is stored as `tpot_s`.
  AIPerf's "Inter Chunk Latency" pools the gaps between streamed chunks: our `itl_s`.
* start_s = `request_start_ns` in seconds from the level's first request start (the
  clock of `request_latency`, which runs from it to `request_end_ns`); the window below
  starts at the first credit (0.13 `credit_issued_ns`), a few ms earlier.
* Request throughput counts successful requests only. Up to 0.8 AIPerf divides by
  `benchmark_duration` (first request sent .. last response), from 0.13 by the profiling
  phase's window (summary `start_time` .. `end_time`). `duration_s` is the window the
  summary's own request count and throughput imply, so throughputs recomputed from the rows
  equal the tool's. Without a summary the window is first credit (or request start) .. last
  request end, which differs by about a millisecond.
* Load: `--concurrency N` is concurrency N; `--request-rate R` is rate R. With both, AIPerf
  sends at rate R but never holds more than N requests open: where the run achieved under
  half of R, the cap set the load and the level is concurrency N (the rate is kept in
  `workload.request_rate`), else it is rate R (with `workload.max_concurrency`).

Version drift: 0.1-0.8 keep the load settings under `input_config.loadgen` and the model
under `input_config.endpoint.model_names`; 0.13 has `input_config.phases` and
`input_config.models.items`. Both are read.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.sources import nvidia_summary
from loadlens.sources.jsonfile import read_json_object
from loadlens.sources.nvidia_summary import TO_SECONDS, csv_stats, json_stats
from loadlens.trace import (
    REQUEST_SCHEMA,
    RUN_STAT_SCHEMA,
    RunMeta,
    SourceInfo,
    Trace,
    conform_requests,
    count,
    empty,
    file_sha256,
    make_run,
    number,
)

NAME = "aiperf"
# What AIPerf writes into an artifact directory beside its traces: passed over in a walk.
SIDE_FILES = (
    "inputs.json",
    "phase_manifest.json",
    "server_metrics_export.*",
    "gpu_telemetry_export.*",
    "profile_export_raw.jsonl",  # --export-level raw: request/response bodies
    "profile_export_network_latency.jsonl",
    "*_aiperf_timeslices.*",  # --slice-duration: the same metrics per time slice
    "run_config.json",  # multi-run: each run's resolved config
    "sampling_design.json",
    "search_history.json",
    "search_checkpoint.json",
    "sweep_manifest.json",
    "mlflow_export.json",
    "post_process_errors.json",
    "profile_export_partial.json",
)
SIDE_DIRS = ("phases", "logs")
TOOL = "aiperf"
RUN_KEY = "0"
METHOD_NOTE = (
    "AIPerf's throughputs divide successful requests by its own window (benchmark duration "
    "up to 0.8, the profiling phase from 0.13), which loadlens uses as the run's duration; "
    "AIPerf's 'inter token latency' excludes the first token and is shown as TPOT."
)

# AIPerf summary metric -> canonical latency metric.
LATENCIES = {
    "time_to_first_token": "ttft_s",
    "request_latency": "e2e_s",
    "inter_token_latency": "tpot_s",  # per request (latency - ttft) / (osl - 1)
    "inter_chunk_latency": "itl_s",  # pooled gaps between streamed chunks
}
THROUGHPUTS = {
    "request_throughput": "request_throughput_rps",
    "output_token_throughput": "output_throughput_tps",
    "total_token_throughput": "total_token_throughput_tps",
    "goodput": "request_goodput_rps",
}
# 0.1 tagged some metrics differently; its summary is read under today's names.
OLD_TAGS = {"ttft": "time_to_first_token", "ttst": "time_to_second_token"}
# The CSV export's display names (units in parentheses are stripped before lookup).
CSV_LATENCIES = {
    "Time to First Token": "ttft_s",
    "Request Latency": "e2e_s",
    "Inter Token Latency": "tpot_s",
    "Inter Chunk Latency": "itl_s",
}
CSV_THROUGHPUTS = {
    "Request Throughput": "request_throughput_rps",
    "Output Token Throughput": "output_throughput_tps",
    "Total Token Throughput": "total_token_throughput_tps",
}
# The statistics AIPerf computes per metric (`STAT_KEYS`; 0.1 lacks p10, 0.8 adds sum).
STAT_KEYS: tuple[str, ...] = ("avg", "min", "max", "sum", "p1", "p5", "p10", "p25", "p50")
STAT_KEYS += ("p75", "p90", "p95", "p99", "std")
# Aggregate files carry no units for some numbers: AIPerf's display units then apply.
DISPLAY_UNITS = dict.fromkeys(LATENCIES, "ms") | {
    "request_throughput": "requests/sec",
    "output_token_throughput": "tokens/sec",
    "total_token_throughput": "tokens/sec",
    "goodput": "requests/sec",
}
AGGREGATE_JSON = "profile_export_aiperf_aggregate.json"
AGGREGATE_CSV = "profile_export_aiperf_aggregate.csv"
COLLATED_JSON = "profile_export_aiperf_collated.json"
SWEEP_JSON = "profile_export_aiperf_sweep.json"
SWEEP_CSV = "profile_export_aiperf_sweep.csv"
AGGREGATE_NAMES = (AGGREGATE_JSON, AGGREGATE_CSV, COLLATED_JSON, SWEEP_JSON, SWEEP_CSV)
CONFIDENCE_CSV_HEADER = b"metric,mean,std,min,max,cv,se,ci_low,ci_high,t_critical,unit"
SWEEP_COLUMN = re.compile(r"^(.+)_(mean|std|min|max|cv)$")


# ----------------------------------------------------------------------------- detection


def _is_records(head: bytes) -> bool:
    first = head.lstrip()
    return (
        first.startswith(b"{")
        and b'"benchmark_phase"' in head
        and b'"request_start_ns"' in head
        and b'"metrics"' in head
    )


def _is_summary(head: bytes) -> bool:
    if not head.lstrip().startswith(b"{"):
        return False
    if b'"records"' in head and b'"header"' in head and b'"tag"' in head:  # 0.1
        return b'"request_throughput"' in head or b'"request_latency"' in head
    return b'"request_throughput"' in head and (
        b'"aiperf_version"' in head
        or b'"inter_chunk_latency"' in head
        or b'"min_request_timestamp"' in head
    )


def _aggregate_kind(head: bytes) -> str | None:
    """'confidence', 'detailed' or 'sweep' for an aggregate JSON, else None."""
    if not head.lstrip().startswith(b"{") or b'"aggregation_type"' not in head:
        return None
    if b'"per_combination_metrics"' in head or b'"aggregation_type": "sweep"' in head:
        return "sweep"
    if b'"num_profile_runs"' not in head:
        return None
    if b'"combined"' in head or b'"aggregation_type": "detailed"' in head:
        return "detailed"
    return "confidence"


def _is_csv(head: bytes) -> bool:
    return head.startswith(b"Metric,avg,min,max,") and (
        b"\nInter Chunk Latency (" in head
        or b"\nBenchmark Duration (sec)," in head
        or b"\nTime to First Token (" in head
    )


def _is_aggregate_csv(head: bytes) -> bool:
    return head.startswith(CONFIDENCE_CSV_HEADER)


def _is_sweep_csv(head: bytes) -> bool:
    first = head.split(b"\n", 1)[0]
    return b"request_throughput" in first and b"_mean," in first and first.rstrip().endswith(b"_cv")


def detect(path: Path, head: bytes) -> bool:
    """AIPerf's per-request JSONL, its summary JSON or CSV, or a multi-run aggregate."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _is_records(head)
    if suffix == ".json":
        return _is_summary(head) or _aggregate_kind(head) is not None
    if suffix == ".csv":
        return _is_csv(head) or _is_aggregate_csv(head) or _is_sweep_csv(head)
    return False


def _aggregates_above(path: Path) -> list[Path]:
    """The multi-run aggregates AIPerf wrote over the run directory holding `path`:
    `<base>/aggregate/...` and `<base>/sweep_aggregate/...` up to three levels up."""
    found: list[Path] = []
    for base in list(path.parents)[1:4]:
        for folder in (base / "aggregate", base / "sweep_aggregate"):
            if not folder.is_dir() or folder in path.parents:
                continue
            found += [f for f in sorted(folder.rglob("*")) if f.name in AGGREGATE_NAMES]
    return found


def partners(path: Path) -> list[Path]:
    """What is read with `path`: a per-request file its summary JSON/CSV; a summary JSON its
    CSV twin; an aggregate JSON its CSV (and collated) twins. A run inside a multi-run
    layout also names the aggregates over it, which summarise it and its siblings."""
    suffix = path.suffix.lower()
    head = _head(path)
    if suffix == ".json" and (kind := _aggregate_kind(head)) is not None:
        if kind == "sweep":
            return [p for p in (path.with_suffix(".csv"),) if p.exists()]
        twins = [path.with_name(AGGREGATE_CSV), path.with_name(COLLATED_JSON)]
        if kind == "detailed" and path.with_name(AGGREGATE_JSON).exists():
            return []  # read by the aggregate JSON beside it
        return [p for p in twins if p.exists() and p != path]
    if suffix == ".csv" and (_is_aggregate_csv(head) or _is_sweep_csv(head)):
        return []
    above = _aggregates_above(path)
    if suffix not in (".jsonl", ".json"):
        return above
    return nvidia_summary.partners(path, "aiperf", is_summary=suffix == ".json") + above


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(64 * 1024)


# ----------------------------------------------------------------------------- helpers


def _seconds(path: Path, field: str, metric: Any, line: int | None = None) -> float | None:
    """A `{"value", "unit"}` metric in seconds; None when absent."""
    if metric is None:
        return None
    if not isinstance(metric, dict) or "value" not in metric:
        raise TraceFormatError(path, "expected {value, unit}", field=field, line=line)
    value, unit = metric["value"], metric.get("unit", "ms")
    if unit not in TO_SECONDS:
        raise TraceFormatError(path, f"unknown time unit {unit!r}", field=field, line=line)
    if isinstance(value, list):
        raise TraceFormatError(path, "expected a number, got a list", field=field, line=line)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceFormatError(path, f"expected a number, got {value!r}", field=field, line=line)
    return float(value) * TO_SECONDS[unit]


def _seconds_list(path: Path, field: str, metric: Any, line: int) -> list[float] | None:
    if metric is None:
        return None
    value, unit = (
        (metric.get("value"), metric.get("unit", "ms"))
        if isinstance(metric, dict)
        else (None, None)
    )
    if not isinstance(value, list) or unit not in TO_SECONDS:
        raise TraceFormatError(path, "expected {value: [numbers], unit}", field=field, line=line)
    scale = TO_SECONDS[unit]
    try:
        return [float(v) * scale for v in value]
    except (TypeError, ValueError):
        raise TraceFormatError(path, "expected a list of numbers", field=field, line=line) from None


def _count(path: Path, field: str, metric: Any, line: int) -> int | None:
    if metric is None:
        return None
    value = metric.get("value") if isinstance(metric, dict) else None
    return count(path, value, field, required=True, line=line)


def _status(record: dict[str, Any]) -> tuple[str, str | None]:
    error = record.get("error")
    cancelled = bool(record["metadata"].get("was_cancelled"))
    if error:
        text = " ".join(str(error[k]) for k in ("code", "type") if error.get(k) is not None)
        message = str(error.get("message") or "")
        text = f"{text}: {message}" if text and message else text or message
        kind = str(error.get("type") or "") + " " + message
        if cancelled:
            return "cancelled", text
        return ("timeout" if "timeout" in kind.lower() else "error"), text
    if cancelled:
        return "cancelled", "cancelled by aiperf"
    return "ok", None


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise TraceFormatError(
                path, f"not valid JSON ({e}); a truncated file?", line=n
            ) from None
        if not isinstance(obj, dict):
            raise TraceFormatError(path, "expected a JSON object per line", line=n)
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise TraceFormatError(path, "expected a 'metadata' object", field="metadata", line=n)
        if not isinstance(obj.get("metrics"), dict):
            raise TraceFormatError(path, "expected a 'metrics' object", field="metrics", line=n)
        for key in ("request_start_ns", "request_end_ns"):
            if not isinstance(meta.get(key), int):
                raise TraceFormatError(
                    path, "expected integer nanoseconds", field=f"metadata.{key}", line=n
                )
        yield n, obj


# ----------------------------------------------------------------------------- per-request


def _records(path: Path) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Rows of the profiling requests and what the file says about the run."""
    rows: list[dict[str, Any]] = []
    warmup = skipped = 0
    origin: int | None = None
    last_end = 0
    for n, rec in _lines(path):
        meta, metrics = rec["metadata"], rec["metrics"]
        phase = meta.get("phase_kind") or meta.get("benchmark_phase")
        if phase == "warmup":
            warmup += 1
            continue
        if meta.get("context_overflow_skip"):
            skipped += 1  # AIPerf leaves these out of every metric
            continue
        sent = meta.get("credit_issued_ns") or meta["request_start_ns"]
        origin = sent if origin is None else min(origin, sent)
        last_end = max(last_end, meta["request_end_ns"])
        status, error = _status(rec)
        e2e = _seconds(path, "metrics.request_latency", metrics.get("request_latency"), n)
        if status == "ok" and e2e is None:
            raise TraceFormatError(
                path,
                "a request without an error needs its latency",
                field="metrics.request_latency",
                line=n,
            )
        isl = metrics.get("input_sequence_length") or metrics.get("error_isl")
        osl = metrics.get("output_sequence_length") or metrics.get("output_token_count")
        rows.append(
            {
                "run_key": RUN_KEY,
                "seq": len(rows),
                "start_ns": meta["request_start_ns"],
                "ttft_s": _seconds(
                    path, "metrics.time_to_first_token", metrics.get("time_to_first_token"), n
                ),
                "e2e_s": e2e if status == "ok" else None,
                "itl_s": _seconds_list(
                    path, "metrics.inter_chunk_latency", metrics.get("inter_chunk_latency"), n
                ),
                "input_tokens": _count(path, "metrics.input_sequence_length", isl, n),
                "output_tokens": _count(path, "metrics.output_sequence_length", osl, n),
                "status": status,
                "error": error,
            }
        )
    if not rows:
        raise TraceFormatError(
            path,
            "holds no profiling requests",
            hint="aiperf writes them with --export-level records",
        )
    assert origin is not None
    frame = pl.DataFrame(
        rows,
        schema={
            "run_key": pl.String,
            "seq": pl.Int64,
            "start_ns": pl.Int64,
            "ttft_s": pl.Float64,
            "e2e_s": pl.Float64,
            "itl_s": pl.List(pl.Float64),
            "input_tokens": pl.Int64,
            "output_tokens": pl.Int64,
            "status": pl.String,
            "error": pl.String,
        },
    ).with_columns(start_s=(pl.col("start_ns") - pl.col("start_ns").min()) / 1e9)
    facts = {
        "origin_ns": origin,
        "window_s": (last_end - origin) / 1e9,
        "warmup_requests": warmup,
        "context_overflow_skipped": skipped,
    }
    return conform_requests(path, frame.drop("start_ns")), facts


# ----------------------------------------------------------------------------- summary


def _read_summary(path: Path) -> dict[str, Any]:
    """The summary JSON with its metrics at the top level under today's tags, whatever the
    version wrote (0.1 nests them under `records`)."""
    doc = read_json_object(path)
    records = doc.get("records")
    if isinstance(records, dict):
        doc = {k: v for k, v in doc.items() if k != "records"}
        for tag, entry in records.items():
            doc[OLD_TAGS.get(str(tag), str(tag))] = entry
    if not isinstance(doc.get("request_throughput"), dict | None):
        raise TraceFormatError(path, "expected {unit, avg}", field="request_throughput")
    return doc


def _mean_of(entry: Any) -> float | None:
    value = entry.get("mean", entry.get("avg")) if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _config_workload(config: dict[str, Any]) -> dict[str, Any]:
    """What was sent, from the config of either layout: targets, dataset, and extras."""
    workload: dict[str, Any] = {}
    datasets = config.get("datasets") or []
    if datasets and isinstance(datasets[0], dict):  # 0.13
        prompts = datasets[0].get("prompts") or {}
        workload["dataset"] = datasets[0].get("type")
        for key, name in (("isl", "input_tokens"), ("osl", "output_tokens")):
            if isinstance(prompts.get(key), dict) and prompts[key].get("mean") is not None:
                workload[name] = prompts[key]["mean"]
                workload[f"{key}_mean"] = prompts[key]["mean"]  # as earlier loadlens kept it
    data = config.get("input") or {}
    prompt = data.get("prompt") or {}
    for key, name in (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens")):
        spec = prompt.get(key) or {}
        if spec.get("mean") is not None:
            workload[name] = spec["mean"]
        if spec.get("stddev"):
            workload[f"{name}_stddev"] = spec["stddev"]
        if key == "input_tokens" and spec.get("block_size") is not None:
            workload["isl_block_size"] = spec["block_size"]
    if "output_tokens" in workload and "osl_mean" not in workload and "datasets" not in config:
        workload["osl_mean"] = workload["output_tokens"]
    kind = data.get("custom_dataset_type") or data.get("public_dataset")
    if kind:
        workload["dataset"] = kind
    elif "dataset" not in workload and ("input_tokens" in workload or prompt):
        workload["dataset"] = "synthetic"
    if data.get("file"):
        workload["input_file"] = data["file"]
    if data.get("extra"):
        workload["extra_inputs"] = data["extra"]
    if data.get("goodput"):
        workload["goodput_slo"] = data["goodput"]
    endpoint = config.get("endpoint") or {}
    workload |= {k: endpoint[k] for k in ("type", "streaming") if endpoint.get(k) is not None}
    return {k: v for k, v in workload.items() if v is not None}


def _load_config(doc: dict[str, Any], achieved_rps: float | None) -> tuple[str, float | None, dict]:
    """Load mode and value, and the workload settings, from either config layout.
    `achieved_rps` (requests sent per second) tells a rate from a binding concurrency cap."""
    config = doc.get("input_config") or {}
    if not isinstance(config, dict):
        config = {}
    workload = _config_workload(config)
    phases = [p for p in config.get("phases") or [] if isinstance(p, dict)]
    profiling = [p for p in phases if p.get("kind", p.get("name")) == "profiling"]
    if profiling:  # 0.13: input_config.phases
        phase = profiling[0]
        kind = str(phase.get("type") or "")
        concurrency, rate = phase.get("concurrency"), phase.get("rate", phase.get("request_rate"))
        warm = [p for p in phases if p.get("kind") == "warmup"]
        if warm and warm[0].get("requests") is not None:
            workload["warmup_request_count"] = warm[0]["requests"]
        if phase.get("requests") is not None:
            workload["request_count"] = phase["requests"]
    else:  # 0.1-0.8: input_config.loadgen
        loadgen = config.get("loadgen") or {}
        concurrency, rate = loadgen.get("concurrency"), loadgen.get("request_rate")
        kind = "rate" if rate is not None else "concurrency"
        for key in (
            "request_count",
            "warmup_request_count",
            "benchmark_duration",
            "arrival_pattern",
            "request_rate_mode",
            "concurrency_ramp_duration",
        ):
            if loadgen.get(key) is not None:
                workload[key] = loadgen[key]
    concurrency = concurrency if _is_number(concurrency) else None
    rate = float(rate) if rate is not None and _is_number(rate) else None
    if rate is not None and math.isinf(rate):
        rate = None  # everything at once
        kind = "concurrency" if concurrency is not None else "throughput"
    if "rate" in kind and rate is not None:
        if concurrency is not None:
            if achieved_rps is not None and achieved_rps < 0.5 * rate:
                workload["request_rate"] = rate  # the cap, not the rate, set the load
                return "concurrency", float(concurrency), workload
            workload["max_concurrency"] = concurrency
        return "rate", rate, workload
    if concurrency is not None:
        return "concurrency", float(concurrency), workload
    if kind == "throughput":
        return "throughput", None, workload
    return "unknown", None, workload


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _model(doc: dict[str, Any]) -> str | None:
    config = doc.get("input_config") or {}
    if not isinstance(config, dict):
        return None
    items = (config.get("models") or {}).get("items") or []
    if items and isinstance(items[0], dict):
        return items[0].get("name")
    names = (config.get("endpoint") or {}).get("model_names") or []
    return names[0] if names else None


def _time(doc: dict[str, Any], key: str) -> datetime | None:
    try:
        return datetime.fromisoformat(str(doc.get(key)))
    except ValueError:
        return None


def _avg(doc: dict[str, Any], key: str) -> float | None:
    entry = doc.get(key)
    value = entry.get("avg") if isinstance(entry, dict) else None
    # true is an int to Python: a flag is no count or rate.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _tool_window(
    ok: float | None, rps: float | None, fallbacks: list[float | None]
) -> float | None:
    """The seconds AIPerf divided its throughputs by: its successful requests over its
    request throughput, which is exact whichever window the version used; else the first
    of `fallbacks` (benchmark duration, start .. end) that the file has."""
    if ok and rps and rps > 0:
        return ok / rps
    return next((f for f in fallbacks if f is not None and f >= 0), None)


def _unrounded_throughputs(stats: pl.DataFrame, values: dict[str, float]) -> pl.DataFrame:
    """The CSV rounds throughputs to 0.01 (1% of 0.5 req/s): its count over its duration,
    where that rounds to the published value, is the same number less rounded."""
    duration = values.get("Benchmark Duration (sec)")
    exact = {
        "request_throughput_rps": ("Request Count", "Request Throughput (requests/sec)"),
        "output_throughput_tps": ("Total Output Tokens (tokens)", "Output Token Throughput"),
    }
    for metric, (count_name, rate_name) in exact.items():
        count = values.get(count_name)
        shown = next((v for k, v in values.items() if k.startswith(rate_name)), None)
        if not duration or count is None or shown is None:
            continue
        # the duration is rounded too: count / duration is the finer number only where the
        # duration's half-hundredth weighs less than the rate's own (rate < duration)
        rate = count / duration
        if rate < duration and abs(rate - shown) <= 0.005 + rate * 0.005 / duration:
            is_it = (pl.col("metric") == metric) & (pl.col("statistic") == "value")
            stats = stats.with_columns(
                value=pl.when(is_it).then(pl.lit(count / duration)).otherwise(pl.col("value"))
            )
    return stats


def _error_count(doc: dict[str, Any]) -> float | None:
    errors = _avg(doc, "error_request_count")
    if errors is None and isinstance(doc.get("error_summary"), list):
        counts = [e.get("count") for e in doc["error_summary"] if isinstance(e, dict)]
        errors = float(sum(c for c in counts if isinstance(c, int)))
    return errors


def _observed(doc: dict[str, Any]) -> dict[str, Any]:
    """Mean lengths the run actually saw (kept beside the targets, never compared)."""
    seen: dict[str, Any] = {}
    for key, name in (
        ("input_sequence_length", "observed_input_tokens_mean"),
        ("output_sequence_length", "observed_output_tokens_mean"),
    ):
        if (value := _avg(doc, key)) is not None:
            seen[name] = round(value, 3)
    if doc.get("was_cancelled"):
        seen["was_cancelled"] = True
    return seen


# ----------------------------------------------------------------------------- aggregates


def _split_stat(key: str) -> tuple[str, str] | None:
    """`time_to_first_token_p99` -> (`time_to_first_token`, `p99`)."""
    metric, _, stat = key.rpartition("_")
    return (metric, stat) if metric and stat in STAT_KEYS else None


def _nest(path: Path, where: str, metrics: Any) -> dict[str, Any]:
    """Aggregate metrics, flattened (`{metric}_{stat}: {mean, unit}`) or per metric
    (`{metric}: {mean|avg, p50, ..., unit}`), as a summary doc `{metric: {unit, avg, ...}}`
    whose numbers are the means over the trials."""
    if not isinstance(metrics, dict):
        raise TraceFormatError(path, "expected an object of metrics", field=where)
    doc: dict[str, dict[str, Any]] = {}
    for key, entry in metrics.items():
        if not isinstance(entry, dict):
            continue
        unit = entry.get("unit")
        split = _split_stat(key)
        if split is not None and not any(s in entry for s in ("p50", "avg")):
            metric, stat = split
            target = doc.setdefault(metric, {"unit": unit or DISPLAY_UNITS.get(metric)})
            target[stat] = _mean_of(entry)
        else:
            target = doc.setdefault(key, {"unit": unit or DISPLAY_UNITS.get(key)})
            target["avg"] = _mean_of(entry)
            for stat in STAT_KEYS[1:]:
                if stat in entry and stat not in ("min", "max", "std"):
                    target[stat] = entry[stat]  # a single trial's own percentiles
    return doc


def _collated(path: Path) -> dict[str, Any]:
    """Pooled-request percentiles of a detailed aggregate, in the per-record units (ms)."""
    raw = read_json_object(path).get("metrics")
    if not isinstance(raw, dict):
        raise TraceFormatError(path, "expected an object of metrics", field="metrics")
    doc: dict[str, Any] = {}
    for metric, entry in raw.items():
        combined = entry.get("combined") if isinstance(entry, dict) else None
        if metric in LATENCIES and isinstance(combined, dict):
            keys = ("p50", "p90", "p95", "p99", "std", "count")
            stats = {k: combined[k] for k in keys if k in combined}
            doc[metric] = {"unit": DISPLAY_UNITS[metric], "avg": combined.get("mean"), **stats}
    return doc


def _confidence_csv(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The confidence aggregate CSV as a summary doc, and its metadata rows."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    metrics: dict[str, Any] = {}
    meta: dict[str, str] = {}
    header = rows[0] if rows else []
    for n, cells in enumerate(rows[1:], start=2):
        if len(cells) == len(header):
            try:
                values = {h: float(c) for h, c in zip(header[1:-1], cells[1:-1], strict=True) if c}
            except ValueError:
                raise TraceFormatError(path, "expected numbers", field=cells[0], line=n) from None
            metrics[cells[0]] = values | {"unit": cells[-1]}
        elif len(cells) == 2:
            meta[cells[0]] = cells[1]
    if "Successful Runs" not in meta:
        raise TraceFormatError(
            path, "no 'Successful Runs' row after the metrics; a truncated file?"
        )
    return _nest(path, "metrics", metrics), meta


def _sweep_csv(path: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The sweep CSV as `per_combination_metrics` entries, and its metadata rows."""
    rows = list(csv.reader(io.StringIO(path.read_text())))
    header = rows[0] if rows else []
    params = [h for h in header if not SWEEP_COLUMN.match(h)]
    combos: list[dict[str, Any]] = []
    meta: dict[str, str] = {}
    n = 1
    for n, cells in enumerate(rows[1:], start=2):
        if not cells:
            break
        if len(cells) != len(header):
            raise TraceFormatError(path, f"expected {len(header)} cells", line=n)
        parameters: dict[str, Any] = {}
        metrics: dict[str, dict[str, Any]] = {}
        for name, cell in zip(header, cells, strict=True):
            if name in params:
                parameters[name] = _parse_value(cell)
            elif (m := SWEEP_COLUMN.match(name)) and m.group(2) == "mean" and cell:
                try:
                    metrics[m.group(1)] = {"mean": float(cell)}
                except ValueError:
                    raise TraceFormatError(path, "expected a number", field=name, line=n) from None
        combos.append({"parameters": parameters, "metrics": metrics})
    for cells in rows[n:]:
        if len(cells) == 2:
            meta[cells[0]] = cells[1]
    if "Number of Successful Runs" not in meta:
        raise TraceFormatError(
            path, "no 'Number of Successful Runs' row in its metadata; a truncated file?"
        )
    return combos, meta


def _label(value: Any) -> str:
    """A swept value as the JSON and the CSV both spell it (2.0 and 2 -> '2')."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{value:g}" if is_number else str(value)


def _parse_value(cell: str) -> Any:
    try:
        number = float(cell)
    except ValueError:
        return cell
    return int(number) if number.is_integer() else number


def _aggregate_run(
    path: Path, run_key: str, doc: dict[str, Any], parameters: dict[str, Any], extra: dict
) -> tuple[RunMeta, pl.DataFrame]:
    """One level from an aggregate's per-metric means (and the swept parameter values)."""
    stats = json_stats(path, doc, LATENCIES, THROUGHPUTS, run_key=run_key)
    # Means over trials: not whole numbers, but finite ones.
    ok = number(path, _avg(doc, "request_count"), "request_count.avg")
    errors = number(path, _avg(doc, "error_request_count"), "error_request_count.avg")
    duration = _tool_window(ok, _avg(doc, "request_throughput"), [_avg(doc, "benchmark_duration")])
    workload = dict(extra)
    mode, value = "unknown", None
    params = dict(parameters)
    if _is_number(params.get("concurrency")):
        mode, value = "concurrency", float(params.pop("concurrency"))
    elif _is_number(params.get("request_rate")):
        mode, value = "rate", float(params.pop("request_rate"))
    workload |= {f"sweep_{k}": v for k, v in params.items()}
    run = make_run(
        path,
        run_key=run_key,
        load_mode=mode,
        load_value=value,
        duration_s=duration,
        workload=workload | _observed(doc),
        num_requests=round((ok or 0) + (errors or 0)) if ok is not None else None,
        num_errors=round(errors or 0),
    )
    return run, stats


def _load_confidence(path: Path) -> Trace:
    if path.suffix.lower() == ".csv":
        doc, meta = _confidence_csv(path)
        version, runs = None, meta.get("Successful Runs")
    else:
        raw = read_json_object(path)
        doc = _nest(path, "metrics", raw.get("metrics"))
        meta_obj = raw.get("metadata")
        meta_obj = meta_obj if isinstance(meta_obj, dict) else {}
        version, runs = raw.get("aiperf_version"), meta_obj.get("num_successful_runs")
        if path.with_name(AGGREGATE_CSV).exists() and not doc:
            doc, _ = _confidence_csv(path.with_name(AGGREGATE_CSV))
    collated = path.with_name(COLLATED_JSON)
    if path.name != COLLATED_JSON and collated.exists():
        for metric, entry in _collated(collated).items():
            doc[metric] = doc.get(metric, {}) | entry  # pooled percentiles beat means of them
    extra = {"aggregation": "mean over trials", "profile_runs": _parse_value(str(runs))}
    if path.name == COLLATED_JSON:
        doc = _collated(path)
        count = (doc.get("request_latency") or {}).get("count")
        extra["aggregation"] = "requests pooled over trials"
        if isinstance(count, int):
            doc["request_count"] = {"unit": "requests", "avg": float(count)}
    run, stats = _aggregate_run(path, RUN_KEY, doc, {}, extra)
    if stats.is_empty():
        raise TraceFormatError(path, "has no metrics like 'time_to_first_token_p99'")
    return _trace(path, (run,), None, stats, version)


def _load_sweep(path: Path) -> Trace:
    if path.suffix.lower() == ".csv":
        combos, _ = _sweep_csv(path)
    else:
        raw = read_json_object(path)
        combos = raw.get("per_combination_metrics") or []
        if isinstance(combos, dict):  # {label: {parameters, metrics}} in some builds
            combos = list(combos.values())
        if not isinstance(combos, list):
            raise TraceFormatError(path, "expected a list", field="per_combination_metrics")
    runs, frames = [], []
    for i, combo in enumerate(combos):
        where = f"per_combination_metrics[{i}]"
        if not isinstance(combo, dict) or not isinstance(combo.get("parameters"), dict):
            raise TraceFormatError(path, "expected {parameters, metrics}", field=where)
        parameters = combo["parameters"]
        doc = _nest(path, f"{where}.metrics", combo.get("metrics"))
        key = ",".join(f"{k}={_label(v)}" for k, v in parameters.items()) or str(i)
        run, stats = _aggregate_run(path, key, doc, parameters, {"aggregation": "sweep"})
        runs.append(run)
        frames.append(stats)
    if not runs:
        raise TraceFormatError(path, "holds no swept values", field="per_combination_metrics")
    return _trace(path, tuple(runs), None, pl.concat(frames), None)


# ----------------------------------------------------------------------------- load


def _trace(
    path: Path,
    runs: tuple[RunMeta, ...],
    requests: pl.DataFrame | None,
    stats: pl.DataFrame,
    version: Any,
) -> Trace:
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        tool_version=str(version) if version else None,
    )
    return Trace(
        source=source,
        runs=runs,
        requests=requests if requests is not None else empty(REQUEST_SCHEMA, "run_key"),
        run_stats=stats,
    )


def load(path: Path) -> Trace:
    """Read an AIPerf per-request JSONL (with its summary), a summary JSON/CSV alone, or a
    multi-run aggregate (confidence or sweep)."""
    head = _head(path)
    suffix = path.suffix.lower()
    kind = _aggregate_kind(head) if suffix == ".json" else None
    if kind == "sweep" or (suffix == ".csv" and _is_sweep_csv(head)):
        return _load_sweep(path)
    if kind is not None or (suffix == ".csv" and _is_aggregate_csv(head)):
        return _load_confidence(path)
    requests = None
    facts: dict[str, Any] = {}
    doc: dict[str, Any] = {}
    stats = empty(RUN_STAT_SCHEMA, "run_key")
    csv_values: dict[str, float] = {}
    if suffix == ".jsonl" or _is_records(head):
        requests, facts = _records(path)
        summary_json, summary_csv = nvidia_summary.summary_names(path, "aiperf")
        if summary_json.exists():
            doc = _read_summary(summary_json)
            stats = json_stats(summary_json, doc, LATENCIES, THROUGHPUTS)
        elif summary_csv.exists():
            stats, csv_values = csv_stats(summary_csv, CSV_LATENCIES, CSV_THROUGHPUTS, "AIPerf")
    elif suffix == ".csv" or _is_csv(head):
        stats, csv_values = csv_stats(path, CSV_LATENCIES, CSV_THROUGHPUTS, "AIPerf")
        stats = _unrounded_throughputs(stats, csv_values)
    else:
        doc = _read_summary(path)
        stats = json_stats(path, doc, LATENCIES, THROUGHPUTS)
        if stats.is_empty():
            raise TraceFormatError(
                path,
                "has no summary metrics like 'time_to_first_token' or 'request_latency'",
                hint="aiperf writes profile_export_aiperf.json",
            )
    ok = _avg(doc, "request_count")
    if ok is None:
        ok = csv_values.get("Request Count")
    errors = _error_count(doc)
    if errors is None:
        errors = csv_values.get("Error Request Count")
    rps = _avg(doc, "request_throughput")
    if rps is None:
        rps = csv_values.get("Request Throughput (requests/sec)")
    start, end = _time(doc, "start_time"), _time(doc, "end_time")
    duration = _tool_window(
        ok,
        rps,
        [
            _avg(doc, "benchmark_duration"),
            csv_values.get("Benchmark Duration (sec)"),
            (end - start).total_seconds() if start and end else None,
        ],
    )
    if requests is not None:
        duration = duration if doc or csv_values else facts["window_s"]
        num_requests: int | None = requests.height
        num_errors: int | None = int((requests["status"] != "ok").sum())
    else:
        completed = count(path, _avg(doc, "completed_request_count"), "completed_request_count")
        num_errors = count(path, errors, "error_request_count") or 0
        num_requests = None
        if completed is not None:
            num_requests = completed
        elif ok is not None:
            num_requests = (count(path, ok, "request_count") or 0) + num_errors
    sent = (num_requests or 0) / duration if duration else None
    mode, value, workload = _load_config(doc, sent)
    if facts.get("warmup_requests") and "warmup_request_count" not in workload:
        workload["warmup_request_count"] = facts["warmup_requests"]
    if facts.get("context_overflow_skipped"):
        workload["context_overflow_skipped"] = facts["context_overflow_skipped"]
    started_at = start
    if "origin_ns" in facts:
        started_at = datetime.fromtimestamp(facts["origin_ns"] / 1e9, UTC).replace(tzinfo=None)
    run = make_run(
        path,
        run_key=RUN_KEY,
        load_mode=mode,
        load_value=value,
        started_at=started_at,
        duration_s=duration,
        model=_model(doc),
        workload=workload | _observed(doc),
        num_requests=num_requests,
        num_errors=num_errors,
    )
    return _trace(path, (run,), requests, stats, doc.get("aiperf_version"))
