"""Issue 10, "Words that are true": the capacity brief of every ../shared/traces study,
scanned for what a brief must never say, and checked against its own level table.

Each study is ingested once as one deployment into one warehouse, analysed under the
default SLOs at 95% and at 90% confidence, laid out (`build_brief`) and rendered to
Markdown as `loadlens report -f md` does. Every sentence the reader sees (the decision,
every finding and its confidence, the rendered Markdown) is scanned for the banned
patterns below; numbers are cross-checked against the level table of the same brief.
`check` must fail a deployment over its error budget or breaching on a burst run, and
name every deployment it judged.

A rule a study breaks today is listed in KNOWN with what is wrong and where: that case is
a strict xfail, so it turns red the day the brief becomes true (remove it from KNOWN then).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from tests.conftest import SHARED_TRACES, vllm_doc
from typer.testing import CliRunner

from loadlens import api
from loadlens.analysis.result import Analysis
from loadlens.cli import app
from loadlens.config import DEFAULT_SLO, format_seconds, parse_slos
from loadlens.report.brief import Brief, build_brief
from loadlens.report.render import render
from loadlens.warehouse import Warehouse

STUDIES = (
    sorted(p for p in SHARED_TRACES.glob("*/*") if p.is_dir()) if SHARED_TRACES.is_dir() else []
)
DEFAULT_SLOS = parse_slos(DEFAULT_SLO)
# name -> (SLOs, confidence): the default brief, the same at 90%, and the error budget alone
# (`--slo error_rate<1%`), where the budget's own interval is what the brief quotes.
SETTINGS = {
    "default": (DEFAULT_SLOS, 0.95),
    "default-90": (DEFAULT_SLOS, 0.9),
    "budget-only": (parse_slos("error_rate<1%"), 0.95),
}
needs_traces = pytest.mark.skipif(
    not SHARED_TRACES.is_dir(), reason=f"{SHARED_TRACES} is absent in this checkout"
)


def study_id(study: Path) -> str:
    return f"{study.parent.name}/{study.name}"


# (rule, "tool/study", setting or "*") -> what is wrong and which module says it. A strict
# xfail each.
KNOWN: dict[tuple[str, str, str], str] = {}


@dataclass(frozen=True)
class Rendered:
    study: str  # tool/study
    confidence: float
    analysis: Analysis
    brief: Brief
    markdown: str

    def texts(self) -> Iterator[tuple[str, str]]:
        """(where, text) of every sentence a reader sees."""
        yield "decision", self.brief.decision
        for f in self.analysis.findings:
            yield f"{f.kind} finding", f.sentence
            yield f"{f.kind} confidence", f.confidence
        yield "markdown", self.markdown


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every study as one deployment (named as its folder) in one warehouse."""
    if not STUDIES:
        pytest.skip(f"{SHARED_TRACES} is absent in this checkout")
    db = tmp_path_factory.mktemp("true-briefs") / "all.duckdb"
    with Warehouse(db) as wh:
        for study in STUDIES:
            api.ingest(wh, [study], study.name)
    return db


@pytest.fixture(scope="module")
def briefs(warehouse: Path) -> dict[tuple[str, str], Rendered]:
    out = {}
    with Warehouse(warehouse, read_only=True) as wh:
        for study in STUDIES:
            for setting, (slos, confidence) in SETTINGS.items():
                a = api.analyze(wh, [study.name], slos=slos, confidence=confidence)
                brief = build_brief(a, with_charts=False)
                markdown = render(brief, a, "md").decode()
                out[(study_id(study), setting)] = Rendered(
                    study_id(study), confidence, a, brief, markdown
                )
    return out


# --- the rules: each returns what it found wrong in one rendered brief ------------------------

Rule = Callable[[Rendered], list[str]]


def _scan(pattern: str, keep: Callable[[re.Match[str]], bool] = lambda m: True) -> Rule:
    regex = re.compile(pattern)

    def rule(r: Rendered) -> list[str]:
        return [
            f"{where}: {m.group(0)!r} in {text[max(0, m.start() - 80) : m.end() + 40]!r}"
            for where, text in r.texts()
            for m in regex.finditer(text)
            if keep(m)
        ]

    return rule


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _ci_at_95_when_asked_otherwise(r: Rendered) -> list[str]:
    if r.confidence == 0.95:
        return []
    return _scan(r"95% (?:CI|upper bound|interval|range|confidence)|95% range|\(95%")(r)


def _measure_lower_below_one(r: Rendered) -> list[str]:
    """ "measure lower loads" where the breach is at concurrency 1 or less: there is no lower
    closed-loop load."""
    regex = re.compile(r"concurrency (\d+(?:\.\d+)?)[^:]*?: measure lower loads")
    return [
        f"{where}: {m.group(0)!r}"
        for where, text in r.texts()
        for m in regex.finditer(text)
        if _number(m.group(1)) <= 1
    ]


def _no_engine(r: Rendered) -> set[str]:
    """Series of deployments whose runs name neither an engine nor hardware."""
    out = set()
    for row in r.analysis.runs.iter_rows(named=True):
        params = json.loads(row["params"]) if row.get("params") else {}
        if not any(params.get(k) for k in ("engine", "hardware", "gpu_count", "gpus")):
            out.add(row["deployment"])
    return out


def _prefill_without_engine(r: Rendered) -> list[str]:
    blind = _no_engine(r)
    bad = []
    for f in r.analysis.findings:
        base = r.analysis.levels.filter(pl.col("deployment") == f.deployment)
        if f.deployment not in blind or base.is_empty():
            continue
        sentence = f.sentence.replace(f.deployment, "<deployment>")
        if "prefill" in sentence.lower():
            bad.append(f"{f.kind}: {f.sentence!r}")
    return bad


def _stable_zone_from_one_level(r: Rendered) -> list[str]:
    lv = r.analysis.levels.filter(pl.col("load_value").is_not_null())
    loads = {
        (d, m): n
        for d, m, n in lv.group_by("deployment", "load_mode")
        .agg(pl.col("load_value").n_unique())
        .iter_rows()
    }
    bad = [
        f"zone of {z.deployment} ({z.load_mode}) from {loads.get((z.deployment, z.load_mode))} "
        "load(s)"
        for z in r.analysis.zones
        if loads.get((z.deployment, z.load_mode), 0) < 2
    ]
    for f in r.analysis.findings:
        if f.kind != "operating_zone":
            continue
        mode = (
            "concurrency"
            if "up to concurrency" in f.sentence
            else "rate"
            if "req/s per replica" in f.sentence
            else None
        )
        if loads.get((f.deployment, mode), 0) < 2:
            bad.append(f"operating_zone ({mode}): {f.sentence!r}")
    return bad


RULES: dict[str, Rule] = {
    "at_all_1_levels": _scan(r"at all 1 levels?\b"),
    "by_zero_percent": _scan(r"\bby 0(?:\.0+)?%"),
    "range_with_equal_ends": _scan(r"range (\d+(?:\.\d+)?)–\1(?![\d.,])"),
    # An excess, a share or a growth above 100% is said as a multiple ("16× the SLO"); 100%
    # itself (every request failed) is a share.
    "percent_over_100": _scan(
        r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d{3,})(?:\.\d+)?%", lambda m: _number(m.group(1)) > 100
    ),
    "ci_label_follows_confidence": _ci_at_95_when_asked_otherwise,
    "measure_lower_below_concurrency_1": _measure_lower_below_one,
    "prefill_without_engine": _prefill_without_engine,
    "stable_zone_from_one_level": _stable_zone_from_one_level,
    "nan_or_inf_printed": _scan(r"(?<![\w-])(?:nan|NaN|inf|Infinity|-inf)(?![\w-])"),
    "share_in_scientific_notation": _scan(r"\d(?:\.\d+)?e[-+]?\d+\s*%"),
    "negative_share": _scan(r"(?<![\w(−])[-−]\d+(?:\.\d+)?% of"),
}


def _cases() -> list[Any]:
    return [
        pytest.param(rule, study_id(s), setting, id=f"{rule}-{study_id(s)}-{setting}")
        for rule in RULES
        for s in STUDIES
        for setting in SETTINGS
    ]


def _known(request: pytest.FixtureRequest, rule: str, study: str, setting: str) -> None:
    reason = KNOWN.get((rule, study, setting)) or KNOWN.get((rule, study, "*"))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))


@needs_traces
@pytest.mark.parametrize(("rule", "study", "setting"), _cases())
def test_no_banned_words(
    rule: str,
    study: str,
    setting: str,
    briefs: dict[tuple[str, str], Rendered],
    request: pytest.FixtureRequest,
) -> None:
    _known(request, rule, study, setting)
    found = RULES[rule](briefs[(study, setting)])
    assert not found, f"{study} ({setting}): " + "\n".join(found)


@pytest.mark.parametrize(
    ("rule", "text", "confidence"),
    [
        ("at_all_1_levels", "rests on 50 samples at all 1 levels, only", 0.95),
        ("by_zero_percent", "(30.1 ms) exceeds the 30 ms SLO by 0%.", 0.95),
        ("range_with_equal_ends", "about concurrency 4 (range 4–4).", 0.95),
        ("percent_over_100", "(159 s) exceeds the 10 s SLO by 1494%.", 0.95),
        ("percent_over_100", "by 1,494%", 0.95),
        ("ci_label_follows_confidence", "(95% CI 2.9 s–3.3 s, n=400)", 0.9),
        ("measure_lower_below_concurrency_1", "at concurrency 1 (x): measure lower loads", 0.95),
        ("nan_or_inf_printed", "p95 E2E nan s at inf req/s", 0.95),
        ("share_in_scientific_notation", "95% CI 2.2e-17%–0.38%", 0.95),
        ("negative_share", "the per-token part of TTFT is -19% of mean TTFT", 0.95),
    ],
)
def test_each_rule_catches_the_words_the_issue_saw(rule: str, text: str, confidence: float) -> None:
    """The scanners themselves: each finds the misstatement the issue quotes, and passes
    the true wording beside it."""
    from types import SimpleNamespace

    def rendered(decision: str) -> Rendered:
        return Rendered(
            "x/y",
            confidence,
            SimpleNamespace(findings=[]),  # type: ignore[arg-type]
            SimpleNamespace(decision=decision),  # type: ignore[arg-type]
            "",
        )

    assert RULES[rule](rendered(text)), f"{rule} misses {text!r}"
    for true in (
        "at its only level; range about 4; range 4–5; 16× the SLO; 100% of requests failed; "
        "exceeds the 10 s SLO by 4.6%; (90% CI 2.9 s–3.3 s); at 2 req/s (x): measure lower "
        "loads; inference-sim completes 4.45 req/s instead of 5.27 (-16%); κ = 5.3e-06",
    ):
        assert not RULES[rule](rendered(true)), f"{rule} flags {true!r}"


# --- numbers against the level table of the same brief ----------------------------------------


def _table_rows(r: Rendered, deployment: str) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Each level of `deployment` with its row of the brief's level table (same order)."""
    levels = [row for row in r.analysis.levels.iter_rows(named=True)]
    mine = [row for row in levels if row["deployment"] == deployment]
    cells = r.brief.level_tables.get(deployment, [])
    assert len(mine) == len(cells), (deployment, len(mine), len(cells))
    return list(zip(mine, cells, strict=True))


def _verdict_rows(r: Rendered) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    for deployment in r.brief.level_tables:
        yield from _table_rows(r, deployment)


MEETS = re.compile(
    r"meets (?:every SLO|the SLOs|them)(?: it can be judged on)?(?: \([^)]*\))?"
    r"(?: at every measured (?:level|load),)? (?:up to|at its one measured load,|at) "
    r"(?:concurrency (?P<c>[\d,.]+)|(?P<r>[\d,.]+) req/s)"
)


def _contradicted_meets(r: Rendered, deployment: str, text: str) -> list[str]:
    """A "meets ... up to X" (or "at its one measured load, X") while a level of the same
    deployment and load mode at or below X misses an SLO in the table."""
    bad = []
    for m in MEETS.finditer(text):
        mode, up_to = (
            ("concurrency", _number(m.group("c").rstrip(".")))
            if m.group("c")
            else ("rate", _number(m.group("r")))
        )
        for row, cells in _table_rows(r, deployment):
            if (
                row["load_mode"] == mode
                and row["load_value"] is not None
                and row["load_value"] <= up_to + 1e-9
                and cells["verdict"].startswith("misses")
            ):
                bad.append(
                    f"{text!r} while the level at {row['load_value']:g} says {cells['verdict']!r}"
                )
    return bad


@needs_traces
@pytest.mark.parametrize("study", [study_id(s) for s in STUDIES])
def test_meets_every_slo_is_not_contradicted_by_the_table(
    study: str, briefs: dict[tuple[str, str], Rendered]
) -> None:
    r = briefs[(study, "default")]
    bad = []
    for f in r.analysis.findings:
        if f.kind == "capacity" and f.deployment in r.brief.level_tables:
            bad += _contradicted_meets(r, f.deployment, f.sentence)
            # A burst run said to meet every SLO: its own row must not miss one.
            if "run_id" in f.evidence and f.severity != "critical":
                missed = r.analysis.missed.get(str(f.evidence["run_id"]))
                assert not missed, (f.sentence, missed)
    # The decision, where the brief holds one series (a deployment split into series is
    # decided series by series, each in its own words).
    if len(r.brief.level_tables) == 1:
        (deployment,) = r.brief.level_tables
        bad += _contradicted_meets(r, deployment, r.brief.decision)
    # A verdict cell agrees with `missed`, and "meets" only where nothing was missed.
    for row, cells in _verdict_rows(r):
        missed = r.analysis.missed.get(row["run_id"])
        if missed:
            assert cells["verdict"].startswith("misses"), (row["run_id"], cells["verdict"])
        if cells["verdict"] == "meets":
            assert missed == (), (row["run_id"], missed)
    assert not bad, "\n".join(bad)


QUOTED = re.compile(r"\(([\d.,]+ (?:s|ms|µs))\)")


@needs_traces
@pytest.mark.parametrize("study", [study_id(s) for s in STUDIES])
def test_breach_values_are_the_level_tables(
    study: str, briefs: dict[tuple[str, str], Rendered]
) -> None:
    """Each slo_breach finding quotes the value of a level at the load it names, formatted
    as the level table formats it."""
    r = briefs[(study, "default")]
    for f in r.analysis.findings:
        if f.kind != "slo_breach":
            continue
        slo = next(s for s in r.analysis.slos if str(s) == f.evidence["slo"])
        m = QUOTED.search(f.sentence)
        assert m, f.sentence
        quoted = m.group(1)
        assert quoted == format_seconds(f.evidence["breach_value"]), f.sentence  # type: ignore[arg-type]
        rows = [
            (row, cells)
            for row, cells in _table_rows(r, str(f.deployment))
            if row["load_value"] == f.evidence["breach_load"]
        ]
        assert rows, f"{f.sentence!r}: no level at {f.evidence['breach_load']}"
        shown = {
            cells.get(slo.column) or format_seconds(row.get(slo.column)) for row, cells in rows
        }
        assert quoted in shown, (f.sentence, shown)
        # and the level it quotes does miss it in the table
        assert any(
            cells["verdict"].startswith("misses") and slo.label in cells["verdict"]
            for row, cells in rows
        ), (f.sentence, [c["verdict"] for _, c in rows])


@needs_traces
@pytest.mark.parametrize("study", [study_id(s) for s in STUDIES])
def test_a_level_where_every_request_failed_is_critical_and_not_blank(
    study: str, briefs: dict[tuple[str, str], Rendered]
) -> None:
    r = briefs[(study, "default")]
    critical = {f.deployment for f in r.analysis.findings if f.severity == "critical"}
    for row, cells in _verdict_rows(r):
        n = (row["n_requests"] or 0) - (row["n_cancelled"] or 0)
        if n and row["n_errors"] == n:
            assert row["deployment"] in critical, f"{row['deployment']}: all {n} failed"
            assert cells["errors"].startswith(f"{n:,}") and "100%" in cells["errors"], cells
            assert cells["verdict"].startswith("misses"), cells
            assert row["run_id"] in r.analysis.missed


# --- compare: per GPU only where GPUs are known -----------------------------------------------


TOOLS = sorted({s.parent.name for s in STUDIES})


@needs_traces
@pytest.mark.parametrize("tool", TOOLS)
def test_compare_says_per_gpu_only_where_gpus_are_known(tool: str, warehouse: Path) -> None:
    from loadlens.report.compare import build_compare

    names = [s.name for s in STUDIES if s.parent.name == tool]
    if len(names) < 2:
        pytest.skip(f"{tool}: one study, nothing to compare")
    with Warehouse(warehouse, read_only=True) as wh:
        a = api.analyze(wh, names, slos=DEFAULT_SLOS)
    rec = a.recommendation
    brief = build_compare(a)
    gpus = {c.option: c.gpus for c in rec.options} if rec else {}
    per_gpu_figure = re.compile(r"\d[\d.,]* per GPU|SLO capacity per GPU")
    if not all(gpus.values()):
        assert not per_gpu_figure.search(brief.recommendation), brief.recommendation
    for row in brief.rows:
        option = next((o for o in gpus if row.get("option", "").startswith(o)), None)
        if option is not None and not gpus[option] and "per_gpu" in row:
            assert row["per_gpu"] in ("–", ""), row
    for text in [brief.recommendation, *brief.notes]:
        for bad in ("nan", "NaN", "at all 1 levels", "by 0%"):
            assert not re.search(rf"(?<![\w-]){re.escape(bad)}(?![\w-])", text), text


# --- check --------------------------------------------------------------------------------


def _check(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["check", "--min-capacity", "1", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@needs_traces
def test_check_fails_a_deployment_over_its_error_budget(warehouse: Path) -> None:
    name = "leaderboard-bedrock_13b"
    if not (SHARED_TRACES / "llmperf" / name).is_dir():
        pytest.skip(f"llmperf/{name} is absent")
    code, output = _check("-d", name, "--db", str(warehouse))
    assert code == 1, output
    assert "FAIL" in output and name in output, output
    assert "error rate" in output, output


@needs_traces
def test_check_names_every_deployment_it_judged(warehouse: Path) -> None:
    code, output = _check("--db", str(warehouse))
    assert code == 1, output  # some studies fail (bedrock's 65% failures, for one)
    flat = re.sub(r"\s+", " ", output)
    for study in STUDIES:
        assert study.name in flat, f"check does not name {study.name}:\n{output}"


@needs_traces
def test_check_fails_a_real_burst_run_that_misses_an_slo(warehouse: Path) -> None:
    """GuideLLM's throughput run sends all 1,000 requests at once and misses p95 E2E."""
    name = "grazdev-eks-a10g-qwen25-7b-throughput-1000req-v0.2-schema"
    if not (SHARED_TRACES / "guidellm" / name).is_dir():
        pytest.skip(f"guidellm/{name} is absent")
    code, output = _check("-d", name, "--db", str(warehouse))
    assert code == 1, output
    assert "FAIL" in output and name in output, output


def test_check_judges_a_burst_run(tmp_path: Path) -> None:
    """A vLLM run with request_rate inf (everything sent at once, no concurrency cap) has no
    load to place on a curve; it is still judged: exit 1 when it misses an SLO, 0 when not."""
    doc = vllm_doc(
        [0.05, 0.08, 0.12, 0.2],
        [[0.01, 0.01], [0.02, 0.01], [0.01, 0.03], [0.02, 0.02]],
        max_concurrency=None,
        request_rate="inf",
        duration=2.0,
    )
    path = tmp_path / "in" / "burst.json"
    path.parent.mkdir()
    path.write_text(json.dumps(doc))
    db = str(tmp_path / "burst.duckdb")
    result = CliRunner().invoke(app, ["ingest", str(path), "-d", "burst", "--db", db])
    assert result.exit_code == 0, result.output

    code, output = _check("--db", db, "--slo", "p95_e2e<1ms")
    assert code == 1, output
    assert "FAIL" in output and "burst" in output, output

    code, output = _check("--db", db, "--slo", "p95_e2e<100s")
    assert code == 0, output
    assert "PASS" in output and "burst" in output, output
