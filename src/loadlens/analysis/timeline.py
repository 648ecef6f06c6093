"""Each load level as a story over time, not only its percentiles.

Built on per-request start offsets (and the server's samples where they were scraped):

- **steadiness**: a level is *sustainable* when its latency has no upward trend over the
  run, *unsustainable* when it keeps growing (an open-loop rate above capacity: the queue,
  and every later request's wait, grow for as long as the test runs, so its p95 says how
  long the test ran, not how the server behaves). The test: the level is cut into
  `WINDOWS` windows by start time; Mann-Kendall on the windows' median latency (TTFT where
  recorded, the wait shows there first; else E2E), one-sided, p < `TREND_P`; and the rise
  must matter: Sen's slope over the run at least `MATERIAL_RISE` of the level's median.
  Sen's slope comes with its confidence interval (the order statistics of the pairwise
  slopes at the Mann-Kendall variance's normal quantiles).
- **cold start**: the first requests of a level far slower than the rest (a model's first
  compile, empty caches): the longest run of leading requests (by start, at most
  `COLD_MAX_SHARE` of the level) each slower than `COLD_FACTOR`× the rest's median and than
  the rest's p99.
- **spread** (predictability): p99/p50 of E2E, its coefficient of variation, the share of
  requests slower than 2× the median, and ITL stalls (gaps above `STALL_FACTOR`× the
  level's median gap).
- **timeline**: per window, requests in flight (time-averaged), completions per second,
  p50/p95 TTFT and E2E, beside the server's signals on the same clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import polars as pl

from loadlens.analysis.saturation import Level, SloBoundary
from loadlens.config import SLO
from loadlens.errors import ConfigError

WINDOWS = 12  # windows per level for the trend test and the timeline
MIN_REQUESTS = 24  # fewer requests with start times: the level's trend is not judged
TREND_P = 0.01  # one-sided Mann-Kendall p-value below which latency is rising
MATERIAL_RISE = 0.5  # Sen's slope x run length, as a share of the median, that matters
COLD_FACTOR = 3.0
COLD_MAX_SHARE = 0.2
STALL_FACTOR = 5.0
SLOW_FACTOR = 2.0

Status = Literal["sustainable", "unsustainable", "unknown"]
# Not an objective anyone sets: the one every level must meet for its percentiles to mean
# anything. Judged only where requests carry start times.
SUSTAINED = SLO(metric="latency_rise", statistic="share", threshold_s=MATERIAL_RISE)


@dataclass(frozen=True)
class Steadiness:
    run_id: str
    status: Status
    metric: str | None  # "ttft_s" or "e2e_s": what was tested
    windows: int
    p_value: float | None
    slope: float | None  # Sen's slope: seconds of latency per second of run
    slope_lo: float | None
    slope_hi: float | None
    rise_s: float | None  # slope x the run's length
    median_s: float | None
    first_s: float | None  # median latency in the first and last windows
    last_s: float | None
    reason: str | None = None  # why "unknown"


@dataclass(frozen=True)
class ColdStart:
    run_id: str
    metric: str
    n_slow: int
    n_rest: int
    slow_lo: float
    slow_hi: float
    rest_lo: float
    rest_hi: float
    rest_median: float
    # the slow ones are a closed-loop level's first wave: its N streams' first requests,
    # sent together as the level began and queued behind each other's prefill
    first_wave: bool = False


@dataclass(frozen=True)
class Spread:
    run_id: str
    p99_over_p50: float | None
    cv: float | None
    slow_share: float | None  # E2E above SLOW_FACTOR x the median
    stall_share: float | None  # ITL gaps above STALL_FACTOR x the median gap


def mann_kendall(values: list[float]) -> tuple[float, float]:
    """(S, one-sided p-value for an upward trend) of a series, with the tie correction."""
    n = len(values)
    s = 0
    for i in range(n - 1):
        for j in range(i + 1, n):
            d = values[j] - values[i]
            s += (d > 0) - (d < 0)
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    ties = sum(t * (t - 1) * (2 * t + 5) for t in counts.values() if t > 1)
    var = (n * (n - 1) * (2 * n + 5) - ties) / 18
    if var <= 0:
        return float(s), 1.0
    z = (s - 1) / math.sqrt(var) if s > 0 else (s + 1) / math.sqrt(var) if s < 0 else 0.0
    return float(s), 1 - NormalDist().cdf(z)


def sen_slope(
    xs: list[float], ys: list[float], confidence: float = 0.95
) -> tuple[float, float, float]:
    """Sen's slope (median of pairwise slopes) and its confidence interval."""
    slopes = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs) - 1)
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    )
    n = len(xs)
    median = (
        slopes[len(slopes) // 2]
        if len(slopes) % 2
        else ((slopes[len(slopes) // 2 - 1] + slopes[len(slopes) // 2]) / 2)
    )
    c = NormalDist().inv_cdf(1 - (1 - confidence) / 2) * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    # ranks M1 = (N - C)/2 and M2 + 1 = (N + C)/2 + 1 (1-based), rounded outwards
    lo = max(0, min(len(slopes) - 1, math.floor((len(slopes) - c) / 2) - 1))
    hi = max(0, min(len(slopes) - 1, math.ceil((len(slopes) + c) / 2)))
    return median, slopes[lo], slopes[hi]


def _timed(requests: pl.DataFrame) -> pl.DataFrame:
    """Successful requests with a start time, by run and start."""
    return requests.filter(
        (pl.col("status") == "ok") & pl.col("start_s").is_not_null() & pl.col("e2e_s").is_not_null()
    ).sort("run_id", "start_s")


def _windowed(rows: pl.DataFrame, metric: str, windows: int) -> pl.DataFrame:
    t0, t1 = rows["start_s"].min(), rows["start_s"].max()
    width = (t1 - t0) / windows if t1 > t0 else 1.0  # type: ignore[operator]
    return (
        rows.with_columns(
            window=((pl.col("start_s") - t0) / width).floor().clip(0, windows - 1).cast(pl.Int32)
        )
        .group_by("window")
        .agg(
            t=pl.col("start_s").median(),
            median=pl.col(metric).median(),
            n=pl.len(),
        )
        .sort("window")
    )


def steadiness(
    requests: pl.DataFrame,
    cold: dict[str, ColdStart] | None = None,
    windows: int = WINDOWS,
    confidence: float = 0.95,
) -> list[Steadiness]:
    """Per run with start times: sustainable, unsustainable, or unknown (and why). TTFT
    (the wait for a slot shows there) and E2E (decode slowing as the cache fills shows
    there) are each tested; either rising makes the level unsustainable, and the one that
    rose most is reported. A cold start, where found, is left out of the test: it is a
    transient, not a trend."""
    out = []
    for (run_id,), rows in _timed(requests).group_by("run_id", maintain_order=True):
        run_id = str(run_id)
        if cold and run_id in cold:
            rows = rows.slice(cold[run_id].n_slow)
        if rows.height < MIN_REQUESTS:
            out.append(_unknown(run_id, f"{rows.height} timed requests (at least {MIN_REQUESTS})"))
            continue
        metrics = [m for m in ("ttft_s", "e2e_s") if rows[m].null_count() == 0]
        tested = [t for m in metrics if (t := _trend(run_id, rows, m, windows, confidence))]
        if not tested:
            out.append(_unknown(run_id, "the requests' start times span too few windows"))
            continue
        rising = [t for t in tested if t.status == "unsustainable"]
        out.append(
            max(rising, key=lambda t: (t.rise_s or 0.0) / (t.median_s or 1.0))
            if rising
            else tested[0]
        )
    return out


def _trend(
    run_id: str, rows: pl.DataFrame, metric: str, windows: int, confidence: float
) -> Steadiness | None:
    w = _windowed(rows, metric, windows)
    if w.height < 4:
        return None
    ts, medians = w["t"].to_list(), w["median"].to_list()
    _, p = mann_kendall(medians)
    slope, lo, hi = sen_slope(ts, medians, confidence)
    span = float(rows["start_s"].max()) - float(rows["start_s"].min())  # type: ignore[arg-type]
    median = float(rows[metric].median())  # type: ignore[arg-type]
    rise = slope * span
    rising = p < TREND_P and median > 0 and rise >= MATERIAL_RISE * median
    return Steadiness(
        run_id,
        "unsustainable" if rising else "sustainable",
        metric,
        w.height,
        p,
        slope,
        lo,
        hi,
        rise,
        median,
        medians[0],
        medians[-1],
    )


def _unknown(run_id: str, reason: str) -> Steadiness:
    return Steadiness(run_id, "unknown", None, 0, None, None, None, None, None, None, None, None,
                      reason)  # fmt: skip


def cold_starts(
    requests: pl.DataFrame, streams: dict[str, float] | None = None
) -> dict[str, ColdStart]:
    """Per run whose first requests were far slower than the rest: what they waited.
    `streams` (run -> concurrency of a closed-loop level) tells a first wave (no more slow
    requests than streams) from a cold start."""
    out = {}
    for (run_id,), rows in _timed(requests).group_by("run_id", maintain_order=True):
        metric = "ttft_s" if rows["ttft_s"].null_count() == 0 else "e2e_s"
        values = rows[metric].to_list()
        n = len(values)
        if n < MIN_REQUESTS:
            continue
        limit = int(n * COLD_MAX_SHARE)
        rest = sorted(values[limit:])
        median = rest[len(rest) // 2]
        p99 = rest[min(len(rest) - 1, int(0.99 * (len(rest) - 1)))]
        bar = max(COLD_FACTOR * median, p99)
        k = 0
        while k < limit and values[k] > bar:
            k += 1
        if k == 0:
            continue
        slow, others = values[:k], values[k:]
        wave = (streams or {}).get(str(run_id))
        out[str(run_id)] = ColdStart(
            str(run_id), metric, k, len(others), min(slow), max(slow), min(others),
            max(others), sorted(others)[len(others) // 2], wave is not None and k <= wave,
        )  # fmt: skip
    return out


def spreads(requests: pl.DataFrame, stalls: dict[str, float] | None = None) -> list[Spread]:
    """Per run: how predictable the latency users feel is. ITL stalls from `stalls` (run ->
    share, as the warehouse computes them) or, without it, from the rows' `itl_s`."""
    ok = requests.filter((pl.col("status") == "ok") & pl.col("e2e_s").is_not_null())
    if ok.is_empty():
        return []
    gaps = [pl.col("itl_s").explode().drop_nulls().alias("gaps")] if stalls is None else []
    e2e = pl.col("e2e_s")
    per_run = ok.group_by("run_id", maintain_order=True).agg(
        *gaps,
        e2e.quantile(0.5, "linear").alias("p50"),
        e2e.quantile(0.99, "linear").alias("p99"),
        e2e.mean().alias("mean"),
        e2e.std().alias("std"),
        (e2e > SLOW_FACTOR * e2e.median()).mean().alias("slow"),
    )
    out = []
    for r in per_run.iter_rows(named=True):
        stall = stalls.get(r["run_id"]) if stalls is not None else _stall_share(r["gaps"])
        out.append(
            Spread(
                r["run_id"],
                r["p99"] / r["p50"] if r["p50"] else None,
                r["std"] / r["mean"] if r["mean"] and r["std"] is not None else None,
                r["slow"],
                stall,
            )
        )
    return out


def _stall_share(gaps: list[float] | None) -> float | None:
    if not gaps or len(gaps) < 10:
        return None
    med = sorted(gaps)[len(gaps) // 2]
    return sum(g > STALL_FACTOR * med for g in gaps) / len(gaps) if med > 0 else None


def timeline(
    requests: pl.DataFrame, samples: pl.DataFrame, run_id: str, windows: int = WINDOWS * 2
) -> pl.DataFrame:
    """One level over time: per window (t = its middle, seconds from the first send),
    requests in flight (time-averaged), completions per second, p50/p95 TTFT (by send
    window, successful requests) and E2E (by completion window), and the mean of each
    server signal sampled in the window (a column per signal)."""
    rows = requests.filter(pl.col("run_id") == run_id)
    return _timelines(rows, samples, windows, minimum=1).get(run_id, pl.DataFrame())


def timelines(requests: pl.DataFrame, samples: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """`timeline` of every level with at least MIN_REQUESTS timed requests, computed for
    all levels in one pass (a level's windows are its own)."""
    return _timelines(requests, samples, WINDOWS * 2, minimum=MIN_REQUESTS)


def _timelines(
    requests: pl.DataFrame, samples: pl.DataFrame, windows: int, minimum: int
) -> dict[str, pl.DataFrame]:
    rows = requests.filter(pl.col("start_s").is_not_null() & pl.col("e2e_s").is_not_null())
    if rows.is_empty():
        return {}
    end = pl.col("start_s") + pl.col("e2e_s")
    spans = (
        rows.group_by("run_id")
        .agg(t0=pl.col("start_s").min(), t1=end.max(), n=pl.len())
        .filter(pl.col("n") >= minimum)
        .with_columns(
            width=pl.when(pl.col("t1") > pl.col("t0"))
            .then((pl.col("t1") - pl.col("t0")) / windows)
            .otherwise(1.0)
        )
    )
    if spans.is_empty():
        return {}
    rows = rows.join(spans.select("run_id", "t0", "width"), on="run_id")

    def window(t: pl.Expr) -> pl.Expr:
        return ((t - pl.col("t0")) / pl.col("width")).floor().clip(0, windows - 1).cast(pl.Int32)

    ok = pl.col("status") == "ok"
    by_start = (
        rows.filter(ok)
        .with_columns(window=window(pl.col("start_s")))
        .group_by("run_id", "window")
        .agg(
            p50_ttft_s=pl.col("ttft_s").quantile(0.5, "linear"),
            p95_ttft_s=pl.col("ttft_s").quantile(0.95, "linear"),
        )
    )
    by_end = (
        rows.with_columns(window=window(end))
        .group_by("run_id", "window")
        .agg(
            done=pl.len(),
            p50_e2e_s=pl.col("e2e_s").filter(ok).quantile(0.5, "linear"),
            p95_e2e_s=pl.col("e2e_s").filter(ok).quantile(0.95, "linear"),
        )
    )
    grid = spans.select("run_id", "t0", "width").join(
        pl.DataFrame({"window": pl.int_range(windows, eager=True, dtype=pl.Int32)}), how="cross"
    )
    frame = (
        grid.join(by_start, on=["run_id", "window"], how="left")
        .join(by_end, on=["run_id", "window"], how="left")
        .with_columns(
            t_s=(pl.col("window") + 0.5) * pl.col("width"),
            completions_per_s=pl.col("done").fill_null(0) / pl.col("width"),
        )
    )
    busy = _busy_time(rows, spans, windows)
    frame = frame.join(busy, on=["run_id", "window"], how="left").with_columns(
        in_flight=pl.col("busy_s").fill_null(0.0) / pl.col("width")
    )
    if samples.height:
        binned = (
            samples.join(spans.select("run_id", "t0", "width"), on="run_id")
            .with_columns(window=((pl.col("t_s") - pl.col("t0")) / pl.col("width")).floor())
            .filter((pl.col("window") >= 0) & (pl.col("window") < windows))
            .with_columns(pl.col("window").cast(pl.Int32))
            .group_by("run_id", "window", "signal")
            .agg(pl.col("value").mean())
        )
    columns = [
        "t_s",
        "in_flight",
        "completions_per_s",
        "p50_ttft_s",
        "p95_ttft_s",
        "p50_e2e_s",
        "p95_e2e_s",
    ]
    out = {}
    for (run_id,), level in frame.sort("run_id", "window").group_by("run_id", maintain_order=True):
        table = level.select("window", *columns)
        if samples.height:
            signals = binned.filter(pl.col("run_id") == run_id)
            if signals.height:
                table = table.join(
                    signals.pivot(on="signal", index="window", values="value"),
                    on="window",
                    how="left",
                )
        out[str(run_id)] = table.drop("window")
    return out


def _busy_time(rows: pl.DataFrame, spans: pl.DataFrame, windows: int) -> pl.DataFrame:
    """Per run and window, the request-seconds in flight inside it: B(x) = Σ min(max(x −
    start, 0), E2E) is the busy time before x, so a window holds B(b) − B(a); B at every
    edge from sorted starts and ends with their prefix sums."""
    out = []
    width = dict(zip(spans["run_id"], zip(spans["t0"], spans["width"], strict=True), strict=True))
    for (run_id,), level in rows.group_by("run_id"):
        t0, w = width[str(run_id)]
        edges = pl.Series([t0 + w * i for i in range(windows + 1)], dtype=pl.Float64)

        def before(times: pl.Series, edges: pl.Series = edges) -> pl.Series:
            ordered = times.sort()
            prefix = pl.concat([pl.Series([0.0]), ordered.cum_sum()])
            k = ordered.search_sorted(edges, side="left").cast(pl.Int64)
            return edges * k.cast(pl.Float64) - prefix.gather(k)

        busy = before(level["start_s"]) - before(level["start_s"] + level["e2e_s"])
        out.append(
            pl.DataFrame(
                {
                    "run_id": [str(run_id)] * windows,
                    "window": pl.int_range(windows, eager=True, dtype=pl.Int32),
                    "busy_s": busy.diff().slice(1),
                }
            )
        )
    return pl.concat(out)


def sustain_boundaries(levels: pl.DataFrame, steady: dict[str, Steadiness]) -> list[SloBoundary]:
    """Per series with an unsustainable level: a boundary of SUSTAINED, so no load at or
    above the first unsustainable level counts as within the SLOs, whatever its
    percentiles. The limit is the last sustainable level below it (conservative: no
    interpolation between a trend and none), possibly up to the unsustainable one."""
    out = []
    placed = levels.filter(pl.col("load_value").is_not_null()).sort("load_value")
    for (deployment, mode), group in placed.group_by(
        "deployment", "load_mode", maintain_order=True
    ):
        judged = [
            (r["load_value"], steady[r["run_id"]])
            for r in group.iter_rows(named=True)
            if r["run_id"] in steady and steady[r["run_id"]].status != "unknown"
        ]
        first = next((i for i, (_, s) in enumerate(judged) if s.status == "unsustainable"), None)
        if first is None:
            continue

        def point(load: float, s: Steadiness) -> Level:
            share = (s.rise_s or 0.0) / s.median_s if s.median_s else 0.0
            return Level(load=load, value=max(0.0, share), lo=None, hi=None, n=None)

        breach = point(*judged[first])
        last = point(*judged[first - 1]) if first > 0 else None
        out.append(
            SloBoundary(
                deployment=str(deployment),
                load_mode=str(mode),
                slo=SUSTAINED,
                last_ok=last,
                first_breach=breach,
                boundary_load=last.load if last else None,
                boundary_lo=last.load if last else None,
                boundary_hi=breach.load,
                max_load_measured=judged[-1][0],
                n_loads=len({ld for ld, _ in judged}),
                min_load_measured=judged[0][0],
            )
        )
    return out


def warmup_exclusion(
    requests: pl.DataFrame, cold: dict[str, ColdStart], policy: str
) -> tuple[str, pl.DataFrame]:
    """The requests (run_id, seq) a warm-up policy leaves out of the statistics, and the
    policy as the brief names it: "0" keeps everything ("kept"), "auto" leaves out each
    cold start found, "N" the first N requests by start of every level with start times."""
    empty = pl.DataFrame(schema={"run_id": pl.String, "seq": pl.Int64})
    policy = policy.strip().lower()
    if policy in ("", "0", "kept"):
        return "kept", empty
    if policy == "auto":
        counts = {run_id: c.n_slow for run_id, c in cold.items()}
    else:
        try:
            n = int(policy)
        except ValueError:
            raise ConfigError(
                f"--exclude-warmup {policy!r}: use auto, 0 or a number of requests"
            ) from None
        if n < 0:
            raise ConfigError(f"--exclude-warmup {n}: a number of requests, 0 or more")
        counts = dict.fromkeys(requests["run_id"].unique().to_list(), n)
    if not counts:
        return policy, empty
    firsts = (
        requests.filter(pl.col("start_s").is_not_null())
        .sort("run_id", "start_s", "seq")
        .with_columns(rank=pl.int_range(pl.len()).over("run_id"))
        .join(pl.DataFrame({"run_id": list(counts), "n": list(counts.values())}), on="run_id")
        .filter(pl.col("rank") < pl.col("n"))
        .select("run_id", "seq")
    )
    return policy, firsts
