"""Shared fixtures: builders of exact vLLM result files, and an independent percentile."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
SAMPLE_DATA = ROOT / "sample_data"
SHARED_TRACES = ROOT.parent / "shared" / "traces"


def levels_by_run_id(traces: list[Any]) -> dict[str, dict[str, Any]]:
    """loadlens's level metrics of every run of loaded Traces analysed together, by run_id:
    what the warehouse would compute from them, without a warehouse."""
    import polars as pl

    from loadlens.analysis.levels import levels

    runs, requests, stats = [], [], []
    for trace in traces:
        run_id = {r.run_key: trace.run_id(r.run_key) for r in trace.runs}
        key = pl.col("run_key").replace_strict(run_id, return_dtype=pl.String)
        runs += [
            {
                "run_id": run_id[r.run_key],
                "deployment": "d",
                "load_mode": r.load_mode,
                "load_value": r.load_value,
                "duration_s": r.duration_s,
                "num_requests": r.num_requests,
                "num_errors": r.num_errors,
            }
            for r in trace.runs
        ]
        requests.append(trace.requests.with_columns(key.alias("run_id")).drop("run_key"))
        stats.append(trace.run_stats.with_columns(key.alias("run_id")).drop("run_key"))
    frame = levels(pl.DataFrame(runs), pl.concat(requests), pl.concat(stats))
    return {r["run_id"]: r for r in frame.iter_rows(named=True)}


def trace_levels(trace: Any) -> dict[str, dict[str, Any]]:
    """loadlens's level metrics of every run of a loaded Trace, by run_key, in file order."""
    rows = levels_by_run_id([trace])
    return {r.run_key: rows[trace.run_id(r.run_key)] for r in trace.runs}


def tool_stat(trace: Any, run_key: str, metric: str, statistic: str) -> float:
    """The one summary statistic a loaded Trace carries for a run, as the tool wrote it."""
    import polars as pl

    hit = trace.run_stats.filter(
        (pl.col("run_key") == run_key)
        & (pl.col("metric") == metric)
        & (pl.col("statistic") == statistic)
    )
    assert hit.height == 1, (run_key, metric, statistic)
    return float(hit["value"][0])


def one_level(trace: Any) -> dict[str, Any]:
    """The level metrics of a Trace holding exactly one run."""
    (row,) = trace_levels(trace).values()
    return row


def pct(values: list[float], q: float) -> float:
    """numpy's default percentile (linear, 'type 7'), via the standard library."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1]


def vllm_doc(
    ttfts: list[float],
    itls: list[list[float]],
    *,
    input_lens: list[int] | None = None,
    errors: list[str] | None = None,
    max_concurrency: int | None = 8,
    request_rate: Any = "inf",
    duration: float = 10.0,
    detailed: bool = True,
) -> dict[str, Any]:
    """A result dict laid out as `vllm bench serve --save-result [--save-detailed]` writes."""
    n = len(ttfts)
    errors = errors or [""] * n
    input_lens = input_lens or [100] * n
    output_lens = [len(i) + 1 if not e else 0 for i, e in zip(itls, errors, strict=True)]
    ok = [i for i in range(n) if not errors[i]]
    e2e = [ttfts[i] + sum(itls[i]) for i in ok]
    doc: dict[str, Any] = {
        "date": "20251102-101500",
        "endpoint_type": "openai-chat",
        "backend": "openai-chat",
        "label": None,
        "model_id": "test/model",
        "tokenizer_id": "test/model",
        "num_prompts": n,
        "request_rate": request_rate,
        "burstiness": 1.0,
        "max_concurrency": max_concurrency,
        "duration": duration,
        "completed": len(ok),
        "failed": n - len(ok),
        "total_input_tokens": sum(input_lens[i] for i in ok),
        "total_output_tokens": sum(output_lens[i] for i in ok),
        "request_throughput": len(ok) / duration,
        "request_goodput": None,
        "output_throughput": sum(output_lens[i] for i in ok) / duration,
        "total_token_throughput": sum(input_lens[i] + output_lens[i] for i in ok) / duration,
    }
    if detailed:
        doc |= {
            "input_lens": input_lens,
            "output_lens": output_lens,
            "ttfts": ttfts,
            "itls": itls,
            "generated_texts": [""] * n,
            "errors": errors,
        }
    series = {
        "ttft": [ttfts[i] for i in ok],
        "tpot": [
            (e2e[k] - ttfts[i]) / (output_lens[i] - 1)
            for k, i in enumerate(ok)
            if output_lens[i] > 1
        ],
        "itl": [g for i in ok for g in itls[i]],
        "e2el": e2e,
    }
    for name, values in series.items():
        doc[f"mean_{name}_ms"] = statistics.fmean(values) * 1000
        doc[f"median_{name}_ms"] = statistics.median(values) * 1000
        doc[f"std_{name}_ms"] = statistics.pstdev(values) * 1000
        for p in (50, 90, 95, 99):
            doc[f"p{p}_{name}_ms"] = pct(values, p / 100) * 1000
    return doc


@pytest.fixture
def write_vllm(tmp_path: Path):
    def write(name: str, doc: dict[str, Any] | str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    return write


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"
