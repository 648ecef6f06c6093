"""GuideLLM benchmark reports, 0.2 to 0.8: JSON / YAML (per-request) and CSV (summary).

One file holds one benchmark per load level (a profile's strategies: synchronous, concurrent
at N streams, throughput, constant or poisson at R req/s; a sweep is synchronous +
throughput + constant rates between them). The report schemas, from GuideLLM's history
(vllm-project/guidellm, formerly neuralmagic/guidellm):

* 0.2/0.3 (`guidellm benchmark`): `{benchmarks: [...]}` with `benchmarks[i].args.strategy`,
  `.run_stats`, `.worker` (backend_model, backend_target), `.request_loader` (data),
  `.request_totals`, `.request_samples` and `.requests.{successful,errored,incomplete}`;
  each request flat (`start_time`, `end_time`, `first_token_time`, `last_token_time` and
  the computed fields). No version is written. CSV: one header row ("Type, Run Id, ...,
  Successful Request latency mean, ..., Args, Worker, Request Loader, Extras").
* 0.4 (`{args, benchmarks}`), 0.5/0.6 (`{metadata: {version: 1}, args, benchmarks}`) and
  0.7/0.8 (the v2 report: `{metadata: {version: 2}, config: {spec}, benchmarks}`):
  `benchmarks[i].config.strategy`, `.scheduler_metrics`, `.metrics` (with
  `request_totals`), `.requests.{successful,errored,incomplete}`; each request carries
  `info.timings` (request_start, first/last_token_iteration, request_end, epoch seconds)
  and serialised computed fields (`request_start_time`, `request_latency` in s,
  `time_to_first_token_ms`, `inter_token_latency_ms`, `prompt_tokens`, `output_tokens`).
  The model and data are in `args` (0.4-0.6), `config.spec` (0.7+) or the benchmark's
  `config.backend`; a 0.6 report without a model still names it in each request's
  `request_args`. CSV: three header rows (group, name, unit/statistic) and one row per
  benchmark; its Strategy cell is the strategy kind alone up to 0.8.0 (`concurrent`), with
  the level from 0.8.1 (`concurrent@4`); without it the level comes from the Profile cell.

YAML is the JSON structure (keys sorted). GuideLLM writes the same run to `<stem>.json`,
`.yaml` and `.csv`; the most detailed one present is loaded and names the others as
`partners`. Python's json writes bare Infinity/NaN and a rate may be the text "inf": an
infinite rate is a throughput run.

Load levels: synchronous = concurrency 1; concurrent = concurrency `streams`; throughput
= everything at once (load_value None; GuideLLM's worker cap `max_concurrency`, 512 by
default, is kept as a workload extra: it is a ceiling, not the level); constant / poisson
= rate R; trace replay = unknown.

Request outcomes: GuideLLM's `successful` rows are "ok" (unless they carry no output token:
"error", "no output tokens"), `errored` are "error" ("timeout" when the error says so) and
`incomplete` (requests in flight when the benchmark stopped, cut off by its duration or
request limit) are "cancelled": counted among the requests and, like every request that
did not succeed, in the run's errors, where GuideLLM counts them apart from its errors.

GuideLLM's definitions (per request, from `info.timings`):

* TTFT = first_token_iteration - request_start; request latency = request_end -
  request_start (our e2e_s).
* start_s = request_start (0.2/0.3: `start_time`) in seconds from the level's first send.
  The benchmark's `start_time` may come seconds before that send (a 0.6 dev constant level
  on the real traces: 6.5 s, its requests targeted from 0.5 s but sent in a burst when the
  workers were ready); `measured_window_s` is on the start_s clock and then begins below 0.
* ITL = (last_token - first_token) / (output_tokens - 1): the mean decode gap of one
  request, which is vLLM's (and loadlens's) per-request TPOT. Its summary is weighted by
  output_tokens - 1, so its mean is the mean of all gaps (our itl_s mean); its percentiles
  are over tokens. It records no individual gaps: itl_s rows are null.
* GuideLLM's own TPOT includes the first token. Kept as `guidellm_tpot_s`.
* Percentiles are the inverse of the empirical CDF (the smallest value whose cumulative
  share reaches p), not numpy's linear interpolation; 0.2/0.3 write no p50 (the median is).
* Measured window (>= 0.4): the summary counts the requests whose [request_start,
  request_end] overlaps [start_time, end_time] (0.8.1 narrows TTFT to [start, first token]
  and ITL to [first token, end]); we keep those rows and drop the warm-up/cool-down others.
  0.2/0.3 save no warm-up/cool-down requests; their window spans all requests.
* Request rate = successful completions inside the window / window duration: the same
  as ours when no warm-up/cool-down was set. Token rates: 0.2/0.3 spread a request's tokens
  from its first token to its end over the benchmark's span (ours to within one token per
  request); >= 0.4 divide the tokens of the window's successful requests by the span from
  their first to their last token event, not by the window.
* With request sampling (`--output-sampling` / `sample_size` / `sample_requests`) the lists
  hold fewer requests than the totals: the level is then loaded summary-only, from the
  tool's numbers over all requests (a 0.6 report may declare sampling and keep them all).
"""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from loadlens.errors import TraceFormatError
from loadlens.sources.jsonfile import as_float, read_json_object
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
METHOD_NOTE = (
    "GuideLLM's percentiles are the inverse empirical CDF (loadlens interpolates linearly: "
    "small runs differ by up to one order statistic), and GuideLLM >= 0.4 divides token "
    "counts by the span of the token events where loadlens, like GuideLLM's own request rate, "
    "divides by its measured window. Incomplete requests (cut off when a benchmark stopped) "
    "are kept as cancelled and counted with the errors; GuideLLM counts them apart."
)
SUFFIXES = (".json", ".yaml", ".yml", ".csv")  # most detailed first
STATUS_LISTS = {"successful": "ok", "errored": "error", "incomplete": "cancelled"}
TIMEOUT = re.compile(r"timeout|timed out", re.IGNORECASE)
NO_OUTPUT = "no output tokens (GuideLLM listed it as successful)"
INCOMPLETE = "incomplete: in flight when the benchmark stopped"
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
# The CSV's percentile list, in this order (no p50: that is the Median column);
# guidellm/benchmark/outputs/csv.py (>= 0.4) and benchmark/output.py (0.2/0.3).
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
# 0.2/0.3 CSV: "<Status> <metric name with spaces, capitalised> mean|median|std dev|[...]".
OLD_CSV_HEAD = b"Type,Run Id,Id,Name,Start Time,End Time,Duration"
OLD_CSV_PERCENTILES = "[min, 0.1, 1, 5, 10, 25, 75, 90, 95, 99, max]"
LABEL = re.compile(r"^([a-z_]+)(?:@([0-9.]+|inf))?$")
MODEL_IN_ARGS = re.compile(r"""['"]model['"]\s*:\s*['"]([^'"]+)['"]""")
RATE_KINDS = ("constant", "poisson", "async")


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
        markers = (b"generative_benchmark", b"guidellm", b"time_to_first_token_ms")
        return starts and any(m in head for m in markers)
    if suffix == ".csv":
        first, _, rest = head.partition(b"\n")
        if first.startswith(OLD_CSV_HEAD):
            return b"Successful Request latency mean" in first
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


def _dict(value: Any) -> dict[str, Any]:
    """An optional sub-object: {} where the file has none (or something else)."""
    return value if isinstance(value, dict) else {}


def _timestamp(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None) if epoch is not None else None


def _literal(text: str) -> Any:
    """A setting GuideLLM wrote as text: JSON, a Python literal (its str() of a dict), or
    `key=value,key=value` (its synthetic-data shorthand); else the text itself."""
    text = text.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        pass
    pairs = [p.split("=", 1) for p in text.split(",")]
    if text and all(len(p) == 2 and re.fullmatch(r"\s*\w+\s*", p[0]) for p in pairs):
        out: dict[str, Any] = {}
        for key, value in pairs:
            v = as_float(value)
            out[key.strip()] = (int(v) if v.is_integer() else v) if v is not None else value
        return out
    return text


def _level_number(path: Path, value: Any, field: str) -> float:
    """A strategy's streams or rate: a number, or text such as "inf"."""
    v = as_float(value)
    if v is None or math.isnan(v) or v <= 0:
        raise TraceFormatError(path, f"expected a positive number, got {value!r}", field=field)
    return v


def _load_level(
    path: Path, strategy: dict[str, Any], where: str
) -> tuple[str, float | None, dict[str, Any]]:
    """(load_mode, load_value, extra workload) from a strategy's fields."""
    kind = str(strategy.get("type_", ""))
    cap = strategy.get("max_concurrency")
    extra: dict[str, Any] = {}
    if cap is not None and kind != "synchronous":
        extra["max_concurrency"] = cap
    if kind == "synchronous":
        return "concurrency", 1.0, extra
    if kind == "concurrent":
        return "concurrency", _level_number(path, strategy.get("streams"), f"{where}.streams"), {}
    if kind == "throughput":
        return "throughput", None, extra
    if kind in RATE_KINDS and strategy.get("rate") is not None:
        rate = _level_number(path, strategy["rate"], f"{where}.rate")
        if math.isinf(rate):
            return "throughput", None, extra  # an infinite rate: everything at once
        return "rate", rate, extra
    if kind == "trace" and strategy.get("time_scale") is not None:
        extra["time_scale"] = strategy["time_scale"]
    return "unknown", None, extra


def _label(strategy: dict[str, Any]) -> str:
    kind = str(strategy.get("type_", "unknown"))
    if kind == "concurrent":
        return f"concurrent@{strategy.get('streams')}"
    rate = as_float(strategy.get("rate"))
    if kind in RATE_KINDS and rate is not None:
        return f"{kind}@{rate:.2f}"
    if kind == "throughput" and strategy.get("max_concurrency") is not None:
        return f"throughput@{strategy['max_concurrency']}"
    return kind


# --------------------------------------------------------------------------- what was sent


def _data_items(value: Any) -> list[Any]:
    """GuideLLM's data setting as a list of specs (dicts) or names (dataset, file)."""
    if isinstance(value, str):
        value = _literal(value)
    if isinstance(value, list | tuple):
        return [_literal(v) if isinstance(v, str) else v for v in value]
    return [value] if value not in (None, "", {}) else []


def _data_workload(value: Any) -> dict[str, Any]:
    """input_tokens, output_tokens, dataset and the data spec from GuideLLM's data setting."""
    items = _data_items(value)
    if not items:
        return {}
    first = items[0]
    if not isinstance(first, dict):
        return {"dataset": str(first)}
    spec = {k: v for k, v in first.items() if isinstance(v, str | int | float) and v is not None}
    out: dict[str, Any] = {}
    prompt = as_float(first.get("prompt_tokens"))
    output = as_float(first.get("output_tokens"))
    prefix = as_float(first.get("prefix_tokens"))
    buckets = [b for b in first.get("prefix_buckets") or [] if isinstance(b, dict)]
    weights = [as_float(b.get("bucket_weight")) or 0.0 for b in buckets]
    if buckets and sum(weights) > 0:  # 0.7+: shared prefixes drawn from weighted buckets
        sizes = [as_float(b.get("prefix_tokens")) or 0.0 for b in buckets]
        prefix = sum(s * w for s, w in zip(sizes, weights, strict=True)) / sum(weights)
        spec["prefix_tokens"] = prefix
    if prompt is not None:
        total = prompt + (prefix or 0.0)  # the shared prefix is part of every prompt
        out["input_tokens"] = int(total) if total.is_integer() else total
    if output is not None:
        out["output_tokens"] = int(output) if output.is_integer() else output
    name = next(
        (first[k] for k in ("path", "source", "data", "name") if isinstance(first.get(k), str)),
        None,
    )
    if name is None and prompt is not None:
        name = str(first.get("kind") or first.get("type_") or "synthetic")
    if name is not None:
        out["dataset"] = name
    if len(items) > 1:
        spec["sources"] = len(items)
    return out | {"data": spec}


def _model_from_requests(bench: dict[str, Any]) -> str | None:
    """The model a request's body named (0.6 reports without a configured model)."""
    lists = _dict(bench.get("requests"))
    for key in STATUS_LISTS:
        for req in lists.get(key) or []:
            args = req.get("request_args") if isinstance(req, dict) else None
            if isinstance(args, dict):
                body = _dict(args.get("body"))
                if isinstance(body.get("model"), str):
                    return str(body["model"])
            elif isinstance(args, str) and (m := MODEL_IN_ARGS.search(args)):
                return m.group(1)
    return None


class _Report:
    """What a report says once for all its benchmarks (0.4-0.6 `args`, 0.7+ `config.spec`)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        meta = _dict(doc.get("metadata"))
        self.version: str | None = meta.get("guidellm_version") or None
        self.schema = meta.get("version")
        self.args = _dict(doc.get("args"))
        self.spec = _dict(_dict(doc.get("config")).get("spec"))
        backend = _dict(self.spec.get("backend"))
        self.model = backend.get("model") or self.args.get("model") or None
        self.target = backend.get("target") or self.args.get("target") or None
        self.data = self.spec.get("data") or self.args.get("data")
        tokenizer = _dict(self.spec.get("tokenizer")).get("model") or self.args.get("processor")
        self.tokenizer = tokenizer or None


def _workload_new(report: _Report, bench: dict[str, Any]) -> dict[str, Any]:
    cfg = _dict(bench.get("config"))
    workload: dict[str, Any] = {}
    requests = _dict(cfg.get("requests"))
    workload |= _data_workload(report.data or requests.get("data"))
    workload["layout"] = "guidellm>=0.7" if report.schema == 2 else "guidellm>=0.4"
    profile = _dict(cfg.get("profile")) or _dict(report.spec.get("profile"))
    kind = profile.get("kind") or profile.get("type_") or report.args.get("profile")
    if kind:
        workload["profile"] = kind
    backend = _dict(cfg.get("backend")) or _dict(report.spec.get("backend"))
    for key in ("kind", "request_format"):
        if backend.get(key):
            workload[f"backend_{key}"] = backend[key]
    if not backend and report.args.get("backend"):
        workload["backend_kind"] = report.args["backend"]
    if report.tokenizer:
        workload["tokenizer"] = report.tokenizer
    for phase in ("warmup", "cooldown"):
        p = _dict(cfg.get(phase))
        setting = p.get("percent") if p.get("percent") is not None else p.get("value")
        if setting is not None:
            workload[phase] = setting
    for key in ("warmup_duration", "cooldown_duration"):
        if bench.get(key):
            workload[f"{key}_s"] = bench[key]
    return workload


def _workload_old(bench: dict[str, Any]) -> dict[str, Any]:
    args = _dict(bench.get("args"))
    loader = _dict(bench.get("request_loader"))
    workload: dict[str, Any] = _data_workload(loader.get("data"))
    workload["layout"] = "guidellm<=0.3"
    profile = _dict(args.get("profile"))
    if profile.get("type_"):
        workload["profile"] = profile["type_"]
    worker = _dict(bench.get("worker"))
    if worker.get("backend_type"):
        workload["backend_kind"] = worker["backend_type"]
    if loader.get("processor"):
        workload["tokenizer"] = loader["processor"]
    for key in (
        *("max_number", "max_duration", "warmup_number", "warmup_duration"),
        *("cooldown_number", "cooldown_duration"),
    ):
        v = as_float(args.get(key))
        if v is not None and math.isfinite(v):  # Infinity: no limit
            workload[key] = args[key]
    return workload


# --------------------------------------------------------------------------- summary stats


def _stat_rows(path: Path, metrics: dict[str, Any], where: str) -> list[tuple[str, str, float]]:
    """run_stats rows from GuideLLM's `metrics` (its StatusDistributionSummary objects)."""
    rows: list[tuple[str, str, float]] = []
    for name, (metric, factor) in LATENCIES.items():
        dist = _dict(metrics.get(name)).get("successful")
        if not isinstance(dist, dict) or not dist.get("count"):
            continue  # nothing measured: GuideLLM writes zeros, not absences
        for key, stat in STATISTICS.items():
            v = number(path, dist.get(key), f"{where}.{name}.successful.{key}")
            if v is not None:
                rows.append((metric, stat, v * factor))
        pct = dict(_dict(dist.get("percentiles")))
        pct.setdefault("p50", dist.get("median"))  # 0.2/0.3 write the median, no p50
        for key, stat in PERCENTILES.items():
            v = number(path, pct.get(key), f"{where}.{name}.successful.percentiles.{key}")
            if v is not None:
                rows.append((metric, stat, v * factor))
        if name == "inter_token_latency_ms" and dist.get("mean") is not None:
            # Token-weighted mean of per-request mean gaps = the mean of all gaps.
            rows.append(("itl_s", "mean", float(dist["mean"]) * factor))
    for name, metric in THROUGHPUTS.items():
        dist = _dict(metrics.get(name)).get("successful")
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
) -> tuple[list[dict[str, Any]], dict[str, int], int]:
    """The measured requests as dicts (tool order), how many of each GuideLLM status list
    were kept, and how many were left out (outside the measured window)."""
    lists = _obj(path, bench.get("requests"), f"{where}.requests")
    out: list[dict[str, Any]] = []
    kept = dict.fromkeys(STATUS_LISTS, 0)
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
            kept[key] += 1
            status_here = status
            if status == "error" and row["error"] and TIMEOUT.search(row["error"]):
                status_here = "timeout"
            elif status == "ok" and row["output_tokens"] == 0:
                status_here, row["error"] = "error", NO_OUTPUT
            row["status"] = status_here
            if status != "ok" and row["error"] is None:
                row["error"] = INCOMPLETE if key == "incomplete" else key
            if status_here == "ok":
                row["error"] = None
            out.append(row)
    return out, kept, dropped


def _rows_frame(
    path: Path, rows: list[dict[str, Any]], origin: float, run_key: str
) -> pl.DataFrame:
    rows = sorted(rows, key=lambda r: (r["start"] is None, r["start"] or 0.0))
    frame = pl.DataFrame(
        {
            "run_key": [run_key] * len(rows),
            "seq": list(range(len(rows))),
            "start_s": [r["start"] - origin if r["start"] is not None else None for r in rows],
            "ttft_s": [r["ttft_s"] if r["status"] == "ok" else None for r in rows],
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
    if path.suffix.lower() in (".yaml", ".yml"):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        try:
            doc = yaml.load(path.read_bytes(), Loader=loader)
        except yaml.YAMLError as e:
            problem = str(e).replace("\n", " ")
            raise TraceFormatError(path, f"not valid YAML ({problem})") from None
        if not isinstance(doc, dict):
            raise TraceFormatError(path, "expected a mapping at the top level")
    else:
        doc = read_json_object(path)  # bare NaN/Infinity as Python's json writes them
    if not isinstance(doc.get("benchmarks"), list) or not doc["benchmarks"]:
        raise TraceFormatError(
            path,
            "expected a non-empty list of benchmarks",
            field="benchmarks",
            hint="written by `guidellm run --output kind=json` (>= 0.7), "
            "`guidellm benchmark --output-path x.json` (0.2-0.6)",
        )
    return doc


def _load_doc(path: Path) -> Trace:
    doc = _parse(path)
    report = _Report(doc)
    runs: list[RunMeta] = []
    frames: list[pl.DataFrame] = []
    stats: list[tuple[str, str, float, str]] = []
    for i, bench in enumerate(doc["benchmarks"]):
        where = f"benchmarks[{i}]"
        bench = _obj(path, bench, where)
        run_key = str(i)
        new_layout = "config" in bench and "args" not in bench
        params: dict[str, Any] = {}
        if new_layout:
            cfg = _obj(path, bench.get("config"), f"{where}.config")
            strategy = _obj(path, cfg.get("strategy"), f"{where}.config.strategy")
            strategy_at = f"{where}.config.strategy"
            metrics = _obj(path, bench.get("metrics"), f"{where}.metrics")
            totals = _obj(path, metrics.get("request_totals"), f"{where}.metrics.request_totals")
            backend = _dict(cfg.get("backend"))
            model = backend.get("model") or report.model or _model_from_requests(bench)
            target = backend.get("target") or report.target
            sampling = cfg.get("sample_size", cfg.get("sample_requests"))
            workload = _workload_new(report, bench)
        elif "args" in bench:
            args = _obj(path, bench.get("args"), f"{where}.args")
            strategy = _obj(path, args.get("strategy"), f"{where}.args.strategy")
            strategy_at = f"{where}.args.strategy"
            metrics = _obj(path, bench.get("metrics"), f"{where}.metrics")
            totals = _obj(path, bench.get("request_totals"), f"{where}.request_totals")
            worker = _dict(bench.get("worker"))
            model = worker.get("backend_model") or _model_from_requests(bench)
            target = worker.get("backend_target")
            sampling = bench.get("request_samples")
            workload = _workload_old(bench)
        else:
            raise TraceFormatError(
                path,
                "expected a benchmark with 'config' (GuideLLM >= 0.4) or 'args' (0.2/0.3)",
                field=where,
            )
        if "type_" not in strategy:
            raise TraceFormatError(path, "missing the strategy type", field=f"{strategy_at}.type_")
        mode, value, extra = _load_level(path, strategy, strategy_at)
        if target:
            params["target"] = str(target)
        start = number(path, bench.get("start_time"), f"{where}.start_time", required=True)
        end = number(path, bench.get("end_time"), f"{where}.end_time", required=True)
        duration = number(path, bench.get("duration"), f"{where}.duration")
        assert start is not None and end is not None
        workload |= extra | {"strategy": _label(strategy)}
        counts = {
            k: int(number(path, totals.get(k), f"{where}.request_totals.{k}") or 0)
            for k in (*STATUS_LISTS, "total")
        }
        rows, kept, dropped = _requests(path, bench, where, (start, end) if new_layout else None)
        if sampling is not None:
            workload["sampling"] = sampling
        if any(kept[k] < counts[k] for k in STATUS_LISTS):
            # The lists hold a sample (or nothing): rows would misstate the tool's numbers.
            workload["requests_sampled"] = True
            frame = None
        else:
            # start_s counts from the level's first send; the benchmark's start_time may
            # come before it (the scheduler starts before its workers send) or after it
            # (warm-up rows): the measured window says where it lies on that clock.
            sends = [r["start"] for r in rows if r["start"] is not None]
            origin = min(sends) if sends else start
            frame = _rows_frame(path, rows, origin, run_key)
            workload["measured_window_s"] = [start - origin, end - origin]
            start = min(start, origin)
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
                model=model or None,
                workload=workload,
                params=params,
                num_requests=frame.height if frame is not None else counts["total"],
                num_errors=int((frame["status"] != "ok").sum())
                if frame is not None
                else counts["errored"] + counts["incomplete"],
            )
        )
        if frame is not None:
            frames.append(frame)
        stats += [(*r, run_key) for r in _stat_rows(path, metrics, f"{where}.metrics")]
    requests = pl.concat(frames) if frames else empty(REQUEST_SCHEMA, "run_key")
    return _trace(path, runs, requests, _stats_frame(stats), report.version)


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


# --------------------------------------------------------------------------- CSV (>= 0.4)


def _csv_table(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
        return list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as e:
        raise TraceFormatError(path, f"not a readable CSV ({e})") from None


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
        raise TraceFormatError(
            path, f"expected a finite number, got {text!r}", field=field, line=line
        )
    return value


def _csv_json(path: Path, text: str, field: str, line: int) -> Any:
    if not text:
        return {}
    try:
        return json.loads(text)  # Python's json: bare Infinity/NaN are read too
    except ValueError as e:
        raise TraceFormatError(path, f"expected JSON: {e}", field=field, line=line) from None


def _csv_percentiles(path: Path, text: str, field: str, line: int) -> dict[str, float | None]:
    """GuideLLM's percentile list cell, by name (CSV_PERCENTILE_ORDER)."""
    listed: Any = None
    if text:
        try:
            listed = json.loads(text)
        except ValueError:
            listed = [as_float(v) for v in text.strip("[]").split(",")]  # str() with inf/nan
    else:
        listed = []
    if not isinstance(listed, list) or (listed and len(listed) != len(CSV_PERCENTILE_ORDER)):
        raise TraceFormatError(
            path,
            f"expected a list of {len(CSV_PERCENTILE_ORDER)} percentiles",
            field=field,
            line=line,
        )
    return {
        key: number(path, v, f"{field} / {key}", line=line)
        for key, v in zip(CSV_PERCENTILE_ORDER, listed, strict=False)
    }


def _sweep_rates(first_rates: tuple[float, float], sweep_size: int) -> list[float]:
    """GuideLLM's sweep: rates evenly between the synchronous and the throughput request
    rates, `sweep_size - 1` points with the first dropped (np.linspace(...)[1:])."""
    lo, hi = first_rates
    points = sweep_size - 1
    if points < 2:
        return []
    return [lo + (hi - lo) * k / (points - 1) for k in range(1, points)]


def _csv_strategy(
    path: Path,
    kind: str,
    level: str | None,
    profile: dict[str, Any],
    run_index: int,
    sweep: list[float] | None,
    line: int,
) -> dict[str, Any]:
    """The strategy of one CSV row: its label's level (0.8.1+), else the Profile cell's
    completed strategies (0.4-0.6) or its list of streams / rates (0.7+), else a sweep's
    rate by GuideLLM's rule (`sweep`, from the synchronous and throughput rows)."""
    done = profile.get("completed_strategies")
    if level is None and isinstance(done, list) and run_index < len(done):
        picked = done[run_index]
        if isinstance(picked, dict) and picked.get("type_") == kind:
            return picked
    strategy: dict[str, Any] = {"type_": kind}
    if kind == "throughput":
        strategy["max_concurrency"] = int(level) if level else profile.get("max_concurrency")
        return strategy
    key = "streams" if kind == "concurrent" else "rate"
    if kind not in ("concurrent", *RATE_KINDS):
        return strategy
    if level is not None:
        strategy[key] = level
        return strategy
    listed = profile.get(key)
    if isinstance(listed, list) and run_index < len(listed):
        strategy[key] = listed[run_index]
    elif isinstance(listed, int | float | str) and not isinstance(listed, bool):
        strategy[key] = listed
    elif sweep is not None and 0 <= run_index - 2 < len(sweep):
        strategy[key] = sweep[run_index - 2]
    else:
        raise TraceFormatError(
            path,
            f"cannot tell the {key} of this {kind} benchmark",
            field="Benchmark / Strategy",
            line=line,
            hint="the Strategy cell names no level and the Profile cell lists none",
        )
    return strategy


def _load_csv(path: Path) -> Trace:
    table = _csv_table(path)
    if table and table[0][:1] == ["Type"]:
        return _load_csv_old(path, table)
    if len(table) < 4:
        raise TraceFormatError(path, "expected three header rows and one row per benchmark")
    width = len(table[0])
    col = {(g, n, u): i for i, (g, n, u) in enumerate(zip(*table[:3], strict=False))}
    body = [(index + 4, row) for index, row in enumerate(table[3:]) if row]
    for line, row in body:
        if len(row) != width:
            raise TraceFormatError(
                path, f"has {len(row)} cells, the header {width} (truncated?)", line=line
            )

    def cell(row: list[str], line: int, group: str, name: str, unit: str = "") -> str:
        return _csv_cell(path, row, col, (group, name, unit), line)

    def cell_number(
        row: list[str], line: int, group: str, name: str, unit: str = ""
    ) -> float | None:
        return _csv_float(path, cell(row, line, group, name, unit), f"{group} / {name}", line)

    # A sweep's constant rates follow from its synchronous and throughput rows.
    first_rates: dict[str, float] = {}
    for line, row in body:
        kind = cell(row, line, "Benchmark", "Strategy").split("@")[0]
        rps = cell_number(row, line, "Server Throughput", "Successful Requests/Sec", "Mean")
        if kind in ("synchronous", "throughput") and rps is not None:
            first_rates.setdefault(kind, rps)

    runs: list[RunMeta] = []
    stats: list[tuple[str, str, float, str]] = []
    version = None
    for index, (line, row) in enumerate(body):
        run_key = str(index)
        label = cell(row, line, "Benchmark", "Strategy")
        m = LABEL.match(label)
        if m is None:
            raise TraceFormatError(
                path,
                f"expected a strategy like 'concurrent' or 'concurrent@4', got {label!r}",
                field="Benchmark / Strategy",
                line=line,
            )
        profile = _dict(_csv_json(path, cell(row, line, "Run Info", "Profile"), "Profile", line))
        backend = _dict(_csv_json(path, cell(row, line, "Run Info", "Backend"), "Backend", line))
        runtime: dict[str, Any] = {}
        if ("Runtime Info", "Metadata", "") in col:
            meta = _csv_json(path, cell(row, line, "Runtime Info", "Metadata"), "Metadata", line)
            args = _csv_json(path, cell(row, line, "Runtime Info", "Arguments"), "Arguments", line)
            runtime = {"metadata": meta, "args": args}
            if isinstance(args, dict) and "spec" in args:
                runtime = {"metadata": meta, "config": args}
            version = _dict(meta).get("guidellm_version") or version
        report = _Report(runtime)
        listed_index = cell_number(row, line, "Run Info", "Run Index")
        run_index = int(listed_index) if listed_index is not None else index
        sweep = None
        if len(first_rates) == 2 and (profile.get("kind") or profile.get("type_")) == "sweep":
            size = int(as_float(profile.get("sweep_size")) or 0)
            sweep = _sweep_rates((first_rates["synchronous"], first_rates["throughput"]), size)
        strategy = _csv_strategy(path, m.group(1), m.group(2), profile, run_index, sweep, line)
        mode, value, extra = _load_level(path, strategy, "Benchmark / Strategy")
        workload: dict[str, Any] = _data_workload(report.data)
        workload |= {"layout": "guidellm-csv", "strategy": _label(strategy)} | extra
        if sweep is not None and m.group(2) is None and strategy.get("type_") in RATE_KINDS:
            workload["rate_source"] = "GuideLLM's sweep rule over the measured rates"
        if profile.get("kind") or profile.get("type_"):
            workload["profile"] = profile.get("kind") or profile.get("type_")
        model = backend.get("model") or report.model or None
        if backend.get("request_format"):
            workload["backend_request_format"] = backend["request_format"]
        target = backend.get("target") or report.target
        try:
            started = datetime.strptime(
                cell(row, line, "Timings", "Measure Start Time"), "%Y-%m-%d %H:%M:%S"
            )
        except ValueError:
            started = None  # local time of the machine that ran GuideLLM, to the second
        counts = {
            k: cell_number(row, line, "Request Counts", k)
            for k in ("Successful", "Incomplete", "Errored", "Total")
        }
        runs.append(
            make_run(
                path,
                run_key=run_key,
                load_mode=mode,
                load_value=value,
                started_at=started,
                duration_s=cell_number(row, line, "Timings", "Duration", "Sec"),
                model=model,
                workload=workload,
                params={"target": str(target)} if target else {},
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
                "mean": cell_number(row, line, group, unit, "Mean"),
                "median": cell_number(row, line, group, unit, "Median"),
                "std": cell_number(row, line, group, unit, "Std Dev"),
            }
            values["p50"] = values["median"]
            field = f"{group} / {unit} / Percentiles"
            listed = _csv_percentiles(
                path, cell(row, line, group, unit, "Percentiles"), field, line
            )
            for key, stat in PERCENTILES.items():
                if key in listed:
                    values[stat] = listed[key]
            if counts["Successful"] == 0:
                continue
            for stat, v in values.items():
                if v is not None:
                    stats.append((metric, stat, v * factor, run_key))
            if name == "inter_token_latency_ms" and values["mean"] is not None:
                stats.append(("itl_s", "mean", values["mean"] * factor, run_key))
        for (group, name), tool_name in CSV_THROUGHPUTS.items():
            if (group, name, "Mean") in col:
                v = cell_number(row, line, group, name, "Mean")
                if v is not None:
                    stats.append((THROUGHPUTS[tool_name], "value", v, run_key))
    if not runs:
        raise TraceFormatError(path, "has no benchmark rows below its headers")
    return _trace(path, runs, empty(REQUEST_SCHEMA, "run_key"), _stats_frame(stats), version)


# --------------------------------------------------------------------------- CSV (0.2/0.3)


def _load_csv_old(path: Path, table: list[list[str]]) -> Trace:
    """GuideLLM 0.2/0.3 CSV: one header row, one row per benchmark, summary only."""
    header = table[0]
    col = {name: i for i, name in enumerate(header)}
    runs: list[RunMeta] = []
    stats: list[tuple[str, str, float, str]] = []
    body = [(index + 2, row) for index, row in enumerate(table[1:]) if row]
    for index, (line, row) in enumerate(body):
        if len(row) != len(header):
            raise TraceFormatError(
                path, f"has {len(row)} cells, the header {len(header)} (truncated?)", line=line
            )

        def cell(name: str, row: list[str] = row, line: int = line) -> str:
            if name not in col:
                raise TraceFormatError(path, "missing column", field=name, line=line)
            return row[col[name]]

        def cell_number(name: str, line: int = line) -> float | None:
            return _csv_float(path, cell(name), name, line)

        run_key = str(index)
        args = _dict(_csv_json(path, cell("Args"), "Args", line))
        worker = _dict(_csv_json(path, cell("Worker"), "Worker", line))
        loader = _dict(_csv_json(path, cell("Request Loader"), "Request Loader", line))
        strategy = _dict(args.get("strategy"))
        if "type_" not in strategy:  # fall back on the Name cell ("constant@4.00")
            m = LABEL.match(cell("Name"))
            if m is None:
                raise TraceFormatError(
                    path, f"expected a strategy, got {cell('Name')!r}", field="Name", line=line
                )
            strategy = _csv_strategy(path, m.group(1), m.group(2), {}, index, None, line)
        mode, value, extra = _load_level(path, strategy, "Args.strategy")
        bench = {"args": args, "worker": worker, "request_loader": loader}
        workload = _workload_old(bench) | {"layout": "guidellm<=0.3-csv"}
        workload |= extra | {"strategy": _label(strategy)}
        target = worker.get("backend_target")
        try:
            started = datetime.strptime(cell("Start Time"), "%Y-%m-%d %H:%M:%S")
        except ValueError:
            started = None
        counts = {
            k: cell_number(f"{k} Requests")
            for k in ("Successful", "Incomplete", "Errored", "Total")
        }
        runs.append(
            make_run(
                path,
                run_key=run_key,
                load_mode=mode,
                load_value=value,
                started_at=started,
                duration_s=cell_number("Duration"),
                model=worker.get("backend_model") or None,
                workload=workload,
                params={"target": str(target)} if target else {},
                num_requests=int(counts["Total"]) if counts["Total"] is not None else None,
                num_errors=int((counts["Errored"] or 0) + (counts["Incomplete"] or 0)),
            )
        )
        if not counts["Successful"]:
            continue
        for name, (metric, factor) in LATENCIES.items():
            stem = f"Successful {name.replace('_', ' ').capitalize()}"
            if f"{stem} mean" not in col:
                continue
            values = {
                "mean": cell_number(f"{stem} mean"),
                "median": cell_number(f"{stem} median"),
                "std": cell_number(f"{stem} std dev"),
            }
            values["p50"] = values["median"]
            field = f"{stem} {OLD_CSV_PERCENTILES}"
            listed = _csv_percentiles(path, cell(field), field, line)
            for key, stat in PERCENTILES.items():
                if key in listed:
                    values[stat] = listed[key]
            for stat, v in values.items():
                if v is not None:
                    stats.append((metric, stat, v * factor, run_key))
            if name == "inter_token_latency_ms" and values["mean"] is not None:
                stats.append(("itl_s", "mean", values["mean"] * factor, run_key))
        for name, metric in THROUGHPUTS.items():
            column = f"Successful {name.replace('_', ' ').capitalize()} mean"
            if column in col and (v := cell_number(column)) is not None:
                stats.append((metric, "value", v, run_key))
    if not runs:
        raise TraceFormatError(path, "has no benchmark rows below its header")
    return _trace(path, runs, empty(REQUEST_SCHEMA, "run_key"), _stats_frame(stats), None)


# --------------------------------------------------------------------------- entry point


def load(path: Path) -> Trace:
    """Read one GuideLLM report: one run per benchmark (load level)."""
    if path.suffix.lower() == ".csv":
        return _load_csv(path)
    return _load_doc(path)
