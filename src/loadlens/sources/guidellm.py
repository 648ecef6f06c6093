"""GuideLLM benchmark reports: `benchmarks.json` / `.yaml` (per-request) and `.csv` (summary).

One file holds one benchmark per load level (a profile's strategies: synchronous, concurrent
at N streams, throughput, constant or poisson at R req/s; a sweep is synchronous +
throughput + constant rates between them). Two layouts are read:

* GuideLLM >= 0.4 (checked with 0.8.1; `metadata.version` 2): `benchmarks[i].config.strategy`,
  `.scheduler_metrics`, `.metrics`, `.requests.{successful,errored,incomplete}`; each request
  carries `info.timings` (request_start, first/last_token_iteration, request_end, epoch
  seconds) and serialised computed fields (`request_start_time`, `request_latency` in s,
  `time_to_first_token_ms`, `inter_token_latency_ms`, `prompt_tokens`, `output_tokens`).
* GuideLLM 0.2/0.3 (checked with 0.3.1): `benchmarks[i].args.strategy`, `.run_stats`,
  `.request_totals`; each request flat (`start_time`, `end_time`, `first_token_time`,
  `last_token_time`, the same computed fields). These files carry no version.

The CSV (>= 0.4) has three header rows (group, name, unit/statistic) and one row per
benchmark: summary statistics only. YAML is the JSON structure (keys sorted). GuideLLM
writes the same run to `<stem>.json`, `.yaml` and `.csv`; the most detailed one present is
loaded and names the others as `partners`, so a run is not ingested twice.

GuideLLM's definitions (all per request, from `info.timings`):

* TTFT = first_token_iteration - request_start; request latency = request_end -
  request_start (our e2e_s).
* ITL = (last_token - first_token) / (output_tokens - 1): the mean decode gap of one
  request, which is vLLM's (and loadlens's) per-request TPOT. Its summary is weighted by
  output_tokens - 1, so its mean is the mean of all gaps (our itl_s mean); its percentiles
  are of per-request means (our tpot_s). It records no individual gaps: itl_s rows are null.
* GuideLLM's own TPOT includes the first token: (last_token - request_start) / output_tokens
  in >= 0.4, (last_token - first_token) / output_tokens in 0.3. Kept as `guidellm_tpot_s`.
* Percentiles are the inverse of the empirical CDF (smallest value whose cumulative share
  reaches p), not numpy's linear interpolation.
* Warm-up/cool-down (>= 0.4): `requests` lists every request, the summary only those whose
  [request_start, request_end] overlaps the measured window [start_time, end_time] (TTFT:
  [start, first token]; ITL: [first token, end]). We keep the rows the request-latency
  summary counts and drop the others. In 0.3 warm-up/cool-down requests are not saved.
* With request sampling (`sample_size` / `--output-sampling`) the lists are a sample: the
  level is then loaded summary-only, from the tool's numbers over all requests.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import yaml

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

NAME = "guidellm"
TOOL = "guidellm"
SUFFIXES = (".json", ".yaml", ".yml", ".csv")  # most detailed first
STATUS_LISTS = {"successful": "ok", "errored": "error", "incomplete": "cancelled"}
TIMEOUT = re.compile(r"timeout|timed out", re.IGNORECASE)
# GuideLLM summary name: (canonical metric, factor to seconds)
LATENCIES = {
    "request_latency": ("e2e_s", 1.0),
    "time_to_first_token_ms": ("ttft_s", 1e-3),
    "inter_token_latency_ms": ("tpot_s", 1e-3),
    "time_per_output_token_ms": ("guidellm_tpot_s", 1e-3),
}
THROUGHPUTS = {
    "requests_per_second": "request_throughput_rps",
    "output_tokens_per_second": "output_throughput_tps",
    "tokens_per_second": "total_token_throughput_tps",
}
STATISTICS = {"mean": "mean", "median": "median", "std_dev": "std"}
PERCENTILES = {"p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99"}
# The CSV's "Percentiles" cell lists these, in this order (no p50: that is the Median
# column; guidellm/benchmark/outputs/csv.py, 0.8.1).
CSV_PERCENTILE_ORDER: tuple[str, ...] = (
    *("min", "p001", "p01", "p05", "p10", "p25", "p75", "p90", "p95", "p99", "max"),
)
CSV_LATENCIES = {
    "Request Latency": "request_latency",
    "Time to First Token": "time_to_first_token_ms",
    "Inter Token Latency": "inter_token_latency_ms",
    "Time per Output Token": "time_per_output_token_ms",
}
CSV_THROUGHPUTS = {
    ("Server Throughput", "Successful Requests/Sec"): "requests_per_second",
    ("Token Throughput", "Successful Output Tokens/Sec"): "output_tokens_per_second",
    ("Token Throughput", "Successful Total Tokens/Sec"): "tokens_per_second",
}
LABEL = re.compile(r"^([a-z_]+)(?:@([0-9.]+))?$")


# --------------------------------------------------------------------------- detection


def detect(path: Path, head: bytes) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return head.lstrip().startswith(b"{") and (
            b'"guidellm_version"' in head
            or re.search(rb'"type_": ?"generative_benchmark"', head) is not None
        )
    if suffix in (".yaml", ".yml"):
        starts = head.startswith(b"benchmarks:") or b"\nbenchmarks:" in head
        return starts and (
            b"generative_benchmark" in head
            or b"guidellm_version" in head
            or b"guidellm.scheduler" in head
        )
    if suffix == ".csv":
        first, _, rest = head.partition(b"\n")
        return first.startswith(b"Run Info,") and b"Run ID," in rest and b"Strategy" in rest
    return False


def partners(path: Path) -> list[Path]:
    """The same run in less detailed formats beside `path` (same stem): not loaded again."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        return []
    rank = SUFFIXES.index(suffix)
    found = []
    for other in SUFFIXES[rank + 1 :]:
        sibling = path.with_suffix(other)
        if sibling != path and sibling.is_file():
            try:
                with sibling.open("rb") as f:
                    head = f.read(64 * 1024)
            except OSError:
                continue
            if detect(sibling, head):
                found.append(sibling)
    if suffix == ".yaml" and path.with_suffix(".json").is_file():
        return []  # the JSON beside it is the primary
    return found


# --------------------------------------------------------------------------- helpers


def _obj(path: Path, value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TraceFormatError(path, f"expected an object, got {type(value).__name__}", field=where)
    return value


def _timestamp(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None) if epoch is not None else None


def _load_level(strategy: dict[str, Any]) -> tuple[str, float | None, dict[str, Any]]:
    """(load_mode, load_value, extra workload) from a strategy's fields."""
    kind = str(strategy.get("type_", ""))
    cap = strategy.get("max_concurrency")
    extra: dict[str, Any] = {}
    if kind == "synchronous":
        return "concurrency", 1.0, extra
    if kind == "concurrent":
        return "concurrency", float(strategy["streams"]), extra
    if kind == "throughput":
        if cap is not None:
            extra["max_concurrency"] = cap
        return "throughput", None, extra
    if kind in ("constant", "poisson", "async") and strategy.get("rate") is not None:
        if cap is not None:
            extra["max_concurrency"] = cap
        return "rate", float(strategy["rate"]), extra
    return "unknown", None, extra


def _label(strategy: dict[str, Any]) -> str:
    kind = str(strategy.get("type_", "unknown"))
    if kind == "concurrent":
        return f"concurrent@{strategy.get('streams')}"
    if kind in ("constant", "poisson", "async") and strategy.get("rate") is not None:
        return f"{kind}@{float(strategy['rate']):.2f}"
    if kind == "throughput" and strategy.get("max_concurrency") is not None:
        return f"throughput@{strategy['max_concurrency']}"
    return kind


# --------------------------------------------------------------------------- summary stats


def _stat_rows(path: Path, metrics: dict[str, Any], where: str) -> list[tuple[str, str, float]]:
    """run_stats rows from GuideLLM's `metrics` (its StatusDistributionSummary objects)."""
    rows: list[tuple[str, str, float]] = []
    for name, (metric, factor) in LATENCIES.items():
        dist = (metrics.get(name) or {}).get("successful")
        if not isinstance(dist, dict) or not dist.get("count"):
            continue  # nothing measured: GuideLLM writes zeros, not absences
        for key, stat in STATISTICS.items():
            v = number(path, dist.get(key), f"{where}.{name}.successful.{key}")
            if v is not None:
                rows.append((metric, stat, v * factor))
        pct = dist.get("percentiles") or {}
        for key, stat in PERCENTILES.items():
            v = number(path, pct.get(key), f"{where}.{name}.successful.percentiles.{key}")
            if v is not None:
                rows.append((metric, stat, v * factor))
        if name == "inter_token_latency_ms" and dist.get("mean") is not None:
            # Token-weighted mean of per-request mean gaps = the mean of all gaps.
            rows.append(("itl_s", "mean", float(dist["mean"]) * factor))
    for name, metric in THROUGHPUTS.items():
        dist = (metrics.get(name) or {}).get("successful")
        if isinstance(dist, dict):
            v = number(path, dist.get("mean"), f"{where}.{name}.successful.mean")
            if v is not None:
                rows.append((metric, "value", v))
    return rows


def _stats_frame(rows: list[tuple[str, str, float, str]]) -> pl.DataFrame:
    return stats_frame([(key, metric, stat, value) for metric, stat, value, key in rows])


# --------------------------------------------------------------------------- per-request rows


def _request_fields(path: Path, req: Any, where: str, new_layout: bool) -> dict[str, Any]:
    req = _obj(path, req, where)
    if new_layout:
        info = _obj(path, req.get("info"), f"{where}.info")
        timings = _obj(path, info.get("timings"), f"{where}.info.timings")
        start = req.get("request_start_time", timings.get("request_start"))
        end = req.get("request_end_time", timings.get("request_end"))
        error = info.get("error")
    else:
        start, end, error = req.get("start_time"), req.get("end_time"), req.get("error")
    ttft = number(path, req.get("time_to_first_token_ms"), f"{where}.time_to_first_token_ms")
    prompt = number(path, req.get("prompt_tokens"), f"{where}.prompt_tokens")
    output = number(path, req.get("output_tokens"), f"{where}.output_tokens")
    return {
        "start": number(path, start, f"{where}.request_start_time"),
        "end": number(path, end, f"{where}.request_end_time"),
        "ttft_s": ttft / 1000 if ttft is not None else None,
        "e2e_s": number(path, req.get("request_latency"), f"{where}.request_latency"),
        "input_tokens": int(prompt) if prompt is not None else None,
        "output_tokens": int(output) if output is not None else None,
        "error": str(error) if error else None,
    }


def _requests(
    path: Path, bench: dict[str, Any], where: str, window: tuple[float, float] | None
) -> tuple[list[dict[str, Any]], int]:
    """The measured requests as dicts (tool order), and how many were left out."""
    lists = _obj(path, bench.get("requests"), f"{where}.requests")
    out: list[dict[str, Any]] = []
    dropped = 0
    new_layout = window is not None
    for key, status in STATUS_LISTS.items():
        items = lists.get(key) or []
        if not isinstance(items, list):
            raise TraceFormatError(path, "expected a list", field=f"{where}.requests.{key}")
        for i, req in enumerate(items):
            row = _request_fields(path, req, f"{where}.requests.{key}[{i}]", new_layout)
            if window is not None:
                # GuideLLM's measured window: the request overlaps [start_time, end_time].
                end = row["end"]
                begin = row["start"] if row["start"] is not None else end
                if end is None or end < window[0] or begin > window[1]:
                    dropped += 1
                    continue
            if status == "error" and row["error"] and TIMEOUT.search(row["error"]):
                status_here = "timeout"
            else:
                status_here = status
            row["status"] = status_here
            if status != "ok" and row["error"] is None:
                row["error"] = key
            if status == "ok":
                row["error"] = None
            out.append(row)
    return out, dropped


def _rows_frame(
    path: Path, rows: list[dict[str, Any]], origin: float, run_key: str
) -> pl.DataFrame:
    rows = sorted(rows, key=lambda r: (r["start"] is None, r["start"] or 0.0))
    frame = pl.DataFrame(
        {
            "run_key": [run_key] * len(rows),
            "seq": list(range(len(rows))),
            "start_s": [r["start"] - origin if r["start"] is not None else None for r in rows],
            "ttft_s": [r["ttft_s"] for r in rows],
            "e2e_s": [r["e2e_s"] if r["status"] == "ok" else None for r in rows],
            "input_tokens": [r["input_tokens"] for r in rows],
            "output_tokens": [r["output_tokens"] for r in rows],
            "itl_s": pl.Series([None] * len(rows), dtype=pl.List(pl.Float64)),
            "status": [r["status"] for r in rows],
            "error": [r["error"] for r in rows],
        },
        schema_overrides={
            "start_s": pl.Float64,
            "ttft_s": pl.Float64,
            "e2e_s": pl.Float64,
            "input_tokens": pl.Int64,
            "output_tokens": pl.Int64,
            "error": pl.String,
        },
    )
    return conform_requests(path, frame)


# --------------------------------------------------------------------------- JSON / YAML


def _parse(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    if path.suffix.lower() in (".yaml", ".yml"):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            doc = yaml.load(raw, Loader=loader)
        except yaml.YAMLError as e:
            problem = str(e).replace("\n", " ")
            raise TraceFormatError(path, f"not valid YAML ({problem})") from None
    else:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            try:  # Python's json emits NaN/Infinity; read them so checks can name the field
                doc = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise TraceFormatError(path, f"not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise TraceFormatError(path, "expected an object at the top level")
    if not isinstance(doc.get("benchmarks"), list) or not doc["benchmarks"]:
        raise TraceFormatError(
            path,
            "expected a non-empty list of benchmarks",
            field="benchmarks",
            hint="written by `guidellm run --output kind=json` (>= 0.4) or "
            "`guidellm benchmark --output-path x.json` (0.2/0.3)",
        )
    return doc


def _workload_new(doc: dict[str, Any], bench: dict[str, Any]) -> dict[str, Any]:
    cfg = bench.get("config") or {}
    spec = (doc.get("config") or {}).get("spec") or {}
    workload: dict[str, Any] = {"layout": "guidellm>=0.4"}
    profile = cfg.get("profile") or spec.get("profile") or {}
    if profile.get("kind"):
        workload["profile"] = profile["kind"]
    backend = cfg.get("backend") or spec.get("backend") or {}
    for key in ("kind", "request_format"):
        if backend.get(key):
            workload[f"backend_{key}"] = backend[key]
    data = spec.get("data") or []
    if data and isinstance(data[0], dict):
        keep = ("kind", "path", "source", "prompt_tokens", "output_tokens")
        workload["data"] = {k: data[0][k] for k in keep if data[0].get(k) is not None}
    for phase in ("warmup", "cooldown"):
        p = cfg.get(phase) or {}
        setting = p.get("percent") if p.get("percent") is not None else p.get("value")
        if setting is not None:
            workload[phase] = setting
    for key in ("warmup_duration", "cooldown_duration"):
        if bench.get(key):
            workload[f"{key}_s"] = bench[key]
    return workload


def _workload_old(bench: dict[str, Any]) -> dict[str, Any]:
    args = bench.get("args") or {}
    workload: dict[str, Any] = {"layout": "guidellm<=0.3"}
    profile = args.get("profile") or {}
    if profile.get("type_"):
        workload["profile"] = profile["type_"]
    worker = bench.get("worker") or {}
    if worker.get("backend_type"):
        workload["backend_kind"] = worker["backend_type"]
    loader = bench.get("request_loader") or {}
    if loader.get("data") is not None:
        workload["data"] = loader["data"]
    for key in ("max_number", "max_duration", "warmup_number", "warmup_duration"):
        if args.get(key) is not None:
            workload[key] = args[key]
    for key in ("cooldown_number", "cooldown_duration"):
        if args.get(key) is not None:
            workload[key] = args[key]
    return workload


def _load_doc(path: Path) -> Trace:
    doc = _parse(path)
    runs: list[RunMeta] = []
    frames: list[pl.DataFrame] = []
    stats: list[tuple[str, str, float, str]] = []
    version = (doc.get("metadata") or {}).get("guidellm_version")
    for i, bench in enumerate(doc["benchmarks"]):
        where = f"benchmarks[{i}]"
        bench = _obj(path, bench, where)
        run_key = str(i)
        new_layout = "config" in bench and "args" not in bench
        if new_layout:
            cfg = _obj(path, bench.get("config"), f"{where}.config")
            strategy = _obj(path, cfg.get("strategy"), f"{where}.config.strategy")
            metrics = _obj(path, bench.get("metrics"), f"{where}.metrics")
            totals = _obj(path, metrics.get("request_totals"), f"{where}.metrics.request_totals")
            model = (cfg.get("backend") or {}).get("model") or None
            sampled = cfg.get("sample_size") is not None
            workload = _workload_new(doc, bench)
        elif "args" in bench:
            args = _obj(path, bench.get("args"), f"{where}.args")
            strategy = _obj(path, args.get("strategy"), f"{where}.args.strategy")
            metrics = _obj(path, bench.get("metrics"), f"{where}.metrics")
            totals = _obj(path, bench.get("request_totals"), f"{where}.request_totals")
            model = (bench.get("worker") or {}).get("backend_model") or None
            sampled = bench.get("request_samples") is not None
            workload = _workload_old(bench)
        else:
            raise TraceFormatError(
                path,
                "expected a benchmark with 'config' (GuideLLM >= 0.4) or 'args' (0.2/0.3)",
                field=where,
            )
        if "type_" not in strategy:
            raise TraceFormatError(path, "missing the strategy type", field=f"{where}.strategy")
        try:
            mode, value, extra = _load_level(strategy)
        except (KeyError, TypeError, ValueError) as e:
            raise TraceFormatError(
                path, f"cannot read the load level: {e}", field=f"{where}.strategy"
            ) from None
        start = number(path, bench.get("start_time"), f"{where}.start_time", required=True)
        end = number(path, bench.get("end_time"), f"{where}.end_time", required=True)
        duration = number(path, bench.get("duration"), f"{where}.duration")
        assert start is not None and end is not None
        workload |= extra | {"strategy": _label(strategy)}
        total = number(path, totals.get("total"), f"{where}.request_totals.total")
        bad = sum(
            number(path, totals.get(k), f"{where}.request_totals.{k}") or 0.0
            for k in ("errored", "incomplete")
        )
        rows, dropped = _requests(path, bench, where, (start, end) if new_layout else None)
        if sampled or (not rows and total):
            workload["requests_sampled"] = True  # rows would misstate the tool's numbers
            frame = None
        else:
            origin = min([start, *(r["start"] for r in rows if r["start"] is not None)])
            frame = _rows_frame(path, rows, origin, run_key)
            # GuideLLM's measured window on the start_s clock (rows may begin before it).
            workload["measured_window_s"] = [start - origin, end - origin]
            start = origin
        if dropped:
            workload["outside_measured_window"] = dropped
        runs.append(
            make_run(
                path,
                run_key=run_key,
                load_mode=mode,
                load_value=value,
                started_at=_timestamp(start),
                duration_s=duration if duration is not None else end - start,
                model=model,
                workload=workload,
                num_requests=frame.height if frame is not None else int(total or 0),
                num_errors=int((frame["status"] != "ok").sum()) if frame is not None else int(bad),
            )
        )
        if frame is not None:
            frames.append(frame)
        stats += [(*r, run_key) for r in _stat_rows(path, metrics, f"{where}.metrics")]
    requests = pl.concat(frames) if frames else empty(REQUEST_SCHEMA, "run_key")
    return _trace(path, runs, requests, _stats_frame(stats), version)


def _trace(
    path: Path,
    runs: list[RunMeta],
    requests: pl.DataFrame,
    stats: pl.DataFrame,
    version: str | None,
) -> Trace:
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=TOOL,
        tool_version=version,
    )
    return Trace(source=source, runs=tuple(runs), requests=requests, run_stats=stats)


# --------------------------------------------------------------------------- CSV


def _csv_cell(
    path: Path, row: list[str], col: dict[tuple[Any, ...], int], key: tuple[str, ...], line: int
) -> str:
    if key not in col:
        field = " / ".join(k for k in key if k)
        raise TraceFormatError(path, "missing column", field=field, line=line)
    return row[col[key]]


def _csv_float(path: Path, text: str, field: str, line: int) -> float | None:
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise TraceFormatError(
            path, f"expected a number, got {text!r}", field=field, line=line
        ) from None
    if not math.isfinite(value):
        raise TraceFormatError(path, f"expected a finite number, got {text!r}", field=field)
    return value


def _load_csv(path: Path) -> Trace:
    try:
        text = path.read_text(encoding="utf-8")
        table = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as e:
        raise TraceFormatError(path, f"not a readable CSV ({e})") from None
    if len(table) < 4:
        raise TraceFormatError(path, "expected three header rows and one row per benchmark")
    width = len(table[0])
    col = {(g, n, u): i for i, (g, n, u) in enumerate(zip(*table[:3], strict=False))}
    runs: list[RunMeta] = []
    stats: list[tuple[str, str, float, str]] = []
    version = None
    for index, row in enumerate(table[3:]):
        line = index + 4
        if not row:
            continue
        if len(row) != width:
            raise TraceFormatError(
                path, f"has {len(row)} cells, the header {width} (truncated?)", line=line
            )

        def cell(
            group: str, name: str, unit: str = "", row: list[str] = row, line: int = line
        ) -> str:
            return _csv_cell(path, row, col, (group, name, unit), line)

        def cell_number(group: str, name: str, unit: str = "", line: int = line) -> float | None:
            return _csv_float(path, cell(group, name, unit), f"{group} / {name} {unit}", line)

        run_key = str(index)
        label = cell("Benchmark", "Strategy")
        m = LABEL.match(label)
        if m is None:
            raise TraceFormatError(
                path, f"expected a strategy like 'concurrent@4', got {label!r}", line=line
            )
        kind, level = m.group(1), m.group(2)
        strategy: dict[str, Any] = {"type_": kind}
        if kind == "concurrent":
            strategy["streams"] = level
        elif kind == "throughput":
            strategy["max_concurrency"] = int(level) if level else None
        elif kind in ("constant", "poisson", "async"):
            strategy["rate"] = level
        mode, value, extra = _load_level(strategy)
        workload: dict[str, Any] = {"layout": "guidellm-csv", "strategy": label} | extra
        model = None
        try:
            profile = json.loads(cell("Run Info", "Profile") or "{}")
            backend = json.loads(cell("Run Info", "Backend") or "{}")
            meta = json.loads(cell("Runtime Info", "Metadata") or "{}")
        except json.JSONDecodeError as e:
            raise TraceFormatError(
                path, f"expected JSON in a Run Info cell: {e}", line=line
            ) from None
        if isinstance(profile, dict) and profile.get("kind"):
            workload["profile"] = profile["kind"]
        if isinstance(backend, dict):
            model = backend.get("model") or None
            if backend.get("request_format"):
                workload["backend_request_format"] = backend["request_format"]
        if isinstance(meta, dict) and meta.get("guidellm_version"):
            version = meta["guidellm_version"]
        try:
            started = datetime.strptime(cell("Timings", "Measure Start Time"), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            started = None  # local time of the machine that ran GuideLLM, to the second
        counts = {
            k: cell_number("Request Counts", k)
            for k in ("Successful", "Incomplete", "Errored", "Total")
        }
        runs.append(
            make_run(
                path,
                run_key=run_key,
                load_mode=mode,
                load_value=value,
                started_at=started,
                duration_s=cell_number("Timings", "Duration", "Sec"),
                model=model,
                workload=workload,
                num_requests=int(counts["Total"]) if counts["Total"] is not None else None,
                num_errors=int((counts["Errored"] or 0) + (counts["Incomplete"] or 0)),
            )
        )
        for group, name in CSV_LATENCIES.items():
            metric, factor = LATENCIES[name]
            unit = "Successful Sec" if name == "request_latency" else "Successful ms"
            if (group, unit, "Mean") not in col:
                continue
            values = {
                "mean": cell_number(group, unit, "Mean"),
                "median": cell_number(group, unit, "Median"),
                "std": cell_number(group, unit, "Std Dev"),
            }
            values["p50"] = values["median"]
            raw = cell(group, unit, "Percentiles")
            try:
                listed = json.loads(raw) if raw else []
            except json.JSONDecodeError:
                listed = None
            if not isinstance(listed, list) or (
                listed and len(listed) != len(CSV_PERCENTILE_ORDER)
            ):
                raise TraceFormatError(
                    path,
                    f"expected a list of {len(CSV_PERCENTILE_ORDER)} percentiles",
                    field=f"{group} / {unit} / Percentiles",
                    line=line,
                )
            for key, v in zip(CSV_PERCENTILE_ORDER, listed, strict=False):
                if key in PERCENTILES:
                    values[PERCENTILES[key]] = number(path, v, f"{group} / Percentiles / {key}")
            if counts["Successful"] == 0:
                continue
            for stat, v in values.items():
                if v is not None:
                    stats.append((metric, stat, v * factor, run_key))
            if name == "inter_token_latency_ms" and values["mean"] is not None:
                stats.append(("itl_s", "mean", values["mean"] * factor, run_key))
        for (group, name), tool_name in CSV_THROUGHPUTS.items():
            if (group, name, "Mean") in col:
                v = cell_number(group, name, "Mean")
                if v is not None:
                    stats.append((THROUGHPUTS[tool_name], "value", v, run_key))
    if not runs:
        raise TraceFormatError(path, "has no benchmark rows below its headers")
    return _trace(path, runs, empty(REQUEST_SCHEMA, "run_key"), _stats_frame(stats), version)


# --------------------------------------------------------------------------- entry point


def load(path: Path) -> Trace:
    """Read one GuideLLM report: one run per benchmark (load level)."""
    if path.suffix.lower() == ".csv":
        return _load_csv(path)
    return _load_doc(path)
