"""The summary exports AIPerf and GenAI-Perf share (GenAI-Perf's successor kept its layout):
`profile_export_*.json` (`{metric: {unit, avg, p50, ...}}`) and `profile_export_*.csv` (a
per-metric table, then `Metric,Value` rows rounded to 0.01). Not a format: no NAME."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.trace import stats_frame

STATISTICS = {"avg": "mean", "std": "std", "p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99"}
TO_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "sec": 1.0}


def summary_names(path: Path, tag: str) -> tuple[Path, Path]:
    """The summary JSON and CSV written beside a per-request export:
    `profile_export.jsonl` -> `profile_export_aiperf.json`, `profile_export_aiperf.csv`."""
    stem = path.name.removesuffix(path.suffix)
    return path.with_name(f"{stem}_{tag}.json"), path.with_name(f"{stem}_{tag}.csv")


def partners(path: Path, tag: str, *, is_summary: bool) -> list[Path]:
    """What one of these files is read with: a summary JSON its CSV twin, a per-request
    export its summaries (those that exist)."""
    candidates = (path.with_suffix(".csv"),) if is_summary else summary_names(path, tag)
    return [p for p in candidates if p.exists()]


def json_stats(
    path: Path,
    doc: dict[str, Any],
    latencies: dict[str, str],
    throughputs: dict[str, str],
    run_key: str = "0",
) -> pl.DataFrame:
    """Run statistics (seconds) from the JSON export; `latencies`/`throughputs` map the
    tool's metric names to canonical ones."""
    rows: list[tuple[str, str, float]] = []
    for key, metric in latencies.items():
        entry = doc.get(key)
        if entry is None:
            continue
        if not isinstance(entry, dict) or entry.get("unit") not in TO_SECONDS:
            raise TraceFormatError(path, "expected {unit: 'ms', avg, p50, ...}", field=key)
        scale = TO_SECONDS[entry["unit"]]
        for stat, name in STATISTICS.items():
            value = entry.get(stat)
            if isinstance(value, int | float) and not isinstance(value, bool):
                rows.append((metric, name, float(value) * scale))
            elif value is not None:  # a statistic the tool wrote as something else
                raise TraceFormatError(
                    path,
                    f"expected a number of {entry['unit']}, got {value!r}",
                    field=f"{key}.{stat}",
                )
    for key, metric in throughputs.items():
        entry = doc.get(key)
        value = entry.get("avg") if isinstance(entry, dict) else None
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            rows.append((metric, "value", float(value)))
    return stats_frame(rows, run_key)


def csv_stats(
    path: Path,
    latencies: dict[str, str],
    throughputs: dict[str, str],
    tool: str,
    run_key: str = "0",
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Run statistics from the CSV export (display names, units in parentheses), and every
    `Metric,Value` row by its full name (e.g. 'Benchmark Duration (sec)')."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise TraceFormatError(path, "not a text CSV file") from None
    rows: list[tuple[str, str, float]] = []
    values: dict[str, float] = {}
    header: list[str] = []
    for n, cells in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not cells or not any(cells):
            header = []
            continue
        if cells[0] in ("Metric", "Endpoint"):
            header = cells
            continue
        if not header or header[0] != "Metric":
            continue  # AIPerf's per-endpoint tables
        name, _, unit = cells[0].partition(" (")
        unit = unit.rstrip(")")
        try:
            numbers = {h: float(c) for h, c in zip(header[1:], cells[1:], strict=False) if c}
        except ValueError:
            raise TraceFormatError(path, "expected numbers", field=cells[0], line=n) from None
        if header[1:] == ["Value"]:
            values[cells[0]] = numbers.get("Value", math.nan)
            if name in throughputs and "Value" in numbers:
                rows.append((throughputs[name], "value", numbers["Value"]))
        elif name in latencies and unit in TO_SECONDS:
            for stat, stat_name in STATISTICS.items():
                if stat in numbers:
                    rows.append((latencies[name], stat_name, numbers[stat] * TO_SECONDS[unit]))
    if not rows:
        raise TraceFormatError(
            path, f"has no {tool} metrics like 'Request Latency (ms)' or 'Request Throughput'"
        )
    return stats_frame(rows, run_key), values
