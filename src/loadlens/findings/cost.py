"""$ per 1M tokens, replicas and $ per user per month at each stable zone."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.cost import HOURS_PER_MONTH, Cost
from loadlens.findings.format import approx, format_load
from loadlens.findings.model import Finding

KIND = "cost"
SECTION = "story"
ORDER = 70


def cost_finding(c: Cost) -> Finding:
    sentence = (
        f"At its stable zone ({format_load(c.load_mode, approx(c.load_mode, c.load))}, "
        f"{c.rps:.2f} req/s per replica), {c.deployment} costs ${c.usd_per_1m_output:.2f} per "
        f"1M output tokens; {c.replicas:,} replica(s) serve the user profile for "
        f"${c.monthly_usd:,.0f}/month, ${c.usd_per_user_month:.2f} per user per month"
    )
    if c.hosted_usd_per_user_month is not None:
        hosted = f"${c.hosted_usd_per_user_month:.2f}"
        at_scale = c.replica_hour_usd * HOURS_PER_MONTH / c.users_per_replica
        if c.break_even_users is None:
            sentence += (
                f"; the hosted API ({hosted} per user) is cheaper at any scale, since a full "
                f"replica costs ${at_scale:.2f} per user it can serve"
            )
        else:
            verdict = "cheaper" if c.usd_per_user_month < c.hosted_usd_per_user_month else "dearer"
            sentence += (
                f" ({verdict} than the hosted API's {hosted} at this user count; self-hosting "
                f"pays from about {c.break_even_users:,.0f} users)"
            )
    return Finding(
        kind=KIND,
        severity="info",
        deployment=c.deployment,
        sentence=sentence + ".",
        evidence={
            "load": c.load,
            "rps": c.rps,
            "hosted_usd_per_user_month": c.hosted_usd_per_user_month,
            "usd_per_1m_output": c.usd_per_1m_output,
            "usd_per_request": c.usd_per_request,
            "replicas": c.replicas,
            "monthly_usd": c.monthly_usd,
            "usd_per_user_month": c.usd_per_user_month,
            "users_per_replica": c.users_per_replica,
            "break_even_users": c.break_even_users,
        },
        confidence="throughput interpolated between measured levels at the zone's load; "
        "prices and user profile as configured",
    )


def find(a: Any) -> list[Finding]:
    return [cost_finding(c) for c in a.costs]
