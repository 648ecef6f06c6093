"""Every study in ../shared/traces (files real tools wrote on real GPUs), through every verb
as a user runs them: ingest, runs, report (json, md, pdf), findings, check, compare, budget,
under three SLO settings. No traceback, every file accounted for, every brief decides.

The per-tool agreement of numbers with each tool's own summary is in test_real_<tool>.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import SHARED_TRACES
from typer.testing import CliRunner

from loadlens.cli import app

pytestmark = pytest.mark.skipif(
    not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent in this checkout"
)

STUDIES = (
    sorted(p for p in SHARED_TRACES.glob("*/*") if p.is_dir()) if SHARED_TRACES.is_dir() else []
)
SLO_SETTINGS = {
    "default": "p95_e2e<10s,p95_ttft<2s",
    "tight": "p50_e2e<1ms,p50_ttft<1ms",  # every run with a latency breaches it
    "p50-mean": "p50_e2e<10s,mean_ttft<2s",
}
CONFIG = """
[cost]
gpu_hour_usd = 2.5
[users]
count = 1000
"""


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: {result.exception!r}\n{result.output}"
    )
    assert "Traceback" not in result.output and "internal error" not in result.output, (
        args,
        result.output,
    )
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One warehouse per tool, one deployment per study, ingested as a user would."""
    root = tmp_path_factory.mktemp("real")
    dbs = {}
    for study in STUDIES:
        db = root / f"{study.parent.name}.duckdb"
        code, output = invoke("ingest", str(study), "-d", study.name, "--db", str(db))
        assert code == 0, output
        # Every file is either loaded or listed as passed over, with its reason.
        for f in study.rglob("*"):
            if f.is_file():
                assert str(f) in output, f"{f} neither loaded nor listed:\n{output}"
        dbs[study.name] = db
    return dbs


@pytest.mark.parametrize("study", STUDIES, ids=lambda p: f"{p.parent.name}/{p.name}")
@pytest.mark.parametrize("setting", SLO_SETTINGS)
def test_every_verb_on_a_real_study(
    study: Path, setting: str, warehouses: dict[str, Path], tmp_path: Path
) -> None:
    db, slo = str(warehouses[study.name]), SLO_SETTINGS[setting]
    base = ("-d", study.name, "--db", db, "--slo", slo)
    code, listed = invoke("runs", "-d", study.name, "--db", db)
    assert code == 0 and study.name in listed

    code, output = invoke("report", *base, "-f", "json")
    assert code == 0, output
    doc = json.loads(output)
    assert doc["decision"].strip(), "a brief without a decision"
    if setting == "tight":  # nothing can meet 1 ms: no brief may claim a run meets it
        assert "meets every SLO" not in doc["decision"]
    code, markdown = invoke("report", *base, "-f", "md")
    assert code == 0 and "**Decision.**" in markdown
    if setting == "default":
        pdf = tmp_path / "brief.pdf"
        code, output = invoke("report", *base, "-o", str(pdf))
        assert code == 0 and pdf.read_bytes().startswith(b"%PDF"), output

    code, output = invoke("findings", *base)
    assert code == 0, output
    code, output = invoke("check", *base, "--min-capacity", "1")
    assert code in (0, 1), output

    config = tmp_path / "loadlens.toml"
    config.write_text(CONFIG)
    code, output = invoke("budget", *base, "--config", str(config), "-o", str(tmp_path / "b.json"))
    assert code == 0 or "no deployment" in output, output


TOOLS = sorted({s.parent.name for s in STUDIES})


@pytest.mark.parametrize("tool", TOOLS)
def test_compare_a_tools_studies(tool: str, warehouses: dict[str, Path], tmp_path: Path) -> None:
    """Studies by one tool side by side: the comparison a platform lead would ask for."""
    names = [s.name for s in STUDIES if s.parent.name == tool]
    if len(names) < 2:
        pytest.skip(f"{tool}: one study, nothing to compare")
    db = str(warehouses[names[0]])
    for setting in ("default", "tight"):
        out = tmp_path / f"{setting}.json"
        code, output = invoke(
            "compare", *names, "--db", db, "--slo", SLO_SETTINGS[setting], "-o", str(out)
        )
        assert code == 0, output
        assert json.loads(out.read_text())
