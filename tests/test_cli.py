"""The CLI: one-line errors with exit 2 and no partial rows; ingest, runs, report verbs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import FIXTURES, vllm_doc
from typer.testing import CliRunner

from loadlens.cli import app
from loadlens.warehouse import Warehouse

runner = CliRunner()
GOLDEN = FIXTURES / "vllm" / "detailed-c4.json"


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _assert_clean_failure(result, db: Path, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    if db.exists():
        with Warehouse(db) as wh:
            counts = wh.counts()
        assert counts["runs"] == counts["requests"] == counts["sources"] == 0


@pytest.fixture
def good(write_vllm) -> Path:
    return write_vllm("in/good.json", vllm_doc([0.1, 0.2], [[0.01], [0.02]]))


def test_truncated_json(db: Path, good: Path, write_vllm) -> None:
    text = json.dumps(vllm_doc([0.1], [[0.01]], duration=3.0))
    write_vllm("in/truncated.json", text[:200])
    result = run("ingest", good.parent, "-d", "x", "--db", db, "--format", "vllm")
    _assert_clean_failure(result, db, "truncated.json", "not valid JSON")


def test_unknown_format(db: Path, good: Path, tmp_path: Path) -> None:
    (good.parent / "mystery.csv").write_text("a,b\n1,2\n")
    result = run("ingest", good.parent, "-d", "x", "--db", db)
    _assert_clean_failure(result, db, "mystery.csv", "matches no known trace format")


def test_csv_mapping_naming_a_missing_column(db: Path, tmp_path: Path) -> None:
    csv = tmp_path / "mine.csv"
    csv.write_text("latency_ms,ttft_ms\n1200,80\n")
    result = run(
        "ingest", csv, "-d", "x", "--db", db, "--map", "e2e=latency_ms:ms,ttft=first_ms:ms"
    )
    _assert_clean_failure(result, db, "mine.csv", "first_ms", "latency_ms, ttft_ms")


@pytest.mark.parametrize(("value", "needle"), [(-0.25, "-0.25"), (float("nan"), "nan")])
def test_negative_or_nan_latency(db: Path, good: Path, write_vllm, value, needle) -> None:
    doc = vllm_doc([0.1, 0.2], [[0.01], [0.02]], duration=5.0)
    doc["ttfts"][1] = value
    write_vllm("in/worse.json", doc)
    result = run("ingest", good.parent, "-d", "x", "--db", db)
    _assert_clean_failure(result, db, "worse.json", "ttft_s", needle)


def test_missing_path_and_missing_deployment(db: Path, good: Path, tmp_path: Path) -> None:
    _assert_clean_failure(run("ingest", tmp_path / "nope", "-d", "x", "--db", db), db, "nope")
    _assert_clean_failure(run("ingest", good, "--db", db), db, "--deployment")


def test_bad_slo_spec(db: Path) -> None:
    run("ingest", GOLDEN, "-d", "x", "--db", db)
    result = run("report", "--db", db, "--slo", "p95_e2e<10 parsecs", "-f", "md")
    assert result.exit_code == 2 and "p95_e2e<10 parsecs" in result.output


def test_ingest_runs_and_report_formats(db: Path, tmp_path: Path) -> None:
    first = run("ingest", GOLDEN, "-d", "h100", "--db", db)
    assert first.exit_code == 0 and "ingested" in first.output and "6 requests" in first.output
    again = run("ingest", GOLDEN, "-d", "h100", "--db", db)
    assert "already ingested as h100" in again.output
    listing = run("runs", "--db", db)
    assert listing.exit_code == 0
    assert "h100" in listing.output and "concurrency 4" in listing.output
    md = run("report", "--db", db, "--slo", "p95_e2e<0.1s", "-f", "md")
    assert md.exit_code == 0 and "# Capacity brief: h100" in md.output
    assert "p95 E2E ≤ 100 ms" in md.output
    js = run("report", "--db", db, "--slo", "p95_e2e<0.1s", "-f", "json")
    doc = json.loads(js.output)
    assert doc["levels"][0]["n_requests"] == 6 and doc["findings"]
    html = tmp_path / "b.html"
    assert run("report", "--db", db, "--out", html).exit_code == 0
    # One measured load: nothing to chart against load, and the brief says so.
    assert "No chart drawn: charts against load need at least two measured loads" in (
        html.read_text()
    )


def test_report_on_unknown_deployment_names_what_exists(db: Path) -> None:
    run("ingest", GOLDEN, "-d", "h100", "--db", db)
    result = run("report", "--db", db, "-d", "a100", "-f", "md")
    assert result.exit_code == 2 and "a100" in result.output and "h100" in result.output


def test_help_teaches() -> None:
    result = run("ingest", "--help")
    assert result.exit_code == 0 and "--map" in result.output
    assert "Auto-detects" in result.output and "GuideLLM" in result.output


def test_config_file_supplies_flags(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "ll.toml"
    config.write_text(
        f'db = "{db}"\nslo = "p99_tpot<1ms"\n[report]\nformat = "md"\n'
        '[deployments.h100]\nhardware = "1x H100"\n'
    )
    assert run("ingest", GOLDEN, "--config", config).exit_code == 0  # the one deployment
    result = run("report", "--config", config)
    assert result.exit_code == 0 and "p99 TPOT ≤ 1 ms" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('slo = "fast"\n')
    out = run("report", "--config", bad)
    assert out.exit_code == 2 and "bad.toml" in out.output and "fast" in out.output


def test_check_exits_1_on_a_capacity_regression(db: Path) -> None:
    run("ingest", GOLDEN, "-d", "h100", "--db", db)
    # One of the fixture's 6 requests failed: 17% blows the default 1% error budget.
    budget = run("check", "--db", db, "--slo", "p95_e2e<10s", "--min-capacity", "4")
    assert budget.exit_code == 1 and "FAIL h100: capacity none" in budget.output
    assert "error rate ≤ 1%" in budget.output and "error rate 17%" in budget.output
    slo = "p95_e2e<10s,error_rate<100%"  # the budget switched off
    ok = run("check", "--db", db, "--slo", slo, "--min-capacity", "4")
    assert ok.exit_code == 0 and "PASS h100: capacity concurrency 4" in ok.output
    bad = run("check", "--db", db, "--slo", slo, "--min-capacity", "8")
    assert bad.exit_code == 1 and "FAIL h100" in bad.output
    missing = run("check", "--db", db)
    assert missing.exit_code == 2 and "--min-capacity" in missing.output


@pytest.mark.parametrize("name", ["[/bold]", "[link=http://x]a[/link]", "evil\u202eName\x1b[31m"])
def test_a_name_is_data_never_markup_nor_terminal_control(db: Path, name: str) -> None:
    assert run("ingest", GOLDEN, "-d", name, "--db", db).exit_code == 0
    listed = run("runs", "--db", db)
    assert listed.exit_code == 0, listed.output
    found = run("findings", "--db", db)
    assert found.exit_code == 0, found.output
    checked = run("check", "--db", db, "--min-capacity", "1", "--slo", "p95_e2e<10s")
    assert checked.exit_code in (0, 1) and "Traceback" not in checked.output
    for result in (listed, found, checked):
        assert "\u202e" not in result.output and "\x1b[31m" not in result.output
    if name.startswith("["):
        assert name in listed.output  # shown as written, not interpreted


def test_markdown_output_carries_no_html_image_link_or_cell_break(db: Path) -> None:
    name = "x|<script>alert(1)</script>![t](http://evil/p.png)"
    assert run("ingest", GOLDEN, "-d", name, "--db", db).exit_code == 0
    md = run("report", "--db", db, "-f", "md")
    assert md.exit_code == 0, md.output
    assert "<script>" not in md.output and "](http://evil" not in md.output
    assert "x\\|&lt;script&gt;" in md.output  # the name, shown inert


def test_out_writes_only_regular_files_and_leaves_no_temporary(db: Path, tmp_path: Path) -> None:
    import os

    run("ingest", GOLDEN, "-d", "h100", "--db", db)
    folder = tmp_path / "a-dir"
    folder.mkdir()
    fifo = tmp_path / "a-fifo"
    os.mkfifo(fifo)
    link = tmp_path / "a-link"
    link.symlink_to(tmp_path / "elsewhere.md")
    for target in (folder, fifo, link):
        result = run("report", "--db", db, "-f", "md", "-o", target)
        assert result.exit_code == 2 and str(target) in result.output, result.output
    assert folder.is_dir() and not (tmp_path / "elsewhere.md").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    good = tmp_path / "brief.md"
    assert run("report", "--db", db, "-f", "md", "-o", good).exit_code == 0
    assert good.is_file() and (good.stat().st_mode & 0o777) == 0o644


def test_a_special_file_is_refused_by_name_not_ingested_as_nothing(
    db: Path, tmp_path: Path
) -> None:
    import os

    fifo = tmp_path / "trace.json"
    os.mkfifo(fifo)
    result = run("ingest", fifo, "-d", "x", "--db", db)
    assert result.exit_code == 2 and "not a regular file" in result.output, result.output
    assert "x" not in run("runs", "--db", db).output


def test_delete_takes_back_a_deployment_or_one_run(db: Path, tmp_path: Path) -> None:
    import duckdb

    assert run("ingest", GOLDEN, "-d", "keep", "--db", db).exit_code == 0
    assert run("ingest", FIXTURES / "vllm", "-d", "gone", "--db", db).exit_code == 0
    no_prompt = run("delete", "gone", "--db", db)  # not a terminal: never deletes unasked
    assert no_prompt.exit_code == 2 and "--yes" in no_prompt.output
    done = run("delete", "gone", "--yes", "--db", db)
    assert done.exit_code == 0 and "deleted deployment gone" in done.output, done.output
    with duckdb.connect(str(db), read_only=True) as con:
        left = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
            for t in ("deployments", "sources", "runs")
        }
        orphans = con.execute(
            "SELECT count(*) FROM requests WHERE run_id NOT IN (SELECT run_id FROM runs)"
        ).fetchone()[0]  # type: ignore[index]
    assert left == {"deployments": 1, "sources": 1, "runs": 1} and orphans == 0
    missing = run("delete", "gone", "--yes", "--db", db)
    assert missing.exit_code == 2 and "no deployment gone" in missing.output


def test_delete_one_run_keeps_the_rest(db: Path) -> None:
    assert run("ingest", FIXTURES / "vllm", "-d", "many", "--db", db).exit_code == 0
    from loadlens.warehouse import Warehouse

    with Warehouse(db, read_only=True) as wh:
        ids = wh.runs(["many"])["run_id"].to_list()
    assert len(ids) > 1
    done = run("delete", "many", "--run", ids[0], "--yes", "--db", db)
    assert done.exit_code == 0 and "1 run(s)" in done.output, done.output
    with Warehouse(db, read_only=True) as wh:
        assert wh.runs(["many"])["run_id"].to_list() == ids[1:]


def test_db_and_config_work_before_the_command_too(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "loadlens.toml"
    config.write_text('slo = "p95_e2e<1ms"\n')
    assert run("--db", db, "ingest", GOLDEN, "-d", "dep").exit_code == 0
    listed = run("--db", db, "runs")
    assert listed.exit_code == 0 and "dep" in listed.output
    # the command's own option wins over the one before it
    other = tmp_path / "other.duckdb"
    assert run("--db", db, "ingest", GOLDEN, "-d", "x", "--db", other).exit_code == 0
    with Warehouse(other) as wh:
        assert wh.counts()["runs"] == 1
    checked = run("--db", db, "--config", config, "check", "--min-capacity", "1")
    assert "p95 E2E" in checked.output and "1 ms" in checked.output, checked.output


def test_a_folder_without_a_trace_is_refused_not_an_empty_deployment(
    db: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "only-samples"
    folder.mkdir()
    (folder / "sweep-c1.metrics.jsonl").write_text(
        '{"t_s": 0.0, "signal": "requests_running", "value": 1.0}\n'
    )
    result = run("ingest", folder, "-d", "dep", "--db", db)
    _assert_clean_failure(result, db, "no trace")
    if db.exists():
        with Warehouse(db) as wh:
            assert wh.counts()["deployments"] == 0


def test_a_what_if_in_the_config_is_predicted_by_every_report(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "loadlens.toml"
    config.write_text('what_if = "rag=4x512+200ms"\n')
    assert run("ingest", GOLDEN, "-d", "dep", "--db", db).exit_code == 0
    said = run("--config", config, "findings", "--db", db)
    assert said.exit_code == 0 and "4 retrieved chunks of 512 tokens" in said.output, said.output
    bad = tmp_path / "bad.toml"
    bad.write_text('what_if = "rag=lots"\n')
    _assert_clean_failure(run("--config", bad, "findings", "--db", db), tmp_path / "x", "rag")


def test_a_ctrl_c_duckdb_reports_as_its_own_error_is_an_interrupt(capsys) -> None:
    import typer

    from loadlens.cli import handles_errors

    @handles_errors
    def opening() -> None:
        raise RuntimeError("Query interrupted")  # DuckDB's word for SIGINT mid-statement

    with pytest.raises(typer.Exit) as caught:
        opening()
    assert caught.value.exit_code == 130
    assert capsys.readouterr().err.strip() == "interrupted"
