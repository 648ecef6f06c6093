"""loadlens's own per-request trace, as the sweep runner writes it: JSONL or Parquet.

JSONL: the first line is a header `{"loadlens_trace": 1, "tool": ..., "runs": [RunMeta...]}`,
every further line one request `{"run_key", "seq", "start_s", "ttft_s", "e2e_s",
"input_tokens", "output_tokens", "itl_s", "status", "error"}`.
Parquet: the request rows as columns, the same header as JSON in the file's key-value
metadata under `loadlens`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from loadlens import __version__
from loadlens.errors import TraceFormatError
from loadlens.trace import (
    REQUEST_SCHEMA,
    RunMeta,
    SourceInfo,
    Trace,
    conform_requests,
    file_sha256,
    make_run,
)

NAME = "loadlens"
FORMAT_VERSION = 1
COLUMNS = {("run_key" if k == "run_id" else k): v for k, v in REQUEST_SCHEMA.items()}


def detect(path: Path, head: bytes) -> bool:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return head.lstrip().startswith(b'{"loadlens_trace"')
    if suffix == ".parquet":
        try:
            return "loadlens" in pl.read_parquet_metadata(path)
        except (OSError, pl.exceptions.PolarsError):
            return False
    return False


def _header(path: Path, raw: bytes | str) -> dict[str, Any]:
    try:
        header = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise TraceFormatError(path, f"header is not valid JSON ({e})", line=1) from None
    if not isinstance(header, dict) or header.get("loadlens_trace") != FORMAT_VERSION:
        raise TraceFormatError(path, f"expected a loadlens_trace {FORMAT_VERSION} header", line=1)
    if not isinstance(header.get("runs"), list) or not header["runs"]:
        raise TraceFormatError(path, "header lists no runs", field="runs", line=1)
    return header


def load(path: Path) -> Trace:
    """Read a loadlens trace (JSONL or Parquet) into canonical form."""
    if path.suffix.lower() == ".parquet":
        try:
            header = _header(path, pl.read_parquet_metadata(path)["loadlens"])
            frame = pl.read_parquet(path)
        except (OSError, KeyError, pl.exceptions.PolarsError) as e:
            raise TraceFormatError(path, f"cannot read Parquet: {e}") from None
    else:
        data = path.read_bytes()
        first, _, rest = data.partition(b"\n")
        header = _header(path, first)
        try:
            frame = (
                pl.read_ndjson(io.BytesIO(rest), schema=COLUMNS)
                if rest.strip()
                else pl.DataFrame(schema=COLUMNS)
            )
        except pl.exceptions.PolarsError as e:
            raise TraceFormatError(path, f"request lines are malformed: {e}") from None
    runs = tuple(make_run(path, **r) for r in header["runs"])
    keys = {r.run_key for r in runs}
    stray = set(frame["run_key"].unique().to_list()) - keys if "run_key" in frame.columns else set()
    if stray:
        raise TraceFormatError(
            path,
            f"requests name runs missing from the header: {sorted(stray)[:3]}",
            field="run_key",
        )
    source = SourceInfo(
        path=str(path),
        sha256=file_sha256(path),
        format=NAME,
        tool=header.get("tool", "loadlens sweep"),
        tool_version=header.get("tool_version"),
    )
    return Trace(source=source, runs=runs, requests=conform_requests(path, frame))


def write(
    path: Path, runs: list[RunMeta], requests: pl.DataFrame, *, tool: str = "loadlens sweep"
) -> None:
    """Write runs and their requests (keyed by run_key) in the native format, atomically."""
    header = {
        "loadlens_trace": FORMAT_VERSION,
        "tool": tool,
        "tool_version": __version__,
        "runs": [r.model_dump(mode="json") for r in runs],
    }
    frame = requests.select(pl.col(c).cast(t) for c, t in COLUMNS.items())
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix.lower() == ".parquet":
        frame.write_parquet(tmp, metadata={"loadlens": orjson.dumps(header).decode()})
    else:
        with tmp.open("wb") as f:
            f.write(orjson.dumps(header) + b"\n")
            frame.write_ndjson(f)
    tmp.replace(path)
