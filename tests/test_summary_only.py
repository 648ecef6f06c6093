"""Summary-only runs: an SLO a file cannot be judged on is said, or judged on a stand-in when
the user allows it; a bug is exit 3 naming where it struck, never a traceback; the README's
formats table lists every format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import ROOT, vllm_doc
from typer.testing import CliRunner

from loadlens import api, sources
from loadlens.analysis.coverage import slo_coverage
from loadlens.analysis.levels import levels
from loadlens.cli import app
from loadlens.config import parse_slos
from loadlens.trace import REQUEST_SCHEMA, empty

runner = CliRunner()


def _summary_levels(stats: dict[str, float]) -> pl.DataFrame:
    """Two summary-only concurrency levels carrying only `stats` of E2E (seconds)."""
    runs = pl.DataFrame(
        {
            "run_id": ["a", "b"],
            "deployment": ["d", "d"],
            "load_mode": ["concurrency", "concurrency"],
            "load_value": [8.0, 16.0],
            "duration_s": [10.0, 10.0],
            "num_requests": [100, 100],
            "num_errors": [0, 0],
        }
    )
    rows = [(r, "e2e_s", s, v * (1 + i)) for i, r in enumerate("ab") for s, v in stats.items()]
    run_stats = pl.DataFrame(rows, schema=["run_id", "metric", "statistic", "value"], orient="row")
    return levels(runs, empty(REQUEST_SCHEMA), run_stats, parse_slos("p95_e2e<10s"))


def test_a_missing_percentile_is_a_null_column_never_a_missing_one() -> None:
    lv = _summary_levels({"p50": 1.0, "p99": 3.0})
    assert lv["p95_e2e_s"].is_null().all() and lv["p99_e2e_s"].to_list() == [3.0, 6.0]


def test_an_slo_on_a_missing_percentile_is_unjudged_unless_a_stand_in_is_allowed() -> None:
    lv = _summary_levels({"mean": 1.0, "p50": 1.0, "p99": 3.0})
    (plain,) = slo_coverage(lv, parse_slos("p95_e2e<10s"), stand_in=False)
    assert plain.judged_on is None and set(plain.unjudged_run_ids) == {"a", "b"}
    assert plain.carried == ("mean", "p50", "p99")
    (allowed,) = slo_coverage(lv, parse_slos("p95_e2e<10s"), stand_in=True)
    assert allowed.judged_on is not None and allowed.judged_on.statistic == "p99"
    assert allowed.stand_in and not allowed.unjudged_run_ids


def test_a_stand_in_is_only_ever_a_higher_percentile() -> None:
    lv = _summary_levels({"p50": 1.0, "p90": 2.0})  # below p95: no upper bound of it
    (c,) = slo_coverage(lv, parse_slos("p95_e2e<10s"), stand_in=True)
    assert c.judged_on is None and c.unjudged_run_ids
    (mean,) = slo_coverage(lv, parse_slos("mean_e2e<10s"), stand_in=True)
    assert mean.judged_on is None  # a mean has no percentile to stand in for it


def _summary_only_warehouse(tmp_path: Path) -> Path:
    """A vLLM summary-only file whose percentiles stop at p99 (no p95), ingested."""
    doc = vllm_doc([0.1, 0.2, 0.3], [[0.01], [0.02], [0.03]], detailed=False)
    doc = {k: v for k, v in doc.items() if not k.startswith("p95_")}
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(doc))
    db = tmp_path / "w.duckdb"
    assert runner.invoke(app, ["ingest", str(path), "-d", "dep", "--db", str(db)]).exit_code == 0
    return db


def test_the_brief_says_which_slo_cannot_be_judged_and_how(tmp_path: Path) -> None:
    db = _summary_only_warehouse(tmp_path)
    result = runner.invoke(app, ["report", "--db", str(db), "-f", "md"])
    assert result.exit_code == 0, result.output
    assert (
        "rests only on what can be judged; p95 E2E ≤ 10 s, p95 TTFT ≤ 2 s cannot be"
        in result.output
    )
    assert "p95 E2E ≤ 10 s cannot be judged on 1 run of dep" in result.output
    assert "--stand-in judges it on p99" in result.output
    judged = runner.invoke(app, ["report", "--db", str(db), "-f", "md", "--stand-in"])
    assert "judged on p99 E2E" in judged.output and "No SLO can be judged" not in judged.output


def test_a_bug_is_exit_3_naming_the_file_it_met(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(vllm_doc([0.1], [[0.01]])))

    def broken(_path: Path, **_: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(sources.FORMATS["vllm"], "load", broken)
    result = runner.invoke(app, ["ingest", str(path), "-d", "x", "--db", str(tmp_path / "w")])
    assert result.exit_code == 3, result.output
    assert "internal error" in result.output and str(path) in result.output
    assert "Traceback" not in result.output


def test_a_bug_in_analysis_is_exit_3_naming_the_deployments(tmp_path: Path, monkeypatch) -> None:
    db = _summary_only_warehouse(tmp_path)

    def broken(*_: object, **__: object) -> None:
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setattr(api, "analyze", broken)
    for verb in (["report", "-f", "json"], ["findings"], ["check", "--min-capacity", "1"]):
        result = runner.invoke(app, [*verb, "--db", str(db), "-d", "dep"])
        assert result.exit_code == 3, (verb, result.output)
        assert "dep" in result.output and "ZeroDivisionError" in result.output


def test_the_readme_formats_table_lists_every_format() -> None:
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("### Formats") :]
    listed = set(re.findall(r"^\| `([\w-]+)` \|", table, flags=re.M))
    assert listed == set(sources.FORMATS), set(sources.FORMATS) ^ listed


@pytest.mark.parametrize("name", sorted(sources.FORMATS))
def test_ingest_help_names_every_detected_format(name: str) -> None:
    module = sources.FORMATS[name]
    if not getattr(module, "AUTO_DETECT", True) or name == "loadlens":
        pytest.skip(f"{name} is not auto-detected")
    words = {"vllm-sweep": "bench sweep", "inference-benchmarker": "inference-benchmarker"}
    text = runner.invoke(app, ["ingest", "--help"]).output.lower()
    assert words.get(name, name.split("-")[0]).lower() in text.replace("\n", " ")
