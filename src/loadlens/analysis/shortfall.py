"""Requested load vs delivered load: did the load generator send what was asked?

A level is labelled by the load the tool was asked for; what reached the server can be
less, and then nothing measured at that level says how the server behaves at the asked
load. Per level this module sets the requested load beside the delivered one, with the
tolerance it is judged against, and classifies:

- ``client_shortfall``: the client sent less than asked.
  Closed loop (concurrency c): fewer requests than c (n < c: at most n were ever in
  flight — counted, no noise), or a mean in flight below c by more than the run's own
  start and drain explain. The mean in flight is Little's law, L = X·W̄ (exact over a
  window holding every request whole). With send times it is taken over the send window
  (first to last send), where a closed-loop client holds c outstanding; without them, a
  run's drain can leave slots idle for at most its longest request, W_max, so the floor is
  1 − W_max/T (less r/2T for a ramp of r seconds the tool records). Failed requests hold
  slots too: with failures, L counts their time where every row records it (else the
  level is unknown: a timeout may have held its slot for long). A 5%
  margin (`CLOSED_LOOP_TOL`) covers the tools' differing run windows (setup, teardown,
  the client's turnaround between a completion and the next send).
  Open loop (rate λ): the send rate — the tool's own achieved rate (inference-perf), else
  (n−1)/(last send − first send) — below λ by more than Poisson noise. The count of n
  Poisson arrivals in a window has sd √n, so the rate's relative sd is 1/√n and 2/√n is a
  ~95% band; it is lenient for a constant schedule, whose noise is smaller. A
  shortfall must also exceed 5% (`MATERIAL`), the share below which no capacity claim
  changes (and saturation.py's KEEP_UP). A cap of M in flight that the tool records
  bounds the send rate by M/W̄ (Little's law with L ≤ M).
- ``server_saturation``: sent as asked (verified as above), completed less: the served
  rate of saturation.py (`served_rate`, drain-corrected) below λ by more than
  max(5%, 2/√n). Only open-loop levels: a closed-loop server cannot make the client
  hold fewer requests.
- ``ok``: the delivered load is within its tolerance of the requested one.
- ``unknown``: the files do not say enough (no send times nor achieved rate; no longest
  request to size the drain; a run with no requested load to compare with).

Latency that leaves out the client's wait: tools time a request from its actual send, so
a schedule running behind makes latency optimistic. With send times, the (i+1)-th send at
t_i (the run's clock starts with its schedule) is behind a Poisson schedule at λ with
p = P(Poisson(λ t_i) ≤ i), bounded by Chernoff, exp(−μ + i + i·ln(μ/i)) with μ = λ t_i;
the client is behind when that bound falls below 0.05/n anywhere (Bonferroni over the n
sends). The excluded wait of send i is t_i − (i+1)/λ (exact for a constant schedule, the
expectation under Poisson). inference-perf writes the delay itself (`schedule_delay_s`).
The latency is flagged optimistic when the mean wait left out is at least 5%
(`WAIT_SHARE`) of the mean TTFT (mean E2E where TTFT is not recorded).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from loadlens.analysis.saturation import KEEP_UP, RATE_MIN_REQUESTS, served_rate
from loadlens.trace import stored_object

Status = Literal["client_shortfall", "server_saturation", "ok", "unknown"]

MATERIAL = 0.05  # a shortfall under 5% changes no capacity claim (saturation.KEEP_UP)
CLOSED_LOOP_TOL = 0.05  # run-window definitions and client turnaround in a closed loop
ACHIEVED_RATIO_MIN = 0.8  # below it a closed loop's start/drain is worth a note
WAIT_SHARE = 0.05  # excluded client wait worth flagging, as a share of mean TTFT
SCHEDULE_ALPHA = 0.05  # family-wise level of the schedule-lag test (Bonferroni over sends)


@dataclass(frozen=True)
class Shortfall:
    """One level's requested vs delivered load, and who fell short if anyone did."""

    run_id: str
    deployment: str
    load_mode: str
    requested: float | None  # the asked concurrency or req/s
    delivered: float | None  # mean in flight (concurrency) or send rate (rate)
    delivered_max: float | None  # most that could be in flight: the requests sent (n < c)
    tolerance: float | None  # relative shortfall the noise or run window explains
    status: Status
    cause: str  # too_few_requests | client_pacing | send_rate | tool_rate |
    # concurrency_cap | sends_unrecorded | drain_unknown | failures_untimed |
    # no_latency | no_requested_load | ""
    basis: str  # how `delivered` was measured (see DELIVERED_BASIS)
    n_requests: int | None  # requests sent (or completed, see `n_from_completed`)
    n_from_completed: bool  # n is the completed count: the file records no failures
    mean_in_flight: float | None  # Little's law over the whole run (successes)
    throughput_rps: float | None  # completed requests per second
    mean_latency_s: float | None  # mean E2E of successful requests
    served_rps: float | None  # open loop: completions per second of sending
    longest_s: float | None  # the longest request (the drain's bound), if recorded
    duration_s: float | None
    drain_floor: float | None  # lowest in-flight share the start/drain alone allows
    cap: float | None  # a max-concurrency cap the tool records on an open loop
    latency_excludes_wait: bool  # latency measured from a late send: optimistic
    schedule_delay_s: float | None  # mean client-side wait the latency leaves out
    max_schedule_delay_s: float | None  # the worst single send's wait

    @property
    def ratio(self) -> float | None:
        if self.requested and self.delivered is not None:
            return self.delivered / self.requested
        return None

    @property
    def drain_note(self) -> bool:
        """A closed loop that held on average under 80% of its concurrency, which its own
        start and drain explain (or may explain): a qualification, not a shortfall."""
        return (
            self.status in ("ok", "unknown")
            and self.load_mode == "concurrency"
            and self.requested is not None
            and self.mean_in_flight is not None
            and self.mean_in_flight < ACHIEVED_RATIO_MIN * self.requested
        )


DELIVERED_BASIS = {
    "request_count": "the count of requests sent (at most that many in flight)",
    "littles_law": "Little's law over the run (completed req/s × mean E2E)",
    "littles_law_all": "Little's law over the run, failed requests' time included",
    "send_window": "requests in flight while the client was sending, from send times",
    "send_times": "(n−1) / (last send − first send)",
    "tool_achieved_rate": "the tool's own achieved rate",
    "concurrency_cap": "Little's law with the in-flight cap (cap / mean E2E)",
    "served_rate": "completions per second of sending (the client sent at least that)",
    "": "not measured",
}


def _workload(runs: pl.DataFrame) -> dict[str, dict[str, Any]]:
    if "workload" not in runs.columns:
        return {}
    return {
        run_id: stored_object(text)
        for run_id, text in zip(runs["run_id"], runs["workload"], strict=True)
    }


def _stat(run_stats: pl.DataFrame, metric: str, statistic: str) -> dict[str, float]:
    rows = run_stats.filter((pl.col("metric") == metric) & (pl.col("statistic") == statistic))
    return dict(zip(rows["run_id"], rows["value"], strict=True))


def _request_facts(requests: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per run: longest request, and (with send times) the send rate and window."""
    if requests.is_empty():
        return {}
    per_run = requests.group_by("run_id").agg(
        longest_s=pl.col("e2e_s").max(),
        n_rows=pl.len(),
        n_starts=pl.col("start_s").is_not_null().sum(),
        first_s=pl.col("start_s").min(),
        last_s=pl.col("start_s").max(),
        all_timed=pl.col("e2e_s").is_not_null().all(),
        sum_e2e_s=pl.col("e2e_s").sum(),
    )
    return {r["run_id"]: r for r in per_run.iter_rows(named=True)}


def _send_window_in_flight(rows: pl.DataFrame, first: float, last: float) -> float | None:
    """Mean count of requests in flight between the first and the last send."""
    if last <= first:
        return None
    overlap = (
        pl.min_horizontal(pl.col("start_s") + pl.col("e2e_s"), pl.lit(last))
        - pl.max_horizontal(pl.col("start_s"), pl.lit(first))
    ).clip(lower_bound=0.0)
    area = rows.select(overlap.sum()).item()
    return float(area) / (last - first)


def schedule_lag(starts: list[float], rate: float) -> tuple[bool, float, float]:
    """(behind beyond Poisson noise, mean wait, worst wait) of sorted send offsets against
    a schedule at `rate` starting at 0 (see the module docstring for the test)."""
    n = len(starts)
    threshold = math.log(SCHEDULE_ALPHA / n)
    behind = False
    waits = []
    for i, t in enumerate(starts):
        mu = rate * t
        if mu > i and not behind:
            log_p = -mu + i + (i * math.log(mu / i) if i else 0.0)
            behind = log_p < threshold
        waits.append(max(0.0, t - (i + 1) / rate))
    return behind, sum(waits) / n, max(waits)


def shortfalls(
    levels: pl.DataFrame,
    runs: pl.DataFrame,
    requests: pl.DataFrame,
    run_stats: pl.DataFrame,
) -> list[Shortfall]:
    """One `Shortfall` per level (row of `levels`), in the levels' order."""
    workloads = _workload(runs)
    facts = _request_facts(requests)
    achieved = _stat(run_stats, "achieved_rate_rps", "value")
    delay_mean = _stat(run_stats, "schedule_delay_s", "mean")
    delay_max = _stat(run_stats, "schedule_delay_s", "max")
    longest_stat = _stat(run_stats, "e2e_s", "max")
    # saturation.rate_saturation's drain: the request time at each deployment's lightest rate
    drains: dict[str, float] = {}
    for row in levels.filter(pl.col("load_mode") == "rate").sort("load_value").to_dicts():
        drains.setdefault(row["deployment"], row.get("mean_e2e_s") or 0.0)
    out = []
    for row in levels.to_dicts():
        run_id = row["run_id"]
        fact = facts.get(run_id, {})
        longest = fact.get("longest_s") if fact else None
        if longest is None:
            longest = longest_stat.get(run_id)
        common: dict[str, Any] = dict(
            run_id=run_id,
            deployment=str(row["deployment"]),
            load_mode=str(row["load_mode"]),
            requested=row["load_value"],
            mean_in_flight=row.get("achieved_concurrency"),
            throughput_rps=row.get("request_throughput_rps"),
            mean_latency_s=row.get("mean_e2e_s"),
            longest_s=longest,
            duration_s=row.get("duration_s"),
        )
        if row["load_mode"] == "concurrency" and row["load_value"] is not None:
            found = _closed_loop(row, workloads.get(run_id, {}), fact, requests, common)
        elif row["load_mode"] == "rate" and row["load_value"] is not None:
            found = _open_loop(
                row,
                workloads.get(run_id, {}),
                fact,
                requests,
                achieved.get(run_id),
                (delay_mean.get(run_id), delay_max.get(run_id)),
                drains.get(row["deployment"], 0.0),
                common,
            )
        else:
            found = _done(
                common,
                _blank(),
                status="unknown",
                cause="no_requested_load",
                n_requests=row.get("n_requests"),
            )
        out.append(found)
    return out


def _done(common: dict[str, Any], fields: dict[str, Any], **last: Any) -> Shortfall:
    return Shortfall(**(common | fields | last))


def _blank() -> dict[str, Any]:
    return dict(
        delivered=None,
        delivered_max=None,
        tolerance=None,
        basis="",
        n_from_completed=False,
        served_rps=None,
        drain_floor=None,
        cap=None,
        latency_excludes_wait=False,
        schedule_delay_s=None,
        max_schedule_delay_s=None,
    )


def _closed_loop(
    row: dict[str, Any],
    workload: dict[str, Any],
    fact: dict[str, Any],
    requests: pl.DataFrame,
    common: dict[str, Any],
) -> Shortfall:
    c = float(row["load_value"])
    fields = _blank() | dict(tolerance=CLOSED_LOOP_TOL)
    n = row.get("n_requests")
    from_completed = False
    if n is None and isinstance(workload.get("completed"), int | float):
        # SGLang's summary counts completed requests only; with no failure recorded,
        # the completed count is the count sent.
        n, from_completed = int(workload["completed"]), True
    fields |= dict(n_requests=n, n_from_completed=from_completed)
    L = row.get("achieved_concurrency")
    if n is not None and n < c:
        return _done(
            common,
            fields | dict(delivered=L if L is not None else float(n), delivered_max=float(n)),
            status="client_shortfall",
            cause="too_few_requests",
            basis="request_count",
        )
    if L is None:  # no successful request: nothing was timed
        return _done(common, fields, status="unknown", cause="no_latency")
    T, longest = row.get("duration_s"), common["longest_s"]
    if row.get("n_errors") and T:
        # Failed requests hold slots too: count their time where every row records it;
        # a failure of unrecorded length (a timeout?) leaves the in-flight mean unknown.
        if not (fact and fact.get("all_timed")):
            return _done(
                common,
                fields | dict(delivered=L, basis="littles_law"),
                status="unknown",
                cause="failures_untimed",
            )
        L = fact["sum_e2e_s"] / T
        fields |= dict(basis="littles_law_all")
    if fact and fact.get("n_starts", 0) == fact.get("n_rows") and fact.get("all_timed"):
        rows = requests.filter(pl.col("run_id") == row["run_id"])
        steady = _send_window_in_flight(rows, fact["first_s"], fact["last_s"])
        if steady is not None:
            short = steady < c * (1 - CLOSED_LOOP_TOL)
            return _done(
                common,
                fields | dict(delivered=steady, basis="send_window"),
                status="client_shortfall" if short else "ok",
                cause="client_pacing" if short else "",
            )
    fields |= dict(delivered=L, basis=fields["basis"] or "littles_law")
    if c * (1 - CLOSED_LOOP_TOL) <= L:
        return _done(common, fields, status="ok", cause="")
    if longest is None or not T:
        return _done(common, fields, status="unknown", cause="drain_unknown")
    ramp = workload.get("concurrency_ramp_duration")
    ramp = float(ramp) if isinstance(ramp, int | float) else 0.0
    floor = max(0.0, 1 - longest / T - ramp / (2 * T))
    fields |= dict(drain_floor=floor)
    if c * (floor - CLOSED_LOOP_TOL) > L:
        return _done(common, fields, status="client_shortfall", cause="client_pacing")
    return _done(common, fields, status="ok", cause="")


def _open_loop(
    row: dict[str, Any],
    workload: dict[str, Any],
    fact: dict[str, Any],
    requests: pl.DataFrame,
    achieved: float | None,
    delays: tuple[float | None, float | None],
    drain: float,
    common: dict[str, Any],
) -> Shortfall:
    rate = float(row["load_value"])
    n = row.get("n_requests")
    fields = _blank() | dict(n_requests=n)
    tolerance = max(MATERIAL, 2 / math.sqrt(n)) if n and n > 1 else None
    fields |= dict(tolerance=tolerance)
    if row.get("request_throughput_rps") is not None:
        fields |= dict(served_rps=served_rate(row, drain))
    reference = row.get("mean_ttft_s") or row.get("mean_e2e_s")
    delivered, basis, cause = None, "", ""
    if achieved is not None:
        delivered, basis, cause = achieved, "tool_achieved_rate", "tool_rate"
        mean_delay, max_delay = delays
        if mean_delay is not None:
            fields |= dict(
                schedule_delay_s=max(0.0, mean_delay),
                max_schedule_delay_s=max_delay,
                latency_excludes_wait=bool(reference and mean_delay >= WAIT_SHARE * reference),
            )
    elif fact and fact.get("n_starts", 0) >= 2 and fact["last_s"] > fact["first_s"]:
        sends = fact["n_starts"]
        delivered = (sends - 1) / (fact["last_s"] - fact["first_s"])
        basis, cause = "send_times", "send_rate"
        tolerance = max(MATERIAL, 2 / math.sqrt(sends - 1))
        starts = (
            requests.filter((pl.col("run_id") == row["run_id"]) & pl.col("start_s").is_not_null())
            .sort("start_s")["start_s"]
            .to_list()
        )
        behind, mean_wait, worst = schedule_lag(starts, rate)
        if behind:
            fields |= dict(
                schedule_delay_s=mean_wait,
                max_schedule_delay_s=worst,
                latency_excludes_wait=bool(reference and mean_wait >= WAIT_SHARE * reference),
            )
    cap = workload.get("max_concurrency")
    mean_e2e = row.get("mean_e2e_s")
    if isinstance(cap, int | float) and mean_e2e:
        fields |= dict(cap=float(cap))
        bound = float(cap) / mean_e2e
        if delivered is None and tolerance is not None and bound < rate * (1 - tolerance):
            delivered, basis, cause = bound, "concurrency_cap", "concurrency_cap"
    fields |= dict(tolerance=tolerance, delivered=delivered, basis=basis)
    if tolerance is None:
        return _done(common, fields, status="unknown", cause="sends_unrecorded")
    if delivered is not None and delivered < rate * (1 - tolerance):
        return _done(common, fields, status="client_shortfall", cause=cause)
    served = fields["served_rps"]
    keep_up = min(KEEP_UP, 1 - 2 / math.sqrt(n)) if n else KEEP_UP
    if served is not None and n is not None and n >= RATE_MIN_REQUESTS and served < keep_up * rate:
        if delivered is None:
            return _done(common, fields, status="unknown", cause="sends_unrecorded")
        return _done(common, fields, status="server_saturation", cause="")
    if delivered is None:
        if served is None or served < rate * (1 - tolerance):
            return _done(common, fields, status="unknown", cause="sends_unrecorded")
        # Completions per second of sending bound the send rate from below.
        fields |= dict(delivered=served, basis="served_rate")
    return _done(common, fields, status="ok", cause="")


def delivered_load(
    levels: pl.DataFrame,
    runs: pl.DataFrame,
    requests: pl.DataFrame,
    run_stats: pl.DataFrame,
) -> pl.DataFrame:
    """The `shortfalls` as a frame, one row per run_id, to join onto the level table:
    requested_load, delivered_load, delivered_max, shortfall_status, shortfall_cause,
    shortfall_tolerance, delivered_basis, latency_excludes_wait, schedule_delay_s."""
    found = shortfalls(levels, runs, requests, run_stats)
    return pl.DataFrame(
        [
            {
                "run_id": s.run_id,
                "requested_load": s.requested,
                "delivered_load": s.delivered,
                "delivered_max": s.delivered_max,
                "shortfall_status": s.status,
                "shortfall_cause": s.cause,
                "shortfall_tolerance": s.tolerance,
                "delivered_basis": s.basis,
                "latency_excludes_wait": s.latency_excludes_wait,
                "schedule_delay_s": s.schedule_delay_s,
            }
            for s in found
        ],
        schema={
            "run_id": pl.String,
            "requested_load": pl.Float64,
            "delivered_load": pl.Float64,
            "delivered_max": pl.Float64,
            "shortfall_status": pl.String,
            "shortfall_cause": pl.String,
            "shortfall_tolerance": pl.Float64,
            "delivered_basis": pl.String,
            "latency_excludes_wait": pl.Boolean,
            "schedule_delay_s": pl.Float64,
        },
    )


def client_disturbed(runs: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per run the loadlens runner marked disturbed (its own send or event-loop lag not
    small against what it measured, or its process saturated; runner/selfcheck.py): the
    self-measurement it stored with the level. Other tools record none."""
    out: dict[str, dict[str, Any]] = {}
    for run_id, workload in zip(runs["run_id"], runs["workload"], strict=True):
        client = stored_object(workload).get("client")
        if isinstance(client, dict) and client.get("disturbed"):
            out[run_id] = client
    return out
