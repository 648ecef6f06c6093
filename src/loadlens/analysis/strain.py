"""Strain before the SLO breaks: the first load that still meets every SLO but shows the
server starting to run out of room.

Per series (deployment and load mode), over the levels that meet every SLO judged, from
the lightest up, a level is *strained* when any of these holds:

- the waiting queue stays non-empty: requests waited for a slot in at least
  `WAITING_SHARE` of the server's samples (scraped signal `requests_waiting`);
- KV-cache usage peaked at `KV_HIGH` or more;
- the engine preempted requests (its preemption counter grew during the level);
- TPOT rose by `TPOT_RISE` or more over the lightest level (p50; decode steps shared by
  more sequences: continuous batching makes some rise normal, a doubling is not);
- latency became unpredictable: E2E p99/p50 at least `SPREAD_JUMP`× the lightest level's
  and at least `UNPREDICTABLE`.

The first strained level is the early warning, with the headroom its latency SLOs still
have there and what the next measured step up misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from loadlens.config import SLO

WAITING_SHARE = 0.5
KV_HIGH = 0.90
TPOT_RISE = 1.0
SPREAD_JUMP = 2.0
UNPREDICTABLE = 3.0


@dataclass(frozen=True)
class Strain:
    deployment: str
    load_mode: str
    load: float
    run_id: str
    # signal -> value: waiting_share, kv_cache_peak, preemptions, tpot_rise, spread_ratio
    signals: dict[str, float]
    headroom: float | None  # the least share of a latency SLO's threshold still unused
    tightest: str | None  # the SLO with that least headroom
    next_load: float | None = None  # the next level measured above, and what it misses
    next_missed: tuple[str, ...] = field(default_factory=tuple)


def server_strain(samples: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Per run: the share of samples with a non-empty waiting queue, the KV-cache peak and
    the preemptions during the level, where the server exposed them."""
    if samples.is_empty():
        return {}
    value, signal = pl.col("value"), pl.col("signal")
    per_run = samples.group_by("run_id").agg(
        waiting_share=(value.filter(signal == "requests_waiting") > 0).mean(),
        kv_cache_peak=value.filter(signal == "kv_cache_usage").max(),
        preemptions=value.filter(signal == "preemptions_total").max()
        - value.filter(signal == "preemptions_total").min(),
    )
    return {
        r["run_id"]: {k: v for k, v in r.items() if k != "run_id" and v is not None}
        for r in per_run.iter_rows(named=True)
    }


def early_warnings(
    levels: pl.DataFrame,
    samples: pl.DataFrame,
    spread_ratio: dict[str, float],
    missed: dict[str, tuple[str, ...]],
    slos: tuple[SLO, ...],
) -> list[Strain]:
    """The first strained level of each series that still meets every SLO judged."""
    server = server_strain(samples)
    out = []
    placed = levels.filter(pl.col("load_value").is_not_null()).sort("load_value")
    for (deployment, mode), group in placed.group_by(
        "deployment", "load_mode", maintain_order=True
    ):
        rows = group.to_dicts()
        if len(rows) < 2:
            continue
        base = rows[0]
        for i, row in enumerate(rows):
            if missed.get(row["run_id"]) != ():
                continue  # misses an SLO (or was not judged): past any early warning
            signals = _signals(row, base, server.get(row["run_id"], {}), spread_ratio)
            if not signals:
                continue
            headroom, tightest = _headroom(row, slos)
            above = next((r for r in rows[i + 1 :] if r["load_value"] > row["load_value"]), None)
            out.append(
                Strain(
                    str(deployment),
                    str(mode),
                    row["load_value"],
                    row["run_id"],
                    signals,
                    headroom,
                    tightest,
                    above["load_value"] if above else None,
                    missed.get(above["run_id"], ()) if above else (),
                )
            )
            break
    return out


def _signals(
    row: dict[str, Any],
    base: dict[str, Any],
    server: dict[str, float],
    spread_ratio: dict[str, float],
) -> dict[str, float]:
    found: dict[str, float] = {}
    if server.get("waiting_share", 0.0) >= WAITING_SHARE:
        found["waiting_share"] = server["waiting_share"]
    if server.get("kv_cache_peak", 0.0) >= KV_HIGH:
        found["kv_cache_peak"] = server["kv_cache_peak"]
    if server.get("preemptions", 0.0) > 0:
        found["preemptions"] = server["preemptions"]
    tpot, tpot0 = row.get("p50_tpot_s"), base.get("p50_tpot_s")
    if tpot is not None and tpot0 and row["run_id"] != base["run_id"]:
        rise = tpot / tpot0 - 1
        if rise >= TPOT_RISE:
            found["tpot_rise"] = rise
    ratio, ratio0 = spread_ratio.get(row["run_id"]), spread_ratio.get(base["run_id"])
    if ratio is not None and ratio0 and ratio >= UNPREDICTABLE and ratio >= SPREAD_JUMP * ratio0:
        found["spread_ratio"] = ratio
    return found


def _headroom(row: dict[str, Any], slos: tuple[SLO, ...]) -> tuple[float | None, str | None]:
    best: tuple[float, str] | None = None
    for slo in slos:
        value = row.get(slo.column)
        if not slo.is_latency or value is None or slo.threshold_s <= 0:
            continue
        left = 1 - value / slo.threshold_s
        if best is None or left < best[0]:
            best = (left, slo.label)
    return (best[0], best[1]) if best else (None, None)


SLOW_SHARE = 0.10  # requests slower than twice the median: a tail users notice


@dataclass(frozen=True)
class Unpredictable:
    """The first load of a series that meets every SLO but whose latency users can no
    longer predict: its spread jumped against the lightest load's."""

    deployment: str
    load_mode: str
    load: float
    run_id: str
    p99_over_p50: float | None
    base_load: float
    base_p99_over_p50: float | None
    slow_share: float | None
    stall_share: float | None


def unpredictable(
    levels: pl.DataFrame, spreads: dict[str, Any], missed: dict[str, tuple[str, ...]]
) -> list[Unpredictable]:
    """Per series, the first level meeting every SLO where E2E p99/p50 reaches
    UNPREDICTABLE and SPREAD_JUMP× the lightest load's, or where SLOW_SHARE of requests
    take over twice the median (against under half that share at the lightest load)."""
    out = []
    placed = levels.filter(pl.col("load_value").is_not_null()).sort("load_value")
    for (deployment, mode), group in placed.group_by(
        "deployment", "load_mode", maintain_order=True
    ):
        rows = [r for r in group.to_dicts() if r["run_id"] in spreads]
        if len(rows) < 2:
            continue
        base = spreads[rows[0]["run_id"]]
        for row in rows[1:]:
            if missed.get(row["run_id"]) != ():
                continue
            s = spreads[row["run_id"]]
            jumped = (
                s.p99_over_p50 is not None
                and base.p99_over_p50
                and s.p99_over_p50 >= UNPREDICTABLE
                and s.p99_over_p50 >= SPREAD_JUMP * base.p99_over_p50
            )
            tail = (
                s.slow_share is not None
                and s.slow_share >= SLOW_SHARE
                and (base.slow_share or 0.0) < SLOW_SHARE / 2
            )
            if jumped or tail:
                out.append(
                    Unpredictable(
                        str(deployment),
                        str(mode),
                        row["load_value"],
                        row["run_id"],
                        s.p99_over_p50,
                        rows[0]["load_value"],
                        base.p99_over_p50,
                        s.slow_share,
                        s.stall_share,
                    )
                )
                break
    return out
