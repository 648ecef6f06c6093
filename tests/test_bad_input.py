"""A corpus of bad input files, generated from the fixtures: every one is refused at ingest
with exit 2 and one line naming the file (and the field where there is one), and the
warehouse is left exactly as a previous good ingest left it. Plus the odd values real tools
write, which are read (and flagged) instead.

Cases are built deterministically (no randomness): truncations at fixed fractions (kept only
where the cut leaves invalid JSON), type swaps, non-finite and out-of-range values,
encodings, nesting, special files. Run in-process through typer's CliRunner.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.conftest import FIXTURES, SAMPLE_DATA
from typer.testing import CliRunner

from loadlens import sources
from loadlens.cli import app
from loadlens.sources import loadlens_native
from loadlens.trace import RunMeta
from loadlens.warehouse import Warehouse

runner = CliRunner()
VLLM = FIXTURES / "vllm" / "detailed-c4.json"
VLLM_SUMMARY = FIXTURES / "vllm" / "summary-c4.json"
SAMPLE = SAMPLE_DATA / "h100-vllm-tp1"
NAN, INF = float("nan"), float("inf")
ROOT_READS_ALL = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class Case:
    """`make(dir)` writes the bad input under `dir` and returns the ingest arguments (paths
    and options) and the needles: each a string, or a tuple of which one must appear."""

    id: str
    make: Callable[[Path], tuple[list[str], list[str | tuple[str, ...]]]]
    root_skip: bool = False  # permission bits do not stop root


CASES: list[Case] = []


def case(id_: str, *, root_skip: bool = False):
    def register(make):
        CASES.append(Case(id_, make, root_skip))
        return make

    return register


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    target = doc
    for p in path[:-1]:
        target = target[p]
    target[path[-1]] = value
    return doc


def _dump(doc: Any) -> str:
    return json.dumps(doc, allow_nan=True)


# -- vLLM result: type swaps, non-finite and out-of-range values ------------------------------

VLLM_DOC = json.loads(VLLM.read_text())
SUMMARY_DOC = json.loads(VLLM_SUMMARY.read_text())
SWAPS = {"true": True, "str": "x", "obj": {"a": 1}, "list": [1]}
VLLM_MUTATIONS: list[tuple[tuple[Any, ...], str, Any, tuple[str, ...]]] = []
for where, fields in (
    (("ttfts", 0), ("ttfts", "ttft_s")),
    (("itls", 0, 0), ("itls", "itl_s")),
    (("input_lens", 0), ("input_lens", "input_tokens")),
    (("output_lens", 0), ("output_lens", "output_tokens")),
):
    for name, value in SWAPS.items():
        VLLM_MUTATIONS.append((where, name, value, fields))
    VLLM_MUTATIONS.append((where, "negative", -3, fields))
    VLLM_MUTATIONS.append((where, "huge", 1e308 if "lens" not in where[0] else 10**12, fields))
    if "lens" in where[0]:
        VLLM_MUTATIONS.append((where, "fraction", 4.5, fields))
    else:
        VLLM_MUTATIONS += [(where, "nan", NAN, fields), (where, "inf", INF, fields)]
for key, values in {
    "max_concurrency": {"negative": -4, "zero": 0, "true": True, "str": "x", "huge": 1e300},
    "request_rate": {"negative": -2.0, "zero": 0, "true": True},
    "duration": {"negative": -1.0, "true": True, "str": "x", "inf": INF, "huge": 1e308},
    "completed": {"fraction": 0.5, "negative": -1, "true": True, "str": "x"},
    "failed": {"fraction": 0.5, "negative": -1, "true": True},
}.items():
    fields = ("load_value", key) if key in ("max_concurrency", "request_rate") else (key,)
    for name, value in values.items():
        VLLM_MUTATIONS.append(((key,), name, value, fields))
for key in ("mean_ttft_ms", "p99_e2el_ms", "median_itl_ms"):
    for name, value in {"negative": -5.0, "inf": INF, "huge": 1e308, "true": True}.items():
        VLLM_MUTATIONS.append(((key,), name, value, (key, "ttft_s", "e2e_s", "itl_s")))
for name, value in {"negative": -1.0, "inf": INF, "str": "fast"}.items():
    fields = ("request_throughput",)
    VLLM_MUTATIONS.append((("request_throughput",), name, value, fields))
for name, value in {"true": True, "obj": {"code": 500}, "list": ["x"]}.items():
    VLLM_MUTATIONS.append((("errors", 0), name, value, ("errors",)))


def _vllm_case(where: tuple[Any, ...], name: str, value: Any, fields: tuple[str, ...]) -> None:
    id_ = f"vllm-{'.'.join(map(str, where))}-{name}"

    @case(id_)
    def make(d: Path) -> tuple[list[str], list[str | tuple[str, ...]]]:
        path = d / "bad.json"
        path.write_text(_dump(_set(VLLM_DOC, where, value)))
        return [str(path)], ["bad.json", fields]


for _m in VLLM_MUTATIONS:
    _vllm_case(*_m)


@case("vllm-summary-completed-more-than-prompts")
def _(d: Path):
    doc = {k: v for k, v in SUMMARY_DOC.items() if k != "failed"} | {"completed": 9}
    (d / "s.json").write_text(_dump(doc))
    return [str(d / "s.json")], ["s.json", "completed"]


@case("vllm-summary-fraction-failed")
def _(d: Path):
    (d / "s.json").write_text(_dump(SUMMARY_DOC | {"failed": 0.5}))
    return [str(d / "s.json")], ["s.json", "failed"]


@case("vllm-latencies-shorter-than-ttft")
def _(d: Path):
    doc = dict(VLLM_DOC)
    doc["latencies"] = [t / 2 if t else 0.0 for t in doc["ttfts"]]
    (d / "e2e.json").write_text(_dump(doc))
    return [str(d / "e2e.json")], ["e2e.json", "e2e_s", "time to first token"]


@case("vllm-deep-nesting")
def _(d: Path):
    text = _dump(VLLM_DOC)
    deep = "[" * 5000 + "]" * 5000
    (d / "deep.json").write_text(text[:-1] + f', "label_extra": {deep}}}')
    return [str(d / "deep.json")], ["deep.json", "nested"]


@case("vllm-deep-nesting-forced-format")
def _(d: Path):
    (d / "deep.json").write_text("{" + '"a":' * 0 + '"x": ' + "[" * 5000 + "]" * 5000 + "}")
    return [str(d / "deep.json"), "--format", "vllm"], ["deep.json", "nested"]


# -- other tools' files: one stored number made wrong ---------------------------------------

GB = FIXTURES / "genai-bench" / "v0.0.5-ms-d100-c1-c2"
GB_C1 = "D100_100_text-to-text_num_concurrency_1_time_6s.json"
LLMPERF = FIXTURES / "llmperf" / "c1"
LLMPERF_IND = "loadlens-sim_128_32_individual_responses.json"
OTHER_MUTATIONS: list[tuple[str, Path, str, tuple[Any, ...], Any, tuple[str, ...]]] = [
    # (id, folder, file, path in the JSON, value, needles: the field, one of)
    (
        "genai-bench-negative-concurrency",
        GB,
        GB_C1,
        ("aggregated_metrics", "num_concurrency"),
        -1,
        ("load_value", "num_concurrency"),
    ),
    (
        "genai-perf-fraction-concurrency",
        FIXTURES / "genai-perf" / "c2",
        "profile_export.json",
        ("experiments", 0, "experiment", "value"),
        2.5,
        ("load_value",),
    ),
    (
        "llmperf-fraction-output-tokens",
        LLMPERF,
        LLMPERF_IND,
        (0, "number_output_tokens"),
        4.5,
        ("number_output_tokens", "output_tokens"),
    ),
    (
        "llmperf-huge-output-tokens",
        LLMPERF,
        LLMPERF_IND,
        (0, "number_output_tokens"),
        1e30,
        ("number_output_tokens", "output_tokens"),
    ),
    (
        "llmperf-nan-input-tokens",
        LLMPERF,
        LLMPERF_IND,
        (0, "number_input_tokens"),
        NAN,
        ("number_input_tokens", "input_tokens"),
    ),
    ("llmperf-bool-ttft", LLMPERF, LLMPERF_IND, (0, "ttft_s"), True, ("ttft_s",)),
    ("llmperf-huge-ttft", LLMPERF, LLMPERF_IND, (0, "ttft_s"), 1e308, ("ttft_s",)),
    (
        "aiperf-bool-ttft-p50",
        FIXTURES / "aiperf" / "v0.13-c2",
        "profile_export_aiperf.json",
        ("time_to_first_token", "p50"),
        True,
        ("time_to_first_token",),
    ),
    (
        "aiperf-string-latency-p99",
        FIXTURES / "aiperf" / "v0.13-c2",
        "profile_export_aiperf.json",
        ("request_latency", "p99"),
        "slow",
        ("request_latency",),
    ),
    (
        "aiperf-nan-request-count",
        FIXTURES / "aiperf" / "v0.8-summary-only",
        "profile_export_aiperf.json",
        ("request_count", "avg"),
        NAN,
        ("request_count",),
    ),
    (
        "aiperf-negative-ttft-p95",
        FIXTURES / "aiperf" / "v0.8-summary-only",
        "profile_export_aiperf.json",
        ("time_to_first_token", "p95"),
        -3.0,
        ("ttft_s",),
    ),
]


def _other_case(
    id_: str, folder: Path, name: str, where: tuple[Any, ...], value: Any, fields: tuple[str, ...]
) -> None:
    @case(id_)
    def make(d: Path):
        shutil.copytree(folder, d / folder.name)
        target = d / folder.name / name
        target.write_text(_dump(_set(json.loads(target.read_text()), where, value)))
        return [str(d / folder.name)], [fields]


for _m2 in OTHER_MUTATIONS:
    _other_case(*_m2)


@case("aiperf-fraction-output-tokens-per-request")
def _(d: Path):
    folder = FIXTURES / "aiperf" / "v0.13-c2"
    shutil.copytree(folder, d / "run")
    records = (d / "run" / "profile_export.jsonl").read_text().splitlines()
    for i, line in reversed(list(enumerate(records))):  # the last: a measured request
        rec = json.loads(line)
        if "output_sequence_length" in rec.get("metrics", {}):
            rec["metrics"]["output_sequence_length"]["value"] = 4.5
            records[i] = json.dumps(rec)
            break
    (d / "run" / "profile_export.jsonl").write_text("\n".join(records) + "\n")
    return [str(d / "run")], ["profile_export.jsonl", "output_sequence_length"]


# -- truncations of every kind of fixture, kept only where the cut is invalid -----------------

TRUNCATED = [
    VLLM,
    VLLM_SUMMARY,
    SAMPLE / "vllm-c1.json",
    FIXTURES / "llmperf" / "c1" / "loadlens-sim_128_32_summary.json",
    FIXTURES / "guidellm" / "concurrent.json",
    FIXTURES / "aiperf" / "v0.13-c2" / "profile_export_aiperf.json",
    FIXTURES / "genai-perf" / "c2" / "profile_export_genai_perf.json",
    FIXTURES / "inference-perf" / "v0.2.0" / "summary_lifecycle_metrics.json",
    FIXTURES / "inference-benchmarker" / "_tmp_ll-tokenizer_2026-11-25-06-37-05.json",
    FIXTURES / "vllm_sweep" / "serve-params" / "SERVE--max_num_seqs=32-enable_chunked_prefill"
    "=True-BENCH--max_concurrency=8" / "run=0.json",
]


def _invalid_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def _truncation_case(source: Path, fraction: float) -> None:
    text = source.read_text()
    cut = text[: max(1, int(len(text) * fraction))]
    if not _invalid_json(cut):
        return  # still a valid document: not a bad input

    @case(f"truncated-{source.parent.name}-{source.stem[:24]}-{fraction:.2f}")
    def make(d: Path):
        path = d / source.name
        path.write_text(cut)
        return [str(path)], [source.name]


for _source in TRUNCATED:
    for _fraction in (0.02, 0.2, 0.5, 0.8, 0.99):
        _truncation_case(_source, _fraction)


def _jsonl_truncation(source: Path, fraction: float) -> None:
    data = source.read_bytes()
    cut = data[: int(len(data) * fraction)]
    last = cut.rsplit(b"\n", 1)[-1]
    if not last.strip() or not _invalid_json(last.decode(errors="replace")):
        return

    @case(f"truncated-jsonl-{source.stem[:24]}-{fraction:.2f}")
    def make(d: Path):
        path = d / source.name
        path.write_bytes(cut)
        return [str(path)], [source.name]


for _source in sorted((FIXTURES / "sglang").glob("*.jsonl")):
    for _fraction in (0.3, 0.7):
        _jsonl_truncation(_source, _fraction)


# -- encodings ----------------------------------------------------------------------------


@case("vllm-utf16")
def _(d: Path):
    (d / "u16.json").write_bytes(VLLM.read_text().encode("utf-16"))
    return [str(d / "u16.json")], ["u16.json"]


@case("vllm-utf16-forced-format")
def _(d: Path):
    (d / "u16.json").write_bytes(VLLM.read_text().encode("utf-16"))
    return [str(d / "u16.json"), "--format", "vllm"], ["u16.json"]


@case("vllm-latin1-bytes")
def _(d: Path):
    text = VLLM.read_text().replace("test/model", "caf\xe9/model", 1)
    (d / "latin.json").write_bytes(text.encode("latin-1"))
    return [str(d / "latin.json")], ["latin.json", "UTF-8"]


@case("csv-latin1-bytes")
def _(d: Path):
    (d / "l.csv").write_bytes("e2e_ms,model\n100,caf\xe9\n".encode("latin-1"))
    return [str(d / "l.csv"), "--map", "e2e=e2e_ms:ms"], ["l.csv"]


# -- loadlens's own trace: header and request lines ---------------------------------------


def _native(d: Path, runs: list[dict[str, Any]] | None = None, lines: list[Any] | None = None):
    runs = runs or [
        {
            "run_key": "c1",
            "load_mode": "concurrency",
            "load_value": 1.0,
            "num_requests": 2,
            "num_errors": 0,
        },
        {
            "run_key": "c4",
            "load_mode": "concurrency",
            "load_value": 4.0,
            "num_requests": 1,
            "num_errors": 0,
        },
    ]
    good = {
        "run_key": "c1",
        "seq": 0,
        "start_s": 0.0,
        "ttft_s": 0.05,
        "e2e_s": 0.5,
        "input_tokens": 100,
        "output_tokens": 20,
        "itl_s": [0.02],
        "status": "ok",
        "error": None,
    }
    if lines is None:
        lines = [good, good | {"seq": 1, "start_s": 0.6}, good | {"run_key": "c4"}]
    header = {"loadlens_trace": 1, "tool": "loadlens sweep", "runs": runs}
    path = d / "trace.jsonl"
    body = [json.dumps(header)] + [x if isinstance(x, str) else _dump(x) for x in lines]
    path.write_text("\n".join(body) + "\n")
    return path


GOOD_RUN = {"run_key": "c1", "load_mode": "concurrency", "load_value": 1.0}
GOOD_LINE = {
    "run_key": "c1",
    "seq": 0,
    "start_s": 0.0,
    "ttft_s": 0.05,
    "e2e_s": 0.5,
    "input_tokens": 100,
    "output_tokens": 20,
    "itl_s": [0.02],
    "status": "ok",
}
NATIVE_RUNS: dict[str, tuple[list[dict[str, Any]], tuple[str, ...]]] = {
    "two-runs-one-key": ([GOOD_RUN, GOOD_RUN | {"load_value": 2.0}], ("run_key",)),
    "negative-concurrency": ([GOOD_RUN | {"load_value": -4.0}], ("load_value",)),
    "zero-rate": ([GOOD_RUN | {"load_mode": "rate", "load_value": 0}], ("load_value",)),
    "bool-load": ([GOOD_RUN | {"load_value": True}], ("load_value",)),
    "huge-load": ([GOOD_RUN | {"load_value": 1e300}], ("load_value",)),
    "bool-duration": ([GOOD_RUN | {"duration_s": True}], ("duration_s",)),
    "huge-duration": ([GOOD_RUN | {"duration_s": 1e308}], ("duration_s",)),
    "more-errors-than-requests": (
        [GOOD_RUN | {"num_requests": 2, "num_errors": 3}],
        ("num_errors",),
    ),
    "fraction-errors": ([GOOD_RUN | {"num_requests": 2, "num_errors": 0.5}], ("num_errors",)),
    "negative-requests": ([GOOD_RUN | {"num_requests": -1}], ("num_requests",)),
    "unknown-mode": ([GOOD_RUN | {"load_mode": "vibes"}], ("load_mode",)),
}
for _name, (_runs, _fields) in NATIVE_RUNS.items():

    def _native_run_case(runs=_runs, fields=_fields, name=_name) -> None:
        @case(f"native-header-{name}")
        def make(d: Path):
            path = _native(d, runs, [GOOD_LINE])
            return [str(path)], ["trace.jsonl", fields]

    _native_run_case()

NATIVE_LINES: dict[str, tuple[dict[str, Any] | str, tuple[str, ...]]] = {
    "ttft-object": (GOOD_LINE | {"ttft_s": {"a": 1}}, ("ttft_s", "request lines")),
    "ttft-bool": (GOOD_LINE | {"ttft_s": True}, ("ttft_s", "request lines")),
    "ttft-string": (GOOD_LINE | {"ttft_s": "fast"}, ("ttft_s", "request lines")),
    "ttft-huge": (GOOD_LINE | {"ttft_s": 1e308}, ("ttft_s",)),
    "e2e-shorter-than-ttft": (GOOD_LINE | {"ttft_s": 0.5, "e2e_s": 0.1}, ("e2e_s",)),
    "ok-with-e2e-zero": (GOOD_LINE | {"ttft_s": 0.0, "e2e_s": 0.0}, ("e2e_s",)),
    "tokens-fraction": (GOOD_LINE | {"output_tokens": 4.5}, ("output_tokens", "request lines")),
    "tokens-many": (GOOD_LINE | {"output_tokens": "many"}, ("output_tokens", "request lines")),
    "tokens-huge": (GOOD_LINE | {"output_tokens": 10**12}, ("output_tokens",)),
    "tokens-negative": (GOOD_LINE | {"input_tokens": -1}, ("input_tokens",)),
    "itl-negative": (GOOD_LINE | {"itl_s": [0.1, -0.1]}, ("itl_s",)),
    "itl-huge": (GOOD_LINE | {"itl_s": [1e300]}, ("itl_s",)),
    "status-unknown": (GOOD_LINE | {"status": "meh"}, ("status",)),
    "unknown-run": (GOOD_LINE | {"run_key": "c99"}, ("run_key",)),
    "truncated-line": (_dump(GOOD_LINE)[:40], ("request lines",)),
    "array-line": ("[1, 2, 3]", ("request lines",)),
}
for _name, (_line, _fields) in NATIVE_LINES.items():

    def _native_line_case(line=_line, fields=_fields, name=_name) -> None:
        @case(f"native-line-{name}")
        def make(d: Path):
            path = _native(d, [GOOD_RUN], [line])
            return [str(path)], ["trace.jsonl", fields]

    _native_line_case()


@case("native-duplicate-seq")
def _(d: Path):
    path = _native(d, [GOOD_RUN], [GOOD_LINE, GOOD_LINE | {"start_s": 1.0}])
    return [str(path)], ["trace.jsonl", "seq"]


# -- home-grown CSV through --map ---------------------------------------------------------

CSV_MAP = ["--map", "ttft=ttft_ms:ms,e2e=e2e_ms:ms,output_tokens=out,load=users"]
CSV_GOOD = "users,ttft_ms,e2e_ms,out\n4,50,1000,100\n4,60,1100,120\n"
CSV_BAD: dict[str, tuple[str, tuple[str, ...]]] = {
    "blank-load": ("users,ttft_ms,e2e_ms,out\n4,50,1000,100\n,60,1100,120\n", ("users",)),
    "header-only": ("users,ttft_ms,e2e_ms,out\n", ("no rows",)),
    "all-na-column": ("users,ttft_ms,e2e_ms,out\n4,n/a,1000,100\n4,n/a,1100,120\n", ("ttft_ms",)),
    "some-na-values": ("users,ttft_ms,e2e_ms,out\n4,50,1000,100\n4,60,soon,120\n", ("e2e_ms",)),
    "tokens-many": ("users,ttft_ms,e2e_ms,out\n4,50,1000,100\n4,60,1100,many\n", ("out",)),
    "tokens-fraction": ("users,ttft_ms,e2e_ms,out\n4,50,1000,100\n4,60,1100,4.5\n", ("out",)),
    "ragged": ("users,ttft_ms,e2e_ms,out\n4,50,1000,100\n4,60,1100,120,9,9\n", ("ragged.csv",)),
    "negative-load": ("users,ttft_ms,e2e_ms,out\n-4,50,1000,100\n", ("load_value",)),
    "zero-load": ("users,ttft_ms,e2e_ms,out\n0,50,1000,100\n", ("load_value",)),
    "e2e-below-ttft": ("users,ttft_ms,e2e_ms,out\n4,500,100,100\n", ("e2e_s",)),
    "negative-e2e": ("users,ttft_ms,e2e_ms,out\n4,50,-100,100\n", ("e2e_s",)),
    "huge-ttft": ("users,ttft_ms,e2e_ms,out\n4,1e308,1e308,100\n", ("ttft_s",)),
    "inf-e2e": ("users,ttft_ms,e2e_ms,out\n4,50,inf,100\n", ("e2e_s",)),
    "bool-e2e": ("users,ttft_ms,e2e_ms,out\n4,50,true,100\n", ("e2e_ms", "e2e_s")),
}
for _name, (_text, _fields) in CSV_BAD.items():

    def _csv_case(text=_text, fields=_fields, name=_name) -> None:
        @case(f"csv-{name}")
        def make(d: Path):
            file = "ragged.csv" if name == "ragged" else "mine.csv"
            (d / file).write_text(text)
            return [str(d / file), *CSV_MAP, "--load-mode", "concurrency"], [file, fields]

    _csv_case()


@case("jsonl-object-value")
def _(d: Path):
    (d / "mine.jsonl").write_text('{"e2e_ms": 100}\n{"e2e_ms": {"v": 1}}\n')
    return [str(d / "mine.jsonl"), "--map", "e2e=e2e_ms:ms"], ["mine.jsonl", "e2e_ms"]


@case("jsonl-list-value")
def _(d: Path):
    (d / "mine.jsonl").write_text('{"e2e_ms": [100]}\n')
    return [str(d / "mine.jsonl"), "--map", "e2e=e2e_ms:ms"], ["mine.jsonl", "e2e_ms"]


# -- server samples beside a trace --------------------------------------------------------

SAMPLE_LINE = {"t_s": 1.0, "signal": "kv_cache_usage", "value": 0.5}
SAMPLES_BAD: dict[str, tuple[str, tuple[str, ...]]] = {
    "null-value": (_dump(SAMPLE_LINE | {"value": None}), ("value",)),
    "nan-value": ('{"t_s": 1.0, "signal": "kv_cache_usage", "value": NaN}', ("JSON",)),
    "bool-value": (_dump(SAMPLE_LINE | {"value": True}), ("value",)),
    "string-value": (_dump(SAMPLE_LINE | {"value": "high"}), ("value",)),
    "negative-time": (_dump(SAMPLE_LINE | {"t_s": -5.0}), ("t_s",)),
    "huge-time": (_dump(SAMPLE_LINE | {"t_s": 1e308}), ("t_s",)),
    "array-line": ("[1, 2]", ("t_s",)),
    "missing-signal": (_dump({"t_s": 1.0, "value": 0.5}), ("signal",)),
}
for _name, (_line, _fields) in SAMPLES_BAD.items():

    def _samples_case(line=_line, fields=_fields, name=_name) -> None:
        @case(f"samples-{name}")
        def make(d: Path):
            shutil.copy(SAMPLE / "vllm-c1.json", d / "vllm-c1.json")
            (d / "vllm-c1.metrics.jsonl").write_text(_dump(SAMPLE_LINE) + "\n" + line + "\n")
            return [str(d)], ["vllm-c1.metrics.jsonl", fields]

    _samples_case()


@case("samples-orphan-garbage")
def _(d: Path):
    shutil.copy(VLLM, d / "good.json")
    (d / "lost.metrics.jsonl").write_text("garbage, not JSON\n")
    return [str(d)], ["lost.metrics.jsonl"]


# -- special files and odd paths ----------------------------------------------------------


@case("fifo-as-input")
def _(d: Path):
    os.mkfifo(d / "pipe.json")
    return [str(d / "pipe.json")], ["pipe.json", "FIFO"]


@case("dev-zero-symlink-as-input")
def _(d: Path):
    (d / "zero.json").symlink_to("/dev/zero")
    return [str(d / "zero.json")], ["zero.json"]


@case("directory-of-only-a-fifo")
def _(d: Path):
    (d / "in").mkdir()
    os.mkfifo(d / "in" / "pipe.json")
    return [str(d / "in")], ["in", "no trace"]


@case("empty-file")
def _(d: Path):
    (d / "empty.json").write_bytes(b"")
    return [str(d / "empty.json")], ["empty.json"]


@case("top-level-array")
def _(d: Path):
    (d / "arr.json").write_text("[1, 2, 3]")
    return [str(d / "arr.json"), "--format", "vllm"], ["arr.json", "object"]


@case("unreadable-file-in-directory", root_skip=True)
def _(d: Path):
    shutil.copy(VLLM, d / "good.json")
    shutil.copy(VLLM_SUMMARY, d / "secret.json")
    (d / "secret.json").chmod(0)
    return [str(d)], ["secret.json", "cannot read"]


@case("unreadable-subdirectory", root_skip=True)
def _(d: Path):
    shutil.copy(VLLM, d / "good.json")
    (d / "locked").mkdir()
    shutil.copy(VLLM_SUMMARY, d / "locked" / "s.json")
    (d / "locked").chmod(0)
    return [str(d)], ["locked", "cannot read"]


# -- the corpus ---------------------------------------------------------------------------


def _counts(db: Path) -> dict[str, int]:
    with Warehouse(db) as wh:
        return wh.counts()


@pytest.fixture(scope="module")
def good_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A warehouse after one good ingest (a trace with requests, stats and samples)."""
    db = tmp_path_factory.mktemp("good") / "wh.duckdb"
    result = runner.invoke(
        app, ["ingest", str(SAMPLE / "vllm-c1.json"), "-d", "good", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    counts = _counts(db)
    assert counts["requests"] and counts["server_samples"] and counts["run_stats"]
    return db, counts


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 120, len(CASES)
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("bad", CASES, ids=[c.id for c in CASES])
def test_refused_in_one_line(bad: Case, good_db, tmp_path: Path) -> None:
    if bad.root_skip and ROOT_READS_ALL:
        pytest.skip("running as root: permission bits do not stop reads")
    golden, counts = good_db
    db = tmp_path / "wh.duckdb"
    shutil.copy(golden, db)
    work = tmp_path / "input"
    work.mkdir()
    try:
        args, needles = bad.make(work)
        result = runner.invoke(app, ["ingest", *args, "-d", "bad", "--db", str(db)])
    finally:
        for p in (work, *work.rglob("*")):  # let pytest clean up what was locked
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for needle in needles:
        options = needle if isinstance(needle, tuple) else (needle,)
        assert any(n in lines[0] for n in options), (options, lines[0])
    assert _counts(db) == counts


# -- what real tools write, read and flagged ----------------------------------------------


def test_bom_on_a_vllm_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + VLLM.read_bytes())
    assert sources.detect(path).NAME == "vllm"
    assert sources.load_file(path).requests.height == len(VLLM_DOC["ttfts"])


def test_bom_on_server_samples_is_read(tmp_path: Path) -> None:
    shutil.copy(SAMPLE / "vllm-c1.json", tmp_path / "vllm-c1.json")
    data = (SAMPLE / "vllm-c1.metrics.jsonl").read_bytes()
    (tmp_path / "vllm-c1.metrics.jsonl").write_bytes(b"\xef\xbb\xbf" + data)
    trace = sources.load_file(tmp_path / "vllm-c1.json")
    assert trace.server_samples.height == len(data.splitlines())


@pytest.mark.parametrize("code", [500, 0])
def test_vllm_error_code_is_an_error(tmp_path: Path, code: int) -> None:
    """vLLM writes error texts; a number there is an error code: the request failed."""
    doc = _set(VLLM_DOC, ("errors", 0), code)
    path = tmp_path / "code.json"
    path.write_text(_dump(doc))
    trace = sources.load_file(path)
    first = trace.requests.sort("seq").row(0, named=True)
    assert (first["status"], first["error"], first["e2e_s"]) == (
        "error",
        f"error code {code}",
        None,
    )


def test_vllm_no_output_is_an_error_not_a_zero_latency_success(tmp_path: Path) -> None:
    doc = _set(_set(_set(VLLM_DOC, ("ttfts", 0), 0.0), ("itls", 0), []), ("output_lens", 0), 0)
    path = tmp_path / "silent.json"
    path.write_text(_dump(doc))
    first = sources.load_file(path).requests.sort("seq").row(0, named=True)
    assert first["status"] == "error" and "no output" in first["error"]


def test_vllm_all_failed_placeholder_zeros_are_dropped(tmp_path: Path) -> None:
    """vLLM writes 0 for every latency statistic of a level where nothing completed."""
    doc = dict(SUMMARY_DOC) | {"completed": 0, "failed": 6}
    doc |= {k: 0.0 for k in doc if k.endswith("_ms")}
    path = tmp_path / "allfailed.json"
    path.write_text(_dump(doc))
    trace = sources.load_file(path)
    assert trace.runs[0].num_errors == trace.runs[0].num_requests == 6
    latency = trace.run_stats.filter(pl.col("metric").is_in(["ttft_s", "e2e_s"]))
    assert latency.is_empty()


def test_e2e_a_rounding_shorter_than_ttft_is_kept(tmp_path: Path) -> None:
    """Tools round each field on its own: an E2E 0.5 ms under the TTFT is the same instant."""
    path = _native(tmp_path, [GOOD_RUN], [GOOD_LINE | {"ttft_s": 0.5, "e2e_s": 0.4995}])
    trace = sources.load_file(path)
    assert trace.requests["e2e_s"].to_list() == [0.4995]


def test_negative_schedule_delay_statistics_are_kept() -> None:
    """inference-perf's schedule delay is negative when a request left a little early."""
    trace = sources.load_file(
        FIXTURES / "inference-perf" / "v0.2.0" / "stage_0_lifecycle_metrics.json"
    )
    delay = trace.run_stats.filter(pl.col("metric") == "schedule_delay_s")
    assert delay.height and delay["value"].min() < 0  # type: ignore[operator]


def test_runmeta_refuses_inconsistent_counts() -> None:
    with pytest.raises(ValueError, match="num_errors"):
        RunMeta(run_key="x", load_mode="unknown", num_requests=1, num_errors=2)
    assert math.isclose(RunMeta(run_key="x", load_mode="rate", load_value=0.5).load_value or 0, 0.5)


def test_native_write_refuses_nothing_it_wrote(tmp_path: Path) -> None:
    """What the runner writes (its own format) still round-trips through the new checks."""
    runs = [RunMeta(run_key="c2", load_mode="concurrency", load_value=2.0, num_requests=1)]
    requests = pl.DataFrame([GOOD_LINE | {"run_key": "c2", "error": None}])
    path = tmp_path / "t.jsonl"
    loadlens_native.write(path, runs, requests)
    assert sources.load_file(path).requests.height == 1
