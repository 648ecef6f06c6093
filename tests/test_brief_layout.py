from __future__ import annotations

from loadlens.findings import Finding
from loadlens.report.brief import group_findings


def _f(kind: str, deployment: str | None) -> Finding:
    return Finding(
        kind=kind,  # type: ignore[arg-type]
        severity="info",
        deployment=deployment,
        sentence=f"{kind} of {deployment}",
        evidence={},
        confidence="",
    )


def test_findings_are_grouped_per_deployment_in_reading_order() -> None:
    findings = [
        _f("sample_size", "b"),
        _f("cost", "a"),
        _f("capacity", "a"),
        _f("scalability", "a"),
        _f("whatif", "a"),
        _f("capacity", "b"),
        _f("littles_law", None),
    ]
    groups = group_findings(findings, ["b", "a"])
    assert [g.title for g in groups] == ["b", "a", "All deployments"]
    assert [f.kind for f in groups[1].findings] == ["capacity", "whatif", "cost"]
    assert [f.kind for f in groups[1].notes] == ["scalability"]
    assert [f.kind for f in groups[0].notes] == ["sample_size"]
    assert sum(len(g.findings) + len(g.notes) for g in groups) == len(findings)


def test_decision_never_ranks_a_concurrency_against_a_rate() -> None:
    from loadlens.analysis.saturation import Level, SloBoundary
    from loadlens.config import parse_slos
    from loadlens.report.brief import _sweep_decision as decision

    (slo,) = parse_slos("p95_e2e<1s")
    ok = Level(load=4, value=0.3, lo=None, hi=None, n=20)
    bounds = [
        SloBoundary("d", "concurrency", slo, ok, None, None, None, None, 4),
        SloBoundary("d", "rate", slo, ok, None, None, None, None, 18),
    ]
    text = decision(bounds)
    assert "carries the most load" not in text
    assert text.index("concurrency sweeps") < text.index("up to concurrency 4")
    assert text.index("request-rate sweeps") < text.index("up to 18 req/s")
