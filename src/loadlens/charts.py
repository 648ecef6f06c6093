"""Charts as altair specs rendered to static SVG by vl-convert: no browser, no network."""

from __future__ import annotations

import altair as alt
import polars as pl
import vl_convert as vlc

from loadlens.analysis.axes import AxisSweep, shown_column
from loadlens.analysis.drivers import FIRST_TOKEN
from loadlens.analysis.saturation import UslFit
from loadlens.config import METRIC_LABELS, SLO

WIDTH, HEIGHT = 300, 210
LOAD_TITLES = {
    "concurrency": "Concurrency (requests in flight)",
    "rate": "Offered rate (requests/s)",
    "throughput": "Load",
    "unknown": "Load",
}
PALETTE = ["#1f4e79", "#c55a11", "#548235", "#7030a0", "#bf9000", "#2e75b6"]
FONT = "DejaVu Sans"


def to_svg(chart: alt.TopLevelMixin) -> str:
    """Render a chart to an SVG string, offline."""
    return vlc.vegalite_to_svg(chart.to_dict())


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure(font=FONT)
        .configure_axis(labelFontSize=11, titleFontSize=12, grid=True, gridColor="#e6e6e6")
        .configure_legend(labelFontSize=11, titleFontSize=11, orient="bottom")
        .configure_title(fontSize=13, anchor="start")
        .configure_view(stroke=None)
    )


def _load_title(levels: pl.DataFrame) -> str:
    modes = levels["load_mode"].unique().to_list()
    return LOAD_TITLES.get(modes[0], "Load") if len(modes) == 1 else "Load"


def _color(levels: pl.DataFrame) -> alt.Color:
    names = sorted(levels["deployment"].unique().to_list())
    return alt.Color(
        "deployment:N",
        title="Deployment",
        scale=alt.Scale(domain=names, range=PALETTE[: len(names)]),
    )


def slo_panel(levels: pl.DataFrame, slo: SLO) -> alt.LayerChart | alt.FacetChart:
    """One SLO's statistic vs. load per deployment, CI bars, and the SLO line."""
    col = slo.column
    data = levels.filter(pl.col("load_value").is_not_null() & pl.col(col).is_not_null()).select(
        "deployment",
        "load_value",
        value=pl.col(col),
        lo=pl.col(f"{col}_lo") if f"{col}_lo" in levels.columns else pl.lit(None),
        hi=pl.col(f"{col}_hi") if f"{col}_hi" in levels.columns else pl.lit(None),
    )
    # An unbounded CI is drawn to the point itself, not invented.
    rows = data.with_columns(
        lo=pl.coalesce("lo", "value"), hi=pl.coalesce("hi", "value")
    ).to_dicts()
    x = alt.X("load_value:Q", title=_load_title(levels), scale=alt.Scale(zero=True))
    y_title = f"{slo.label} latency (s)"
    base = alt.Chart(alt.Data(values=rows))
    lines = base.mark_line(point=True, strokeWidth=2).encode(
        x=x,
        y=alt.Y("value:Q", title=y_title),
        color=_color(levels),
        tooltip=["deployment:N", "load_value:Q", alt.Tooltip("value:Q", format=".3f")],
    )
    bars = base.mark_errorbar(ticks=True).encode(
        x=x, y=alt.Y("lo:Q", title=y_title), y2="hi:Q", color=_color(levels)
    )
    rule_data = alt.Data(values=[{"t": slo.threshold_s, "label": f"SLO {slo.threshold_s:g} s"}])
    rule = alt.Chart(rule_data).mark_rule(color="#c00000", strokeDash=[6, 4]).encode(y="t:Q")
    label = (
        alt.Chart(rule_data)
        .mark_text(align="left", dx=4, dy=-6, color="#c00000", fontSize=11)
        .encode(y="t:Q", x=alt.value(2), text="label:N")
    )
    return alt.layer(bars, lines, rule, label).properties(
        width=WIDTH, height=HEIGHT, title=f"{slo.label} vs. load (SLO {slo.threshold_s:g} s)"
    )


def slo_chart(levels: pl.DataFrame, slos: tuple[SLO, ...]) -> str:
    panels = [slo_panel(levels, s) for s in slos if s.column in levels.columns]
    return to_svg(_config(alt.hconcat(*panels).resolve_scale(y="independent")))


def throughput_chart(levels: pl.DataFrame, usl: list[UslFit] = ()) -> str:  # type: ignore[assignment]
    """Output tokens/s and completed requests/s vs. load; the USL fit dashed on the latter."""
    data = levels.filter(
        pl.col("load_value").is_not_null() & pl.col("output_throughput_tps").is_not_null()
    ).select("deployment", "load_value", "output_throughput_tps", "request_throughput_rps")
    base = alt.Chart(alt.Data(values=data.to_dicts()))
    x = alt.X("load_value:Q", title=_load_title(levels))
    tokens = (
        base.mark_line(point=True, strokeWidth=2)
        .encode(
            x=x, y=alt.Y("output_throughput_tps:Q", title="Output tokens/s"), color=_color(levels)
        )
        .properties(width=WIDTH, height=HEIGHT, title="Output throughput vs. load")
    )
    measured = base.mark_line(point=True, strokeWidth=2).encode(
        x=x,
        y=alt.Y("request_throughput_rps:Q", title="Completed requests/s"),
        color=_color(levels),
    )
    curve = [
        {"deployment": f.deployment, "load_value": n, "usl": f.throughput(n)}
        for f in usl
        for n in (f.max_load_measured * i / 60 for i in range(1, 61))
    ]
    layers: list[alt.Chart] = [measured]
    if curve:
        layers.append(
            alt.Chart(alt.Data(values=curve))
            .mark_line(strokeDash=[4, 3], strokeWidth=1.5, opacity=0.8)
            .encode(x=x, y="usl:Q", color=_color(levels))
        )
    title = "Request throughput vs. load" + (" (dashed: USL fit)" if curve else "")
    requests = alt.layer(*layers).properties(width=WIDTH, height=HEIGHT, title=title)
    return to_svg(_config(alt.hconcat(tokens, requests)))


def percentile_chart(levels: pl.DataFrame, metric: str) -> str:
    """p50/p90/p95/p99 of one metric vs. load, one panel per deployment."""
    stats = ["p50", "p90", "p95", "p99"]
    cols = [f"{s}_{metric}" for s in stats if f"{s}_{metric}" in levels.columns]
    data = (
        levels.filter(pl.col("load_value").is_not_null())
        .select("deployment", "load_value", *cols)
        .unpivot(index=["deployment", "load_value"], variable_name="percentile")
        .drop_nulls("value")
        .with_columns(
            percentile=pl.col("percentile").str.split("_").list.first(),
            value_ms=pl.col("value") * 1000,
        )
    )
    label = METRIC_LABELS[metric]
    chart = (
        alt.Chart(alt.Data(values=data.to_dicts()))
        .mark_line(point=True, strokeWidth=2)
        .encode(
            x=alt.X("load_value:Q", title=_load_title(levels)),
            y=alt.Y("value_ms:Q", title=f"{label} (ms)"),
            color=alt.Color(
                "percentile:N",
                title="Percentile",
                scale=alt.Scale(domain=stats, range=["#9dc3e6", "#2e75b6", "#1f4e79", "#c00000"]),
            ),
        )
        .properties(width=WIDTH, height=180)
        .facet(column=alt.Column("deployment:N", title=None, header=alt.Header(labelFontSize=12)))
        .properties(title=f"{label} percentiles vs. load")
    )
    return to_svg(_config(chart))


def drivers_chart(parts: pl.DataFrame) -> str:
    """Mean E2E per level stacked into the light-load first token, queueing, decode and
    decode contention."""
    order = [FIRST_TOKEN, "queueing", "decode", "decode contention"]
    data = parts.with_columns(
        seconds=pl.col("seconds").clip(lower_bound=0.0),  # noise can dip a part below zero
        order=pl.col("part").replace_strict({p: i for i, p in enumerate(order)}),
        load=pl.col("load_value").map_elements(lambda v: f"{v:g}", return_dtype=pl.String),
    )
    loads = [f"{v:g}" for v in sorted(parts["load_value"].unique().to_list())]
    chart = (
        alt.Chart(alt.Data(values=data.to_dicts()))
        .mark_bar()
        .encode(
            x=alt.X("load:O", title=_load_title(parts), sort=loads),
            y=alt.Y("sum(seconds):Q", title="Mean E2E latency (s)", stack="zero"),
            color=alt.Color(
                "part:N",
                title="Where the time goes",
                scale=alt.Scale(domain=order, range=["#9dc3e6", "#c00000", "#2e75b6", "#f4b183"]),
            ),
            order=alt.Order("order:Q"),
        )
        .properties(width=WIDTH, height=200)
        .facet(column=alt.Column("deployment:N", title=None, header=alt.Header(labelFontSize=12)))
        .properties(title="Mean E2E latency by component vs. load")
    )
    return to_svg(_config(chart))


def pareto_chart(points: pl.DataFrame) -> str:
    """$ per 1M output tokens against p95 E2E, every measured level; the frontier joined."""
    data = points.with_columns(
        label=pl.col("load_value").map_elements(lambda v: f"{v:g}", return_dtype=pl.String)
    )
    base = alt.Chart(alt.Data(values=data.to_dicts()))
    x = alt.X("p95_e2e_s:Q", title="p95 E2E latency (s)", scale=alt.Scale(zero=False))
    y = alt.Y(
        "usd_per_1m_output:Q", title="$ per 1M output tokens (log)", scale=alt.Scale(type="log")
    )
    dots = base.mark_point(filled=True, size=60).encode(x=x, y=y, color=_color(points))
    labels = base.mark_text(dx=8, dy=-6, fontSize=9, color="#444").encode(x=x, y=y, text="label:N")
    frontier = (
        base.transform_filter("datum.pareto")
        .mark_line(color="#444", strokeDash=[4, 3], interpolate="step-after")
        .encode(x=x, y=y)
    )
    chart = alt.layer(frontier, dots, labels).properties(
        width=2 * WIDTH,
        height=HEIGHT,
        title="Cost against latency, every measured level (labels: load; dashed: frontier)",
    )
    return to_svg(_config(chart))


def fleet_chart(rows: list[dict[str, object]]) -> str:
    """Monthly cost against users: each deployment's fleet (whole replicas) and the API."""
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_line(interpolate="step-after", strokeWidth=2)
        .encode(
            x=alt.X("users:Q", title="Users", scale=alt.Scale(type="log")),
            y=alt.Y("monthly_usd:Q", title="$ per month", scale=alt.Scale(type="log")),
            color=alt.Color("option:N", title="Option"),
        )
        .properties(width=2 * WIDTH, height=HEIGHT, title="Monthly cost by number of users")
    )
    return to_svg(_config(chart))


def sensitivity_chart(rows: list[dict[str, object]]) -> str:
    """$ per user per month under each scenario, per deployment."""
    chart = (
        alt.Chart(alt.Data(values=rows))
        .mark_bar()
        .encode(
            y=alt.Y("scenario:N", title=None, sort=None),
            x=alt.X("usd:Q", title="$ per user per month (at scale)"),
            color=alt.Color("deployment:N", title="Deployment", legend=None),
            row=alt.Row("deployment:N", title=None, header=alt.Header(labelFontSize=12)),
        )
        .properties(width=2 * WIDTH - 60, height=110, title="")
    )
    return to_svg(_config(chart))


AXIS_TITLES = {
    "input_tokens": "Input length (tokens, target)",
    "output_tokens": "Output length (tokens, target)",
}


def axis_chart(sweep: AxisSweep, slos: tuple[SLO, ...]) -> str:
    """TTFT and E2E (p95, or the statistic their SLO names) against the swept length at
    the sweep's one load, CI bars where the runs have them, each SLO dashed."""
    from loadlens.findings.format import format_load  # late: findings import their modules

    x = alt.X("value:Q", title=AXIS_TITLES[sweep.axis], scale=alt.Scale(zero=True))
    panels = []
    for metric in ("ttft_s", "e2e_s"):
        column, slo = shown_column(sweep.points, metric, slos)
        rows = [
            {
                "value": p.value,
                "series": p.series,
                "y": p.stat(column),
                # An unbounded CI is drawn to the point itself, not invented.
                "lo": p.stat(f"{column}_lo") or p.stat(column),
                "hi": p.stat(f"{column}_hi") or p.stat(column),
            }
            for p in sweep.points
            if p.stat(column) is not None
        ]
        label = f"{column.split('_')[0]} {METRIC_LABELS[metric]}"
        y_title = f"{label} (s)"
        base = alt.Chart(alt.Data(values=rows))
        layers: list[alt.Chart] = [
            base.mark_errorbar(ticks=True, color=PALETTE[0]).encode(
                x=x, y=alt.Y("lo:Q", title=y_title), y2="hi:Q"
            ),
            base.mark_line(point=True, strokeWidth=2, color=PALETTE[0]).encode(
                x=x,
                y=alt.Y("y:Q", title=y_title),
                tooltip=["series:N", "value:Q", alt.Tooltip("y:Q", format=".3f")],
            ),
        ]
        title = f"{label} vs. {sweep.axis.split('_')[0]} length"
        if slo is not None:
            rule = alt.Data(values=[{"t": slo.threshold_s, "label": f"SLO {slo.threshold_s:g} s"}])
            layers += [
                alt.Chart(rule).mark_rule(color="#c00000", strokeDash=[6, 4]).encode(y="t:Q"),
                alt.Chart(rule)
                .mark_text(align="left", dx=4, dy=-6, color="#c00000", fontSize=11)
                .encode(y="t:Q", x=alt.value(2), text="label:N"),
            ]
            title += f" (SLO {slo.threshold_s:g} s)"
        panels.append(alt.layer(*layers).properties(width=WIDTH, height=HEIGHT, title=title))
    chart = alt.hconcat(*panels).properties(
        title=f"{sweep.base_deployment} at {format_load(sweep.load_mode, sweep.load_value)}"
    )
    return to_svg(_config(chart.resolve_scale(y="independent")))


# -- a level over time (analysis/timeline.timeline frames) ---------------------------------
# (row title, {timeline column: series name}); a row is drawn where a level has its columns.
STORY_ROWS: tuple[tuple[str, dict[str, str]], ...] = (
    (
        "Requests",
        {
            "in_flight": "in flight (client)",
            "requests_running": "running (server)",
            "requests_waiting": "waiting (server)",
            "preemptions_total": "preempted so far",
        },
    ),
    ("Completions/s", {"completions_per_s": "completed/s"}),
    (
        "Latency (s)",
        {
            "p50_ttft_s": "p50 TTFT",
            "p95_ttft_s": "p95 TTFT",
            "p50_e2e_s": "p50 E2E",
            "p95_e2e_s": "p95 E2E",
        },
    ),
    ("KV cache (%)", {"kv_cache_usage": "KV-cache usage"}),
)
STORY_COLORS = {
    "in flight (client)": "#1f4e79",
    "running (server)": "#2e75b6",
    "waiting (server)": "#c00000",
    "preempted so far": "#7030a0",
    "completed/s": "#548235",
    "p50 TTFT": "#f4b183",
    "p95 TTFT": "#c55a11",
    "p50 E2E": "#9dc3e6",
    "p95 E2E": "#1f4e79",
    "KV-cache usage": "#bf9000",
}
# Small multiples: the latency users see and the queue behind it.
GRID_ROWS: tuple[tuple[str, dict[str, str]], ...] = (
    ("p95 latency (s)", {"p95_ttft_s": "p95 TTFT", "p95_e2e_s": "p95 E2E"}),
    (
        "Requests",
        {"in_flight": "in flight (client)", "requests_waiting": "waiting (server)"},
    ),
)


def _over_time(
    panels: list[tuple[str, pl.DataFrame]], measures: dict[str, str]
) -> list[dict[str, object]]:
    """Long rows (level, t, series, value) of the measures each level's frame has. Shown as
    read, but for units: a fraction as a percentage, a counter from the level's start."""
    rows: list[dict[str, object]] = []
    for label, frame in panels:
        for column, name in measures.items():
            if column not in frame.columns:
                continue
            values = frame[column].cast(pl.Float64)
            if column == "kv_cache_usage":
                values = values * 100
            elif column.endswith("_total"):  # a counter: what this level added
                first = values.drop_nulls().drop_nans()
                values = values - (first[0] if first.len() else 0.0)
            rows += [
                {"level": label, "t": t, "series": name, "value": v, "kind": "line"}
                for t, v in zip(frame["t_s"].to_list(), values.to_list(), strict=True)
                if v is not None and v == v
            ]
    return rows


def _time_grid(
    panels: list[tuple[str, pl.DataFrame]],
    rows_spec: tuple[tuple[str, dict[str, str]], ...],
    *,
    width: int,
    height: int,
    rules: dict[str, list[tuple[float, str]]] | None = None,
    x_title: str | None = "Seconds into the run",
    ticks: int = 4,
) -> alt.VConcatChart | None:
    """One column per level, one row per measure group; each row shares its y scale across
    the levels (a queue that grows stands out against one that does not), each level keeps
    its own clock."""
    labels = [label for label, _ in panels]
    charts = []
    drawn = [(t, m) for t, m in rows_spec if _over_time(panels, m)]
    for i, (title, measures) in enumerate(drawn):
        data = _over_time(panels, measures)
        names = [n for n in measures.values() if any(r["series"] == n for r in data)]
        for value, text in (rules or {}).get(title, []):
            data += [
                {"level": label, "value": value, "kind": "rule", "text": text} for label in labels
            ]
        base = alt.Chart(alt.Data(values=data))
        x = alt.X(
            "t:Q",
            title=x_title if i == len(drawn) - 1 else None,
            axis=alt.Axis(labels=i == len(drawn) - 1, tickCount=ticks, labelFlush=True),
        )
        lines = (
            base.transform_filter("datum.kind == 'line'")
            .mark_line(strokeWidth=1.6)
            .encode(
                x=x,
                y=alt.Y("value:Q", title=title, axis=alt.Axis(tickCount=3)),
                color=alt.Color(
                    "series:N",
                    title=None,
                    sort=names,
                    scale=alt.Scale(domain=names, range=[STORY_COLORS[n] for n in names]),
                    legend=alt.Legend(orient="right", labelFontSize=10, symbolSize=60),
                ),
            )
        )
        layers: list[alt.Chart] = [lines]
        if rules and rules.get(title):
            rule = base.transform_filter("datum.kind == 'rule'")
            layers += [
                rule.mark_rule(color="#c00000", strokeDash=[5, 4], strokeWidth=1).encode(
                    y="value:Q"
                ),
                rule.mark_text(align="left", dx=3, dy=-5, color="#c00000", fontSize=9).encode(
                    y="value:Q", x=alt.value(0), text="text:N"
                ),
            ]
        header = alt.Header(labels=i == 0, labelFontSize=11, labelFontWeight="bold", title=None)
        charts.append(
            alt.layer(*layers)
            .properties(width=width, height=height)
            .facet(
                column=alt.Column("level:N", sort=labels, header=header, title=None),
                spacing=10,
            )
            .resolve_scale(x="independent")
        )
    if not charts:
        return None
    return alt.vconcat(*charts, spacing=6).resolve_scale(color="independent")


def story_chart(
    panels: list[tuple[str, pl.DataFrame]], slos: tuple[SLO, ...] = (), kv_high: float = 0.9
) -> str:
    """Levels side by side over time: requests in flight, running, waiting and preempted;
    completions per second; windowed p50/p95 TTFT and E2E (their SLOs dashed); KV-cache
    usage (the strain threshold dashed). `panels`: (column title, timeline frame)."""
    rules = {
        "Latency (s)": [
            (s.threshold_s, f"SLO {s.label} {s.threshold_s:g} s")
            for s in slos
            if s.is_latency and s.metric in ("ttft_s", "e2e_s") and s.statistic == "p95"
        ],
        "KV cache (%)": [(kv_high * 100, f"{kv_high:.0%}")],
    }
    width = 250 if len(panels) > 1 else 420
    chart = _time_grid(panels, STORY_ROWS, width=width, height=70, rules=rules)
    return to_svg(_config(chart)) if chart is not None else ""


def story_grid(panels: list[tuple[str, pl.DataFrame]]) -> str:
    """Small multiples: every timed level of one series, p95 latency and the queue over
    time, with shared y scales."""
    n = max(1, len(panels))
    width = max(48, min(140, (500 - 10 * n) // n))
    chart = _time_grid(panels, GRID_ROWS, width=width, height=55, x_title=None, ticks=2)
    return to_svg(_config(chart)) if chart is not None else ""
