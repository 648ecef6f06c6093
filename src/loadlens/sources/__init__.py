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

import codecs
import fnmatch
import importlib
import math
import os
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
from loadlens.trace import (
    LATENCY_METRICS,
    MAX_SECONDS,
    MAX_STAT,
    SERVER_SAMPLE_SCHEMA,
    Trace,
    empty,
)

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
    """The first bytes of `path`, less a UTF-8 byte-order mark (Windows editors add one)."""
    try:
        with path.open("rb") as f:
            return f.read(HEAD_BYTES).removeprefix(codecs.BOM_UTF8)
    except OSError as e:
        raise TraceFormatError(path, f"cannot read: {e.strerror or e}") from None


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
    """Walk directories; return trace candidates and what was passed over, with why.

    A directory or file that cannot be read is refused by name, never skipped unsaid; so is
    a server-samples file (`<stem>.metrics.jsonl`) with no trace beside it that is not one.
    """
    files: list[Path] = []
    skipped: list[Skipped] = []
    companions: list[Path] = []
    for p in paths:
        if not p.exists():
            raise TraceFormatError(p, "no such file or directory")
        if not p.is_dir() and not p.is_file():
            raise TraceFormatError(
                p, "not a regular file (a FIFO, device or socket): give a trace file or folder"
            )
        found = len(files) + len(companions)
        for f in sorted(_walk(p), key=_natural) if p.is_dir() else [p]:
            if not f.is_file():
                if not f.is_dir():
                    skipped.append(Skipped(f, "not a regular file (a FIFO, device or socket)"))
                continue
            if f.name.startswith(".") or f.suffix.lower() in NOT_TRACES:
                skipped.append(Skipped(f, "not a trace (documentation or code)"))
            elif p.is_dir() and (side := _side_file(f.relative_to(p))):
                skipped.append(Skipped(f, side))
            elif f.name.endswith(COMPANION_SUFFIX):
                companions.append(f)  # read together with its trace
            else:
                _check_readable(f)
                files.append(f)
        if p.is_dir() and len(files) + len(companions) == found:
            raise TraceFormatError(
                p, "no trace files in this folder", hint=_passed_over(skipped, p) or None
            )
    stems = {(f.parent, f.name.removesuffix(f.suffix)) for f in files}
    for c in companions:
        if (c.parent, c.name.removesuffix(COMPANION_SUFFIX)) not in stems:
            load_server_samples(c)  # garbage is refused by name, not passed over
            skipped.append(Skipped(c, "server samples with no trace file beside them"))
    return files, skipped


def _passed_over(skipped: list[Skipped], top: Path) -> str:
    mine = [s for s in skipped if s.path.is_relative_to(top)]
    if not mine:
        return ""
    first = mine[0]
    return f"passed over {len(mine)}, e.g. {first.path.name}: {first.reason}"


def _walk(top: Path) -> list[Path]:
    """Every entry under `top` (no symlinked directories followed), refusing by name a
    subdirectory that cannot be listed instead of passing over it."""

    def refuse(e: OSError) -> None:
        raise TraceFormatError(e.filename or top, f"cannot read: {e.strerror or e}")

    found = []
    for root, dirs, names in os.walk(top, onerror=refuse):
        found += [Path(root, n) for n in (*dirs, *names)]
    return found


def _check_readable(path: Path) -> None:
    if not os.access(path, os.R_OK):
        raise TraceFormatError(path, "cannot read: permission denied")


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
    """Load one file as `fmt` (or the detected format), with its companion server samples,
    and check the whole: one run per key, every row of a listed run, finite statistics."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise TraceFormatError(path, f"unknown format '{fmt}'; known: {', '.join(FORMATS)}")
        module = FORMATS[fmt]
    else:
        module = detect(path)
    try:
        trace: Trace = module.load(path, **options)
    except OSError as e:  # unreadable file or partner, a directory where a file belongs
        where = e.filename or path
        raise TraceFormatError(where, f"cannot read: {e.strerror or e}") from None
    except RecursionError:
        raise TraceFormatError(path, "nested too deeply to be a trace") from None
    companion = path.with_name(path.name.removesuffix(path.suffix) + COMPANION_SUFFIX)
    if companion.exists() and len(trace.runs) == 1:
        samples = load_server_samples(companion).with_columns(run_key=pl.lit(trace.runs[0].run_key))
        trace = Trace(trace.source, trace.runs, trace.requests, trace.run_stats, samples)
    check_trace(path, trace)
    return trace


def check_trace(path: Path, trace: Trace) -> None:
    """What no single row shows: a run key used twice, rows of runs the trace does not list,
    summary statistics that are not finite, non-negative and plausible, server samples at
    impossible times."""
    keys = [r.run_key for r in trace.runs]
    if len(set(keys)) != len(keys):
        twice = next(k for k in keys if keys.count(k) > 1)
        raise TraceFormatError(path, f"two runs share the key {twice!r}", field="run_key")
    for name, frame in (
        ("requests", trace.requests),
        ("run_stats", trace.run_stats),
        ("server_samples", trace.server_samples),
    ):
        stray = set(frame["run_key"].unique().to_list()) - set(keys)
        if stray:
            raise TraceFormatError(
                path, f"{name} of runs the file does not list: {sorted(map(str, stray))[:3]}"
            )
    stats = trace.run_stats
    # Latencies, throughputs and spreads cannot be negative; a tool's own extras can (an
    # inference-perf schedule delay is negative when a request left early): finite there.
    signed = ~(
        pl.col("metric").is_in(LATENCY_METRICS)
        | pl.col("metric").str.contains(r"_(s|rps|tps)$")
        | pl.col("statistic").is_in(["std", "count"])
    ) | pl.col("metric").str.starts_with("schedule_delay")
    latency = pl.col("metric").is_in(LATENCY_METRICS)
    bound = pl.when(latency).then(pl.lit(MAX_SECONDS)).otherwise(pl.lit(MAX_STAT))
    value = pl.col("value")
    bad = stats.filter(
        value.is_nan() | value.is_infinite() | ((value < 0) & ~signed) | (value.abs() > bound)
    )
    if bad.height:
        row = bad.row(0, named=True)
        limit = f"{MAX_SECONDS:.0e} s" if row["metric"] in LATENCY_METRICS else f"{MAX_STAT:.0e}"
        raise TraceFormatError(
            path,
            f"run {row['run_key']!r}: {row['statistic']} {row['value']!r}: expected a finite, "
            f"non-negative number no larger than {limit}",
            field=f"{row['metric']}.{row['statistic']}",
        )
    _check_samples(path, trace.server_samples)


def _check_samples(path: Path, samples: pl.DataFrame) -> None:
    t, v = pl.col("t_s"), pl.col("value")
    bad = samples.filter(
        t.is_null() | ~t.is_finite() | (t < 0) | (t > MAX_SECONDS) | v.is_null() | ~v.is_finite()
    )
    if bad.height:
        row = bad.row(0, named=True)
        raise TraceFormatError(
            path,
            f"sample of {row['signal']!r} at t_s={row['t_s']!r} with value {row['value']!r}: "
            f"expected a finite time from 0 to {MAX_SECONDS:.0e} s and a finite value",
            field="server_samples",
        )


def load_server_samples(path: Path) -> pl.DataFrame:
    """Read `{"t_s", "signal", "value"}` lines (Prometheus scrapes already mapped): finite
    numbers (no true/false, no null), times from 0."""
    rows = []
    try:
        data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    except OSError as e:
        raise TraceFormatError(path, f"cannot read: {e.strerror or e}") from None
    for n, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            raise TraceFormatError(path, f"not valid JSON ({e})", line=n) from None
        if not isinstance(obj, dict) or not {"t_s", "signal", "value"} <= obj.keys():
            raise TraceFormatError(path, "expected an object {t_s, signal, value}", line=n)
        t_s, signal, value = obj["t_s"], obj["signal"], obj["value"]
        for name, x in (("t_s", t_s), ("value", value)):
            if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
                raise TraceFormatError(
                    path, f"expected a finite number, got {x!r}", field=name, line=n
                )
        if not 0 <= t_s <= MAX_SECONDS:
            raise TraceFormatError(
                path,
                f"expected seconds from 0 to {MAX_SECONDS:.0e} since the run began, got {t_s!r}",
                field="t_s",
                line=n,
            )
        if not isinstance(signal, str) or not signal:
            raise TraceFormatError(path, f"expected a signal name, got {signal!r}", line=n)
        rows.append((float(t_s), signal, float(value)))
    schema = {k: v for k, v in SERVER_SAMPLE_SCHEMA.items() if k != "run_id"}
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    if frame.is_empty():
        return empty(SERVER_SAMPLE_SCHEMA, "run_key")
    return frame
