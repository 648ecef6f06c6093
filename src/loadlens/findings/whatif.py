"""What change restores the SLOs at the first breach: shorter outputs, shorter prompts,
more replicas — each predicted, with what it would cut."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from loadlens.analysis.whatif import WhatIf, describe
from loadlens.findings.format import format_load
from loadlens.findings.model import Finding

KIND = "whatif"
SECTION = "story"
ORDER = 50
AT_CAP = 0.9  # outputs at the length cap: then cutting outputs means lowering max_tokens
REASONING = 0.5  # reasoning tokens as a share of output: cutting outputs cuts thinking


def caveat(w: WhatIf) -> str:
    """What an output cut would really cut, where the workload says."""
    notes = []
    if w.at_cap_share is not None and w.at_cap_share >= AT_CAP:
        notes.append(
            f"{w.at_cap_share:.0%} of outputs ran to the length cap, so this means lowering "
            "max_tokens: answers would be cut short, not written shorter"
        )
    if w.reasoning_share is not None and w.reasoning_share >= REASONING:
        notes.append(
            f"{w.reasoning_share:.0%} of output tokens were reasoning, so shorter outputs "
            "mean less reasoning"
        )
    return f" ({'; '.join(notes)})" if notes else ""


def find(a: Any) -> list[Finding]:
    out = []
    by_key: dict[tuple[str, str, float], list[WhatIf]] = {}
    for w in a.whatifs:
        by_key.setdefault((w.deployment, w.load_mode, w.load), []).append(w)
    labels = {s.column: s for s in a.slos}
    for (deployment, mode, load), ws in by_key.items():
        row = a.levels.filter(
            (pl.col("deployment") == deployment)
            & (pl.col("load_mode") == mode)
            & (pl.col("load_value") == load)
        )
        mean_out = None
        if row.height and row["n_ok"][0] and row["request_throughput_rps"][0]:
            mean_out = row["output_throughput_tps"][0] / row["request_throughput_rps"][0]
        parts = []
        for w in ws:
            values = ", ".join(
                f"{labels[c].label} {labels[c].format(v)}" for c, v in w.predicted.items()
            )
            extra = caveat(w) if w.change == "output_scale" else ""
            parts.append(f"{describe(w, mean_out)} gives {values}{extra}")
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=deployment,
                sentence=(
                    f"To meet every latency SLO at {format_load(mode, load)} on {deployment}: "
                    + "; or ".join(parts)
                    + " (predicted)."
                ),
                evidence=dict[str, float | int | str | None]({w.change: w.value for w in ws})
                | {
                    "at_cap_share": next(
                        (w.at_cap_share for w in ws if w.change == "output_scale"), None
                    ),
                    "reasoning_share": next(
                        (w.reasoning_share for w in ws if w.change == "output_scale"), None
                    ),
                    "load": load,
                    "mean_output_tokens": mean_out,
                    **{
                        f"{w.change}_cut": 1 - w.value
                        for w in ws
                        if w.change in ("output_scale", "input_scale")
                    },
                    **{
                        f"{w.change}_mean_output_tokens": math.floor(mean_out * w.value)
                        for w in ws
                        if w.change == "output_scale" and mean_out
                    },
                    **{
                        f"{w.change}_predicted_{col}": v
                        for w in ws
                        for col, v in w.predicted.items()
                    },
                },
                confidence="; ".join(f"{w.change}: {w.basis}" for w in ws),
            )
        )
    return out
