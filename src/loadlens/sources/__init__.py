"""Source registry: every module in this package that defines `detect` and `load` is a format.

Adding a format is adding one module (with NAME, detect(path, head) and load(path)) and
its test file; nothing here changes. A tool that writes several files for one run (a
per-request export beside its summary) is one module whose `partners(path)` names the files
`load(path)` reads with `path`: those are then not loaded on their own. A summary whose
per-request partner is absent is loaded alone, as summary-only. A module may also name
what its tool writes beside its traces that is not a trace (`SIDE_FILES`, glob patterns on
file names; `SIDE_DIRS`, directory names): a directory walk passes over those, saying so.
Formats that cannot be recognised from content alone (the generic column-mapped loader)
set AUTO_DETECT = False, have no detect, and are only used by name.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.trace import SERVER_SAMPLE_SCHEMA, Trace, empty

HEAD_BYTES = 64 * 1024
# Files that sit beside traces (docs, scripts) and are never traces themselves.
NOT_TRACES = {".md", ".txt", ".py", ".sh", ".toml", ".gitkeep", ".log", ".yaml_notes"}
# `<stem>.metrics.jsonl` beside `<stem>.json` carries that run's server samples.
COMPANION_SUFFIX = ".metrics.jsonl"


def _side_patterns(formats: dict[str, ModuleType]) -> tuple[list[tuple[str, str]], set[str]]:
    files = [(p, name) for name, m in formats.items() for p in getattr(m, "SIDE_FILES", ())]
    dirs = {d for m in formats.values() for d in getattr(m, "SIDE_DIRS", ())}
    return files, dirs


def _discover() -> dict[str, ModuleType]:
    found: dict[str, ModuleType] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME") and hasattr(module, "load"):
            found[module.NAME] = module
    return found


FORMATS: dict[str, ModuleType] = _discover()
SIDE_FILES, SIDE_DIRS = _side_patterns(FORMATS)


def read_head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(HEAD_BYTES)


def detect(path: Path) -> ModuleType:
    """The format module that recognises `path`, or a TraceFormatError naming the file."""
    head = read_head(path)
    matches = [
        m for m in FORMATS.values() if getattr(m, "AUTO_DETECT", True) and m.detect(path, head)
    ]
    if not matches:
        known = ", ".join(n for n, m in FORMATS.items() if getattr(m, "AUTO_DETECT", True))
        raise TraceFormatError(
            path,
            "matches no known trace format",
            hint=f"known: {known}; for a home-grown CSV/JSONL/Parquet use --map",
        )
    return matches[0]


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


def _natural(path: Path) -> list[str | int]:
    """Sort key putting vllm-c5.json before vllm-c10.json."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def expand(paths: Iterable[Path]) -> tuple[list[Path], list[Skipped]]:
    """Walk directories; return trace candidates and what was passed over, with why."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for p in paths:
        if not p.exists():
            raise TraceFormatError(p, "no such file or directory")
        if not p.is_dir() and not p.is_file():
            raise TraceFormatError(
                p, "not a regular file (a FIFO, device or socket): give a trace file or folder"
            )
        for f in sorted(p.rglob("*"), key=_natural) if p.is_dir() else [p]:
            if not f.is_file():
                if not f.is_dir():
                    skipped.append(Skipped(f, "not a regular file (a FIFO, device or socket)"))
                continue
            if f.name.startswith(".") or f.suffix.lower() in NOT_TRACES:
                skipped.append(Skipped(f, "not a trace (documentation or code)"))
            elif p.is_dir() and (side := _side_file(f.relative_to(p))):
                skipped.append(Skipped(f, side))
            elif f.name.endswith(COMPANION_SUFFIX):
                continue  # read together with its trace, below
            else:
                files.append(f)
    return files, skipped


def plan(paths: Iterable[Path], fmt: str | None = None) -> tuple[list[Path], list[Skipped]]:
    """The files to load, in order, and what was passed over: `expand`, less the files a
    format reads together with another one (`partners`). With `fmt` nothing is detected."""
    files, skipped = expand(paths)
    if fmt is not None:
        return files, skipped
    partner_of: dict[Path, Path] = {}
    for f in files:
        module = detect(f)
        for partner in getattr(module, "partners", lambda _: [])(f):
            if partner != f:
                partner_of.setdefault(partner.resolve(), f)
    kept = []
    for f in files:
        if (primary := partner_of.get(f.resolve())) is not None:
            skipped.append(Skipped(f, f"read together with {primary.name}"))
        else:
            kept.append(f)
    return kept, skipped


def _side_file(relative: Path) -> str | None:
    """Why a file found in a directory walk is a tool's side output, or None."""
    if any(part in SIDE_DIRS for part in relative.parts[:-1]):
        return "a benchmark tool's side output (not a trace)"
    for pattern, fmt in SIDE_FILES:
        if fnmatch.fnmatch(relative.name, pattern):
            return f"written by {fmt} beside its traces (not a trace)"
    return None


def load_file(path: Path, fmt: str | None = None, **options: Any) -> Trace:
    """Load one file as `fmt` (or the detected format), with its companion server samples."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise TraceFormatError(path, f"unknown format '{fmt}'; known: {', '.join(FORMATS)}")
        module = FORMATS[fmt]
    else:
        module = detect(path)
    trace: Trace = module.load(path, **options)
    companion = path.with_name(path.name.removesuffix(path.suffix) + COMPANION_SUFFIX)
    if companion.exists() and len(trace.runs) == 1:
        samples = load_server_samples(companion).with_columns(run_key=pl.lit(trace.runs[0].run_key))
        trace = Trace(trace.source, trace.runs, trace.requests, trace.run_stats, samples)
    return trace


def load_server_samples(path: Path) -> pl.DataFrame:
    """Read `{"t_s", "signal", "value"}` lines (Prometheus scrapes already mapped)."""
    rows = []
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
            rows.append((float(obj["t_s"]), str(obj["signal"]), float(obj["value"])))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise TraceFormatError(path, f"expected {{t_s, signal, value}}: {e}", line=n) from None
    schema = {k: v for k, v in SERVER_SAMPLE_SCHEMA.items() if k != "run_id"}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    if frame.is_empty():
        return empty(SERVER_SAMPLE_SCHEMA, "run_key")
    return frame
