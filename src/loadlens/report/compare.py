"""The deployment-options brief: options side by side, the recommendation and why."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from loadlens import __version__
from loadlens.analysis.compare import Option, Recommendation, cost_latency_points, recommend
from loadlens.analysis.saturation import max_load_within_slos
from loadlens.api import Analysis
from loadlens.config import format_seconds
from loadlens.findings import approx, boundary_range, format_load
from loadlens.report.brief import provenance


class CompareBrief(BaseModel):
    title: str
    generated_at: str
    version: str
    slos: list[str]
    recommendation: str
    profile: str
    rows: list[dict[str, str]]
    provenance: list[dict[str, str]]
    charts: dict[str, str]


def options(analysis: Analysis) -> list[Option]:
    zones = {z.deployment: z for z in analysis.zones}
    costs = {c.deployment: c for c in analysis.costs}
    gpus = {
        r["deployment"]: r["gpus_per_replica"] or 1
        for r in analysis.deployments.iter_rows(named=True)
    }
    names = analysis.levels["deployment"].unique(maintain_order=True).to_list()
    return [Option(n, zones.get(n), costs.get(n), gpus.get(n, 1)) for n in names]


def recommendation_sentence(rec: Recommendation | None) -> str:
    if rec is None:
        return "No option meets the SLOs at any measured load: none can be recommended."
    best, second = rec.best, rec.runner_up
    zone = best.zone
    assert zone is not None
    where = format_load(zone.load_mode, approx(zone.load_mode, zone.max_load))
    if rec.basis == "cost":
        c = best.cost
        assert c is not None
        text = (
            f"Choose {best.deployment}: it serves the user profile within every SLO for "
            f"${c.monthly_usd:,.0f}/month (${c.usd_per_user_month:.2f} per user) with "
            f"{c.replicas:,} replica(s) run at {where}"
        )
        if second and second.cost:
            more = second.cost.monthly_usd / c.monthly_usd - 1
            text += (
                f"; the runner-up, {second.deployment}, costs {more:.0%} more "
                f"(${second.cost.monthly_usd:,.0f}/month, {second.cost.replicas:,} replica(s))"
            )
        return text + "."
    text = (
        f"Choose {best.deployment}: its stable zone carries {where} per replica, "
        f"{best.load_per_gpu:.0f} per GPU"
    )
    if second:
        text += (
            f", against {second.load_per_gpu:.0f} per GPU for the runner-up, "
            f"{second.deployment} (no prices configured: ranked on capacity, not cost)"
        )
    return text + "."


def build_compare(analysis: Analysis) -> CompareBrief:
    from loadlens import charts  # altair: loaded only to draw (~0.7 s)

    opts = options(analysis)
    binding = max_load_within_slos(analysis.boundaries)
    rows = []
    for o in opts:
        b = next((v for (d, _), v in binding.items() if d == o.deployment), None)
        c = o.cost
        rows.append(
            {
                "deployment": o.deployment,
                "limit": (
                    f"≈ {approx(b.load_mode, b.boundary_load):g} ({boundary_range(b)})"
                    if b and b.status == "crossed" and b.boundary_load
                    else (
                        f"> {b.max_load_measured:g}" if b and b.status == "never_breached" else "–"
                    )
                ),
                "binding": str(b.slo) if b and b.first_breach else "–",
                "zone": f"{approx(o.zone.load_mode, o.zone.max_load):g}" if o.zone else "–",
                "per_gpu": f"{o.load_per_gpu:.0f}" if o.zone else "–",
                "per_1m": f"${c.usd_per_1m_output:.2f}" if c else "–",
                "per_user": f"${c.usd_per_user_month:.2f}" if c else "–",
                "replicas": f"{c.replicas:,}" if c else "–",
                "monthly": f"${c.monthly_usd:,.0f}" if c else "–",
                "p95_last_ok": format_seconds(b.last_ok.value) if b and b.last_ok else "–",
            }
        )
    chart_svgs = {"slo": charts.slo_chart(analysis.levels, analysis.slos)}
    if analysis.economics:
        points = cost_latency_points(analysis.levels, analysis.economics.prices)
        if not points.is_empty():
            chart_svgs["pareto"] = charts.pareto_chart(points)
    profile = ""
    if analysis.economics:
        p = analysis.economics.profile
        profile = (
            f"User profile: {p.users:,} users × {p.requests_per_day:g} requests/day over "
            f"{p.active_hours:g} active hours, peak {p.peak_factor:g}× the average."
        )
    return CompareBrief(
        title="Deployment options: " + " vs ".join(o.deployment for o in opts),
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        slos=[str(s) for s in analysis.slos],
        recommendation=recommendation_sentence(recommend(opts)),
        profile=profile,
        rows=rows,
        provenance=provenance(analysis),
        charts=chart_svgs,
    )
