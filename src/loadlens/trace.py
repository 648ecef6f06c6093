"""The canonical data every source produces and the warehouse stores.

A source turns one file into a `Trace`: run metadata (one row per load level), per-request
rows where the tool recorded them, summary statistics where it did not, and server samples.
All times are seconds (float64); sources convert units at their boundary, nowhere else.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loadlens.errors import TraceFormatError

LoadMode = Literal["concurrency", "rate", "throughput", "unknown"]
STATUSES = ("ok", "error", "timeout", "cancelled")

REQUEST_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "seq": pl.Int64(),
    "start_s": pl.Float64(),
    "ttft_s": pl.Float64(),
    "e2e_s": pl.Float64(),
    "input_tokens": pl.Int64(),
    "output_tokens": pl.Int64(),
    "itl_s": pl.List(pl.Float64()),
    "status": pl.String(),
    "error": pl.String(),
}

RUN_STAT_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "metric": pl.String(),
    "statistic": pl.String(),
    "value": pl.Float64(),
}

SERVER_SAMPLE_SCHEMA: dict[str, pl.DataType] = {
    "run_id": pl.String(),
    "t_s": pl.Float64(),
    "signal": pl.String(),
    "value": pl.Float64(),
}

# Workload keys every source uses when its file states them, so runs that differ only in
# workload are told apart the same way whatever tool measured them. Sources add their own
# extras beside these (kept, shown, never compared).
WORKLOAD_KEYS = {
    "input_tokens": "target input (prompt) length in tokens",
    "output_tokens": "target output length in tokens (max_tokens)",
    "dataset": "dataset or scenario name",
}
# Parameter keys likewise: what served the run, when the file records it.
PARAM_KEYS = {
    "engine": "serving engine and version, e.g. 'vllm 0.8.3'",
    "hardware": "accelerators, e.g. '8x H100'",
    "server_args": "engine arguments that shape performance (dict)",
}


def stored_object(text: str | None) -> dict[str, Any]:
    """A run's `workload` or `params` (or a deployment's `params`) as stored: a JSON object
    as a dict, anything else (null, not an object, unreadable) as {}."""
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# Latency metrics the models know; summary statistics use these names too.
LATENCY_METRICS = ("ttft_s", "tpot_s", "itl_s", "e2e_s")


class RunMeta(BaseModel):
    """One load level of one deployment, as one tool measured it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_key: str = Field(description="Identifies the level inside its source file")
    load_mode: LoadMode
    load_value: float | None = None
    started_at: datetime | None = None
    duration_s: float | None = Field(default=None, ge=0)
    model: str | None = None
    workload: dict[str, Any] = Field(
        default_factory=dict,
        description="What was sent: WORKLOAD_KEYS where the file says them, then tool extras",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="What served it, as the file records: engine, hardware, server arguments",
    )
    num_requests: int | None = Field(default=None, ge=0)
    num_errors: int | None = Field(default=None, ge=0)

    @field_validator("load_value", "duration_s")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


@dataclass(frozen=True)
class SourceInfo:
    """Where a trace came from: enough to trace every number back to its file."""

    path: str
    sha256: str
    format: str
    tool: str
    tool_version: str | None = None


@dataclass(frozen=True)
class Trace:
    """What one source file holds, in canonical form. Requests etc. carry `run_key`."""

    source: SourceInfo
    runs: tuple[RunMeta, ...]
    requests: pl.DataFrame = field(default_factory=lambda: empty(REQUEST_SCHEMA, "run_key"))
    run_stats: pl.DataFrame = field(default_factory=lambda: empty(RUN_STAT_SCHEMA, "run_key"))
    server_samples: pl.DataFrame = field(
        default_factory=lambda: empty(SERVER_SAMPLE_SCHEMA, "run_key")
    )

    def run_id(self, run_key: str) -> str:
        """Stable id: the same level of the same file content always gets the same id."""
        return hashlib.sha256(f"{self.source.sha256}:{run_key}".encode()).hexdigest()[:16]


def empty(schema: dict[str, pl.DataType], key: str = "run_id") -> pl.DataFrame:
    """An empty frame of a canonical schema, keyed by `key` instead of run_id."""
    return pl.DataFrame(schema={(key if k == "run_id" else k): v for k, v in schema.items()})


def stats_frame(rows: list[tuple[Any, ...]], run_key: str | None = None) -> pl.DataFrame:
    """A tool's summary statistics as run_stats rows keyed by run_key: `rows` are
    (metric, statistic, value) of the run `run_key`, or (run_key, metric, statistic, value)."""
    if not rows:
        return empty(RUN_STAT_SCHEMA, "run_key")
    names = (
        ["metric", "statistic", "value"]
        if run_key is not None
        else ["run_key", "metric", "statistic", "value"]
    )
    frame = pl.DataFrame(
        rows, schema={n: pl.Float64 if n == "value" else pl.String for n in names}, orient="row"
    )
    if run_key is not None:
        frame = frame.with_columns(run_key=pl.lit(run_key))
    return frame.select("run_key", "metric", "statistic", "value")


def number(
    path: Path,
    value: Any,
    field: str,
    *,
    required: bool = False,
    finite: bool = True,
    line: int | None = None,
) -> float | None:
    """A number a source file holds at `field`, as float; None when absent (unless
    `required`). Anything else, a bool or (with `finite`) NaN/infinity is refused by name."""
    if value is None:
        if required:
            raise TraceFormatError(path, "missing; expected a number", field=field, line=line)
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TraceFormatError(path, f"expected a number, got {value!r}", field=field, line=line)
    if finite and not math.isfinite(value):
        raise TraceFormatError(
            path, f"expected a finite number, got {value!r}", field=field, line=line
        )
    return float(value)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_run(path: Path, **fields: Any) -> RunMeta:
    """Build a RunMeta, turning a validation failure into a TraceFormatError on `path`."""
    try:
        return RunMeta(**fields)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise TraceFormatError(path, err["msg"], field=loc) from None


def requests_from_rows(path: Path, rows: list[dict[str, Any]], run_key: str) -> pl.DataFrame:
    """Per-request rows a source built as dicts (any subset of the canonical columns; the
    rest are null) as the checked canonical frame of the run `run_key`."""
    schema = {k: v for k, v in REQUEST_SCHEMA.items() if k != "run_id"}
    frame = pl.DataFrame(rows, schema=schema).with_columns(run_key=pl.lit(run_key))
    return conform_requests(path, frame)


def conform_requests(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """Cast per-request rows (keyed by run_key) to the canonical schema and check them.

    Rejects NaN, infinite or negative times and token counts, unknown statuses, and
    successful requests without a latency: a brief must never rest on impossible numbers.
    """
    schema = {("run_key" if k == "run_id" else k): v for k, v in REQUEST_SCHEMA.items()}
    missing = [c for c in schema if c not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=schema[c]).alias(c) for c in missing)
    try:
        frame = frame.select(pl.col(c).cast(t, strict=True) for c, t in schema.items())
    except pl.exceptions.PolarsError as e:
        raise TraceFormatError(path, f"cannot read a column as numbers: {e}") from None
    frame = frame.with_row_index("_row")

    def bad_seconds(e: pl.Expr) -> pl.Expr:
        return e.is_nan() | e.is_infinite() | (e < 0)

    # Raw fields before derived ones (e2e is often ttft + sum(itl)): blame the source.
    checks: list[tuple[str, pl.Expr, str]] = [
        (c, bad_seconds(pl.col(c)), "expected a finite, non-negative number of seconds")
        for c in ("start_s", "ttft_s")
    ]
    itl_bad = pl.col("itl_s").list.eval(bad_seconds(pl.element())).list.any()
    checks.append(("itl_s", itl_bad, "expected finite, non-negative gaps in seconds"))
    checks.append(
        ("e2e_s", bad_seconds(pl.col("e2e_s")), "expected a finite, non-negative number of seconds")
    )
    for c in ("input_tokens", "output_tokens"):
        checks.append((c, pl.col(c) < 0, "expected a non-negative token count"))
    checks.append(("status", ~pl.col("status").is_in(STATUSES), f"expected one of {STATUSES}"))
    no_latency = (pl.col("status") == "ok") & pl.col("e2e_s").is_null()
    checks.append(("e2e_s", no_latency, "a successful request needs its end-to-end latency"))
    for name, expr, expected in checks:
        hit = frame.filter(expr.fill_null(False)).head(1)
        if hit.height:
            row = hit.row(0, named=True)
            value = row[name] if name != "itl_s" else "[...]"
            raise TraceFormatError(
                path, f"request #{row['_row']}: {expected}, got {value!r}", field=name
            )
    return frame.drop("_row")
