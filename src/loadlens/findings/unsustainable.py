"""A level whose latency kept growing through the run: the server falls behind that load,
and its percentiles say how long the test ran, not what users get."""

from __future__ import annotations

from typing import Any

from loadlens.analysis.timeline import SUSTAINED
from loadlens.config import format_seconds
from loadlens.findings.format import at_load, capitalised, ci_label
from loadlens.findings.model import Finding

KIND = "unsustainable"
SECTION = "story"
ORDER = 32

WHAT = {"ttft_s": "TTFT", "e2e_s": "E2E"}


def find(a: Any) -> list[Finding]:
    lowest = {
        (b.deployment, b.load_mode, b.first_breach.load)
        for b in a.boundaries
        if b.slo == SUSTAINED and b.status == "breached_at_lowest" and b.first_breach
    }
    out = []
    for r in a.runs.iter_rows(named=True):
        s = a.steadiness.get(r["run_id"])
        if s is None or s.status != "unsustainable":
            continue
        what = WHAT.get(s.metric or "", "latency")
        p = "< 0.001" if s.p_value < 0.001 else f"{s.p_value:.3f}"
        sentence = (
            f"{capitalised(at_load(r['load_mode'], r['load_value'], r.get('num_requests')))}, "
            f"latency of {r['deployment']} kept growing through the run: median {what} rose "
            f"from {format_seconds(s.first_s)} in its first window to "
            f"{format_seconds(s.last_s)} in its last, about {format_seconds(s.slope)} more "
            f"per second of run ({ci_label(a.confidence)} {format_seconds(s.slope_lo)}–"
            f"{format_seconds(s.slope_hi)}). The server falls behind this load: its "
            "percentiles say how long the test ran, not what users get, so the level meets "
            "no SLO."
        )
        critical = (r["deployment"], r["load_mode"], r["load_value"]) in lowest
        out.append(
            Finding(
                kind=KIND,
                severity="critical" if critical else "warning",
                deployment=r["deployment"],
                sentence=sentence,
                evidence={
                    "metric": s.metric,
                    "first_window_median_s": s.first_s,
                    "last_window_median_s": s.last_s,
                    "slope_s_per_s": s.slope,
                    "slope_lo": s.slope_lo,
                    "slope_hi": s.slope_hi,
                    "rise_s": s.rise_s,
                    "median_s": s.median_s,
                    "p_value": s.p_value,
                    "windows": s.windows,
                },
                confidence=(
                    f"Mann-Kendall trend test on {s.windows} windows' median {what}, one-sided "
                    f"p {p}; the rise over the run is {_share(s.rise_s / s.median_s)} the "
                    "median (unsustainable from half of it)"
                    if s.median_s
                    else f"Mann-Kendall p {p}"
                ),
            )
        )
    return out


def _share(ratio: float) -> str:
    """`1.2×` or `64% of`: never a percentage over 100."""
    return f"{ratio:.1f}×" if ratio >= 1 else f"{ratio:.0%} of"
