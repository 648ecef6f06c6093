"""From the sample trace files to the PDF brief: the headline numbers are recomputed here
independently (json + statistics, no loadlens code) and must appear on page 1."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pypdf import PdfReader
from tests.conftest import SAMPLE_DATA, pct
from typer.testing import CliRunner

from loadlens.cli import app

SLOS = {"e2e": 10.0, "ttft": 2.0}  # sample_data/loadlens.toml: p95_e2e<10s,p95_ttft<2s


def _p95_by_level(folder: Path) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {"e2e": [], "ttft": []}
    for path in folder.glob("vllm-c*.json"):
        doc = json.loads(path.read_text())
        ok = [i for i, e in enumerate(doc["errors"]) if not e]
        e2e = [doc["ttfts"][i] + sum(doc["itls"][i]) for i in ok]
        ttft = [doc["ttfts"][i] for i in ok]
        series["e2e"].append((doc["max_concurrency"], pct(e2e, 0.95)))
        series["ttft"].append((doc["max_concurrency"], pct(ttft, 0.95)))
    return {k: sorted(v) for k, v in series.items()}


def _boundary(points: list[tuple[int, float]], threshold: float) -> tuple[int, float] | None:
    """(last level meeting, interpolated load at the threshold), or None if never breached."""
    for i, (load, value) in enumerate(points):
        if value > threshold:
            assert i > 0, "sample data should not breach at its lightest level"
            x0, y0 = points[i - 1]
            return x0, x0 + (threshold - y0) * (load - x0) / (value - y0)
    return None


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text)


@pytest.fixture(scope="module")
def demo_pdf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    if not any(SAMPLE_DATA.glob("*/vllm-c*.json")):
        pytest.fail("sample_data/ has no traces: run `make sample-data`")
    out = tmp_path_factory.mktemp("reports")
    result = CliRunner().invoke(app, ["demo", "--data", str(SAMPLE_DATA), "--out", str(out)])
    assert result.exit_code == 0, result.output
    pdf = out / "demo-brief.pdf"
    page1 = _normalize(PdfReader(pdf).pages[0].extract_text())
    return pdf, page1


def test_page_one_states_every_deployments_slo_boundary(demo_pdf: tuple[Path, str]) -> None:
    _, page1 = demo_pdf
    folders = sorted(p for p in SAMPLE_DATA.iterdir() if p.is_dir())
    assert len(folders) == 2
    for folder in folders:
        series = _p95_by_level(folder)
        crossings = {m: _boundary(series[m], t) for m, t in SLOS.items()}
        binding = min(
            (c for c in crossings.values() if c is not None), key=lambda c: c[1], default=None
        )
        assert binding is not None, f"{folder.name} never breaches its SLOs in the sample"
        last_ok, limit = binding
        # The decision names every deployment's last good level and its interpolated limit.
        assert f"concurrency {last_ok} on {folder.name}" in page1, page1
        assert f"about concurrency {round(limit)}" in page1, (round(limit), page1)


def test_brief_is_complete_and_says_the_data_is_simulated(demo_pdf: tuple[Path, str]) -> None:
    pdf, page1 = demo_pdf
    assert "Simulated data" in page1 and "decision" in page1.lower()
    text = _normalize(" ".join(p.extract_text() for p in PdfReader(pdf).pages))
    for heading in (
        "Key numbers",
        "Findings",
        "Latency against the SLOs",
        "Throughput",
        "Time to first token",
        "Every load level",
        "data provenance",
    ):
        assert heading in text, heading
    assert "vllm-c80.json" in text.replace(" ", "")  # provenance names the files
    html = (pdf.parent / "demo-brief.html").read_text()
    # Charts against load per mode (concurrency: 5; the A100's rate sweep: 5), a story
    # figure per series (3) and the appendix's small multiples per series (3).
    assert html.count("data:image/svg+xml;base64,") == 16
    assert "http://" not in html.split("<body>")[1] and "https://" not in html


def test_the_sweep_past_saturation_tells_its_story(demo_pdf: tuple[Path, str]) -> None:
    """The A100's open-loop rate sweep: strain before the breach (page 1, with numbers
    recomputed here from the files), then a level whose queue keeps growing."""
    pdf, page1 = demo_pdf
    folder = SAMPLE_DATA / "a100-vllm-tp1"
    ok: list[tuple[float, float]] = []
    for path in sorted(folder.glob("vllm-r*.json")):
        doc = json.loads(path.read_text())
        e2e = [
            t + sum(g)
            for t, g, e in zip(doc["ttfts"], doc["itls"], doc["errors"], strict=True)
            if not e
        ]
        ok.append((doc["request_rate"], pct(e2e, 0.95)))
        assert doc["max_concurrency"] is None and len(doc["start_times"]) == len(doc["ttfts"])
    ok.sort()
    rate, p95 = next((r, v) for r, v in reversed(ok) if v < SLOS["e2e"] and r < 5)
    samples = [json.loads(x) for x in (folder / f"vllm-r{rate:g}.metrics.jsonl").open()]
    kv = max(s["value"] for s in samples if s["signal"] == "kv_cache_usage")
    assert kv >= 0.9, "the sample should strain the KV cache while every SLO holds"
    assert (
        f"at {rate:g} req/s, a100-vllm-tp1 meets every SLO ({1 - p95 / SLOS['e2e']:.0%} "
        f"headroom on p95 E2E) but KV-cache usage peaks at {kv:.0%}"
    ) in page1, page1
    # Past capacity the queue keeps growing: the last requests sent wait far longer for a
    # first token than the first ones did.
    doc = json.loads((folder / "vllm-r6.json").read_text())
    by_start = [t for _, t in sorted(zip(doc["start_times"], doc["ttfts"], strict=True))]
    fifth = len(by_start) // 5
    assert pct(by_start[-fifth:], 0.5) > 10 * pct(by_start[:fifth], 0.5)
    text = _normalize(" ".join(p.extract_text() for p in PdfReader(pdf).pages))
    assert "The story over time" in text and "Appendix: every level over time" in text
    assert "4 req/s and 5 req/s over time" in text
    assert "unsustainable; misses p95 E2E" in text
    assert "kept growing through the run" in text
    assert "Warm-up: every request is in the statistics (--exclude-warmup 0)" in text


def test_demo_writes_the_options_brief_with_a_recommendation(
    demo_pdf: tuple[Path, str],
) -> None:
    pdf, _ = demo_pdf
    compare = pdf.parent / "demo-compare.pdf"
    text = _normalize(" ".join(p.extract_text() for p in PdfReader(compare).pages))
    assert "Recommendation" in text or "RECOMMENDATION" in text
    assert re.search(r"Choose (a100|h100)-vllm-tp1: it serves the user profile", text)
    assert "Cost against latency" in text


def test_demo_writes_the_budget_brief(demo_pdf: tuple[Path, str]) -> None:
    pdf, _ = demo_pdf
    text = _normalize(
        " ".join(p.extract_text() for p in PdfReader(pdf.parent / "demo-budget.pdf").pages)
    )
    text = " ".join(text.split())
    assert re.search(r"For 10,000 users within every SLO: [^$]+ \$[\d,]+/ ?month", text)
    assert "Sensitivity" in text and "outputs −30%" in text
    # the A100 was priced from two sweeps: each option says which
    assert "a100-vllm-tp1 (rate sweep)" in text and "a100-vllm-tp1 (concurrency sweep)" in text
    assert "a100-vllm-tp1, a100-vllm-tp1" not in text


def test_shorter_outputs_cost_less_per_user() -> None:
    import tempfile

    from loadlens import api
    from loadlens.config import load_config
    from loadlens.warehouse import Warehouse

    config = load_config(SAMPLE_DATA / "loadlens.toml")
    with tempfile.TemporaryDirectory() as tmp, Warehouse(Path(tmp) / "w.duckdb") as wh:
        api.ingest(wh, [SAMPLE_DATA / "a100-vllm-tp1"], "a100-vllm-tp1")
        analysis = api.analyze(wh, None, config.slos, 0.95, 0.8, config)
    by = {s.name: s.usd_per_user_month for s in analysis.scenarios}
    assert by["outputs −30%"] < by["as measured"] < by["outputs +30%"]
    assert by["SLO 20% looser"] <= by["as measured"] <= by["SLO 20% tighter"]
