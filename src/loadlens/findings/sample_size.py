"""Percentiles whose upper confidence bound the sample cannot give: read as indicative."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from loadlens.findings.format import where_levels
from loadlens.findings.model import Finding

KIND = "sample_size"
SECTION = "notes"
ORDER = 240


def needed(q: float, confidence: float) -> int:
    """The fewest samples with an order statistic above the q-quantile at `confidence`:
    the largest sample's chance to lie below it, q^n, must fall under (1 - confidence)/2."""
    return math.ceil(math.log((1 - confidence) / 2) / math.log(q))


def find(a: Any) -> list[Finding]:
    levels, conf = a.levels, a.confidence
    label_conf = f"{conf * 100:g}%"
    out = []
    wanted = {(s.statistic, s.metric) for s in a.slos if s.quantile} | {("p99", "e2e_s")}
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
            n_min, n_max = int(thin[n_col].min()), int(thin[n_col].max())
            where = where_levels(
                thin.height, group.height, thin["load_mode"][0], thin["load_value"].to_list()
            )
            n_text = f"{n_min:,}" if n_min == n_max else f"{n_min:,}–{n_max:,}"
            above = n_min * (1 - q)
            per = "" if group.height == 1 else " per level"
            sentence = (
                f"{label} of {deployment} rests on {n_text} samples{per} {where}, "
                + (f"only about {above:.0f}" if above >= 1 else "fewer than one")
                + f" above the percentile: too few for a {label_conf} upper bound, so read it "
                "as indicative."
            )
            out.append(
                Finding(
                    kind=KIND,
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
                        f"a {label_conf} upper bound on {stat} needs at least "
                        f"{needed(q, conf)} samples"
                    ),
                )
            )
    return out
