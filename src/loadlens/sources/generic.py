"""Any home-grown CSV, JSONL or Parquet of per-request rows, read through a column mapping.

`--map ttft=time_to_first_token_ms:ms --map e2e=latency_s --map load=concurrency` maps
canonical fields to the file's columns, with the unit of times (s, ms, us, ns). Never
auto-detected: a mapping is what tells us what the columns mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def _read(path: Path) -> pl.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pl.read_csv(path, infer_schema_length=10_000)
        if suffix in {".jsonl", ".ndjson"}:
            return pl.read_ndjson(path)
        if suffix == ".parquet":
            return pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as e:
        raise TraceFormatError(path, f"cannot read as {suffix[1:].upper()}: {e}") from None
    raise TraceFormatError(path, f"generic loader reads .csv, .jsonl or .parquet, not '{suffix}'")


def _seconds(frame: pl.DataFrame, col: Column) -> pl.Expr:
    dtype = frame.schema[col.name]
    if dtype.is_temporal():
        return pl.col(col.name).cast(pl.Datetime("ns")).dt.epoch("ns").cast(pl.Float64) * 1e-9
    return pl.col(col.name).cast(pl.Float64, strict=False) * UNITS[col.unit]


def load(
    path: Path,
    mapping: dict[str, Column],
    load_mode: LoadMode = "unknown",
    load_value: float | None = None,
) -> Trace:
    """Read `path` with `mapping`; one run per distinct `load` value, else one run."""
    raw = _read(path)
    for field, col in mapping.items():
        if col.name not in raw.columns:
            raise TraceFormatError(
                path,
                f"no column '{col.name}' (mapped to {field}); "
                f"columns are: {', '.join(raw.columns[:12])}",
                field=col.name,
            )
    exprs: dict[str, pl.Expr] = {
        f: _seconds(raw, c) for f, c in mapping.items() if f in TIME_FIELDS
    }
    if "e2e" not in exprs:
        exprs["e2e"] = exprs["end"] - exprs["start"]
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
    load_col = pl.col(mapping["load"].name).cast(pl.Float64) if "load" in mapping else None
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
