"""kubernetes-sigs `inference-perf` report directories (one benchmark = several files).

inference-perf writes, into one directory (optionally with a file-name prefix):

- `stage_N_lifecycle_metrics.json`: the tool's summary of load stage N (`load_summary`,
  `successes`, `failures`). **One stage is one loadlens run** (run_key `stage_N`): stage
  `load_summary.requested_rate` is the load level (mode "rate"; `concurrency` for the
  concurrent load type).
- `summary_lifecycle_metrics.json`: the same summary over all stages together. It is read
  with the stage files and never becomes a run of its own; only when no stage file sits
  beside it (`per_stage: false`) is it one run, `all`.
- `per_request_lifecycle_metrics.json` (`per_request: true`): a list of every request,
  `start_time`/`end_time` on the client's `perf_counter` clock, its token stamps, error.
  It carries no stage id: stages run one after another and each waits for its last
  request, so the records sorted by start time split into the stages by the stage files'
  `load_summary.count`; the split is checked against each stage's `send_duration` (and
  `benchmark_time_seconds`) before any row is kept.
- `config.yaml` (model, API type, data distributions, load type) and, with Prometheus,
  `*_prometheus_metrics.json`: read for metadata / passed over.

Three per-request layouts exist (the reports carry no version number, so SourceInfo's
version names the layout): <= v0.4 `info.{input_tokens, output_tokens, output_token_times}`;
v0.5 `info.response_info.{...}`; >= v0.6 `info.request_metrics.text.input_tokens` and
`info.response_metrics.{output_tokens, server_usage, chunk_times, output_token_times}`.
Summaries from <= v0.4 have no `benchmark_time_seconds`. Their `schedule_delay` statistics
are negative when a request left a little before its scheduled time (real reports have
-1 ms minimums): those are kept as written, the one metric allowed below zero.

Per-request rows, as the tool defines its own numbers: TTFT = first token stamp - start,
E2E = end - start (the tool's `request_latency`), ITL = gaps between consecutive token
stamps (the tool pools exactly these), output tokens = the client-side count the tool
uses (the server's `usage.completion_tokens` when `use_server_output_tokens` is set).
The tool's TPOT is (last token stamp - first) / (n - 1); loadlens's is (E2E - TTFT) / (n - 1),
which also counts the stream's tail (usage chunk, `[DONE]`) after the last token.

v0.2 stamped every SSE *line* (the blank separators and `[DONE]` too), so its stamps are
not token times: rows from such files get no ITL, and the <= v0.4 summaries' TPOT/ITL are
kept as `tpot_stamp_s`/`itl_stamp_s`, never as `tpot_s`/`itl_s`.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from loadlens.errors import TraceFormatError
from loadlens.sources.jsonfile import read_json
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

NAME = "inference-perf"
TOOL = "inference-perf"
METHOD_NOTE = (
    "inference-perf: a stage's throughput divides by the time from its first request's start "
    "to its last request's end (failed requests included); reports from before v0.3 (two "
    "stream stamps per token) keep their TPOT/ITL apart as `tpot_stamp_s`/`itl_stamp_s`."
)

STAGE = re.compile(r"^(?P<prefix>.*?)stage_(?P<n>\d+)_lifecycle_metrics\.json$")
SUMMARY_SUFFIX = "summary_lifecycle_metrics.json"
PER_REQUEST_SUFFIX = "per_request_lifecycle_metrics.json"
CONFIG_SUFFIX = "config.yaml"
# Reports read only as partners (server-side Prometheus summaries, per-LoRA-adapter slices).
PASSENGER = re.compile(
    r"^(?P<prefix>.*?)(?:(?:summary|stage_\d+)_prometheus_metrics|adapter_.+_lifecycle_metrics)\.json$"
)

LATENCY = {  # inference-perf successes.latency key -> canonical metric (new layouts)
    "request_latency": "e2e_s",
    "time_to_first_token": "ttft_s",
    "time_per_output_token": "tpot_s",
    "inter_token_latency": "itl_s",
    "normalized_time_per_output_token": "ntpot_s",
}
OLD_STAMP_METRICS = {"tpot_s": "tpot_stamp_s", "itl_s": "itl_stamp_s"}
THROUGHPUT = {
    "requests_per_sec": "request_throughput_rps",
    "output_tokens_per_sec": "output_throughput_tps",
    "total_tokens_per_sec": "total_token_throughput_tps",
    "input_tokens_per_sec": "input_throughput_tps",
}
STATUS_BY_ERROR_TYPE = {"TimeoutError": "timeout", "CancelledError": "cancelled"}


# --- files and roles -------------------------------------------------------------------


def _role(path: Path) -> tuple[str, str] | None:
    """(role, prefix) from the file name, or None for a name inference-perf never writes."""
    name = path.name
    if m := STAGE.match(name):
        return "stage", m["prefix"]
    if m := PASSENGER.match(name):
        return "passenger", m["prefix"]
    for role, suffix in (
        ("summary", SUMMARY_SUFFIX),
        ("per_request", PER_REQUEST_SUFFIX),
        ("config", CONFIG_SUFFIX),
    ):
        if name.endswith(suffix):
            return role, name.removesuffix(suffix)
    return None


def detect(path: Path, head: bytes) -> bool:
    """inference-perf's report names, and their content: a ResponsesSummary object, a list
    of request records, or the dumped config."""
    role = _role(path)
    if role is None:
        return False
    body = head.lstrip()
    if role[0] in ("stage", "summary", "passenger"):
        return (
            body.startswith(b"{")
            and b'"load_summary"' in head
            and b'"successes"' in head
            and b'"failures"' in head
        )
    if role[0] == "per_request":
        return body.startswith(b"[") and (
            body == b"[]"
            or (b'"start_time"' in head and b'"end_time"' in head and b'"info"' in head)
        )
    return b"request_lifecycle:" in head and b"load:" in head and b"api:" in head


def _siblings(path: Path) -> dict[str, Any]:
    """The reports of the same benchmark as `path`: same directory, same name prefix."""
    role = _role(path)
    prefix = role[1] if role else ""
    found: dict[str, Any] = {"stages": {}, "passengers": []}
    for f in path.parent.iterdir():
        r = _role(f)
        if r is None or r[1] != prefix or not f.is_file():
            continue
        if r[0] == "stage":
            m = STAGE.match(f.name)
            assert m is not None
            found["stages"][int(m["n"])] = f
        elif r[0] == "passenger":
            found["passengers"].append(f)
        else:
            found[r[0]] = f
    return found


def partners(path: Path) -> list[Path]:
    """Files read together with `path` (the registry does not load them on their own)."""
    role = _role(path)
    sib = _siblings(path)
    extra = [sib[k] for k in ("per_request", "config") if k in sib] + sib["passengers"]
    if role and role[0] == "stage":
        return extra + ([sib["summary"]] if "summary" in sib else [])
    if role and role[0] == "summary" and not sib["stages"]:
        return extra
    if role and role[0] == "per_request" and not sib["stages"] and "summary" not in sib:
        return [p for p in extra if p != path]
    return []


# --- reading ---------------------------------------------------------------------------


def _json(path: Path) -> Any:
    return read_json(path)


def _summary_doc(path: Path) -> dict[str, Any]:
    doc = _json(path)
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected a JSON object (inference-perf ResponsesSummary)")
    for key in ("load_summary", "successes", "failures"):
        if not isinstance(doc.get(key), dict):
            raise TraceFormatError(path, "missing or not an object", field=key)
    number(path, doc["load_summary"].get("count"), "load_summary.count", required=True)
    return doc


def _config(path: Path | None) -> dict[str, Any]:
    """The dumped config, or {} when absent or unreadable (it only adds metadata)."""
    if path is None:
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _get(doc: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


# --- summaries -> run_stats ------------------------------------------------------------


def _stats_rows(path: Path, doc: dict[str, Any]) -> list[tuple[str, str, float]]:
    old = "benchmark_time_seconds" not in doc  # <= v0.4: TPOT/ITL are stream-stamp gaps
    rows: list[tuple[str, str, float]] = []

    def dist(metric: str, block: Any, where: str) -> None:
        if block is None:
            return  # the tool had no samples (e.g. no streamed request)
        if not isinstance(block, dict):
            raise TraceFormatError(path, "expected an object of statistics", field=where)
        for stat, value in block.items():
            v = number(path, value, f"{where}.{stat}")
            if v is not None:
                rows.append((metric, str(stat), v))

    latency = _get(doc, "successes", "latency") or {}
    for key, metric in LATENCY.items():
        if old:
            metric = OLD_STAMP_METRICS.get(metric, metric)
        dist(metric, latency.get(key), f"successes.latency.{key}")
    dist("failed_e2e_s", doc["failures"].get("request_latency"), "failures.request_latency")
    dist(
        "schedule_delay_s", doc["load_summary"].get("schedule_delay"), "load_summary.schedule_delay"
    )
    throughput = _get(doc, "successes", "throughput") or {}
    for key, metric in THROUGHPUT.items():
        v = number(path, throughput.get(key), f"successes.throughput.{key}")
        if v is not None:
            rows.append((metric, "value", v))
    achieved = number(path, doc["load_summary"].get("achieved_rate"), "load_summary.achieved_rate")
    if achieved is not None:
        rows.append(("achieved_rate_rps", "value", achieved))
    goodput = _get(doc, "successes", "goodput_metrics", "request_goodput")
    if (g := number(path, goodput, "successes.goodput_metrics.request_goodput")) is not None:
        rows.append(("request_goodput_rps", "value", g))
    return rows


# --- per-request records -> rows -------------------------------------------------------


def _record_fields(path: Path, i: int, rec: Any, use_server_tokens: bool) -> dict[str, Any]:
    """One record's raw numbers in every layout: start, end, stamps, tokens, error."""
    if not isinstance(rec, dict) or not isinstance(rec.get("info"), dict):
        raise TraceFormatError(path, f"record #{i}: expected an object with 'info'", field="info")
    start = number(path, rec.get("start_time"), f"[{i}].start_time", required=True)
    end = number(path, rec.get("end_time"), f"[{i}].end_time", required=True)
    info = rec["info"]
    if "response_metrics" in info or "request_metrics" in info:  # >= v0.6
        layout = ">=0.6"
        resp = info.get("response_metrics") or {}
        input_tokens = _get(info, "request_metrics", "text", "input_tokens")
        if input_tokens is None:
            input_tokens = info.get("input_tokens")
    elif "response_info" in info:  # v0.5
        layout = "0.5"
        resp = info.get("response_info") or {}
        input_tokens = info.get("input_tokens")
    else:  # <= v0.4
        layout = "<=0.4"
        resp = info
        input_tokens = info.get("input_tokens")
    stamps = resp.get("output_token_times") or resp.get("chunk_times") or []
    if not isinstance(stamps, list):
        raise TraceFormatError(path, f"record #{i}: expected a list", field="output_token_times")
    output_tokens = resp.get("output_tokens")
    usage = resp.get("server_usage")
    if use_server_tokens and isinstance(usage, dict) and usage.get("completion_tokens"):
        output_tokens = usage["completion_tokens"]
    error = rec.get("error")
    if error is not None and not isinstance(error, dict):
        raise TraceFormatError(path, f"record #{i}: expected an object or null", field="error")
    return {
        "layout": layout,
        "start": start,
        "end": end,
        "stamps": stamps,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "error": error,
    }


def _rows(path: Path, recs: list[dict[str, Any]], run_key: str) -> pl.DataFrame:
    t0 = min((r["start"] for r in recs), default=0.0)
    out: list[dict[str, Any]] = []
    for seq, r in enumerate(recs):
        stamps, n_out, err = r["stamps"], r["output_tokens"], r["error"]
        ok = err is None
        # v0.2 stamped every SSE line (blank separators too): about two per token.
        per_line = r["layout"] == "<=0.4" and isinstance(n_out, int) and len(stamps) > n_out + 2
        row: dict[str, Any] = {
            "run_key": run_key,
            "seq": seq,
            "start_s": r["start"] - t0,
            "e2e_s": r["end"] - r["start"],
            "input_tokens": r["input_tokens"],
            "output_tokens": n_out,
            "ttft_s": None,
            "itl_s": None,
            "status": "ok",
            "error": None,
        }
        if ok and stamps:
            row["ttft_s"] = stamps[0] - r["start"]
            if not per_line:
                row["itl_s"] = [b - a for a, b in itertools.pairwise(stamps)]
        if not ok:
            etype = str(err.get("error_type") or "error")
            msg = str(err.get("error_msg") or "")
            row["status"] = STATUS_BY_ERROR_TYPE.get(etype, "error")
            row["error"] = f"{etype}: {msg}" if msg else etype
        out.append(row)
    schema = {("run_key" if k == "run_id" else k): v for k, v in REQUEST_SCHEMA.items()}
    try:
        frame = (
            pl.DataFrame(out, schema=schema, orient="row")
            if out
            else empty(REQUEST_SCHEMA, "run_key")
        )
    except (TypeError, ValueError, pl.exceptions.PolarsError) as e:
        raise TraceFormatError(path, f"expected numbers in the request records: {e}") from None
    return conform_requests(path, frame)


def _read_records(path: Path, config: dict[str, Any]) -> list[dict[str, Any]]:
    doc = _json(path)
    if not isinstance(doc, list):
        raise TraceFormatError(path, "expected a JSON list of request records")
    use_server = bool(_get(config, "report", "request_lifecycle", "use_server_output_tokens"))
    recs = [_record_fields(path, i, rec, use_server) for i, rec in enumerate(doc)]
    return sorted(recs, key=lambda r: r["start"])


def _split_by_stage(
    path: Path, recs: list[dict[str, Any]], stage_docs: dict[int, dict[str, Any]]
) -> dict[int, list[dict[str, Any]]]:
    """Cut the start-sorted records into stages by the stage files' counts, and check it."""
    total = sum(int(d["load_summary"]["count"]) for d in stage_docs.values())
    if total != len(recs) or sorted(stage_docs) != list(range(len(stage_docs))):
        raise TraceFormatError(
            path,
            f"holds {len(recs)} requests but the stage reports beside it count {total} "
            f"over stages {sorted(stage_docs)}",
            hint="a stage report is missing or belongs to another benchmark",
        )
    out: dict[int, list[dict[str, Any]]] = {}
    at = 0
    for n in sorted(stage_docs):
        doc = stage_docs[n]
        count = int(doc["load_summary"]["count"])
        part = recs[at : at + count]
        at += count
        checks = [("load_summary.send_duration", doc["load_summary"].get("send_duration"), "s")]
        checks.append(("benchmark_time_seconds", doc.get("benchmark_time_seconds"), "e"))
        for field, expected, kind in checks:
            if expected is None or not part:
                continue
            got = (
                max(r["start"] for r in part) - part[0]["start"]
                if kind == "s"
                else max(r["end"] for r in part) - part[0]["start"]
            )
            if abs(got - float(expected)) > 1e-6:
                raise TraceFormatError(
                    path,
                    f"requests sorted by start time do not reproduce stage {n}'s {field} "
                    f"({got:.6f} vs {float(expected):.6f})",
                    hint="the per-request file and the stage reports disagree",
                )
        out[n] = part
    return out


# --- runs ------------------------------------------------------------------------------


def _workload(config: dict[str, Any], stage: int | None) -> dict[str, Any]:
    """Dataset and length targets from the config (canonical keys first), then the load
    and API settings that shaped the run."""
    w: dict[str, Any] = {}
    data_type = _get(config, "data", "type")
    if data_type is not None:
        w["dataset"] = data_type
    prefix = _get(config, "data", "shared_prefix")
    if data_type == "shared_prefix" and isinstance(prefix, dict):
        # Each prompt is the group's system prompt followed by a question (datagen).
        parts = [prefix.get("system_prompt_len"), prefix.get("question_len")]
        if all(_is_count(v) for v in parts):
            w["input_tokens"] = sum(parts)
        if _is_count(prefix.get("output_len")):
            w["output_tokens"] = prefix["output_len"]
    else:
        for key, name in (
            ("input_tokens", "input_distribution"),
            ("output_tokens", "output_distribution"),
        ):
            mean = _get(config, "data", name, "mean")
            if _is_count(mean):
                w[key] = mean
    for key, value in (
        ("api_type", _get(config, "api", "type")),
        ("streaming", _get(config, "api", "streaming")),
        ("data_type", data_type),
        ("load_type", _get(config, "load", "type")),
        ("server_type", _get(config, "server", "type")),
        ("ignore_eos", _get(config, "server", "ignore_eos")),
        ("input_distribution", _get(config, "data", "input_distribution")),
        ("output_distribution", _get(config, "data", "output_distribution")),
        ("shared_prefix", prefix),
        ("num_workers", _get(config, "load", "num_workers")),
        ("worker_max_concurrency", _get(config, "load", "worker_max_concurrency")),
    ):
        if value is not None:
            w[key] = value
    stages = _get(config, "load", "stages")
    spec = (
        stages[stage]
        if isinstance(stages, list) and stage is not None and stage < len(stages)
        else None
    )
    if isinstance(spec, dict) and spec.get("duration") is not None:
        w["stage_duration_s"] = spec["duration"]
    return w


def _is_count(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _params(config: dict[str, Any]) -> dict[str, Any]:
    """What served the run, as far as the config says: the model server's type."""
    server = _get(config, "server", "type")
    return {"engine": str(server)} if server is not None else {}


def _window_s(path: Path, doc: dict[str, Any]) -> float | None:
    """The stage's time window: `benchmark_time_seconds` (>= v0.5); before, the tool's own
    throughput divisor (first start to last end), as successes / requests_per_sec."""
    duration = number(path, doc.get("benchmark_time_seconds"), "benchmark_time_seconds")
    if duration is not None:
        return duration
    successes = number(path, doc["successes"].get("count"), "successes.count")
    rps = number(
        path,
        _get(doc, "successes", "throughput", "requests_per_sec"),
        "successes.throughput.requests_per_sec",
    )
    if successes and rps:
        return successes / rps
    return None


def _stage_level(
    path: Path, doc: dict[str, Any], config: dict[str, Any], n: int | None
) -> tuple[str, float | None]:
    load = doc["load_summary"]
    concurrency = number(path, load.get("concurrency"), "load_summary.concurrency")
    if concurrency is not None:
        return "concurrency", concurrency
    rate = number(path, load.get("requested_rate"), "load_summary.requested_rate")
    load_type = _get(config, "load", "type")
    if rate is not None and load_type in (None, "constant", "poisson"):
        return "rate", rate
    stages = _get(config, "load", "stages") or []
    if n is not None and isinstance(stages, list) and n < len(stages):
        stage = stages[n] if isinstance(stages[n], dict) else {}
        if load_type == "concurrent" and stage.get("concurrency_level") is not None:
            return "concurrency", float(stage["concurrency_level"])
        if load_type in ("constant", "poisson") and stage.get("rate") is not None:
            return "rate", float(stage["rate"])
    return "unknown", None


def _model(config: dict[str, Any]) -> str | None:
    model = _get(config, "server", "model_name")
    return str(model) if model is not None else None


def _run(
    path: Path,
    run_key: str,
    doc: dict[str, Any] | None,
    rows: pl.DataFrame | None,
    config: dict[str, Any],
    stage: int | None,
) -> RunMeta:
    if doc is not None:
        mode, value = _stage_level(path, doc, config, stage)
        failed = int(doc["failures"].get("count") or 0)
        num_requests: int | None = int(doc["load_summary"]["count"])
        num_errors: int | None = failed
        duration = _window_s(path, doc)
    else:
        stages = _get(config, "load", "stages")
        mode, value = "unknown", None
        if isinstance(stages, list) and len(stages) == 1:
            fake: dict[str, Any] = {"load_summary": {}, "failures": {}}
            mode, value = _stage_level(path, fake, config, 0)
        num_requests = num_errors = None
        duration = None
    if rows is not None and rows.height:
        num_requests = rows.height
        num_errors = int((rows["status"] != "ok").sum())
        if duration is None:
            duration = float((rows["start_s"] + rows["e2e_s"]).max())  # type: ignore[arg-type]
    return make_run(
        path,
        run_key=run_key,
        load_mode=mode,
        load_value=value,
        duration_s=duration,
        model=_model(config),
        workload=_workload(config, stage) | ({"stage": stage} if stage is not None else {}),
        params=_params(config),
        num_requests=num_requests,
        num_errors=num_errors,
    )


def _layout_of(doc: dict[str, Any] | None, rows_layout: str | None) -> str:
    if rows_layout is not None:
        return rows_layout
    if doc is not None:
        return ">=0.5" if "benchmark_time_seconds" in doc else "<=0.4"
    return "unknown"


def load(path: Path) -> Trace:
    """One stage report (one run), or a lone summary / per-request file (one run, `all`)."""
    role = _role(path)
    if role is None:
        raise TraceFormatError(path, "is not an inference-perf report file name")
    sib = _siblings(path)
    config = _config(sib.get("config"))
    kind = role[0]
    if kind == "config":
        raise TraceFormatError(
            path,
            "is an inference-perf config; no lifecycle report sits beside it",
            hint="reports are stage_N_/summary_/per_request_lifecycle_metrics.json",
        )
    if kind == "passenger":
        raise TraceFormatError(
            path,
            "is an inference-perf Prometheus/adapter report; loadlens reads it only beside "
            "the stage or summary lifecycle reports",
        )
    doc: dict[str, Any] | None = None
    recs: list[dict[str, Any]] | None = None
    per_request = sib.get("per_request")
    stage: int | None = None
    if kind == "stage":
        m = STAGE.match(path.name)
        assert m is not None
        stage = int(m["n"])
        run_key = f"stage_{stage}"
        stage_docs = {n: _summary_doc(f) for n, f in sib["stages"].items()}
        doc = stage_docs[stage]
        if per_request is not None:
            recs = _split_by_stage(per_request, _read_records(per_request, config), stage_docs)[
                stage
            ]
    elif kind == "summary":
        run_key = "all"
        doc = _summary_doc(path)
        if per_request is not None:
            recs = _read_records(per_request, config)
            if len(recs) != int(doc["load_summary"]["count"]):
                raise TraceFormatError(
                    per_request,
                    f"holds {len(recs)} requests but {path.name} counts "
                    f"{int(doc['load_summary']['count'])}",
                )
    else:  # per_request alone
        run_key = "all"
        recs = _read_records(path, config)
    rows = _rows(per_request or path, recs, run_key) if recs is not None else None
    run = _run(path, run_key, doc, rows, config, stage)
    run_stats = stats_frame(_stats_rows(path, doc) if doc is not None else [], run_key)
    layout = _layout_of(doc, recs[0]["layout"] if recs else None)
    return Trace(
        source=SourceInfo(
            path=str(path),
            sha256=file_sha256(path),
            format=NAME,
            tool=TOOL,
            tool_version=f"report layout {layout}",
        ),
        runs=(run,),
        requests=rows if rows is not None else empty(REQUEST_SCHEMA, "run_key"),
        run_stats=run_stats,
    )
