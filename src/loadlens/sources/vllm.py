"""vLLM `vllm bench serve` / `benchmarks/benchmark_serving.py` result JSON (`--save-result`).

One file is one load level. With `--save-detailed` the file carries per-request arrays
(`input_lens`, `output_lens`, `ttfts`, `itls`, `errors`; times in seconds); without it only
summary statistics (`mean_ttft_ms`, `p99_e2el_ms`, ...; times in milliseconds).

vLLM does not save per-request end-to-end latency. Its client sets latency to the time of
the last streamed chunk, and TTFT plus the inter-token gaps end at the last content chunk,
so we take e2e = ttft + sum(itl): at most one chunk (the usage-only tail) shorter than
vLLM's own `e2el`.
"""

from __future__ import annotations

import json
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa

from loadlens.errors import TraceFormatError
from loadlens.trace import (
    REQUEST_SCHEMA,
    RunMeta,
    SourceInfo,
    Trace,
    conform_requests,
    empty,
    file_sha256,
    make_run,
    number,
    stats_frame,
)

NAME = "vllm"
TOOL = "vllm bench serve"
DETAIL_KEYS = ("input_lens", "output_lens", "ttfts", "itls", "errors")
SUMMARY_KEY = re.compile(r"^(mean|median|std|p\d+(?:\.\d+)?)_(ttft|tpot|itl|e2el)_ms$")
METRIC = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "itl_s", "e2el": "e2e_s"}
THROUGHPUTS = {
    "request_throughput": "request_throughput_rps",
    "output_throughput": "output_throughput_tps",
    "total_token_throughput": "total_token_throughput_tps",
    "request_goodput": "request_goodput_rps",
}
ARRAY_COLUMNS = {  # canonical column: (vLLM key, type)
    "input_tokens": ("input_lens", pa.int64()),
    "output_tokens": ("output_lens", pa.int64()),
    "ttft_s": ("ttfts", pa.float64()),
    "itl_s": ("itls", pa.list_(pa.float64())),
}
WORKLOAD_KEYS = ("backend", "endpoint_type", "label", "tokenizer_id", "burstiness", "num_prompts")


def detect(path: Path, head: bytes) -> bool:
    """A JSON object with vLLM's result keys near its start (they precede the big arrays)."""
    if path.suffix.lower() != ".json" or not head.lstrip().startswith(b"{"):
        return False
    return (
        b'"request_throughput"' in head
        and (b'"max_concurrency"' in head or b'"num_prompts"' in head)
        and b'"completed"' in head
    )


def _number(path: Path, doc: dict[str, Any], key: str) -> float | None:
    value = doc.get(key)
    if value == "inf" or value == "Infinity":  # request_rate of a burst, as vLLM writes it
        return math.inf
    return number(path, value, key, finite=False)


def _load_level(path: Path, doc: dict[str, Any]) -> tuple[str, float | None]:
    concurrency = _number(path, doc, "max_concurrency")
    rate = _number(path, doc, "request_rate")
    if rate is not None and math.isfinite(rate):
        return "rate", rate  # an open-loop rate, possibly capped by max_concurrency
    if concurrency is not None:
        return "concurrency", concurrency
    return "throughput", None  # every prompt sent at once


def _started_at(doc: dict[str, Any]) -> datetime | None:
    try:
        return datetime.strptime(str(doc.get("date")), "%Y%m%d-%H%M%S")
    except ValueError:
        return None


def _run_stats(path: Path, doc: dict[str, Any]) -> pl.DataFrame:
    rows: list[tuple[str, str, float]] = []
    for key in doc:
        m = SUMMARY_KEY.match(key)
        value = _number(path, doc, key) if m or key in THROUGHPUTS else None
        if value is None or math.isnan(value):
            continue  # numpy's mean of no samples is NaN: the tool had nothing to report
        if m:
            rows.append((METRIC[m.group(2)], m.group(1), value / 1000.0))
        else:
            rows.append((THROUGHPUTS[key], "value", value))
    return stats_frame(rows, "0")


def _requests(path: Path, doc: dict[str, Any]) -> pl.DataFrame:
    arrays = {k: doc[k] for k in DETAIL_KEYS if k in doc}
    n = len(arrays["ttfts"])
    for key, values in arrays.items():
        if not isinstance(values, list):
            raise TraceFormatError(path, "expected a list", field=key)
        if len(values) != n:
            raise TraceFormatError(
                path, f"has {len(values)} entries but 'ttfts' has {n}", field=key
            )
    errors = [e if isinstance(e, str) else "" for e in arrays.get("errors", [""] * n)]
    # pyarrow converts a million nested Python lists ~10x faster than polars does.
    table: dict[str, pa.Array] = {"seq": pa.array(range(n), pa.int64())}
    for name, (key, dtype) in ARRAY_COLUMNS.items():
        try:
            table[name] = pa.array(arrays.get(key, [None] * n), dtype)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as e:
            raise TraceFormatError(path, f"expected numbers: {e}", field=key) from None
    table["error"] = pa.array(errors, pa.string())
    frame = pl.from_arrow(pa.table(table))
    assert isinstance(frame, pl.DataFrame)
    failed = pl.col("error") != ""
    frame = frame.with_columns(
        run_key=pl.lit("0"),
        status=pl.when(failed).then(pl.lit("error")).otherwise(pl.lit("ok")),
        # vLLM writes 0 for the TTFT of a failed request: it never saw a token.
        ttft_s=pl.when(failed).then(None).otherwise(pl.col("ttft_s")),
        e2e_s=pl.when(failed)
        .then(None)
        .otherwise(pl.col("ttft_s") + pl.col("itl_s").list.sum().fill_null(0.0)),
        error=pl.when(failed).then(pl.col("error")).otherwise(None),
    )
    return conform_requests(path, frame)


def load(path: Path) -> Trace:
    """Read one vLLM result file: one run, per-request rows when detailed, summary stats."""
    raw = path.read_bytes()
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Python's json (which vLLM writes with) emits NaN/Infinity; read those so the
        # checks below can name the field, and report json's line/column otherwise.
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TraceFormatError(path, f"not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected a JSON object at the top level")
    run, requests, run_stats = parse_result(path, doc)
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        tool_version=doc.get("vllm_version") or doc.get("version"),
    )
    return Trace(source=source, runs=(run,), requests=requests, run_stats=run_stats)


def parse_result(
    path: Path,
    doc: dict[str, Any],
    run_key: str = "0",
    workload: dict[str, Any] | None = None,
    where: str = "",
) -> tuple[RunMeta, pl.DataFrame, pl.DataFrame]:
    """One vLLM result object (a file's, or one of `vllm bench sweep`'s): its run, request
    rows and summary statistics, keyed `run_key`. `where` prefixes error messages."""
    detailed = "ttfts" in doc
    if not detailed and not any(SUMMARY_KEY.match(k) for k in doc):
        raise TraceFormatError(
            path,
            f"{where}has neither per-request 'ttfts' nor summary keys like 'mean_ttft_ms'",
            hint="vLLM bench serve writes them with --save-result [--save-detailed]",
        )
    mode, value = _load_level(path, doc)
    completed = _number(path, doc, "completed")
    failed = _number(path, doc, "failed")
    requests = _requests(path, doc) if detailed else None
    num_requests: int | None
    num_errors: int | None
    if requests is not None:
        num_requests = requests.height
        num_errors = int((requests["status"] != "ok").sum())
    else:
        num_requests = int((completed or 0) + (failed or 0)) if completed is not None else None
        num_errors = int(failed) if failed is not None else None
    run: RunMeta = make_run(
        path,
        run_key=run_key,
        load_mode=mode,
        load_value=value,
        started_at=_started_at(doc),
        duration_s=_number(path, doc, "duration"),
        model=doc.get("model_id"),
        workload={k: doc[k] for k in WORKLOAD_KEYS if doc.get(k) is not None}
        | ({"max_concurrency": doc.get("max_concurrency")} if mode == "rate" else {})
        | (workload or {}),
        num_requests=num_requests,
        num_errors=num_errors,
    )
    key = pl.lit(run_key)
    rows = requests if requests is not None else empty(REQUEST_SCHEMA, "run_key")
    return run, rows.with_columns(run_key=key), _run_stats(path, doc).with_columns(run_key=key)
