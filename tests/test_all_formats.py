"""Every tool's fixture through the whole path: ingest, `runs`, a brief — as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import FIXTURES, SHARED_TRACES
from typer.testing import CliRunner

from loadlens import api, sources
from loadlens.cli import app
from loadlens.config import parse_slos
from loadlens.errors import TraceFormatError
from loadlens.report.brief import build_brief
from loadlens.report.render import render
from loadlens.warehouse import Warehouse

TOOL_DIRS = sorted(p for p in FIXTURES.iterdir() if p.is_dir() and p.name != "tools")


def test_every_registered_format_has_a_fixture_from_its_tool() -> None:
    formats = {n for n, m in sources.FORMATS.items() if getattr(m, "AUTO_DETECT", True)}
    found = set()
    for folder in TOOL_DIRS:
        files, _ = sources.plan([folder])
        found |= {sources.detect(f).NAME for f in files}
    assert formats - {"loadlens"} <= found  # loadlens's own traces: the runner's tests


@pytest.mark.parametrize("folder", TOOL_DIRS, ids=lambda p: p.name)
def test_a_tools_folder_ingests_lists_and_renders(folder: Path, tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    runner = CliRunner()
    result = runner.invoke(app, ["ingest", str(folder), "-d", folder.name, "--db", str(db)])
    assert result.exit_code == 0, result.output
    listed = runner.invoke(app, ["runs", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    with Warehouse(db, read_only=True) as wh:
        runs = wh.runs()
        assert runs.height >= 1
        assert runs["tool"].is_not_null().all() and runs["load_mode"].is_not_null().all()
        analysis = api.analyze(wh, [folder.name], parse_slos("p95_e2e<10s"))
    markdown = render(build_brief(analysis, with_charts=False), analysis, "md").decode()
    assert folder.name in markdown and "## Findings" in markdown


PRIMARY_FILES = [f for folder in TOOL_DIRS for f in sources.plan([folder])[0]]


@pytest.mark.parametrize("path", PRIMARY_FILES, ids=lambda p: str(p.relative_to(FIXTURES)))
def test_a_truncated_file_is_refused_by_name_never_half_loaded(path: Path, tmp_path: Path) -> None:
    whole = sources.load_file(path)
    data = path.read_bytes()
    for fraction in (0.5, 0.97):
        cut = tmp_path / f"{fraction}" / path.name
        cut.parent.mkdir()
        cut.write_bytes(data[: int(len(data) * fraction)])
        try:
            trace = sources.load_file(cut)
        except TraceFormatError as e:
            assert str(cut) in str(e)
        else:  # only a file that held no run may still read as holding none
            assert not whole.runs and not trace.runs, (fraction, len(trace.runs))


@pytest.mark.skipif(
    not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent in this checkout"
)
def test_every_shared_trace_ingests(tmp_path: Path) -> None:
    with Warehouse(tmp_path / "w.duckdb") as wh:
        result = api.ingest(wh, [SHARED_TRACES], "shared")
        assert result.outcomes
        assert wh.runs()["tool"].is_not_null().all()
