"""Typed claims: each model result becomes a plain sentence with the numbers behind it.

A finding never states a number it does not carry in `evidence`, and says how sure it is
(`confidence`): sample sizes, confidence intervals, or why there are none.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import orjson
import polars as pl
from pydantic import BaseModel, ConfigDict

from loadlens.analysis.cost import HOURS_PER_MONTH, Cost
from loadlens.analysis.coverage import SloCoverage, higher_percentiles
from loadlens.analysis.drivers import CAUSE_LABELS, Drivers
from loadlens.analysis.saturation import (
    Collapse,
    Level,
    OperatingZone,
    Plateau,
    RateSaturation,
    SloBoundary,
    UslFit,
    collapse,
    max_load_within_slos,
    rate_saturation,
)
from loadlens.analysis.whatif import WhatIf, describe
from loadlens.config import METRIC_LABELS, SLO, format_seconds

Kind = Literal[
    "capacity",
    "operating_zone",
    "cost",
    "drivers",
    "whatif",
    "slo_breach",
    "scalability",
    "collapse",
    "rate_saturation",
    "throughput_plateau",
    "sample_size",
    "errors",
    "littles_law",
    "summary_only",
    "slo_unjudged",
    "slo_stand_in",
]
Severity = Literal["critical", "warning", "info"]
ACHIEVED_RATIO_MIN = 0.8  # below this the client, not the server, may have set the load
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
DRIVERS_MIN_GROWTH = 0.10  # mean E2E growth over the lightest level worth explaining


class Finding(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Kind
    severity: Severity
    deployment: str | None
    sentence: str
    evidence: dict[str, float | int | str | None]
    confidence: str


def format_load(mode: str, value: float | None) -> str:
    if value is None:
        # A throughput run (GuideLLM, inference-benchmarker) sends everything at once.
        return (
            "maximum throughput (all requests at once)"
            if mode == "throughput"
            else ("an unknown load")
        )
    number = f"{value:g}" if value < 100 else f"{value:,.0f}"
    if mode == "concurrency":
        return f"concurrency {number}"
    if mode == "rate":
        return f"{number} req/s"
    return f"load {number}"


def _facets(workload: dict[str, Any], params: dict[str, Any]) -> dict[str, str]:
    """What a run sent and what served it, as label -> text, in reading order."""
    facets = {}
    for key, label in (("input_tokens", "in"), ("output_tokens", "out")):
        if workload.get(key) is not None:
            facets[label] = _count(workload[key])
    if workload.get("dataset"):
        facets["dataset"] = str(workload["dataset"])
    if workload.get("tag"):  # a tool's own label of the run (SGLang --tag: "1P4D")
        facets["tag"] = str(workload["tag"])
    for key in ("engine", "hardware"):
        if params.get(key):
            facets[key] = str(params[key])
    args = params.get("server_args")
    if isinstance(args, dict):
        facets |= {str(k): str(v) for k, v in args.items()}
    return facets


def _join(facets: dict[str, str]) -> str:
    parts = []
    lengths = [f"{k} {facets.pop(k)}" for k in ("in", "out") if k in facets]
    if lengths:
        parts.append(" / ".join(lengths) + " tok")
    parts += [
        v if k in ("dataset", "engine", "hardware") else f"{k} {v}" for k, v in facets.items()
    ]
    return " · ".join(parts)


def run_variants(runs: pl.DataFrame) -> dict[str, str]:
    """Per run_id: what tells it apart from the other runs of its deployment (input length,
    a server argument...), in a few words; for a deployment's only run, its workload."""

    def obj(text: str | None) -> dict[str, Any]:
        value = orjson.loads(text) if text else {}
        return value if isinstance(value, dict) else {}

    facets = {
        r["run_id"]: (r["deployment"], _facets(obj(r["workload"]), obj(r.get("params"))))
        for r in runs.iter_rows(named=True)
    }
    by_deployment: dict[str, list[dict[str, str]]] = {}
    for deployment, f in facets.values():
        by_deployment.setdefault(deployment, []).append(f)
    out = {}
    for run_id, (deployment, f) in facets.items():
        peers = by_deployment[deployment]
        if len(peers) == 1:
            shown = {k: v for k, v in f.items() if k in ("in", "out", "dataset")}
        else:
            keys = {k for p in peers for k in p}
            varying = {k for k in keys if len({p.get(k) for p in peers}) > 1}
            shown = {k: v for k, v in f.items() if k in varying}
        out[run_id] = _join(shown)
    return out


def _count(value: Any) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def format_loads(mode: str, values: list[float]) -> str:
    """`concurrency 60, 80` or `4, 8 req/s`."""
    numbers = ", ".join(f"{v:g}" for v in values)
    return {"concurrency": f"concurrency {numbers}", "rate": f"{numbers} req/s"}.get(
        mode, f"load {numbers}"
    )


def approx(mode: str, value: float) -> float:
    """An interpolated load, rounded as a reader would quote it: whole users, 2 digits of rate."""
    return float(round(value)) if mode == "concurrency" else float(f"{value:.2g}")


def boundary_range(b: SloBoundary) -> str:
    """`range 64–78`, or `range 33 to more than 40` where the samples leave a side open."""
    if b.last_ok is None or b.first_breach is None:
        return "range unknown"
    mode = b.load_mode
    lo = (
        f"{approx(mode, b.boundary_lo):g}"
        if b.boundary_lo is not None
        else f"less than {b.last_ok.load:g}"
    )
    if b.boundary_hi is not None:
        return f"range {lo}–{approx(mode, b.boundary_hi):g}"
    return f"range {lo} to more than {b.first_breach.load:g}"


def format_ci(lo: float | None, hi: float | None) -> str:
    return f"95% CI {format_seconds(lo)}–{format_seconds(hi) if hi is not None else 'unbounded'}"


def _level_evidence(prefix: str, level: Level | None) -> dict[str, float | int | None]:
    if level is None:
        return {}
    return {
        f"{prefix}_load": level.load,
        f"{prefix}_value_s": level.value,
        f"{prefix}_ci_lo_s": level.lo,
        f"{prefix}_ci_hi_s": level.hi,
        f"{prefix}_n": level.n,
    }


def _sample_note(level: Level | None) -> str:
    if level is None or level.n is None:
        return "from the tool's summary statistics; no confidence interval available"
    return f"{format_ci(level.lo, level.hi)}, n={level.n}"


def capacity_finding(b: SloBoundary, all_slos: tuple[SLO, ...]) -> Finding:
    """The highest load meeting every SLO, set by the binding boundary `b`."""
    slos = ", ".join(str(s) for s in all_slos)
    evidence: dict[str, float | int | str | None] = {
        "slo": str(b.slo),
        "threshold_s": b.slo.threshold_s,
        "max_load_measured": b.max_load_measured,
        "boundary_load": b.boundary_load,
        "boundary_lo": b.boundary_lo,
        "boundary_hi": b.boundary_hi,
        **_level_evidence("last_ok", b.last_ok),
        **_level_evidence("first_breach", b.first_breach),
    }
    mode = b.load_mode
    if b.status == "never_breached":
        sentence = (
            f"{b.deployment} meets every SLO ({slos}) at every measured level, up to "
            f"{format_load(mode, b.max_load_measured)}; its limit lies beyond what was measured."
        )
        return Finding(
            kind="capacity",
            severity="info",
            deployment=b.deployment,
            sentence=sentence,
            evidence=evidence,
            confidence=f"closest to its SLO: {b.slo.label} {_sample_note(b.last_ok)}",
        )
    first = b.first_breach
    assert first is not None
    if b.status == "breached_at_lowest":
        sentence = (
            f"{b.deployment} breaches {b.slo} already at the lightest measured load, "
            f"{format_load(mode, first.load)} ({b.slo.label} {format_seconds(first.value)}): "
            "measure lower loads to find its capacity."
        )
        return Finding(
            kind="capacity",
            severity="critical",
            deployment=b.deployment,
            sentence=sentence,
            evidence=evidence,
            confidence=_sample_note(first),
        )
    last = b.last_ok
    assert last is not None and b.boundary_load is not None
    sentence = (
        f"{b.deployment} meets every SLO up to {format_load(mode, last.load)} and breaches "
        f"{b.slo} at {format_load(mode, first.load)}; interpolated, its limit is about "
        f"{format_load(mode, approx(mode, b.boundary_load))} ({boundary_range(b)})."
    )
    return Finding(
        kind="capacity",
        severity="info",
        deployment=b.deployment,
        sentence=sentence,
        evidence=evidence,
        confidence=(
            f"{b.slo.label} at {last.load:g}: {format_seconds(last.value)} "
            f"({_sample_note(last)}); at {first.load:g}: {format_seconds(first.value)} "
            f"({_sample_note(first)}); linear interpolation, conservative for convex latency"
        ),
    )


def breach_finding(b: SloBoundary) -> Finding | None:
    first = b.first_breach
    if first is None:
        return None
    over = first.value / b.slo.threshold_s - 1
    sentence = (
        f"At {format_load(b.load_mode, first.load)}, {b.slo.label} of {b.deployment} "
        f"({format_seconds(first.value)}) exceeds the {format_seconds(b.slo.threshold_s)} SLO "
        f"by {over:.0%}"
    )
    if first.lo is not None and first.lo <= b.slo.threshold_s:
        sentence += (
            f"; its 95% CI reaches down to {format_seconds(first.lo)}, so the breach is "
            "likely but not certain"
        )
    sentence += "."
    return Finding(
        kind="slo_breach",
        severity="critical" if over > 0.2 else "warning",
        deployment=b.deployment,
        sentence=sentence,
        evidence={
            "slo": str(b.slo),
            "threshold_s": b.slo.threshold_s,
            **_level_evidence("breach", first),
        },
        confidence=_sample_note(first),
    )


def plateau_finding(p: Plateau) -> Finding:
    change = f"adds only {p.gain:.0%}" if p.gain >= 0 else f"loses {-p.gain:.0%} of its"
    sentence = (
        f"Throughput of {p.deployment} plateaus: going from "
        f"{format_load(p.load_mode, p.from_load)} to {p.to_load:g} {change} output tokens/s "
        f"({p.from_tps:,.0f} → {p.to_tps:,.0f} tok/s); more load now buys latency, not work."
    )
    return Finding(
        kind="throughput_plateau",
        severity="warning",
        deployment=p.deployment,
        sentence=sentence,
        evidence={
            "from_load": p.from_load,
            "to_load": p.to_load,
            "from_tps": p.from_tps,
            "to_tps": p.to_tps,
            "gain": p.gain,
        },
        confidence="throughput is a count over the whole run; no sampling error beyond run-to-run",
    )


def sample_size_findings(levels: pl.DataFrame, slos: tuple[SLO, ...]) -> list[Finding]:
    """Percentiles (of SLOs, and p99 E2E) whose upper 95% bound does not exist."""
    out = []
    wanted = {(s.statistic, s.metric) for s in slos if s.quantile} | {("p99", "e2e_s")}
    for (deployment,), group in levels.filter(pl.col("basis") == "requests").group_by(
        "deployment", maintain_order=True
    ):
        for stat, metric in sorted(wanted):
            col, n_col = f"{stat}_{metric}", f"n_{metric}"
            if f"{col}_hi" not in group.columns:
                continue
            thin = group.filter(pl.col(col).is_not_null() & pl.col(f"{col}_hi").is_null())
            if thin.is_empty():
                continue
            q = float(stat[1:]) / 100
            label = f"{stat} {metric.removesuffix('_s').upper()}"
            n_min, n_max = int(thin[n_col].min()), int(thin[n_col].max())  # type: ignore[arg-type]
            where = (
                f"at all {thin.height} levels"
                if thin.height == group.height
                else "at " + format_loads(thin["load_mode"][0], thin["load_value"].to_list())
            )
            n_text = f"{n_min:,}" if n_min == n_max else f"{n_min:,}–{n_max:,}"
            above = n_min * (1 - q)
            sentence = (
                f"{label} of {deployment} rests on {n_text} samples per level {where}, "
                + (f"only about {above:.0f}" if above >= 1 else "fewer than one")
                + " above the percentile: too few for a 95% upper bound, so read it as "
                "indicative."
            )
            out.append(
                Finding(
                    kind="sample_size",
                    severity="info",
                    deployment=str(deployment),
                    sentence=sentence,
                    evidence={
                        "statistic": label,
                        "n_min": n_min,
                        "n_max": n_max,
                        "levels_affected": thin.height,
                    },
                    confidence=(
                        f"a 95% upper bound on {stat} needs about {3 / (1 - q):.0f}+ samples"
                    ),
                )
            )
    return out


def error_findings(levels: pl.DataFrame) -> list[Finding]:
    out = []
    for row in levels.filter(pl.col("n_errors") > 0).iter_rows(named=True):
        sentence = (
            f"At {format_load(row['load_mode'], row['load_value'])}, {row['error_rate']:.1%} of "
            f"{row['deployment']}'s requests failed ({row['n_errors']} of {row['n_requests']})."
        )
        out.append(
            Finding(
                kind="errors",
                severity="critical" if row["error_rate"] > 0.01 else "warning",
                deployment=row["deployment"],
                sentence=sentence,
                evidence={
                    "load": row["load_value"],
                    "n_errors": row["n_errors"],
                    "n_requests": row["n_requests"],
                    "error_rate": row["error_rate"],
                },
                confidence="counted, not estimated",
            )
        )
    return out


def littles_law_findings(levels: pl.DataFrame) -> list[Finding]:
    out = []
    low = levels.filter(pl.col("achieved_ratio") < ACHIEVED_RATIO_MIN)
    for row in low.iter_rows(named=True):
        sentence = (
            f"At concurrency {row['load_value']:g}, {row['deployment']} held on average only "
            f"{row['achieved_concurrency']:.1f} requests in flight (Little's law: "
            f"{row['request_throughput_rps']:.2f} req/s × {format_seconds(row['mean_e2e_s'])}): "
            "ramp-up, tail or the client kept the requested load from being applied all run."
        )
        out.append(
            Finding(
                kind="littles_law",
                severity="warning",
                deployment=row["deployment"],
                sentence=sentence,
                evidence={
                    "load": row["load_value"],
                    "achieved": row["achieved_concurrency"],
                    "ratio": row["achieved_ratio"],
                },
                confidence="exact for the run's average; says nothing about moments",
            )
        )
    return out


def summary_only_findings(levels: pl.DataFrame) -> list[Finding]:
    out = []
    for (deployment,), group in levels.filter(pl.col("basis") == "summary").group_by(
        "deployment", maintain_order=True
    ):
        out.append(
            Finding(
                kind="summary_only",
                severity="info",
                deployment=str(deployment),
                sentence=(
                    f"{group.height} run(s) of {deployment} carry only the tool's summary "
                    "statistics: their percentiles have no confidence intervals and goodput "
                    "cannot be computed."
                ),
                evidence={"runs": group.height},
                confidence="as reported by the tool",
            )
        )
    return out


def _loads_of(levels: pl.DataFrame, run_ids: tuple[str, ...]) -> str:
    """`concurrency 64, 128` for the given runs, a mode at a time."""
    rows = levels.filter(pl.col("run_id").is_in(list(run_ids)))
    by_mode: dict[str, list[float | None]] = {}
    for mode, value in zip(rows["load_mode"], rows["load_value"], strict=True):
        by_mode.setdefault(mode, []).append(value)
    parts = []
    for mode, values in by_mode.items():
        known = sorted({v for v in values if v is not None})
        if known:
            parts.append(format_loads(mode, known))
        if None in values:
            parts.append(format_load(mode, None))
    return "; ".join(parts)


def coverage_findings(coverage: list[SloCoverage], levels: pl.DataFrame) -> list[Finding]:
    """An SLO a run cannot be judged on, or judged on a stand-in: said, never silent."""
    out = []
    for c in coverage:
        label = METRIC_LABELS[c.slo.metric]
        if c.unjudged_run_ids:
            n = len(c.unjudged_run_ids)
            carried = ", ".join(c.carried) if c.carried else "no statistic"
            higher = higher_percentiles(c.slo, list(c.carried))
            hint = (
                f"--stand-in judges it on {higher[0]} (an upper bound)"
                if higher
                else f"set the SLO on a statistic they carry ({carried})"
            )
            out.append(
                Finding(
                    kind="slo_unjudged",
                    severity="warning",
                    deployment=c.deployment,
                    sentence=(
                        f"{c.slo} cannot be judged on {n} run{'s' if n > 1 else ''} of "
                        f"{c.deployment} ({_loads_of(levels, c.unjudged_run_ids)}): "
                        f"{'their files carry' if n > 1 else 'its file carries'} {carried} of "
                        f"{label} but no {c.slo.statistic}; {hint}."
                    ),
                    evidence={"runs": n, "carried": carried, "slo": str(c.slo)},
                    confidence="as the tool's file reports it",
                )
            )
        if c.stand_in and c.judged_on is not None:
            out.append(
                Finding(
                    kind="slo_stand_in",
                    severity="info",
                    deployment=c.deployment,
                    sentence=(
                        f"{c.slo} is judged on {c.judged_on.statistic} {label} for "
                        f"{c.deployment}: its files carry no {c.slo.statistic}. "
                        f"{c.judged_on.statistic} is at least {c.slo.statistic}, so a pass is "
                        "certain and a breach may be overstated."
                    ),
                    evidence={"slo": str(c.slo), "judged_on": str(c.judged_on)},
                    confidence="an upper bound of the statistic asked for",
                )
            )
    return out


def zone_finding(z: OperatingZone) -> Finding:
    parts = []
    if z.knee is not None:
        parts.append(f"its latency knee ({z.knee:g}, where latency turns steep)")
    if z.slo_limit is not None:
        parts.append(f"its SLO limit (about {approx(z.load_mode, z.slo_limit):g})")
    if len(parts) == 2:
        basis = f"{z.headroom:.0%} of the lower of {' and '.join(parts)}"
    elif parts:
        basis = f"{z.headroom:.0%} of {parts[0]}"
    else:
        basis = f"{z.headroom:.0%} of the highest load measured, where no limit was reached"
    sentence = (
        f"Stable operating zone of {z.deployment}: up to "
        f"{format_load(z.load_mode, approx(z.load_mode, z.max_load))} per replica — {basis}."
    )
    return Finding(
        kind="operating_zone",
        severity="info",
        deployment=z.deployment,
        sentence=sentence,
        evidence={
            "max_load": z.max_load,
            "knee": z.knee,
            "slo_limit": z.slo_limit,
            "headroom": z.headroom,
            "bound_by": z.bound_by,
        },
        confidence="inherits the SLO limit's range; the knee is a measured level, not interpolated",
    )


def usl_finding(f: UslFit) -> Finding:
    peak = f.peak_concurrency
    if math.isinf(peak):
        where = "shows no coherency cost, so throughput would keep rising, ever more slowly"
    elif peak > f.max_load_measured:
        where = (
            f"would peak near concurrency {peak:.0f}, beyond the {f.max_load_measured:g} measured"
        )
    else:
        where = f"peaks near concurrency {peak:.0f}; past it, more load lowers throughput"
    sentence = (
        f"Throughput of {f.deployment} follows the Universal Scalability Law "
        f"(R² {f.r2:.3f} over {f.n_points} levels; contention σ = {f.sigma:.3f}, coherency "
        f"κ = {f.kappa:.2g}): it {where}."
    )
    return Finding(
        kind="scalability",
        severity="info",
        deployment=f.deployment,
        sentence=sentence,
        evidence={
            "lambda_rps": f.lam,
            "sigma": f.sigma,
            "kappa": f.kappa,
            "r2": f.r2,
            "peak_concurrency": None if math.isinf(peak) else peak,
        },
        confidence=f"least-squares fit to {f.n_points} levels; extrapolation past "
        f"{f.max_load_measured:g} is a model, not a measurement",
    )


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
        kind="cost",
        severity="info",
        deployment=c.deployment,
        sentence=sentence + ".",
        evidence={
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


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def drivers_findings(
    drivers: list[Drivers], boundaries: list[SloBoundary], levels: pl.DataFrame
) -> list[Finding]:
    """Why latency grew, at each deployment's first breach (else its heaviest level)."""
    binding = max_load_within_slos(boundaries)
    out = []
    by_key: dict[tuple[str, str], list[Drivers]] = {}
    for d in drivers:
        by_key.setdefault((d.deployment, d.load_mode), []).append(d)
    for key, ds in by_key.items():
        b = binding.get(key)
        at = b.first_breach.load if b and b.first_breach else max(d.load for d in ds)
        found = next((d for d in ds if d.load == at), None)
        # Growth within run-to-run noise has no cause worth naming (shares of a tiny sum
        # can read 255%).
        if found is None or found.growth_s <= DRIVERS_MIN_GROWTH * found.baseline_e2e_mean_s:
            continue
        d = found
        ranked = [(c, share) for c, share in d.ranked() if share >= 0.05]
        causes = ", ".join(f"{CAUSE_LABELS[c]} {share:.0%}" for c, share in ranked)
        p95 = levels.filter(
            (pl.col("deployment") == d.deployment) & (pl.col("load_value") == d.load)
        )["p95_e2e_s"]
        signals = []
        if d.kv_cache_peak is not None:
            signals.append(f"KV-cache usage peaked at {d.kv_cache_peak:.0%}")
        if d.preemptions:
            signals.append(f"{d.preemptions:,.0f} preemptions")
        if d.waiting_mean is not None and d.waiting_mean >= 0.5:
            signals.append(f"{d.waiting_mean:.1f} requests waiting on average")
        per_token = ""
        if (
            d.per_output_token_s is not None
            and d.per_output_token_ci is not None
            and d.per_output_token_ci[0] > 0  # an interval reaching zero says nothing
        ):
            lo, hi = d.per_output_token_ci
            per_token = (
                f" Request by request, each output token added {_ms(d.per_output_token_s)} "
                f"to E2E there (95% CI {_ms(lo)}–{_ms(hi)})"
                + (
                    f", against {_ms(d.baseline_per_output_token_s)} at "
                    f"{format_load(d.load_mode, d.baseline_load)}"
                    if d.baseline_per_output_token_s is not None
                    else ""
                )
                + "."
            )
        sentence = (
            f"At {format_load(d.load_mode, d.load)}, mean E2E of {d.deployment} grew from "
            f"{format_seconds(d.baseline_e2e_mean_s)} "
            f"(at {format_load(d.load_mode, d.baseline_load)}) to "
            f"{format_seconds(d.e2e_mean_s)}"
            + (f" (p95 {format_seconds(p95[0])})" if p95.len() and p95[0] is not None else "")
            + f": {causes} of the growth"
            + (f"; {', '.join(signals)}" if signals else "")
            + "."
            + per_token
        )
        out.append(
            Finding(
                kind="drivers",
                severity="info",
                deployment=d.deployment,
                sentence=sentence,
                evidence=dict[str, float | int | str | None](
                    {f"{c}_s": v for c, v in d.contributions_s.items()}
                )
                | {
                    "growth_s": d.growth_s,
                    "kv_cache_peak": d.kv_cache_peak,
                    "preemptions": d.preemptions,
                    "waiting_mean": d.waiting_mean,
                    "per_output_token_s": d.per_output_token_s,
                    "baseline_per_output_token_s": d.baseline_per_output_token_s,
                },
                confidence=f"exact split of the mean over {d.n} requests; prefill cost "
                "fitted at the lightest level"
                + (
                    "; per-token cost: least squares of E2E on input and output tokens"
                    if per_token
                    else ""
                ),
            )
        )
    return out


def whatif_findings(
    whatifs: list[WhatIf], slos: tuple[SLO, ...], levels: pl.DataFrame
) -> list[Finding]:
    """Per deployment, the changes that restore its breached SLOs, in one sentence."""
    out = []
    by_key: dict[tuple[str, float], list[WhatIf]] = {}
    for w in whatifs:
        by_key.setdefault((w.deployment, w.load), []).append(w)
    labels = {s.column: s for s in slos}
    for (deployment, load), ws in by_key.items():
        row = levels.filter((pl.col("deployment") == deployment) & (pl.col("load_value") == load))
        mean_out = None
        if row.height and row["n_ok"][0]:
            mean_out = row["output_throughput_tps"][0] / row["request_throughput_rps"][0]
        parts = []
        for w in ws:
            values = ", ".join(
                f"{labels[c].label} {format_seconds(v)}" for c, v in w.predicted.items()
            )
            parts.append(f"{describe(w, mean_out)} gives {values}")
        sentence = (
            f"To meet every SLO at {format_load(ws[0].load_mode, load)} on {deployment}: "
            + "; or ".join(parts)
            + " (predicted)."
        )
        out.append(
            Finding(
                kind="whatif",
                severity="info",
                deployment=deployment,
                sentence=sentence,
                evidence={f"{w.change}": w.value for w in ws},
                confidence="; ".join(f"{w.change}: {w.basis}" for w in ws),
            )
        )
    return out


def collapse_finding(c: Collapse) -> Finding:
    sentence = (
        f"{c.deployment} collapses past {format_load(c.load_mode, c.from_load)}: at "
        f"{c.to_load:g} it completes {c.to_rps:.2f} req/s instead of {c.from_rps:.2f} "
        f"({c.to_rps / c.from_rps - 1:.0%}) while p95 E2E rises from "
        f"{format_seconds(c.from_p95_s)} to {format_seconds(c.to_p95_s)}."
    )
    return Finding(
        kind="collapse",
        severity="critical",
        deployment=c.deployment,
        sentence=sentence,
        evidence={
            "from_load": c.from_load,
            "to_load": c.to_load,
            "from_rps": c.from_rps,
            "to_rps": c.to_rps,
        },
        confidence="throughput counted over each whole run",
    )


def rate_saturation_finding(r: RateSaturation) -> Finding:
    kept = (
        f"; it kept up at {r.last_kept_up_rps:g} req/s"
        if r.last_kept_up_rps is not None
        else "; it kept up with none of the offered rates"
    )
    sentence = (
        f"At {r.offered_rps:g} req/s offered, {r.deployment} completed only "
        f"{r.achieved_rps:.2f} req/s ({r.achieved_rps / r.offered_rps:.0%}): its queue grows "
        f"for as long as that load lasts{kept}."
    )
    return Finding(
        kind="rate_saturation",
        severity="critical",
        deployment=r.deployment,
        sentence=sentence,
        evidence={
            "offered_rps": r.offered_rps,
            "achieved_rps": r.achieved_rps,
            "last_kept_up_rps": r.last_kept_up_rps,
        },
        confidence="completed requests per second of sending (the run's duration less one "
        "request time at the lightest rate); open-loop arrivals, 2/√n tolerance",
    )


def build_findings(
    levels: pl.DataFrame,
    boundaries: list[SloBoundary],
    plateaus: list[Plateau],
    slos: tuple[SLO, ...],
    usl: list[UslFit] = (),  # type: ignore[assignment]
    zones: list[OperatingZone] = (),  # type: ignore[assignment]
    costs: list[Cost] = (),  # type: ignore[assignment]
    drivers: list[Drivers] = (),  # type: ignore[assignment]
    whatifs: list[WhatIf] = (),  # type: ignore[assignment]
    coverage: list[SloCoverage] = (),  # type: ignore[assignment]
) -> list[Finding]:
    """All findings, in the order of Kind: capacity first, caveats last."""
    found: list[Finding] = [
        capacity_finding(b, slos) for b in max_load_within_slos(boundaries).values()
    ]
    found += [zone_finding(z) for z in zones]
    found += [cost_finding(c) for c in costs]
    found += drivers_findings(drivers, boundaries, levels)
    found += whatif_findings(whatifs, slos, levels)
    found += [usl_finding(f) for f in usl if f.r2 >= 0.9]
    found += [f for b in boundaries if (f := breach_finding(b)) is not None]
    found += [plateau_finding(p) for p in plateaus]
    found += [collapse_finding(c) for c in collapse(levels)]
    found += [rate_saturation_finding(r) for r in rate_saturation(levels)]
    found += error_findings(levels)
    found += littles_law_findings(levels)
    found += sample_size_findings(levels, slos)
    found += summary_only_findings(levels)
    found += coverage_findings(coverage, levels)
    kinds = list(Kind.__args__)  # type: ignore[attr-defined]
    return sorted(found, key=lambda f: (kinds.index(f.kind), f.deployment or ""))
