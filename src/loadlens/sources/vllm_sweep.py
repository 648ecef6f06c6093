"""vLLM `vllm bench sweep serve` experiment trees (vllm/benchmarks/sweep/serve.py).

The sweep writes, under `OUTPUT_DIR/EXPERIMENT/`:

- one folder per parameter combination, named `SERVE--<serve params>-BENCH--<bench params>`
  (either part absent when not swept; with neither, the files sit in the experiment folder):
  `run=N.json` (an ordinary `vllm bench serve --save-result` file plus `run_number` and
  the swept parameters, re-indented), `warmup.json` (an unmeasured warm-up run, only with
  `--warmup-num-prompts`), `summary.json` (a JSON array of that folder's measured run
  dicts, written once all runs of the combination are done), and with
  `--continue-on-error` `run=N.failure.json` / `warmup.failure.json` for failed runs;
- `summary.csv`: every measured run of the experiment, one row each (pandas `to_csv`);
- with `--continue-on-error`, `SERVE-<name>-failure.json` where a server failed to start.

This module reads the sweep's own files and nothing else is needed for the run files:
`summary.csv` is the primary of the whole tree (its partners are every file the sweep wrote
in the combination folders), so one ingest gives every measured level once, keyed
`<combination>/run=N`; warm-ups and failure records are passed over. A combination folder
ingested without the CSV has `summary.json` as its primary (partners: its run, warm-up and
failure files). Where the sweep stopped before writing `summary.json`, the `run=N.json`
files load as plain vLLM results (sources/vllm.py). A `summary.csv` without its folders
loads summary-only from its columns. A failure record on its own loads as no run.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import polars as pl

from loadlens.errors import TraceFormatError
from loadlens.sources import vllm
from loadlens.sources.jsonfile import read_json
from loadlens.trace import (
    REQUEST_SCHEMA,
    RUN_STAT_SCHEMA,
    RunMeta,
    SourceInfo,
    Trace,
    empty,
    file_sha256,
)

NAME = "vllm-sweep"
TOOL = "vllm bench sweep serve"
# Warm-ups are unmeasured: a walk passes over them even where the sweep stopped before
# writing summary.json (named explicitly, one still loads as a plain vLLM result).
SIDE_FILES = ("warmup.json",)
RUN_FILE = re.compile(r"^run=(\d+)\.json$")
SWEEP_FILE = re.compile(r"^(run=\d+|warmup)(\.failure)?\.json$|^summary\.json$")
SERVER_FAILURE = re.compile(r"^SERVE-.*-failure\.json$")
# Columns of summary.csv that hold per-request arrays: not read in the CSV fallback.
ARRAY_COLUMNS = {"input_lens", "output_lens", "ttfts", "itls", "generated_texts", "errors"}


def detect(path: Path, head: bytes) -> bool:
    name = path.name
    text = head.lstrip()
    if name == "summary.json":
        return text.startswith(b"[") and b'"run_number"' in head and b'"completed"' in head
    if name == "summary.csv":
        first = head.split(b"\n", 1)[0]
        return (b"run_number" in first and b"request_throughput" in first) or head.strip() in (
            b'""',
            b"",
        )
    if name.endswith("failure.json") and text.startswith(b"{"):
        return b'"error_type"' in head and (
            b'"bench_overrides"' in head or b'"serve_overrides"' in head
        )
    return False


def _natural(path: Path) -> list[str | int]:
    """`max_concurrency=4` before `max_concurrency=16`."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def _combination_dirs(experiment: Path) -> list[Path]:
    return [experiment, *sorted((d for d in experiment.iterdir() if d.is_dir()), key=_natural)]


def _sweep_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and SWEEP_FILE.match(f.name))


def partners(path: Path) -> list[Path]:
    if path.name == "summary.csv":
        files = [f for d in _combination_dirs(path.parent) for f in _sweep_files(d)]
        return files + sorted(f for f in path.parent.iterdir() if SERVER_FAILURE.match(f.name))
    if path.name == "summary.json":
        return [f for f in _sweep_files(path.parent) if f != path]
    return []


def _read_json(path: Path) -> Any:
    return read_json(path)  # vLLM writes NaN/Infinity with Python's json


def _serve_part(combination: str) -> str:
    """`max_num_seqs=64` of `SERVE--max_num_seqs=64-BENCH--max_concurrency=8`."""
    if not combination.startswith("SERVE--"):
        return ""
    return combination.removeprefix("SERVE--").split("-BENCH--", 1)[0]


def server_args(doc: dict[str, Any], combination: str) -> dict[str, Any]:
    """The `vllm serve` overrides of a run. The sweep merges them into the run dict
    (beside the bench overrides) and names the folder after them (`k=v` joined by `-`,
    '/' written '_'): a run key is a serve override where its `k=v` is in the SERVE part."""
    serve = _serve_part(combination)
    if not serve:
        return {}
    found = {}
    for k, v in doc.items():
        if k == "_benchmark_name" or isinstance(v, dict | list) or v is None:
            continue
        text = f"{k}={v}".replace("/", "_").replace("..", "__")
        if re.search(rf"(?:^|-){re.escape(text)}(?:-|$)", serve):
            found[k] = v
    # A named combination (`_benchmark_name`) carries its name, not its values.
    return found or {"combination": serve}


def _level(
    path: Path, doc: Any, key: str, combination: str
) -> tuple[RunMeta, pl.DataFrame, pl.DataFrame]:
    """One measured run dict, parsed as vLLM's own loader does, keyed `key`."""
    if not isinstance(doc, dict):
        raise TraceFormatError(path, f"run {key}: expected a vLLM result object")
    extra = {"sweep_combination": combination or "(none)", "run_number": doc.get("run_number")}
    args = server_args(doc, combination)
    params = {"server_args": args} if args else {}
    return vllm.parse_result(path, doc, key, extra, where=f"run {key}: ", params=params)


def _runs_of(summary_json: Path, prefix: str) -> list[tuple[Path, dict[str, Any], str]]:
    docs = _read_json(summary_json)
    if not isinstance(docs, list):
        raise TraceFormatError(summary_json, "expected a JSON array of run results")
    out = []
    for i, doc in enumerate(docs):
        number = doc.get("run_number", i) if isinstance(doc, dict) else i
        out.append((summary_json, doc, f"{prefix}run={number}"))
    return out


def _trace(path: Path, levels: list[tuple[Path, Any, str]], version: str | None) -> Trace:
    runs, reqs, stats = [], [], []
    for source, doc, key in levels:
        combination = key.rsplit("/", 1)[0] if "/" in key else ""
        run, req, stat = _level(source, doc, key, combination)
        runs.append(run)
        reqs.append(req)
        stats.append(stat)
    info = SourceInfo(
        path=str(path), sha256=file_sha256(path), format=NAME, tool=TOOL, tool_version=version
    )
    return Trace(
        source=info,
        runs=tuple(runs),
        requests=pl.concat(reqs, how="vertical_relaxed")
        if reqs
        else empty(REQUEST_SCHEMA, "run_key"),
        run_stats=pl.concat(stats, how="vertical_relaxed")
        if stats
        else empty(RUN_STAT_SCHEMA, "run_key"),
    )


def _version(levels: list[tuple[Path, Any, str]]) -> str | None:
    for _, doc, _ in levels:
        if isinstance(doc, dict) and (v := doc.get("vllm_version") or doc.get("version")):
            return str(v)
    return None


def _csv_value(text: str) -> Any:
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text else number


def _csv_levels(path: Path) -> list[tuple[Path, Any, str]]:
    """summary.csv alone: one summary-only level per row (the arrays are not read)."""
    text = path.read_text()
    if text.strip() in ("", '""'):
        return []  # the sweep measured nothing (every server failed)
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    levels = []
    for n, row in enumerate(reader, start=2):
        if len(row) != len(header):
            raise TraceFormatError(
                path, f"has {len(row)} columns, the header {len(header)}", line=n
            )
        doc = {
            k: _csv_value(v)
            for k, v in zip(header, row, strict=True)
            if k and k not in ARRAY_COLUMNS
        }
        for key, value in list(doc.items()):
            if isinstance(value, float) and math.isnan(value):
                doc[key] = None
        levels.append((path, doc, f"row={row[0]}/run={doc.get('run_number')}"))
    return levels


def load(path: Path) -> Trace:
    if path.name == "summary.csv":
        levels: list[tuple[Path, Any, str]] = []
        for folder in _combination_dirs(path.parent):
            prefix = "" if folder == path.parent else f"{folder.name}/"
            summary = folder / "summary.json"
            if summary.exists():
                levels += _runs_of(summary, prefix)
            else:  # the combination did not finish: its measured runs, if any
                for f in sorted(folder.iterdir(), key=lambda p: p.name):
                    if m := RUN_FILE.match(f.name):
                        levels.append((f, _read_json(f), f"{prefix}run={m.group(1)}"))
        if not levels:
            levels = _csv_levels(path)
        return _trace(path, levels, _version(levels))
    if path.name == "summary.json":
        levels = _runs_of(path, "")
        return _trace(path, levels, _version(levels))
    doc = _read_json(path)  # a failure record: the run measured nothing
    if not isinstance(doc, dict) or "error_type" not in doc:
        raise TraceFormatError(path, "expected a sweep failure record", field="error_type")
    return _trace(path, [], None)
