"""vLLM `vllm bench serve` / `benchmarks/benchmark_serving.py` result JSON (`--save-result`).

One file is one load level. With `--save-detailed` the file carries per-request arrays
(`input_lens`, `output_lens`, `ttfts`, `itls`, `errors`; times in seconds); without it only
summary statistics (`mean_ttft_ms`, `p99_e2el_ms`, ...; times in milliseconds).

vLLM does not save per-request end-to-end latency. Its client sets latency to the time of
the last streamed chunk, and TTFT plus the inter-token gaps end at the last content chunk,
so we take e2e = ttft + sum(itl): at most one chunk (the usage-only tail) shorter than
vLLM's own `e2el`. Recent versions save `latencies` and `start_times` per request; where
they do, those are used as they are. `start_times` (each request's `perf_counter` at send,
kept by `--save-detailed` since vLLM PR #32667, January 2026) become start_s, seconds from
the level's first send; older files (`benchmark_serving.py`, the real traces of April 2025)
record no per-request start time, so their start_s is null.

Traps on real files: a request that streamed no token is counted by vLLM as completed with
TTFT 0 and no gaps; here it is an error ("no output tokens"), so with such requests vLLM's
own summary (which averages those zeros in) and ours differ. A level where every request
failed has `completed` 0 and placeholder zeros for every latency statistic: those are
dropped, not stored as latencies. The result file records neither the dataset nor the
length targets (only `--metadata KEY=VALUE` pairs, read where given), so each run's
workload also carries the measured mean input/output tokens per completed request; where
that mean is a whole number (every request the same length, as vLLM's random dataset
sends, give or take a token) it is taken as the target, and `targets_from` says so.

vLLM writes each request's error as text ("" for a success). An error written as a number
(an HTTP code in a hand-edited or converted file) is read as a failed request ("error code
500"), never as a success; true/false where numbers belong, fractional token counts and
counts (`failed: 0.5`) are refused by field.
"""

from __future__ import annotations

import itertools
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from loadlens.errors import TraceFormatError
from loadlens.sources.jsonfile import as_float, read_json_object
from loadlens.trace import (
    REQUEST_SCHEMA,
    RunMeta,
    SourceInfo,
    Trace,
    conform_requests,
    count,
    empty,
    file_sha256,
    make_run,
    number,
    stats_frame,
)

NAME = "vllm"
TOOL = "vllm bench serve"
METHOD_NOTE = (
    "vLLM: end-to-end latency per request is TTFT + the inter-token gaps (vLLM's own e2el "
    "also counts the usage-only tail chunk); requests that streamed no token are errors "
    "here, while vLLM counts them as completed with TTFT 0."
)
NO_OUTPUT = "no output tokens (recorded as a success)"
DETAIL_KEYS = ("input_lens", "output_lens", "ttfts", "itls", "errors")
SUMMARY_KEY = re.compile(r"^(mean|median|std|p\d+(?:\.\d+)?)_(ttft|tpot|itl|e2el)_ms$")
METRIC = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "itl_s", "e2el": "e2e_s"}
THROUGHPUTS = {
    "request_throughput": "request_throughput_rps",
    "output_throughput": "output_throughput_tps",
    "total_token_throughput": "total_token_throughput_tps",
    "request_goodput": "request_goodput_rps",
}
# Newer clients (2026) also save each request's latency and start (perf_counter) time.
OPTIONAL_DETAIL_KEYS = ("latencies", "start_times")
ARRAY_COLUMNS = {  # canonical column: (vLLM key, type)
    "input_tokens": ("input_lens", pa.int64()),
    "output_tokens": ("output_lens", pa.int64()),
    "ttft_s": ("ttfts", pa.float64()),
    "itl_s": ("itls", pa.list_(pa.float64())),
}
WORKLOAD_KEYS = (
    "backend",
    "endpoint_type",
    "label",
    "tokenizer_id",
    "burstiness",
    "num_prompts",
    "ramp_up_strategy",
    "ramp_up_start_rps",
    "ramp_up_end_rps",
)
# Fewer requests than this can have a whole-number mean length by chance.
FIXED_MIN_REQUESTS = 10
# `--metadata KEY=VALUE` pairs that name the workload (vLLM writes them as strings).
TARGETS = {
    "input_tokens": ("random_input_len", "input_len"),
    "output_tokens": ("random_output_len", "output_len", "sharegpt_output_len"),
    "dataset": ("dataset_name", "dataset"),
}


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
    if doc.get("ramp_up_strategy") is not None and concurrency is None:
        return "unknown", None  # the rate ramped from start to end rps: no one level
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
    # With no completed request vLLM writes 0.0 (or NaN) for every latency statistic:
    # placeholders, not latencies. Its throughputs of 0 are true and kept.
    none_completed = _number(path, doc, "completed") == 0
    for key in doc:
        m = SUMMARY_KEY.match(key)
        value = _number(path, doc, key) if m or key in THROUGHPUTS else None
        if value is None or math.isnan(value) or (m and none_completed):
            continue  # numpy's mean of no samples is NaN: the tool had nothing to report
        if m:
            rows.append((METRIC[m.group(2)], m.group(1), value / 1000.0))
        else:
            rows.append((THROUGHPUTS[key], "value", value))
    return stats_frame(rows, "0")


def _requests(path: Path, doc: dict[str, Any]) -> pl.DataFrame:
    arrays = {k: doc[k] for k in (*DETAIL_KEYS, *OPTIONAL_DETAIL_KEYS) if k in doc}
    n = len(arrays["ttfts"]) if isinstance(arrays["ttfts"], list) else 0
    for key, values in arrays.items():
        if not isinstance(values, list):
            raise TraceFormatError(path, "expected a list", field=key)
        if len(values) != n:
            raise TraceFormatError(
                path, f"has {len(values)} entries but 'ttfts' has {n}", field=key
            )
    errors = _error_texts(path, arrays.get("errors", [""] * n))
    # pyarrow converts a million nested Python lists ~10x faster than polars does; it also
    # reads true as 1.0 and 4.5 tokens as 4, so those are looked for first.
    table: dict[str, pa.Array] = {"seq": pa.array(range(n), pa.int64())}
    for name, (key, dtype) in ARRAY_COLUMNS.items():
        values = arrays.get(key, [None] * n)
        _refuse_bools(path, key, values, nested=key == "itls")
        try:
            column = pa.array(values, pa.list_(pa.float64()) if key == "itls" else None)
            if pa.types.is_floating(column.type) and pa.types.is_integer(dtype):
                whole = pc.equal(column, pc.floor(column))
                if not pc.all(pc.fill_null(whole, True)).as_py():
                    bad = next(v for v in values if v is not None and v != int(v))
                    raise TraceFormatError(
                        path, f"expected whole token counts, got {bad!r}", field=key
                    )
            table[name] = column.cast(dtype) if column.type != dtype else column
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError, ValueError) as e:
            raise TraceFormatError(path, f"expected numbers: {e}", field=key) from None
    for name, key in (("latency_s", "latencies"), ("start_s", "start_times")):
        if key in arrays:
            _refuse_bools(path, key, arrays[key])
            try:
                table[name] = pa.array(arrays[key], pa.float64())
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
                raise TraceFormatError(path, f"expected numbers: {e}", field=key) from None
    table["error"] = pa.array(errors, pa.string())
    frame = pl.from_arrow(pa.table(table))
    assert isinstance(frame, pl.DataFrame)
    failed = pl.col("error") != ""
    # vLLM counts a stream that ended without a token as completed, with TTFT 0 and no
    # gaps: it is no success with a latency of 0.
    silent = (
        ~failed
        & (pl.col("output_tokens") == 0).fill_null(False)
        & (pl.col("itl_s").list.len() == 0).fill_null(True)
    )
    bad = failed | silent
    e2e = (
        pl.col("latency_s")
        if "latency_s" in frame.columns
        else pl.col("ttft_s") + pl.col("itl_s").list.sum().fill_null(0.0)
    )
    start = (
        pl.col("start_s") - pl.col("start_s").min()
        if "start_s" in frame.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    frame = frame.with_columns(
        run_key=pl.lit("0"),
        start_s=start,
        status=pl.when(bad).then(pl.lit("error")).otherwise(pl.lit("ok")),
        # vLLM writes 0 for the TTFT of a failed request: it never saw a token.
        ttft_s=pl.when(bad).then(None).otherwise(pl.col("ttft_s")),
        e2e_s=pl.when(bad).then(None).otherwise(e2e),
        error=pl.when(failed)
        .then(pl.col("error"))
        .when(silent)
        .then(pl.lit(NO_OUTPUT))
        .otherwise(None),
    )
    return conform_requests(path, frame)


def _error_texts(path: Path, values: list[Any]) -> list[str]:
    """vLLM's `errors`: "" for a success, the error text otherwise. An error code written as
    a number (no vLLM writes one, a hand-edited file might) is an error, not a success."""
    out = []
    for i, e in enumerate(values):
        if e is None or isinstance(e, str):
            out.append(e or "")
        elif isinstance(e, int | float) and not isinstance(e, bool):
            out.append(f"error code {e:g}")
        else:
            raise TraceFormatError(
                path, f'request #{i}: expected an error text or "", got {e!r}', field="errors"
            )
    return out


def _refuse_bools(path: Path, key: str, values: Any, *, nested: bool = False) -> None:
    if not isinstance(values, list):
        return
    flat = (
        itertools.chain.from_iterable(v for v in values if isinstance(v, list))
        if nested
        else values
    )
    if bool in set(map(type, flat)):
        raise TraceFormatError(path, "expected numbers, got true/false", field=key)


def load(path: Path) -> Trace:
    """Read one vLLM result file: one run, per-request rows when detailed, summary stats."""
    doc = read_json_object(path)  # Python's json, which vLLM writes with, emits NaN/Infinity
    run, requests, run_stats = parse_result(path, doc)
    version = doc.get("vllm_version") or doc.get("version")
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        tool_version=str(version) if version is not None else None,
    )
    return Trace(source=source, runs=(run,), requests=requests, run_stats=run_stats)


def workload_of(path: Path, doc: dict[str, Any]) -> dict[str, Any]:
    """What the result says was sent: length targets and dataset where `--metadata` named
    them, the client's settings, and the measured mean lengths per completed request."""
    out: dict[str, Any] = {}
    for canonical, keys in TARGETS.items():
        for key in keys:
            if doc.get(key) not in (None, ""):
                value = doc[key]
                if canonical != "dataset":
                    value = _integer(value)
                if value is not None:
                    out[canonical] = value
                    break
    out |= {k: doc[k] for k in WORKLOAD_KEYS if doc.get(k) is not None}
    completed = _number(path, doc, "completed")
    if completed:
        for canonical, total, mean, lens in (
            ("input_tokens", "total_input_tokens", "mean_input_tokens", "input_lens"),
            ("output_tokens", "total_output_tokens", "mean_output_tokens", "output_lens"),
        ):
            value = _number(path, doc, total)
            if value is None:
                continue
            out[mean] = round(value / completed, 1)
            # One length for every request (vLLM's random dataset) was the target; varying
            # ones (ShareGPT) have none. Without the arrays, a mean over many requests
            # within 0.01 token of a whole number says the lengths were fixed (real files
            # have one prompt a token short: 32767999 tokens in 4096 prompts of 8000).
            mean_length = value / completed
            if isinstance(doc.get(lens), list):
                fixed = len({n for n in doc[lens] if n}) == 1
            else:
                fixed = (
                    completed >= FIXED_MIN_REQUESTS
                    and abs(mean_length - round(mean_length)) <= 0.01
                )
            if canonical not in out and fixed:
                out[canonical] = round(mean_length)
                out["targets_from"] = "fixed measured length (the file names no target)"
    return out


def _integer(value: Any) -> int | float | str | None:
    number_ = as_float(value)
    if number_ is None or not math.isfinite(number_):
        return None
    return int(number_) if number_.is_integer() else number_


def parse_result(
    path: Path,
    doc: dict[str, Any],
    run_key: str = "0",
    workload: dict[str, Any] | None = None,
    where: str = "",
    params: dict[str, Any] | None = None,
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
    completed = count(path, doc.get("completed"), "completed")
    failed = count(path, doc.get("failed"), "failed")
    requests = _requests(path, doc) if detailed else None
    num_requests: int | None
    num_errors: int | None
    if requests is not None:
        num_requests = requests.height
        num_errors = int((requests["status"] != "ok").sum())
    elif completed is not None and failed is not None:
        num_requests, num_errors = completed + failed, failed
    else:
        # Before `failed` was written (vLLM < 0.9) every prompt was still sent.
        prompts = count(path, doc.get("num_prompts"), "num_prompts")
        num_requests = prompts
        if prompts is not None and completed is not None and completed > prompts:
            raise TraceFormatError(
                path, f"{completed} completed of {prompts} prompts sent", field="completed"
            )
        num_errors = prompts - completed if prompts is not None and completed is not None else None
    run: RunMeta = make_run(
        path,
        run_key=run_key,
        load_mode=mode,
        load_value=value,
        started_at=_started_at(doc),
        duration_s=_number(path, doc, "duration"),
        model=doc.get("model_id"),
        workload=workload_of(path, doc)
        | (
            {"max_concurrency": doc["max_concurrency"]}
            if mode in ("rate", "unknown") and doc.get("max_concurrency") is not None
            else {}
        )
        | (workload or {}),
        params=params or {},
        num_requests=num_requests,
        num_errors=num_errors,
    )
    key = pl.lit(run_key)
    rows = requests if requests is not None else empty(REQUEST_SCHEMA, "run_key")
    return run, rows.with_columns(run_key=key), _run_stats(path, doc).with_columns(run_key=key)
