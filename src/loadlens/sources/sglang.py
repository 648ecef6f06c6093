"""SGLang `python -m sglang.bench_serving` (now `sglang.benchmark.serving`) `--output-file`.

The tool appends one JSON object per run (load level) to a JSONL file. With
`--output-details` each line also carries per-request arrays (`input_lens`, `output_lens`,
`ttfts`, `itls`, `generated_texts`, `errors`; seconds); without it, summary fields only
(`mean_e2e_latency_ms`, `p99_ttft_ms`, ...; milliseconds).

Not to be confused with vLLM's result JSON (`sources/vllm.py`), whose keys look alike: SGLang
writes JSON Lines, names end-to-end latency `*_e2e_latency_ms` (vLLM: `*_e2el_ms`), and
has `total_output_tokens_retokenized`; it records no date, model name or tool version.

SGLang does not save a request's end-to-end latency or its start time. Its latency is
stamped at the last streamed chunk ([DONE] included), while TTFT plus the inter-token gaps
end at the last content chunk, so we take e2e = ttft + sum(itl): at most that one tail
chunk shorter than SGLang's own (about 0.02% on the fixtures). A failed request has
`errors[i] != ""`, TTFT 0.0 and output length 0.

Versions: 0.4.x writes mean/median/std/p99 (p95 for ITL only); 0.5.x adds p90/p95 for every
metric, `total_throughput`, `tag`, `server_info` and peak counters. Both load the same way.
"""

from __future__ import annotations

import json
import math
import re
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

NAME = "sglang"
TOOL = "sglang.bench_serving"
SUMMARY_KEY = re.compile(r"^(mean|median|std|p\d+(?:\.\d+)?)_(ttft|tpot|itl|e2e_latency)_ms$")
METRIC = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "itl_s", "e2e_latency": "e2e_s"}
THROUGHPUTS = {
    "request_throughput": "request_throughput_rps",
    "output_throughput": "output_throughput_tps",
    "input_throughput": "input_throughput_tps",
    "total_throughput": "total_token_throughput_tps",
}
DETAIL_KEYS = ("input_lens", "output_lens", "ttfts", "itls", "errors")
ARRAY_COLUMNS = {  # canonical column: (SGLang key, type)
    "input_tokens": ("input_lens", pa.int64()),
    "output_tokens": ("output_lens", pa.int64()),
    "ttft_s": ("ttfts", pa.float64()),
    "itl_s": ("itls", pa.list_(pa.float64())),
}
WORKLOAD_KEYS = (
    "backend",
    "dataset_name",
    "random_input_len",
    "random_output_len",
    "random_range_ratio",
    "sharegpt_output_len",
    "tag",
)


def detect(path: Path, head: bytes) -> bool:
    """JSON Lines whose first object has SGLang's `*_e2e_latency_ms` summary keys."""
    first = head.lstrip()
    if not first.startswith(b"{"):
        return False
    line = first.split(b"\n", 1)[0]
    return (
        b'"mean_e2e_latency_ms"' in line or b'"median_e2e_latency_ms"' in line
    ) and b'"total_output_tokens_retokenized"' in line


def _parse_line(path: Path, raw: bytes, n: int) -> dict[str, Any]:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Python's json (which SGLang writes with) emits Infinity for an unlimited rate.
        try:
            doc = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TraceFormatError(path, f"not valid JSON ({e})", line=n) from None
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected a JSON object per line", line=n)
    return doc


def _number(path: Path, doc: dict[str, Any], key: str, n: int) -> float | None:
    return number(path, doc.get(key), key, finite=False, line=n)


def _load_level(path: Path, doc: dict[str, Any], n: int) -> tuple[str, float | None]:
    concurrency = _number(path, doc, "max_concurrency", n)
    rate = doc.get("request_rate")
    if rate == "trace":  # replayed timestamps (mooncake traces): neither a rate nor a cap
        return ("concurrency", concurrency) if concurrency is not None else ("unknown", None)
    rate = _number(path, doc, "request_rate", n)
    if rate is not None and math.isfinite(rate):
        return "rate", rate  # open loop, possibly capped by max_concurrency
    if concurrency is not None:
        return "concurrency", concurrency
    return "throughput", None  # every prompt sent at once


def _run_stats(path: Path, doc: dict[str, Any], key: str, n: int) -> list[tuple]:
    rows: list[tuple] = []
    for name in doc:
        m = SUMMARY_KEY.match(name)
        if not m and name not in THROUGHPUTS:
            continue
        value = _number(path, doc, name, n)
        if value is None or math.isnan(value):
            continue
        if m:
            rows.append((key, METRIC[m.group(2)], m.group(1), value / 1000.0))
        else:
            rows.append((key, THROUGHPUTS[name], "value", value))
    return rows


def _requests(path: Path, doc: dict[str, Any], key: str, n: int) -> pl.DataFrame:
    arrays = {k: doc[k] for k in DETAIL_KEYS if k in doc}
    if not isinstance(arrays["ttfts"], list):
        raise TraceFormatError(path, "expected a list", field="ttfts", line=n)
    count = len(arrays["ttfts"])
    for name, values in arrays.items():
        if not isinstance(values, list):
            raise TraceFormatError(path, "expected a list", field=name, line=n)
        if len(values) != count:
            raise TraceFormatError(
                path, f"has {len(values)} entries but 'ttfts' has {count}", field=name, line=n
            )
    errors = [e if isinstance(e, str) else "" for e in arrays.get("errors", [""] * count)]
    table: dict[str, pa.Array] = {"seq": pa.array(range(count), pa.int64())}
    for name, (src, dtype) in ARRAY_COLUMNS.items():
        try:
            table[name] = pa.array(arrays.get(src, [None] * count), dtype)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as e:
            raise TraceFormatError(path, f"expected numbers: {e}", field=src, line=n) from None
    table["error"] = pa.array(errors, pa.string())
    frame = pl.from_arrow(pa.table(table))
    assert isinstance(frame, pl.DataFrame)
    failed = pl.col("error") != ""
    return frame.with_columns(
        run_key=pl.lit(key),
        status=pl.when(failed).then(pl.lit("error")).otherwise(pl.lit("ok")),
        # SGLang writes TTFT 0.0 and output length 0 for a failed request: it saw no token.
        ttft_s=pl.when(failed).then(None).otherwise(pl.col("ttft_s")),
        output_tokens=pl.when(failed).then(None).otherwise(pl.col("output_tokens")),
        e2e_s=pl.when(failed)
        .then(None)
        .otherwise(pl.col("ttft_s") + pl.col("itl_s").list.sum().fill_null(0.0)),
        error=pl.when(failed).then(pl.col("error")).otherwise(None),
    )


def load(path: Path) -> Trace:
    """Read an SGLang output file: one run per line, rows when `--output-details` was given."""
    runs: list[RunMeta] = []
    frames: list[pl.DataFrame] = []
    stats: list[tuple] = []
    lines = path.read_bytes().split(b"\n")
    for n, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        doc = _parse_line(path, raw, n)
        if not any(SUMMARY_KEY.match(k) for k in doc):
            raise TraceFormatError(
                path,
                "has no summary keys like 'mean_e2e_latency_ms'",
                line=n,
                hint="expected a line of sglang.bench_serving --output-file",
            )
        if "completed" not in doc:
            raise TraceFormatError(path, "missing", field="completed", line=n)
        key = str(len(runs))
        mode, value = _load_level(path, doc, n)
        completed = int(_number(path, doc, "completed", n) or 0)
        detailed = "ttfts" in doc
        if detailed:
            frame = _requests(path, doc, key, n)
            frames.append(frame)
            num_requests = frame.height
            num_errors = int((frame["status"] != "ok").sum())
        else:
            num_requests, num_errors = None, None  # failures are not counted in the summary
        workload = {k: doc[k] for k in WORKLOAD_KEYS if doc.get(k) is not None}
        if mode == "rate" and doc.get("max_concurrency") is not None:
            workload["max_concurrency"] = doc["max_concurrency"]
        if not detailed:
            workload["completed"] = completed
        server = doc.get("server_info")
        if isinstance(server, dict) and server.get("version"):
            workload["server_version"] = str(server["version"])
        model = server.get("model_path") if isinstance(server, dict) else None
        runs.append(
            make_run(
                path,
                run_key=key,
                load_mode=mode,
                load_value=value,
                duration_s=_number(path, doc, "duration", n),
                model=model,
                workload=workload,
                num_requests=num_requests,
                num_errors=num_errors,
            )
        )
        stats.extend(_run_stats(path, doc, key, n))
    if not runs:
        raise TraceFormatError(path, "is empty: expected one JSON object per benchmark run")
    requests = (
        conform_requests(path, pl.concat(frames, how="diagonal_relaxed"))
        if frames
        else empty(REQUEST_SCHEMA, "run_key")
    )
    run_stats = stats_frame(stats)
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        tool_version=None,  # the output file does not record it (README: how to tell)
    )
    return Trace(source=source, runs=tuple(runs), requests=requests, run_stats=run_stats)
