"""SGLang `python -m sglang.bench_serving` (now `sglang.benchmark.serving`) `--output-file`.

The tool appends one JSON object per run (load level) to a JSONL file. With
`--output-details` each line also carries per-request arrays (`input_lens`, `output_lens`,
`ttfts`, `itls`, `generated_texts`, `errors`; seconds); without it, summary fields only
(`mean_e2e_latency_ms`, `p99_ttft_ms`, ...; milliseconds).

Not to be confused with vLLM's result JSON (`sources/vllm.py`), whose keys look alike: SGLang
writes JSON Lines, names end-to-end latency `*_e2e_latency_ms` (vLLM: `*_e2el_ms`), and
has `total_output_tokens_retokenized`; it records no date, model name or tool version.

SGLang does not save a request's end-to-end latency, and records no per-request start
time (`--output-details` adds only the arrays above; start_s is null). Its latency is
stamped at the last streamed chunk ([DONE] included), while TTFT plus the inter-token gaps
end at the last content chunk, so we take e2e = ttft + sum(itl): at most that one tail
chunk shorter than SGLang's own (about 0.02% on the fixtures). A failed request has
`errors[i] != ""`, TTFT 0.0 and output length 0.

A request that streamed no token but raised no error (output length 0) is an error here,
"no output tokens (recorded as a success)"; SGLang counts it as completed with TTFT 0.

What served the run: 0.5.x writes the server's `/server_info` (its version and every
server argument) as `server_info`; behind a prefill/decode router it holds `prefill` and
`decode` lists of the workers' infos. The engine version and the arguments that shape
performance (parallelism, disaggregation, quantization, ...) go to `RunMeta.params`;
`random_*_len` / `sharegpt_output_len` (the length targets of those datasets) to the
workload's `input_tokens` / `output_tokens`.

Versions: 0.4.x writes mean/median/std/p99 (p95 for ITL only); 0.5.x adds p90/p95 for every
metric, `total_throughput`, `tag`, `server_info` and peak counters. Both load the same way.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from loadlens.errors import TraceFormatError
from loadlens.sources.jsonfile import read_json
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

NAME = "sglang"
TOOL = "sglang.bench_serving"
METHOD_NOTE = (
    "SGLang: end-to-end latency per request is TTFT + the inter-token gaps (SGLang's own also "
    "counts the stream's closing chunk, under 0.1% on real files); requests that streamed no "
    "token are errors here, while SGLang counts them as completed with TTFT 0."
)
NO_OUTPUT = "no output tokens (recorded as a success)"
# server_info keys kept in params.server_args: those that shape performance, when set.
SERVER_ARGS = (
    "tp_size",
    "dp_size",
    "pp_size",
    "ep_size",
    "enable_dp_attention",
    "quantization",
    "kv_cache_dtype",
    "attention_backend",
    "max_running_requests",
    "speculative_algorithm",
    "reasoning_parser",
)
# Values that mean "not set" / the default (disaggregation_mode "null" is SGLang's string).
UNSET = (None, "null", "auto", False)
DEFAULT_ONE = ("dp_size", "pp_size", "ep_size")
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
RANDOM_DATASETS = ("random", "random-ids", "random-image", "image")


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
        # Python's json (which SGLang writes with) emits Infinity for an unlimited rate.
        doc = read_json(path, raw)
    except TraceFormatError as e:
        raise TraceFormatError(path, e.problem, line=n) from None
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
    # A stream that ended without a token (no length, no gap) is completed for SGLang, with
    # TTFT 0: no success. (0.4.x writes length 0 for a streamed answer without usage.)
    silent = (
        ~failed
        & (pl.col("output_tokens") == 0).fill_null(False)
        & (pl.col("itl_s").list.len() == 0).fill_null(True)
    )
    bad = failed | silent
    return frame.with_columns(
        run_key=pl.lit(key),
        status=pl.when(bad).then(pl.lit("error")).otherwise(pl.lit("ok")),
        # SGLang writes TTFT 0.0 and output length 0 for a failed request: it saw no token.
        ttft_s=pl.when(bad).then(None).otherwise(pl.col("ttft_s")),
        output_tokens=pl.when(failed).then(None).otherwise(pl.col("output_tokens")),
        e2e_s=pl.when(bad)
        .then(None)
        .otherwise(pl.col("ttft_s") + pl.col("itl_s").list.sum().fill_null(0.0)),
        error=pl.when(failed)
        .then(pl.col("error"))
        .when(silent)
        .then(pl.lit(NO_OUTPUT))
        .otherwise(None),
    )


def _workload(doc: dict[str, Any]) -> dict[str, Any]:
    """Dataset and length targets in the canonical keys, then SGLang's own fields. SGLang
    writes `random_input_len`/`random_output_len` (their defaults) whatever the dataset:
    they are targets only for its random datasets."""
    out: dict[str, Any] = {}
    dataset = doc.get("dataset_name")
    if dataset is not None:
        out["dataset"] = dataset
    if dataset in RANDOM_DATASETS:
        for canonical, key in (
            ("input_tokens", "random_input_len"),
            ("output_tokens", "random_output_len"),
        ):
            if isinstance(doc.get(key), int | float) and not isinstance(doc[key], bool):
                out[canonical] = doc[key]
    elif dataset == "sharegpt" and isinstance(doc.get("sharegpt_output_len"), int):
        out["output_tokens"] = doc["sharegpt_output_len"]
    return out | {k: doc[k] for k in WORKLOAD_KEYS if doc.get(k) is not None}


def _served(server: Any) -> tuple[dict[str, Any], str | None]:
    """params (engine and version, server_args) and model from `server_info`:
    one server's, or a prefill/decode router's `prefill`/`decode` worker lists."""
    if not isinstance(server, dict):
        return {}, None
    roles = {
        role: [w for w in server.get(role) or [] if isinstance(w, dict)]
        for role in ("prefill", "decode")
    }
    if roles["prefill"] or roles["decode"]:
        args: dict[str, Any] = {}
        versions = []
        model = None
        for role, workers in roles.items():
            if not workers:
                continue
            first = workers[0]
            model = model or first.get("model_path")
            if first.get("version"):
                versions.append(f"{first['version']} ({role})")
            for key, value in _server_args(first).items():
                args[f"{role}_{key}" if key != "disaggregation_mode" else key] = value
        args.pop("disaggregation_mode", None)
        backend = (roles["prefill"] or roles["decode"])[0].get("disaggregation_transfer_backend")
        args = (
            {"disaggregation": "prefill/decode"}
            | ({"transfer_backend": backend} if backend else {})
            | args
        )
        engine = "sglang " + " / ".join(versions) if versions else "sglang"
        return {"engine": engine, "server_args": args}, model
    params: dict[str, Any] = {}
    if server.get("version"):
        params["engine"] = f"sglang {server['version']}"
    if args := _server_args(server):
        params["server_args"] = args
    model = server.get("model_path")
    return params, str(model) if model is not None else None


def _server_args(info: dict[str, Any]) -> dict[str, Any]:
    """The performance-shaping arguments that differ from SGLang's defaults (tp_size
    always)."""
    return {
        k: info[k]
        for k in SERVER_ARGS
        if k in info
        and info[k] not in UNSET
        and not isinstance(info[k], dict | list)
        and not (k in DEFAULT_ONE and info[k] == 1)
    }


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
        completed = count(path, _number(path, doc, "completed", n), "completed", line=n) or 0
        detailed = "ttfts" in doc
        if detailed:
            frame = _requests(path, doc, key, n)
            frames.append(frame)
            num_requests = frame.height
            num_errors = int((frame["status"] != "ok").sum())
        else:
            num_requests, num_errors = None, None  # failures are not counted in the summary
        workload = _workload(doc)
        if mode == "rate" and doc.get("max_concurrency") is not None:
            workload["max_concurrency"] = doc["max_concurrency"]
        if not detailed:
            workload["completed"] = completed
        server = doc.get("server_info")
        params, model = _served(server)
        runs.append(
            make_run(
                path,
                run_key=key,
                load_mode=mode,
                load_value=value,
                duration_s=_number(path, doc, "duration", n),
                model=model,
                workload=workload,
                params=params,
                num_requests=num_requests,
                num_errors=num_errors,
            )
        )
        stats.extend(_run_stats(path, doc, key, n))
        duration = _number(path, doc, "duration", n)
        if "request_throughput" not in doc and completed and duration:
            # Late-2024 files omit it; SGLang's own definition is completed / duration.
            stats.append((key, "request_throughput_rps", "value", completed / duration))
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
