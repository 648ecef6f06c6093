"""Ray LLMPerf `token_benchmark_ray.py --results-dir DIR`: one level per run, in the
layouts people publish.

LLMPerf writes `<model>_<in>_<out>_individual_responses.json`, a JSON array with one object
per request (`ttft_s`, `end_to_end_latency_s`, `inter_token_latency_s`,
`number_input_tokens`, `number_output_tokens`, `error_code`, `error_msg`; seconds), and
`<model>_<in>_<out>_summary.json` beside it: the run's settings (`num_concurrent_requests`,
`mean_input_tokens`, ..., any `--metadata key=value`) and the tool's own statistics
(`results_ttft_s_quantiles_p95`, `results_end_to_end_latency_s_mean`, ...).

Layouts read (the per-request array is the primary, its summary its partner):
- the tool's own: both files side by side, paired by their common `<model>_<in>_<out>` stem;
- republished under other names (the llmperf-leaderboard's `individual/<name>.json` with
  `summary/<name>.json`): an array is paired with the file of the same name in a sibling
  folder whose name says "summary", or with `<name>_summary.json` beside it;
- an array alone: its rows, model and token targets from a tool-made file name, and an
  unknown load level (neither the rows nor the name record the concurrency);
- a summary alone (or one that does not belong to any array): summary-only.
A pair is made only when the summary counts the same requests and errors as the array.

Definitions that differ from ours: LLMPerf's per-request `inter_token_latency_s` is the sum
of the gaps from the request's start to its last content chunk (TTFT included), divided by
the output token count: neither our ITL nor TPOT. It is kept as the metric
`llmperf_itl_s` (summary statistics) and never fills `itl_s`; requests carry no per-token
gaps. LLMPerf records no per-request start time (nor an end time; to llmperf f1d6bed, the
array is in completion order): start_s is null. Its
`request_output_throughput_token_per_s` (and the summary's statistics of it) is not read:
before llmperf afd137a (April 2024) it was streamed chunks / E2E, while
`number_output_tokens` is the Llama-2 tokenizer's recount of the text. Duration is not
saved: we take completed / completed-per-minute, LLMPerf's own window.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.sources.jsonfile import as_float, read_json
from loadlens.trace import (
    REQUEST_SCHEMA,
    RUN_STAT_SCHEMA,
    SourceInfo,
    Trace,
    count,
    empty,
    file_sha256,
    make_run,
    number,
    requests_from_rows,
    stats_frame,
)

NAME = "llmperf"
TOOL = "llmperf token_benchmark_ray"
METHOD_NOTE = (
    "LLMPerf's percentiles are pandas' linear quantiles over its successful requests, as ours"
    " are, and its throughput divides their output tokens (the Llama-2 tokenizer's count of the"
    " text, whatever the model) by the test's wall time, which it does not save: loadlens takes"
    " it as completed requests / completed per minute (no throughput for a per-request file"
    " without its summary). Not used: its per-request request_output_throughput (streamed"
    " chunks, not tokens, per second before April 2024) and inter_token_latency_s"
    " ((TTFT + gaps) / tokens, kept apart as llmperf_itl_s)."
)
INDIVIDUAL_SUFFIX = "_individual_responses.json"
SUMMARY_SUFFIX = "_summary.json"
# `<model>_<mean in>_<mean out>`: how token_benchmark_ray.py names its files.
TOOL_STEM = re.compile(r"^(?P<model>.+)_(?P<input>\d+)_(?P<output>\d+)$")
STAT_KEY = re.compile(
    r"^results_(inter_token_latency_s|ttft_s|end_to_end_latency_s)"
    r"_(?:quantiles_(p\d+)|(mean|min|max|stddev))$"
)
METRIC = {
    "ttft_s": "ttft_s",
    "end_to_end_latency_s": "e2e_s",
    "inter_token_latency_s": "llmperf_itl_s",  # not our ITL: see the module docstring
}
# Keys only LLMPerf's flattened `results` dict writes.
SUMMARY_MARKS = (
    b'"results_ttft_s_mean"',
    b'"results_end_to_end_latency_s_mean"',
    b'"results_num_completed_requests_per_min"',
)
RECORD_MARKS = (b'"end_to_end_latency_s"', b'"inter_token_latency_s"', b'"ttft_s"')
REQUIRED = ("ttft_s", "end_to_end_latency_s", "number_input_tokens", "number_output_tokens")
SETTINGS = {
    "model",
    "version",
    "name",
    "timestamp",
    "mean_input_tokens",
    "stddev_input_tokens",
    "mean_output_tokens",
    "stddev_output_tokens",
    "num_concurrent_requests",
    "additional_sampling_params",
}
WORKLOAD_EXTRAS = ("stddev_input_tokens", "stddev_output_tokens", "additional_sampling_params")


def detect(path: Path, head: bytes) -> bool:
    if path.suffix.lower() != ".json":
        return False
    text = head.lstrip()
    if text.startswith(b"["):
        if path.name.endswith(INDIVIDUAL_SUFFIX) and text.rstrip() == b"[]":
            return True  # a run in which nothing completed, under the tool's own name
        return all(mark in head for mark in RECORD_MARKS)
    if text.startswith(b"{"):
        return any(mark in head for mark in SUMMARY_MARKS)
    return False


def partners(path: Path) -> list[Path]:
    """The summary that belongs to a per-request array (read with it)."""
    if not _is_array(path):
        return []
    try:
        records = read_json(path)
    except TraceFormatError:
        return []  # load() says what is wrong with it
    summary = _summary_for(path, records) if isinstance(records, list) else None
    return [summary[0]] if summary is not None else []


def _is_array(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(4096).lstrip().startswith(b"[")


def _candidates(path: Path) -> list[Path]:
    """Where a per-request array's summary may be, by the layouts this module knows."""
    if path.name.endswith(INDIVIDUAL_SUFFIX):
        return [path.with_name(path.name.removesuffix(INDIVIDUAL_SUFFIX) + SUMMARY_SUFFIX)]
    found = [path.with_name(path.stem + SUMMARY_SUFFIX)]
    study = path.parent.parent
    if path.parent != study:
        found += [
            d / path.name
            for d in sorted(study.iterdir())
            if d.is_dir() and d != path.parent and "summar" in d.name.lower()
        ]
    return found


def _summary_for(path: Path, records: list[Any]) -> tuple[Path, dict[str, Any]] | None:
    """The one summary that clearly belongs to `records`: where the layout puts it, an
    LLMPerf summary, and counting the same requests and errors. None when none or several."""
    matches = []
    for candidate in _candidates(path):
        if not candidate.is_file() or candidate.resolve() == path.resolve():
            continue
        with candidate.open("rb") as f:
            head = f.read(64 * 1024)
        if not (head.lstrip().startswith(b"{") and any(m in head for m in SUMMARY_MARKS)):
            continue
        try:
            doc = read_json(candidate)
        except TraceFormatError:
            continue  # loaded on its own, it says what is wrong with it
        if isinstance(doc, dict) and _same_run(doc, records):
            matches.append((candidate, doc))
    return matches[0] if len(matches) == 1 else None


def _same_run(doc: dict[str, Any], records: list[Any]) -> bool:
    started = as_float(doc.get("results_num_requests_started"))
    errors = as_float(doc.get("results_number_errors"))
    failed = sum(1 for r in records if isinstance(r, dict) and r.get("error_code") is not None)
    return (started is None or started == len(records)) and (errors is None or errors == failed)


def _number(path: Path, doc: dict[str, Any], key: str) -> float | None:
    return number(path, doc.get(key), key, finite=False)


def _check_summary(path: Path, doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected a JSON object (an LLMPerf summary)")
    if not any(STAT_KEY.match(k) for k in doc) and "results_num_requests_started" not in doc:
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
            continue  # pandas' NaN: no successful request to take it from
        statistic = m.group(2) or {"stddev": "std"}.get(m.group(3), m.group(3))
        rows.append((METRIC[m.group(1)], statistic, value))
    tput = _number(path, doc, "results_mean_output_throughput_token_per_s")
    if tput is not None and math.isfinite(tput):
        rows.append(("output_throughput_tps", "value", tput))
    per_min = _number(path, doc, "results_num_completed_requests_per_min")
    if per_min is not None and math.isfinite(per_min):
        rows.append(("request_throughput_rps", "value", per_min / 60.0))
    return stats_frame(rows, "0")


def _error_text(code: Any, message: Any) -> str:
    text = str(message).strip() if message else ""
    if isinstance(code, int | float) and not isinstance(code, bool) and math.isfinite(code):
        code = int(code) if code == int(code) else code
        label = f"HTTP {code}" if isinstance(code, int) and 100 <= code < 600 else f"error {code}"
    else:
        label = f"error {code}"
    return f"{label}: {text}" if text else f"{label} (no message)"


def _requests(path: Path, records: list[Any]) -> pl.DataFrame:
    rows = []
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise TraceFormatError(path, f"request #{i}: expected an object, got {rec!r:.40}")
        for key in REQUIRED:
            if key not in rec:
                raise TraceFormatError(path, f"request #{i}: missing", field=key)
        for key in REQUIRED:
            value = rec[key]
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                raise TraceFormatError(
                    path, f"request #{i}: expected a number, got {value!r}", field=key
                )
        code = rec.get("error_code")
        if code is not None and (isinstance(code, bool) or not isinstance(code, int | float | str)):
            raise TraceFormatError(
                path, f"request #{i}: expected a number or null, got {code!r}", field="error_code"
            )
        failed = code is not None
        ttft, e2e, out = rec["ttft_s"], rec["end_to_end_latency_s"], rec["number_output_tokens"]
        error = _error_text(code, rec.get("error_msg")) if failed else None
        if failed and not (e2e or 0) > 0:
            # LLMPerf's placeholders for a request that never answered: 0 s, and the BOS
            # token its tokenizer counts in an empty text as 1 output token.
            ttft = e2e = out = None
        elif failed and not (ttft or 0) > 0:
            ttft = None  # it failed before its first token
        elif not failed and out == 0:
            error, ttft, e2e = "no output tokens (LLMPerf counted it completed)", None, None
        rows.append(
            {
                "seq": i,
                "ttft_s": ttft,
                "e2e_s": e2e,
                "input_tokens": rec["number_input_tokens"],
                "output_tokens": out,
                "status": "ok" if error is None else "error",
                "error": error,
            }
        )
    return requests_from_rows(path, rows, "0")


def _from_name(path: Path) -> dict[str, Any]:
    """Model and token targets from a file name token_benchmark_ray.py made (the model as
    the tool sanitised it: `meta-llama-Llama-2-7b-chat-hf`)."""
    if not path.name.endswith(INDIVIDUAL_SUFFIX):
        return {}
    m = TOOL_STEM.match(path.name.removesuffix(INDIVIDUAL_SUFFIX))
    if not m:
        return {}
    return {
        "model": m["model"],
        "mean_input_tokens": int(m["input"]),
        "mean_output_tokens": int(m["output"]),
    }


def load(path: Path) -> Trace:
    """One LLMPerf run: the per-request array (with its summary where one belongs to it),
    or a summary alone."""
    doc_or_records = read_json(path)
    summary: dict[str, Any] | None
    if isinstance(doc_or_records, list):
        requests: pl.DataFrame | None = _requests(path, doc_or_records)
        found = _summary_for(path, doc_or_records)
        summary = _check_summary(found[0], found[1]) if found is not None else None
        doc = summary if summary is not None else _from_name(path)
        stats_path = found[0] if found is not None else path
    else:
        requests = None
        summary = doc = _check_summary(path, doc_or_records)
        stats_path = path
    concurrency = _number(stats_path, doc, "num_concurrent_requests")
    completed = _number(stats_path, doc, "results_num_completed_requests")
    per_min = _number(stats_path, doc, "results_num_completed_requests_per_min")
    duration = completed * 60.0 / per_min if completed and per_min else None
    timestamp = _number(stats_path, doc, "timestamp")  # when the results were written
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
        num_requests = count(path, started_n, "results_num_requests_started")
        num_errors = count(path, errors_n, "results_number_errors")
    run = make_run(
        path,
        run_key="0",
        load_mode="concurrency" if concurrency is not None else "unknown",
        load_value=concurrency,
        started_at=started,
        duration_s=duration,
        model=str(doc["model"]) if doc.get("model") is not None else None,
        workload=_workload(doc),
        params={k: v for k, v in (summary or {}).items() if _is_user_metadata(k, v)},
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
        run_stats=_run_stats(stats_path, summary)
        if summary is not None
        else empty(RUN_STAT_SCHEMA, "run_key"),
    )


def _workload(doc: dict[str, Any]) -> dict[str, Any]:
    """The token targets under the shared keys, then LLMPerf's spreads and sampling params."""
    workload: dict[str, Any] = {}
    for ours, theirs in (
        ("input_tokens", "mean_input_tokens"),
        ("output_tokens", "mean_output_tokens"),
    ):
        value = as_float(doc.get(theirs))
        if value is not None:
            workload[ours] = int(value) if value == int(value) else value
    workload |= {k: doc[k] for k in WORKLOAD_EXTRAS if doc.get(k) not in (None, {}, "")}
    return workload


def _is_user_metadata(key: str, value: Any) -> bool:
    """`--metadata key=value` pairs the user added to the summary (the leaderboard's
    `framework`, `model_size`, `api`): what served the run, as they recorded it."""
    return key not in SETTINGS and not key.startswith("results_") and value is not None
