"""The cost-per-user brief: users → replicas → $ per month, sensitivity, break-even."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from pydantic import BaseModel

from loadlens import __version__
from loadlens.analysis.cost import HOURS_PER_MONTH, Cost, Scenario
from loadlens.api import Analysis
from loadlens.findings.format import approx, format_load
from loadlens.report.brief import cost_basis

USER_LADDER = (100, 1_000, 10_000, 100_000, 1_000_000)
CHART_POINTS = 400  # log-spaced user counts, 100 to 1,000,000, for the fleet chart


class BudgetBrief(BaseModel):
    title: str
    generated_at: str
    version: str
    slos: list[str]
    headline: str
    basis: str
    ladder_header: list[str]
    ladder: list[list[str]]
    scenarios: list[dict[str, str]]
    charts: dict[str, str]


def option_name(c: Cost, costs: list[Cost]) -> str:
    """The deployment, with its load mode where it was priced in more than one (a
    concurrency sweep and a rate sweep of one deployment are two options)."""
    if sum(o.deployment == c.deployment for o in costs) < 2:
        return c.deployment
    return f"{c.deployment} ({'rate' if c.load_mode == 'rate' else c.load_mode} sweep)"


def headline(analysis: Analysis) -> str:
    costs = sorted(analysis.costs, key=lambda c: c.usd_per_user_month)
    e = analysis.economics
    if not costs or e is None:
        return "No cost can be computed: configure [cost] gpu_hour_usd and [users]."
    p = e.profile
    parts = [
        f"{option_name(c, costs)} ${c.monthly_usd:,.0f}/month "
        f"(${c.usd_per_user_month:.2f} per user) on {c.replicas:,} replica(s) at "
        f"{format_load(c.load_mode, approx(c.load_mode, c.load))}"
        for c in costs
    ]
    text = f"For {p.users:,} users within every SLO: " + "; ".join(parts) + "."
    hosted = costs[0].hosted_usd_per_user_month
    if hosted is not None:
        paying = [c for c in costs if c.break_even_users is not None]
        if paying:
            best = min(paying, key=lambda c: c.break_even_users or math.inf)
            text += (
                f" The hosted API costs ${hosted:.2f} per user; self-hosting on "
                f"{option_name(best, costs)} pays from about {best.break_even_users:,.0f} users."
            )
        else:
            text += (
                f" The hosted API, at ${hosted:.2f} per user, is cheaper at any scale for "
                "this profile."
            )
    return text


def build_budget(analysis: Analysis, scenarios: list[Scenario]) -> BudgetBrief:
    from loadlens import charts  # altair: loaded only to draw (~0.7 s)

    e = analysis.economics
    costs = sorted(analysis.costs, key=lambda c: c.deployment)
    users = sorted({*USER_LADDER, e.profile.users} if e else set(USER_LADDER))
    header = ["Users", *(option_name(c, costs) for c in costs)]
    hosted = costs[0].hosted_usd_per_user_month if costs else None
    if hosted is not None:
        header.append("Hosted API")
    ladder = []
    for n in users:
        row = [f"{n:,}"]
        for c in costs:
            replicas = max(1, math.ceil(n / c.users_per_replica))
            row.append(f"{replicas:,} → ${replicas * c.replica_hour_usd * HOURS_PER_MONTH:,.0f}")
        if hosted is not None:
            row.append(f"${n * hosted:,.0f}")
        ladder.append(row)
    # The chart walks users densely, so every step is a real replica added (drawn from the
    # table's decades alone, a step-line would show 1,000 users' fleet up to 10,000).
    fleet = []
    for n in sorted({round(10 ** (2 + 4 * i / CHART_POINTS)) for i in range(CHART_POINTS + 1)}):
        for c in costs:
            replicas = max(1, math.ceil(n / c.users_per_replica))
            fleet.append(
                {
                    "option": option_name(c, costs),
                    "users": n,
                    "monthly_usd": replicas * c.replica_hour_usd * HOURS_PER_MONTH,
                }
            )
        if hosted is not None:
            fleet.append({"option": "hosted API", "users": n, "monthly_usd": n * hosted})
    rows = [
        {
            "deployment": s.deployment,
            "scenario": s.name,
            "usd": f"${s.usd_per_user_month:.3f}" if s.usd_per_user_month is not None else "–",
        }
        for s in scenarios
    ]
    chart_svgs = {}
    if fleet:
        chart_svgs["fleet"] = charts.fleet_chart(fleet)
    bars = [
        {"deployment": s.deployment, "scenario": s.name, "usd": s.usd_per_user_month}
        for s in scenarios
        if s.usd_per_user_month is not None
    ]
    if bars:
        chart_svgs["sensitivity"] = charts.sensitivity_chart(bars)
    names = ", ".join(dict.fromkeys(c.deployment for c in costs)) or "no priced deployment"
    return BudgetBrief(
        title=f"Cost per user: {names}",
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
        slos=[str(s) for s in analysis.slos],
        headline=headline(analysis),
        basis=cost_basis(analysis),
        ladder_header=header,
        ladder=ladder,
        scenarios=rows,
        charts=chart_svgs,
    )
