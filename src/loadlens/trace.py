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
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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

# Plausibility bounds: a value past these is a corrupt file, not a measurement (a TTFT of
# 1e308 s would be shown as a 309-digit number). 1e6 s is eleven days.
MAX_SECONDS = 1e6
MAX_COUNT = 10**9  # tokens per request, requests per run
MAX_LOAD = 1e9  # concurrency or requests per second
MAX_STAT = 1e12  # any other summary statistic (throughputs, counts)
# Real tools round: E2E may be this much shorter than TTFT and still be the same instant.
E2E_TOLERANCE_S = 1e-3


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
    num_requests: int | None = Field(default=None, ge=0, le=MAX_COUNT)
    num_errors: int | None = Field(default=None, ge=0, le=MAX_COUNT)

    @field_validator("load_value", "duration_s", "num_requests", "num_errors", mode="before")
    @classmethod
    def _not_bool(cls, v: Any) -> Any:
        # pydantic reads true as 1.0 (or 1): a flag is no number of seconds or requests.
        if isinstance(v, bool):
            raise ValueError(f"expected a number, got {str(v).lower()}")
        return v

    @field_validator("load_value", "duration_s")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @field_validator("duration_s")
    @classmethod
    def _plausible_duration(cls, v: float | None) -> float | None:
        if v is not None and v > MAX_SECONDS:
            raise ValueError(f"{v!r} s is implausible (at most {MAX_SECONDS:.0e} s expected)")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> RunMeta:
        v = self.load_value
        if v is not None and self.load_mode in ("concurrency", "rate", "throughput"):
            if v <= 0:
                unit = "requests in flight" if self.load_mode == "concurrency" else "requests/s"
                raise ValueError(
                    f"load_value: expected a positive {self.load_mode} ({unit}), got {v!r}"
                )
            if self.load_mode == "concurrency" and not v.is_integer():
                raise ValueError(f"load_value: expected a whole concurrency, got {v!r}")
            if v > MAX_LOAD:
                raise ValueError(
                    f"load_value: {v!r} is implausible (at most {MAX_LOAD:.0e} expected)"
                )
        n, e = self.num_requests, self.num_errors
        if n is not None and e is not None and e > n:
            raise ValueError(f"num_errors: {e} errors among {n} requests (at most {n} expected)")
        return self


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


def count(
    path: Path, value: Any, field: str, *, required: bool = False, line: int | None = None
) -> int | None:
    """A count a source file holds at `field` (requests, errors, tokens) as int; None when
    absent (unless `required`). A bool, a fraction (0.5 errors), a negative or an implausible
    count is refused by name, never truncated."""
    x = number(path, value, field, required=required, line=line)
    if x is None:
        return None
    if x < 0 or not x.is_integer():
        raise TraceFormatError(
            path, f"expected a whole, non-negative count, got {value!r}", field=field, line=line
        )
    if x > MAX_COUNT:
        raise TraceFormatError(
            path,
            f"{value!r} is implausible (at most {MAX_COUNT:.0e} expected)",
            field=field,
            line=line,
        )
    return int(x)


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
        msg = str(err["msg"]).removeprefix("Value error, ")
        if not loc and ": " in msg:  # a check across fields names its field first
            loc, msg = msg.split(": ", 1)
        raise TraceFormatError(path, msg, field=loc or None) from None


def requests_from_rows(path: Path, rows: list[dict[str, Any]], run_key: str) -> pl.DataFrame:
    """Per-request rows a source built as dicts (any subset of the canonical columns; the
    rest are null) as the checked canonical frame of the run `run_key`."""
    # Counts as floats first: polars would make 4.5 tokens 4 and fail on NaN; the checks
    # in conform_requests refuse those by name.
    schema = {
        k: (pl.Float64() if k.endswith("_tokens") else v)
        for k, v in REQUEST_SCHEMA.items()
        if k != "run_id"
    }
    frame = pl.DataFrame(rows, schema=schema).with_columns(run_key=pl.lit(run_key))
    return conform_requests(path, frame)


def conform_requests(path: Path, frame: pl.DataFrame) -> pl.DataFrame:
    """Cast per-request rows (keyed by run_key) to the canonical schema and check them.

    Rejects NaN, infinite, negative or implausible (> MAX_SECONDS, > MAX_COUNT) times and
    token counts, booleans and fractions where counts or seconds belong, unknown statuses,
    an E2E shorter than the TTFT (beyond E2E_TOLERANCE_S of rounding), a sequence number
    used twice in a run, and successful requests without a latency or with a latency of 0:
    a brief must never rest on impossible numbers.
    """
    schema = {("run_key" if k == "run_id" else k): v for k, v in REQUEST_SCHEMA.items()}
    missing = [c for c in schema if c not in frame.columns]
    frame = frame.with_columns(pl.lit(None, dtype=schema[c]).alias(c) for c in missing)
    _check_raw_types(path, frame)
    try:
        frame = frame.select(pl.col(c).cast(t, strict=True) for c, t in schema.items())
    except pl.exceptions.PolarsError as e:
        raise TraceFormatError(path, f"cannot read a column as numbers: {_first_line(e)}") from None
    frame = frame.with_row_index("_row")

    def bad_seconds(e: pl.Expr) -> pl.Expr:
        return e.is_nan() | e.is_infinite() | (e < 0)

    seconds = "expected a finite, non-negative number of seconds"
    implausible = f"implausible (at most {MAX_SECONDS:.0e} s expected)"
    # Raw fields before derived ones (e2e is often ttft + sum(itl)): blame the source.
    checks: list[tuple[str, pl.Expr, str]] = []
    for c in ("start_s", "ttft_s"):
        checks += [(c, bad_seconds(pl.col(c)), seconds), (c, pl.col(c) > MAX_SECONDS, implausible)]
    itl_bad = pl.col("itl_s").list.eval(bad_seconds(pl.element())).list.any()
    checks.append(("itl_s", itl_bad, "expected finite, non-negative gaps in seconds"))
    checks.append(("itl_s", pl.col("itl_s").list.max() > MAX_SECONDS, implausible))
    checks.append(("e2e_s", bad_seconds(pl.col("e2e_s")), seconds))
    checks.append(("e2e_s", pl.col("e2e_s") > MAX_SECONDS, implausible))
    for c in ("input_tokens", "output_tokens"):
        checks.append((c, pl.col(c) < 0, "expected a non-negative token count"))
        checks.append((c, pl.col(c) > MAX_COUNT, f"implausible (at most {MAX_COUNT:.0e} tokens)"))
    checks.append(("status", ~pl.col("status").is_in(STATUSES), f"expected one of {STATUSES}"))
    ok = pl.col("status") == "ok"
    checks.append(
        (
            "e2e_s",
            ok & pl.col("e2e_s").is_null(),
            "a successful request needs its end-to-end latency",
        )
    )
    checks.append(
        (
            "e2e_s",
            ok & (pl.col("e2e_s") == 0),
            "a successful request cannot take 0 s (a failure recorded as a success?)",
        )
    )
    checks.append(
        (
            "e2e_s",
            pl.col("e2e_s") < pl.col("ttft_s") - E2E_TOLERANCE_S,
            "end-to-end latency shorter than the time to first token",
        )
    )
    checks.append(
        (
            "seq",
            pl.col("seq").is_not_null() & pl.struct("run_key", "seq").is_duplicated(),
            "sequence number used twice in one run",
        )
    )
    # One pass over the rows for every check; only a failing check is looked up again, to
    # name its first row (in the order above: raw fields before derived ones).
    failed = frame.select(
        expr.fill_null(False).any().alias(str(i)) for i, (_, expr, _) in enumerate(checks)
    ).row(0)
    for (name, expr, expected), bad in zip(checks, failed, strict=True):
        if not bad:
            continue
        row = frame.filter(expr.fill_null(False)).row(0, named=True)
        value = row[name] if name != "itl_s" else "[...]"
        raise TraceFormatError(
            path, f"request #{row['_row']}: {expected}, got {value!r}", field=name
        )
    return frame.drop("_row")


def _check_raw_types(path: Path, frame: pl.DataFrame) -> None:
    """Refuse what a strict cast would still take silently: true as 1.0 s or 1 token,
    4.5 tokens as 4."""
    for c in ("seq", "start_s", "ttft_s", "e2e_s", "input_tokens", "output_tokens", "itl_s"):
        dtype = frame.schema[c]
        inner = dtype.inner if isinstance(dtype, pl.List) else dtype
        if inner == pl.Boolean:
            raise TraceFormatError(path, "expected numbers, got booleans (true/false)", field=c)
    for c in ("seq", "input_tokens", "output_tokens"):
        if frame.schema[c].is_float():
            col = pl.col(c)
            bad = ~col.is_finite() | (col != col.floor()) | (col.abs() > MAX_COUNT)
            hit = frame.with_row_index("_row").filter(bad.fill_null(False))
            if hit.height:
                row = hit.row(0, named=True)
                raise TraceFormatError(
                    path,
                    f"request #{row['_row']}: expected a whole number up to {MAX_COUNT:.0e}, "
                    f"got {row[c]!r}",
                    field=c,
                )


def _first_line(e: BaseException) -> str:
    """A library's (polars') message, first line only: the rest is advice to its own users."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
