"""NVIDIA AIPerf (`aiperf profile`) artifacts: one artifact directory is one load level.

AIPerf writes, per run:

* `profile_export.jsonl`: one record per request, `{"metadata": {...}, "metrics": {name:
  {"value", "unit"}}, "error": {...} | null}`. Times are wall-clock nanoseconds in the
  metadata (`request_start_ns`, `request_end_ns`, from 0.13 also `credit_issued_ns`) and
  `{"value", "unit": "ms"}` metrics (`time_to_first_token`, `request_latency`,
  `inter_chunk_latency` list, `output_sequence_length`, `input_sequence_length`).
  From 0.13 the warm-up requests are in the file too (`benchmark_phase: "warmup"`); AIPerf
  leaves them out of its summary and so do we (their number goes into `workload`).
* `profile_export_aiperf.json` (and the same numbers rounded in `profile_export_aiperf.csv`):
  the summary, each metric `{"unit", "avg", "p50", ..., "std"}`. The per-request file is the
  primary one: `partners()` names the summary files, which are then read with it.

Definitions (checked against the tool's summary in the tests):

* AIPerf's "Inter Token Latency" is per request (request_latency - TTFT) / (OSL - 1): it
  excludes the first token, and is what loadlens calls TPOT, so it is stored as `tpot_s`.
  AIPerf's "Inter Chunk Latency" pools the gaps between streamed chunks: our `itl_s`.
* Request throughput counts successful requests only. From 0.13 AIPerf divides by the
  profiling phase's window (summary `start_time` .. `end_time`); earlier versions by
  `benchmark_duration` (first request sent .. last response). `duration_s` is that window,
  so throughputs recomputed from the rows equal the tool's. Without a summary the window is
  first credit (or request start) .. last request end, which differs by about a millisecond.

Version drift: 0.1-0.3 summaries have no `aiperf_version`, keep the load settings under
`input_config.loadgen` and the model under `input_config.endpoint.model_names`; 0.13 has
`aiperf_version`, `input_config.phases` and `input_config.models.items`. Both are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.sources import nvidia_summary
from loadlens.sources.nvidia_summary import TO_SECONDS, csv_stats, json_stats
from loadlens.trace import (
    REQUEST_SCHEMA,
    RUN_STAT_SCHEMA,
    SourceInfo,
    Trace,
    conform_requests,
    empty,
    file_sha256,
    make_run,
)

NAME = "aiperf"
# What AIPerf writes into an artifact directory beside its traces: passed over in a walk.
SIDE_FILES = (
    "inputs.json",
    "phase_manifest.json",
    "server_metrics_export.*",
    "gpu_telemetry_export.*",
)
SIDE_DIRS = ("phases", "logs")
TOOL = "aiperf"
RUN_KEY = "0"

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
    return (
        head.lstrip().startswith(b"{")
        and b'"request_throughput"' in head
        and (
            b'"aiperf_version"' in head
            or b'"inter_chunk_latency"' in head
            or b'"min_request_timestamp"' in head
        )
    )


def _is_csv(head: bytes) -> bool:
    return head.startswith(b"Metric,avg,min,max,") and (
        b"\nInter Chunk Latency (" in head or b"\nBenchmark Duration (sec)," in head
    )


def detect(path: Path, head: bytes) -> bool:
    """AIPerf's per-request JSONL, its summary JSON, or its summary CSV."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _is_records(head)
    if suffix == ".json":
        return _is_summary(head)
    if suffix == ".csv":
        return _is_csv(head)
    return False


def partners(path: Path) -> list[Path]:
    """The per-request file reads its summary JSON/CSV; the JSON reads its CSV twin."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json"):
        return []
    return nvidia_summary.partners(path, "aiperf", is_summary=suffix == ".json")


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
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceFormatError(
            path, f"expected a token count, got {value!r}", field=field, line=line
        )
    return int(value)


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
    ).with_columns(start_s=(pl.col("start_ns") - origin) / 1e9)
    facts = {
        "origin_ns": origin,
        "window_s": (last_end - origin) / 1e9,
        "warmup_requests": warmup,
        "context_overflow_skipped": skipped,
    }
    return conform_requests(path, frame.drop("start_ns")), facts


# ----------------------------------------------------------------------------- summary


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise TraceFormatError(path, f"not valid JSON ({e}); a truncated file?") from None
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected a JSON object at the top level")
    if not isinstance(doc.get("request_throughput"), dict | None):
        raise TraceFormatError(path, "expected {unit, avg}", field="request_throughput")
    return doc


def _load_config(doc: dict[str, Any]) -> tuple[str, float | None, dict[str, Any]]:
    """Load mode and value, and the workload settings, from either config layout."""
    config = doc.get("input_config") or {}
    workload: dict[str, Any] = {}
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
        datasets = config.get("datasets") or []
        if datasets and isinstance(datasets[0], dict):
            prompts = datasets[0].get("prompts") or {}
            workload["dataset"] = datasets[0].get("type")
            for key in ("isl", "osl"):
                if isinstance(prompts.get(key), dict) and "mean" in prompts[key]:
                    workload[f"{key}_mean"] = prompts[key]["mean"]
    else:  # 0.1-0.3: input_config.loadgen
        loadgen = config.get("loadgen") or {}
        concurrency, rate = loadgen.get("concurrency"), loadgen.get("request_rate")
        kind = "rate" if rate is not None else "concurrency"
        for key in ("request_count", "warmup_request_count"):
            if loadgen.get(key) is not None:
                workload[key] = loadgen[key]
        prompt = (config.get("input") or {}).get("prompt") or {}
        osl = (prompt.get("output_tokens") or {}).get("mean")
        if osl is not None:
            workload["osl_mean"] = osl
    endpoint = config.get("endpoint") or {}
    workload |= {k: endpoint[k] for k in ("type", "streaming") if endpoint.get(k) is not None}
    if "rate" in kind and isinstance(rate, int | float):
        if concurrency is not None:
            workload["max_concurrency"] = concurrency
        return "rate", float(rate), workload
    if isinstance(concurrency, int | float):
        return "concurrency", float(concurrency), workload
    return "unknown", None, workload


def _model(doc: dict[str, Any]) -> str | None:
    config = doc.get("input_config") or {}
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


def _tool_window(doc: dict[str, Any]) -> float | None:
    """The seconds AIPerf divided its throughputs by (see the module docstring)."""
    start, end = _time(doc, "start_time"), _time(doc, "end_time")
    if "aiperf_version" in doc and start and end:
        return (end - start).total_seconds()
    duration = doc.get("benchmark_duration")
    if isinstance(duration, dict) and isinstance(duration.get("avg"), int | float):
        return float(duration["avg"]) * TO_SECONDS.get(duration.get("unit", "sec"), 1.0)
    return None


def _avg(doc: dict[str, Any], key: str) -> float | None:
    entry = doc.get(key)
    value = entry.get("avg") if isinstance(entry, dict) else None
    return float(value) if isinstance(value, int | float) else None


# ----------------------------------------------------------------------------- load


def load(path: Path) -> Trace:
    """Read an AIPerf per-request JSONL (with its summary) or a summary JSON/CSV alone."""
    with path.open("rb") as f:
        head = f.read(64 * 1024)
    requests = None
    facts: dict[str, Any] = {}
    doc: dict[str, Any] = {}
    stats = empty(RUN_STAT_SCHEMA, "run_key")
    csv_values: dict[str, float] = {}
    if path.suffix.lower() == ".jsonl" or _is_records(head):
        requests, facts = _records(path)
        summary_json, summary_csv = nvidia_summary.summary_names(path, "aiperf")
        if summary_json.exists():
            doc = _read_summary(summary_json)
            stats = json_stats(summary_json, doc, LATENCIES, THROUGHPUTS)
        elif summary_csv.exists():
            stats, csv_values = csv_stats(summary_csv, CSV_LATENCIES, CSV_THROUGHPUTS, "AIPerf")
    elif path.suffix.lower() == ".csv" or _is_csv(head):
        stats, csv_values = csv_stats(path, CSV_LATENCIES, CSV_THROUGHPUTS, "AIPerf")
    else:
        doc = _read_summary(path)
        stats = json_stats(path, doc, LATENCIES, THROUGHPUTS)
        if stats.is_empty():
            raise TraceFormatError(
                path,
                "has no summary metrics like 'time_to_first_token' or 'request_latency'",
                hint="aiperf writes profile_export_aiperf.json",
            )
    mode, value, workload = _load_config(doc)
    if facts.get("warmup_requests") and "warmup_request_count" not in workload:
        workload["warmup_request_count"] = facts["warmup_requests"]
    if facts.get("context_overflow_skipped"):
        workload["context_overflow_skipped"] = facts["context_overflow_skipped"]
    started_at = _time(doc, "start_time")
    if "origin_ns" in facts:
        started_at = datetime.fromtimestamp(facts["origin_ns"] / 1e9, UTC).replace(tzinfo=None)
    duration = (
        _tool_window(doc) or facts.get("window_s") or csv_values.get("Benchmark Duration (sec)")
    )
    if requests is not None:
        num_requests = requests.height
        num_errors = int((requests["status"] != "ok").sum())
    else:
        ok = _avg(doc, "request_count") or csv_values.get("Request Count")
        errors = _avg(doc, "error_request_count") or 0.0
        completed = _avg(doc, "completed_request_count")
        num_requests = int(completed if completed is not None else (ok or 0) + errors)
        num_errors = int(errors)
        if ok is None and completed is None:
            num_requests = None
    run = make_run(
        path,
        run_key=RUN_KEY,
        load_mode=mode,
        load_value=value,
        started_at=started_at,
        duration_s=duration,
        model=_model(doc),
        workload=workload,
        num_requests=num_requests,
        num_errors=num_errors,
    )
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        tool_version=doc.get("aiperf_version"),
    )
    return Trace(
        source=source,
        runs=(run,),
        requests=requests if requests is not None else empty(REQUEST_SCHEMA, "run_key"),
        run_stats=stats,
    )
