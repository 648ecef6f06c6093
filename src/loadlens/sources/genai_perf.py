"""NVIDIA GenAI-Perf (`genai-perf profile`) artifacts, and perf_analyzer's profile export.

GenAI-Perf drives the `perf_analyzer` binary, which writes `profile_export.json`:
`{"experiments": [{"experiment": {"mode": "concurrency"|"request_rate", "value": N},
"requests": [{"timestamp": ns, "request_inputs": {...}, "response_timestamps": [ns, ...],
"response_outputs": [{"response": "data: {...}\\n\\n"}, ...]}], "window_boundaries": [...]}],
"version": "<perf_analyzer version>", "service_kind": "openai", "endpoint": "..."}`.
GenAI-Perf then writes its summary `profile_export_genai_perf.json` (each metric `{"unit",
"avg", "p50", ..., "std"}`) and `.csv`. The per-request file is primary; `partners()` names
the summary files. Each experiment is one load level (run_key = its index).

Definitions, as GenAI-Perf 0.0.16 computes them (`llm_profile_data_parser.py`):

* Responses without text (`data: [DONE]`, role-only or usage-only chunks) are dropped first.
  TTFT = first text response - request timestamp; request latency = last text response -
  request timestamp (so the `[DONE]` tail is not part of it); our `itl_s` are the gaps
  between text responses.
* Its "Inter Token Latency" is per request (latency - TTFT) / (output tokens - 1): the
  first token excluded, i.e. loadlens's TPOT, stored as `tpot_s`.
* Throughputs divide by max(last response) - min(request timestamp); that is `duration_s`.
* GenAI-Perf counts tokens with the model's tokenizer, which loadlens does not have: output
  tokens are the server's `usage.completion_tokens` where a chunk carries usage, else the
  number of text responses (one token per chunk, true of the streaming servers measured
  here); input tokens from `usage.prompt_tokens`, else from the summary when it shows one
  length for every request (min == max, so exact), else unknown.

The files do not record GenAI-Perf's own version, only perf_analyzer's: tool_version says
`perf_analyzer <version>`.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.sources import nvidia_summary
from loadlens.sources.nvidia_summary import csv_stats, json_stats
from loadlens.trace import (
    REQUEST_SCHEMA,
    RUN_STAT_SCHEMA,
    RunMeta,
    SourceInfo,
    Trace,
    conform_requests,
    empty,
    file_sha256,
    make_run,
)
from loadlens.trace import count as count_of

NAME = "genai-perf"
# What GenAI-Perf writes into an artifact directory beside its traces.
SIDE_FILES = ("inputs.json", "llm_inputs.json")
SIDE_DIRS = ("plots", "logs")
TOOL = "genai-perf"
LATENCIES = {
    "time_to_first_token": "ttft_s",
    "request_latency": "e2e_s",
    "inter_token_latency": "tpot_s",  # per request (latency - ttft) / (osl - 1)
}
THROUGHPUTS = {
    "request_throughput": "request_throughput_rps",
    "output_token_throughput": "output_throughput_tps",
    "request_goodput": "request_goodput_rps",
}
CSV_LATENCIES = {
    "Time To First Token": "ttft_s",
    "Request Latency": "e2e_s",
    "Inter Token Latency": "tpot_s",
}
CSV_THROUGHPUTS = {
    "Request Throughput": "request_throughput_rps",
    "Output Token Throughput": "output_throughput_tps",
}
# AIPerf (GenAI-Perf's successor) writes look-alike summaries; these keys are only AIPerf's.
AIPERF_KEYS = (b'"aiperf_version"', b'"inter_chunk_latency"', b'"min_request_timestamp"')


# ----------------------------------------------------------------------------- detection


def _is_export(head: bytes) -> bool:
    return (
        head.lstrip().startswith(b"{")
        and b'"experiments"' in head
        and b'"response_timestamps"' in head
    )


def _is_summary(head: bytes) -> bool:
    return (
        head.lstrip().startswith(b"{")
        and b'"request_throughput"' in head
        and b'"request_latency"' in head
        and (b'"perf_analyzer"' in head or b'"service_kind"' in head)
        and not any(k in head for k in AIPERF_KEYS)
    )


def _is_csv(head: bytes) -> bool:
    return (
        head.startswith(b"Metric,avg,min,max,p99,")
        and b"\nRequest Latency (ms)," in head
        and b"Inter Chunk Latency" not in head
        and b"Benchmark Duration" not in head
    )


def detect(path: Path, head: bytes) -> bool:
    """perf_analyzer's profile export, GenAI-Perf's summary JSON, or its summary CSV."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _is_export(head) or _is_summary(head)
    if suffix == ".csv":
        return _is_csv(head)
    return False


def partners(path: Path) -> list[Path]:
    """The profile export reads its summary JSON/CSV; the summary JSON reads its CSV twin."""
    if path.suffix.lower() != ".json":
        return []
    is_summary = path.name.endswith("_genai_perf.json")
    return nvidia_summary.partners(path, "genai_perf", is_summary=is_summary)


# ----------------------------------------------------------------------------- responses


def _chunk_text(obj: Any) -> str:
    """The text one OpenAI/Triton response object carries ('' for none)."""
    if not isinstance(obj, dict):
        return ""
    if "text_output" in obj:  # Triton generate
        return str(obj["text_output"] or "")
    choices = obj.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    choice = choices[0]
    for part in (choice.get("delta"), choice.get("message")):
        if isinstance(part, dict) and part.get("content"):
            return str(part["content"])
    return str(choice.get("text") or "")


def _response(raw: str) -> tuple[str, dict[str, Any] | None]:
    """Text and usage of one recorded response (possibly several SSE events at once)."""
    text, usage = [], None
    for event in raw.strip().split("\n\n"):
        event = event.strip()
        if not event or event.startswith((":", "event:", "id:", "retry:")):
            continue
        data = event.removeprefix("data:").strip()
        if data == "[DONE]":
            continue
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue  # a splintered chunk; GenAI-Perf glues it to its neighbour
        text.append(_chunk_text(obj))
        if isinstance(obj, dict) and isinstance(obj.get("usage"), dict):
            usage = obj["usage"]
    return "".join(text), usage


def _request_row(path: Path, where: str, req: Any) -> dict[str, Any]:
    if not isinstance(req, dict):
        raise TraceFormatError(path, "expected a request object", field=where)
    sent = req.get("timestamp")
    stamps = req.get("response_timestamps")
    outputs = req.get("response_outputs")
    if isinstance(sent, bool) or not isinstance(sent, int):
        raise TraceFormatError(path, "expected integer nanoseconds", field=f"{where}.timestamp")
    if not isinstance(stamps, list) or not all(
        isinstance(t, int) and not isinstance(t, bool) for t in stamps
    ):
        raise TraceFormatError(
            path, "expected a list of integer nanoseconds", field=f"{where}.response_timestamps"
        )
    if not isinstance(outputs, list) or len(outputs) != len(stamps):
        raise TraceFormatError(
            path,
            f"expected one output per response timestamp ({len(stamps)})",
            field=f"{where}.response_outputs",
        )
    text_stamps: list[int] = []
    usage: dict[str, Any] | None = None
    for stamp, out in zip(stamps, outputs, strict=True):
        raw = out.get("response") if isinstance(out, dict) else None
        if isinstance(out, dict) and raw is None and "text_output" in out:
            text, chunk_usage = _chunk_text(out), None
        else:
            text, chunk_usage = _response(str(raw or ""))
        usage = chunk_usage or usage
        if text:
            text_stamps.append(stamp)
    row: dict[str, Any] = {"sent_ns": sent, "end_ns": text_stamps[-1] if text_stamps else None}
    if not text_stamps:
        # GenAI-Perf skips such a request; we keep it, as a failure to answer.
        return row | {"status": "error", "error": "no text in the response"}
    gaps = [(b - a) / 1e9 for a, b in itertools.pairwise(text_stamps)]
    out_tokens = (usage or {}).get("completion_tokens")
    return row | {
        "ttft_s": (text_stamps[0] - sent) / 1e9,
        "e2e_s": (text_stamps[-1] - sent) / 1e9,
        "itl_s": gaps,
        "output_tokens": out_tokens if isinstance(out_tokens, int) else len(text_stamps),
        "input_tokens": (usage or {}).get("prompt_tokens"),
        "status": "ok",
        "error": None,
    }


def _experiment(path: Path, index: int, exp: Any) -> tuple[pl.DataFrame, dict[str, Any]]:
    where = f"experiments[{index}]"
    if not isinstance(exp, dict) or not isinstance(exp.get("requests"), list):
        raise TraceFormatError(path, "expected {experiment, requests: [...]}", field=where)
    rows = [_request_row(path, f"{where}.requests[{i}]", r) for i, r in enumerate(exp["requests"])]
    if not rows:
        raise TraceFormatError(path, "holds no requests", field=f"{where}.requests")
    origin = min(r["sent_ns"] for r in rows)
    ends = [r["end_ns"] for r in rows if r["end_ns"] is not None]
    frame = pl.DataFrame(
        [
            {
                "run_key": str(index),
                "seq": i,
                "start_s": (r["sent_ns"] - origin) / 1e9,
                "ttft_s": r.get("ttft_s"),
                "e2e_s": r.get("e2e_s"),
                "itl_s": r.get("itl_s"),
                "input_tokens": r.get("input_tokens"),
                "output_tokens": r.get("output_tokens"),
                "status": r["status"],
                "error": r["error"],
            }
            for i, r in enumerate(rows)
        ],
        schema={k: v for k, v in REQUEST_SCHEMA.items() if k != "run_id"} | {"run_key": pl.String},
    )
    spec: dict[str, Any] = exp["experiment"] if isinstance(exp.get("experiment"), dict) else {}
    facts = {
        "origin_ns": origin,
        "duration_s": (max(ends) - origin) / 1e9 if ends else None,
        "mode": spec.get("mode"),
        "value": spec.get("value"),
        "model": _model_of(exp["requests"][0]),
    }
    return frame, facts


def _model_of(req: dict[str, Any]) -> str | None:
    payload = (req.get("request_inputs") or {}).get("payload")
    try:
        body = orjson.loads(payload) if isinstance(payload, str) else None
    except orjson.JSONDecodeError:
        return None
    return body.get("model") if isinstance(body, dict) else None


# ----------------------------------------------------------------------------- summary


def _read_json(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as e:
        raise TraceFormatError(path, f"not valid JSON ({e}); a truncated file?") from None
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected a JSON object at the top level")
    return doc


def _config_load(doc: dict[str, Any]) -> tuple[str, float | None]:
    config = doc.get("input_config") or {}
    stimulus = (config.get("perf_analyzer") or {}).get("stimulus") or {}
    if isinstance(stimulus.get("concurrency"), int | float):
        return "concurrency", float(stimulus["concurrency"])
    if isinstance(stimulus.get("request_rate"), int | float):
        return "rate", float(stimulus["request_rate"])
    if isinstance(config.get("concurrency"), int | float):  # 0.0.x before the config file
        return "concurrency", float(config["concurrency"])
    if isinstance(config.get("request_rate"), int | float):
        return "rate", float(config["request_rate"])
    return "unknown", None


def _workload(doc: dict[str, Any]) -> dict[str, Any]:
    config = doc.get("input_config") or {}
    endpoint = config.get("endpoint") or {}
    data = config.get("input") or {}
    workload: dict[str, Any] = {
        k: endpoint[k] for k in ("type", "streaming", "service_kind") if k in endpoint
    }
    osl = (data.get("output_tokens") or {}).get("mean")
    if osl is not None:
        workload["osl_mean"] = osl
    if data.get("prompt_source"):
        workload["prompt_source"] = data["prompt_source"]
    measurement = (config.get("perf_analyzer") or {}).get("measurement") or {}
    if measurement.get("mode") == "request_count":
        workload["request_count"] = measurement.get("num")
    return workload


def _avg(doc: dict[str, Any], key: str) -> float | None:
    entry = doc.get(key)
    value = entry.get("avg") if isinstance(entry, dict) else None
    # true is an int to Python: a flag is no count or rate.
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


# ----------------------------------------------------------------------------- load


def _mode(mode: Any, value: Any) -> tuple[str, float | None]:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "unknown", None
    if mode == "concurrency":
        return "concurrency", float(value)
    if mode in ("request_rate", "rate"):
        return "rate", float(value)
    return "unknown", None


def _load_export(path: Path, doc: dict[str, Any]) -> Trace:
    experiments = doc.get("experiments")
    if not isinstance(experiments, list) or not experiments:
        raise TraceFormatError(path, "expected a non-empty list", field="experiments")
    summary_json, summary_csv = nvidia_summary.summary_names(path, "genai_perf")
    summary: dict[str, Any] = {}
    stats = empty(RUN_STAT_SCHEMA, "run_key")
    if len(experiments) == 1:  # GenAI-Perf summarises one experiment per artifact dir
        if summary_json.exists():
            summary = _read_json(summary_json)
            stats = json_stats(summary_json, summary, LATENCIES, THROUGHPUTS)
        elif summary_csv.exists():
            stats, _ = csv_stats(summary_csv, CSV_LATENCIES, CSV_THROUGHPUTS, "GenAI-Perf")
    frames, runs = [], []
    for i, exp in enumerate(experiments):
        frame, facts = _experiment(path, i, exp)
        mode, value = _mode(facts["mode"], facts["value"])
        frames.append(frame)
        runs.append(
            make_run(
                path,
                run_key=str(i),
                load_mode=mode,
                load_value=value,
                started_at=datetime.fromtimestamp(facts["origin_ns"] / 1e9, UTC).replace(
                    tzinfo=None
                ),
                duration_s=facts["duration_s"],
                model=facts["model"],
                workload=_workload(summary)
                | {"service_kind": doc.get("service_kind"), "endpoint": doc.get("endpoint")},
                num_requests=frame.height,
                num_errors=int((frame["status"] != "ok").sum()),
            )
        )
    requests = _constant_lengths(pl.concat(frames), summary)
    requests = conform_requests(path, requests)
    return _trace(path, tuple(runs), requests, stats, doc.get("version"))


def _constant_lengths(frame: pl.DataFrame, summary: dict[str, Any]) -> pl.DataFrame:
    """Where GenAI-Perf's summary shows every request had the same input length (min ==
    max), that length is exact for each answered request: use it where no usage said."""
    entry = summary.get("input_sequence_length")
    if not isinstance(entry, dict) or entry.get("min") is None or entry["min"] != entry.get("max"):
        return frame
    fill = (pl.col("status") == "ok") & pl.col("input_tokens").is_null()
    return frame.with_columns(
        input_tokens=pl.when(fill)
        .then(pl.lit(int(entry["min"]), dtype=pl.Int64))
        .otherwise(pl.col("input_tokens"))
    )


def _trace(
    path: Path,
    runs: tuple[RunMeta, ...],
    requests: pl.DataFrame,
    stats: pl.DataFrame,
    pa_version: Any,
) -> Trace:
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        tool_version=f"perf_analyzer {pa_version}" if pa_version else None,
    )
    return Trace(source=source, runs=runs, requests=requests, run_stats=stats)


def _load_summary(path: Path, doc: dict[str, Any] | None) -> Trace:
    values: dict[str, float] = {}
    if doc is None:
        stats, values = csv_stats(path, CSV_LATENCIES, CSV_THROUGHPUTS, "GenAI-Perf")
        doc = {}
    else:
        stats = json_stats(path, doc, LATENCIES, THROUGHPUTS)
        if stats.is_empty():
            raise TraceFormatError(
                path,
                "has no summary metrics like 'time_to_first_token' or 'request_latency'",
                hint="genai-perf writes profile_export_genai_perf.json",
            )
    mode, value = _config_load(doc)
    count = _avg(doc, "request_count") or values.get("Request Count")
    names = (doc.get("input_config") or {}).get("model_names") or [None]
    run = make_run(
        path,
        run_key="0",
        load_mode=mode,
        load_value=value,
        model=names[0],
        workload=_workload(doc),
        num_requests=count_of(path, count, "request_count"),
    )
    return _trace(path, (run,), empty(REQUEST_SCHEMA, "run_key"), stats, None)


def load(path: Path) -> Trace:
    """Read a profile export (with its GenAI-Perf summary) or a summary JSON/CSV alone."""
    if path.suffix.lower() == ".csv":
        return _load_summary(path, None)
    doc = _read_json(path)
    if "experiments" in doc:
        return _load_export(path, doc)
    return _load_summary(path, doc)
