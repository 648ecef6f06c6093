"""Ray LLMPerf `token_benchmark_ray.py --results-dir DIR`: two files per run (one level).

`<model>_<in>_<out>_individual_responses.json` is a JSON array, one object per request
(`ttft_s`, `end_to_end_latency_s`, `inter_token_latency_s`, `number_input_tokens`,
`number_output_tokens`, `error_code`, `error_msg`; seconds). `<model>_<in>_<out>_summary.json`
beside it holds the run's settings (`num_concurrent_requests`, ...) and the tool's own
statistics (`results_ttft_s_quantiles_p95`, `results_end_to_end_latency_s_mean`, ...).
The individual file is the primary; its summary is its partner. A summary alone loads as
summary-only; an individual file alone loads with its rows and an unknown load level.

Definitions that differ from ours: LLMPerf's per-request `inter_token_latency_s` is the sum
of the gaps from the request's start to its last content chunk (TTFT included), divided by
the output token count: neither our ITL nor TPOT. It is kept as the metric
`llmperf_itl_s` (summary statistics) and never fills `itl_s`; requests carry no per-token
gaps and no start time. Duration is not saved: we take completed / completed-per-minute.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.trace import (
    REQUEST_SCHEMA,
    RUN_STAT_SCHEMA,
    SourceInfo,
    Trace,
    conform_requests,
    empty,
    file_sha256,
    make_run,
    number,
    stats_frame,
)

NAME = "llmperf"
TOOL = "llmperf token_benchmark_ray"
INDIVIDUAL_SUFFIX = "_individual_responses.json"
SUMMARY_SUFFIX = "_summary.json"
STAT_KEY = re.compile(
    r"^results_(inter_token_latency_s|ttft_s|end_to_end_latency_s)"
    r"_(?:quantiles_(p\d+)|(mean|min|max|stddev))$"
)
METRIC = {
    "ttft_s": "ttft_s",
    "end_to_end_latency_s": "e2e_s",
    "inter_token_latency_s": "llmperf_itl_s",  # not our ITL: see the module docstring
}
REQUIRED = ("ttft_s", "end_to_end_latency_s", "number_input_tokens", "number_output_tokens")
WORKLOAD_KEYS = (
    "mean_input_tokens",
    "stddev_input_tokens",
    "mean_output_tokens",
    "stddev_output_tokens",
    "additional_sampling_params",
)


def detect(path: Path, head: bytes) -> bool:
    if path.suffix.lower() != ".json":
        return False
    text = head.lstrip()
    if text.startswith(b"[") and path.name.endswith(INDIVIDUAL_SUFFIX):
        return b'"end_to_end_latency_s"' in head and b'"inter_token_latency_s"' in head
    if text.startswith(b"{"):
        return b'"num_concurrent_requests"' in head and (
            b'"results_ttft_s_mean"' in head or b'"results_num_completed_requests"' in head
        )
    return False


def _summary_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(INDIVIDUAL_SUFFIX) + SUMMARY_SUFFIX)


def partners(path: Path) -> list[Path]:
    """The summary beside an individual-responses file (read with it)."""
    if path.name.endswith(INDIVIDUAL_SUFFIX) and _summary_path(path).exists():
        return [_summary_path(path)]
    return []


def _read(path: Path) -> Any:
    try:
        # LLMPerf writes with Python's json: NaN where pandas had no sample.
        return json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise TraceFormatError(path, f"not valid JSON ({e})") from None


def _number(path: Path, doc: dict[str, Any], key: str) -> float | None:
    return number(path, doc.get(key), key, finite=False)


def _summary(path: Path) -> dict[str, Any]:
    doc = _read(path)
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected a JSON object (an LLMPerf summary)")
    if "num_concurrent_requests" not in doc:
        raise TraceFormatError(path, "missing", field="num_concurrent_requests")
    if not any(STAT_KEY.match(k) for k in doc):
        raise TraceFormatError(
            path,
            "has no statistics like 'results_ttft_s_mean'",
            hint="expected token_benchmark_ray.py's *_summary.json",
        )
    return doc


def _run_stats(path: Path, doc: dict[str, Any]) -> pl.DataFrame:
    rows: list[tuple[str, str, float]] = []
    for key in doc:
        m = STAT_KEY.match(key)
        if not m:
            continue
        value = _number(path, doc, key)
        if value is None or math.isnan(value):
            continue
        statistic = m.group(2) or {"stddev": "std"}.get(m.group(3), m.group(3))
        rows.append((METRIC[m.group(1)], statistic, value))
    tput = _number(path, doc, "results_mean_output_throughput_token_per_s")
    if tput is not None and math.isfinite(tput):
        rows.append(("output_throughput_tps", "value", tput))
    per_min = _number(path, doc, "results_num_completed_requests_per_min")
    if per_min is not None and math.isfinite(per_min):
        rows.append(("request_throughput_rps", "value", per_min / 60.0))
    return stats_frame(rows, "0")


def _requests(path: Path, records: Any) -> pl.DataFrame:
    if not isinstance(records, list):
        raise TraceFormatError(path, "expected a JSON array of per-request objects")
    rows = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise TraceFormatError(path, f"request #{i}: expected an object")
        for key in REQUIRED:
            if key not in rec:
                raise TraceFormatError(path, f"request #{i}: missing", field=key)
        for key in (*REQUIRED, "error_code"):
            value = rec.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise TraceFormatError(
                    path, f"request #{i}: expected a number, got {value!r}", field=key
                )
        failed = rec.get("error_code") is not None
        message = rec.get("error_msg") or ""
        rows.append(
            {
                "seq": i,
                "ttft_s": None if failed else rec["ttft_s"],
                "e2e_s": None if failed else rec["end_to_end_latency_s"],
                "input_tokens": rec["number_input_tokens"],
                "output_tokens": None if failed else rec["number_output_tokens"],
                "status": "error" if failed else "ok",
                "error": f"HTTP {int(rec['error_code'])}: {message}".strip() if failed else None,
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "seq": pl.Int64,
            "ttft_s": pl.Float64,
            "e2e_s": pl.Float64,
            "input_tokens": pl.Int64,
            "output_tokens": pl.Int64,
            "status": pl.String,
            "error": pl.String,
        },
    ).with_columns(run_key=pl.lit("0"))
    return conform_requests(path, frame)


def load(path: Path) -> Trace:
    """One LLMPerf run: the individual responses (rows) with their summary, or a summary."""
    if path.name.endswith(INDIVIDUAL_SUFFIX) or _read_head_is_array(path):
        requests = _requests(path, _read(path))
        summary_path = _summary_path(path)
        summary = _summary(summary_path) if summary_path.exists() else None
    else:
        requests = None
        summary = _summary(path)
    doc = summary or {}
    concurrency = _number(path, doc, "num_concurrent_requests")
    completed = _number(path, doc, "results_num_completed_requests")
    per_min = _number(path, doc, "results_num_completed_requests_per_min")
    duration = completed * 60.0 / per_min if completed and per_min else None
    timestamp = _number(path, doc, "timestamp")  # when the results were written
    started = (
        datetime.fromtimestamp(round(timestamp - duration), UTC).replace(tzinfo=None)
        if timestamp is not None and duration is not None
        else None
    )
    if requests is not None:
        num_requests: int | None = requests.height
        num_errors: int | None = int((requests["status"] != "ok").sum())
    else:
        started_n = _number(path, doc, "results_num_requests_started")
        errors_n = _number(path, doc, "results_number_errors")
        num_requests = int(started_n) if started_n is not None else None
        num_errors = int(errors_n) if errors_n is not None else None
    run = make_run(
        path,
        run_key="0",
        load_mode="concurrency" if concurrency is not None else "unknown",
        load_value=concurrency,
        started_at=started,
        duration_s=duration,
        model=doc.get("model"),
        workload={k: doc[k] for k in WORKLOAD_KEYS if doc.get(k) is not None},
        num_requests=num_requests,
        num_errors=num_errors,
    )
    version = doc.get("version")
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        # LLMPerf has no releases; its summary carries the results-format date.
        tool_version=f"results {version}" if version else None,
    )
    return Trace(
        source=source,
        runs=(run,),
        requests=requests if requests is not None else empty(REQUEST_SCHEMA, "run_key"),
        run_stats=_run_stats(path, doc)
        if summary is not None
        else empty(RUN_STAT_SCHEMA, "run_key"),
    )


def _read_head_is_array(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4096).lstrip().startswith(b"[")
