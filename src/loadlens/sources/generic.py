"""Any home-grown CSV, JSONL or Parquet of per-request rows, read through a column mapping.

`--map ttft=time_to_first_token_ms:ms --map e2e=latency_s --map load=concurrency` maps
canonical fields to the file's columns, with the unit of times (s, ms, us, ns). Never
auto-detected: a mapping is what tells us what the columns mean.

Start times: a `start` column gives start_s (seconds from the level's first send); with an
`end` column and `e2e` but no `start`, each request's start is end - e2e (null where e2e
is, e.g. a failed request without a latency); with neither, start_s is null.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson
import polars as pl

from loadlens.errors import ConfigError, TraceFormatError
from loadlens.trace import LoadMode, SourceInfo, Trace, conform_requests, file_sha256, make_run

NAME = "generic"
TOOL = "generic"
AUTO_DETECT = False
TIME_FIELDS = {"ttft", "e2e", "start", "end"}
FIELDS = TIME_FIELDS | {"input_tokens", "output_tokens", "status", "error", "load"}
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
OK_STATUSES = {"ok", "success", "succeeded", "true", "200", "completed"}


@dataclass(frozen=True)
class Column:
    name: str
    unit: str = "s"


def parse_mapping(specs: list[str] | dict[str, str]) -> dict[str, Column]:
    """Parse `field=column[:unit]` specs (CLI) or a {field: "column[:unit]"} table (config)."""
    items = list(specs.items()) if isinstance(specs, dict) else []
    for spec in specs if isinstance(specs, list) else []:
        for part in spec.split(","):
            field, sep, target = part.partition("=")
            if not sep or not field.strip() or not target.strip():
                raise ConfigError(f"--map '{part}': expected field=column[:unit]")
            items.append((field.strip(), target.strip()))
    mapping: dict[str, Column] = {}
    for field, target in items:
        if field not in FIELDS:
            raise ConfigError(f"--map: unknown field '{field}'; known: {', '.join(sorted(FIELDS))}")
        column, _, unit = target.rpartition(":") if ":" in target else (target, "", "s")
        if unit not in UNITS:
            raise ConfigError(f"--map {field}: unknown unit '{unit}'; use one of s, ms, us, ns")
        mapping[field] = Column(column, unit)
    if "e2e" not in mapping and not {"start", "end"} <= mapping.keys():
        raise ConfigError("--map needs e2e=<column>, or both start= and end= columns")
    return mapping


def _read(path: Path, mapping: dict[str, Column]) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema_length=10_000)
        if suffix in {".jsonl", ".ndjson"}:
            return pl.read_ndjson(path)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except OSError as e:
        raise TraceFormatError(path, f"cannot read: {e.strerror or e}") from None
    except pl.exceptions.PolarsError as e:
        if suffix in {".jsonl", ".ndjson"}:
            _explain_jsonl(path, mapping)
        # polars' own words run to several lines of advice to its users: keep the first.
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        kind = suffix[1:].upper()
        raise TraceFormatError(
            path,
            f"not a well-formed {kind} file ({first.rstrip('.:')})",
            hint="every row needs the header's columns" if kind == "CSV" else None,
        ) from None
    raise TraceFormatError(path, f"generic loader reads .csv, .jsonl or .parquet, not '{suffix}'")


def _explain_jsonl(path: Path, mapping: dict[str, Column]) -> None:
    """Name the line and field polars could not read: a mapped value that is no number."""
    numeric = {c.name: f for f, c in mapping.items() if f not in ("status", "error")}
    with path.open("rb") as lines:
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as e:
                raise TraceFormatError(path, f"not valid JSON ({e})", line=n) from None
            if not isinstance(row, dict):
                raise TraceFormatError(path, "expected one JSON object per line", line=n)
            for column in numeric:
                value = row.get(column)
                if isinstance(value, dict | list | bool):
                    raise TraceFormatError(
                        path, f"expected a number, got {value!r}", field=column, line=n
                    )


def _check_values(path: Path, raw: pl.DataFrame, mapping: dict[str, Column]) -> None:
    """Every mapped number is a number: a value that is not ("n/a", "many", a blank load)
    is refused by column and row, never read as missing."""
    if raw.is_empty():
        raise TraceFormatError(path, "no rows (a header only): nothing was measured")
    for field, col in mapping.items():
        if field in ("status", "error"):
            continue
        dtype = raw.schema[col.name]
        if dtype.is_temporal() and field in TIME_FIELDS:
            continue
        if dtype == pl.Boolean or dtype.is_nested() or dtype == pl.Object:
            raise TraceFormatError(path, f"expected numbers, got {dtype}", field=col.name)
        value = pl.col(col.name)
        as_number = value.cast(pl.Float64, strict=False)
        bad = (value.is_not_null() & as_number.is_null()) | (
            value.is_null() if field == "load" else pl.lit(False)
        )
        hit = raw.with_row_index("_row").filter(bad).head(1)
        if hit.height:
            row = hit.row(0, named=True)
            got = row[col.name]
            raise TraceFormatError(
                path,
                f"row {row['_row'] + 1}: expected a number ({field}), got "
                + ("a blank" if got is None else repr(got)),
                field=col.name,
            )


def _seconds(frame: pl.DataFrame, col: Column) -> pl.Expr:
    dtype = frame.schema[col.name]
    if dtype.is_temporal():
        return pl.col(col.name).cast(pl.Datetime("ns")).dt.epoch("ns").cast(pl.Float64) * 1e-9
    return pl.col(col.name).cast(pl.Float64) * UNITS[col.unit]


def load(
    path: Path,
    mapping: dict[str, Column],
    load_mode: LoadMode = "unknown",
    load_value: float | None = None,
) -> Trace:
    """Read `path` with `mapping`; one run per distinct `load` value, else one run."""
    raw = _read(path, mapping)
    for field, col in mapping.items():
        if col.name not in raw.columns:
            raise TraceFormatError(
                path,
                f"no column '{col.name}' (mapped to {field}); "
                f"columns are: {', '.join(raw.columns[:12])}",
                field=col.name,
            )
    _check_values(path, raw, mapping)
    exprs: dict[str, pl.Expr] = {
        f: _seconds(raw, c) for f, c in mapping.items() if f in TIME_FIELDS
    }
    if "e2e" not in exprs:
        exprs["e2e"] = exprs["end"] - exprs["start"]
    elif "start" not in exprs and "end" in exprs:
        exprs["start"] = exprs["end"] - exprs["e2e"]
    status = pl.lit("ok")
    if "status" in mapping:
        s = pl.col(mapping["status"].name).cast(pl.String).str.to_lowercase()
        status = (
            pl.when(s.is_in(OK_STATUSES))
            .then(pl.lit("ok"))
            .when(s == "timeout")
            .then(pl.lit("timeout"))
            .when(s.is_in(["cancelled", "canceled"]))
            .then(pl.lit("cancelled"))
            .otherwise(pl.lit("error"))
        )
    error = pl.lit(None, dtype=pl.String)
    if "error" in mapping:
        error = pl.col(mapping["error"].name).cast(pl.String)
        error = pl.when(error.str.len_chars() > 0).then(error)
        if "status" not in mapping:
            status = pl.when(error.is_not_null()).then(pl.lit("error")).otherwise(pl.lit("ok"))
    load_col = (
        pl.col(mapping["load"].name).cast(pl.Float64, strict=False) if "load" in mapping else None
    )
    frame = raw.select(
        run_key=load_col.cast(pl.String) if load_col is not None else pl.lit("0"),
        load=load_col if load_col is not None else pl.lit(load_value, dtype=pl.Float64),
        start_abs=exprs.get("start", pl.lit(None, dtype=pl.Float64)),
        ttft_s=exprs.get("ttft", pl.lit(None, dtype=pl.Float64)),
        e2e_s=exprs["e2e"],
        input_tokens=pl.col(mapping["input_tokens"].name) if "input_tokens" in mapping else None,
        output_tokens=pl.col(mapping["output_tokens"].name) if "output_tokens" in mapping else None,
        status=status,
        error=error,
    ).with_columns(
        start_s=pl.col("start_abs") - pl.col("start_abs").min().over("run_key"),
        seq=pl.int_range(pl.len()).over("run_key"),
    )
    runs = []
    for key, group in frame.group_by("run_key", maintain_order=True):
        end = (group["start_s"] + group["e2e_s"]).max()
        value = group["load"][0]
        runs.append(
            make_run(
                path,
                run_key=str(key[0]),
                load_mode=load_mode if value is not None else "unknown",
                load_value=value,
                duration_s=end if end is not None else None,
                num_requests=group.height,
                num_errors=int((group["status"] != "ok").sum()),
                workload={"mapping": {f: f"{c.name}:{c.unit}" for f, c in mapping.items()}},
            )
        )
    source = SourceInfo(path=str(path), sha256=file_sha256(path), format=NAME, tool=TOOL)
    return Trace(
        source=source,
        runs=tuple(runs),
        requests=conform_requests(path, frame.drop("load", "start_abs")),
    )
