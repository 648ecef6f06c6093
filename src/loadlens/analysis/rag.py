"""RAG as a what-if: every prompt grows by retrieved context, and retrieval adds latency.

`rag=4x512+200ms` is m = 4 chunks of L = 512 tokens (Δ = m·L more prompt tokens in every
request) and r = 200 ms of retrieval before the request reaches the server. The model is
the context-length driver (drivers.py) measured on the runs, per level at concurrency N:

- b, first-token seconds per prompt token: least squares of TTFT on input tokens over the
  successful requests at the lightest load (every run there: variation within and across
  runs), with its normal-theory interval [b_lo, b_hi]. If b is not told from zero (its
  interval reaches 0), the prompts did not vary enough to fit it: no prediction.
- p = b·Δ more prefill per request; α other prompts admitted per decode step: the others'
  admission rate times the step, α = (N_a − 1)·TPOT̄'/E2E̅' (a fixed point; (N_a − 1)/n̄
  where decode dominates E2E; N_a achieved concurrency, n̄ mean output tokens). Per
  request i, with q_i = max(0, TTFT_i − a − b·input_i − 2σ) its queueing above the
  light-load fit (σ the fit's residual sd: noise is not queueing):

      TTFT'_i = TTFT_i + p·(1 + α) + q_i·(g − 1) + r     own prefill and those admitted with
                                                          it; the queue grows by g
      TPOT'_i = TPOT_i + α·p                              each step stalls for the prefills
      E2E'_i  = TTFT'_i + (n_i − 1)·TPOT'_i

  g = Σ(service_i + extra_i) / Σ service_i, service_i = E2E_i − q_i and extra_i the
  terms above: the queue ahead of a request is other requests' work (their prefill and
  decode steps, or a slot they hold), which grows as the work per request does. (Scaling
  it by the prompt-length ratio instead fits a prefill-only queue: on the simulator it did
  no better, on llama.cpp it overshot TTFT at 4 slots by 76%.)

- KV-cache room, where the runs scraped `kv_cache_usage` and `requests_running`: C ≈
  running × (ī + n̄/2) / usage tokens (median over levels). A sequence then holds ī + Δ +
  n̄/2 tokens on average, so S' = C / (ī + Δ + n̄/2) fit at once. At a level with N_a > S'
  the engine serves S' at a time, each for T' = TTFT(S') + p·(1 + α') + (n̄ − 1)·(TPOT(S')
  + α'·p), α' = (S' − 1)/n̄, TTFT(S') and TPOT(S') the sweep's own means at concurrency S'
  (interpolated; the lightest level's below it), and by Little's law a request waits
  W = (N_a − S')·T'/S' for room on average (spread as the wait for N_a − S' departures
  of a Poisson stream, sd √(N_a − S')·T'/S'): TTFT'_i = TTFT_i − q_i + p·(1 + α') + W_i +
  r, TPOT'_i = TPOT_i × TPOT(S')/TPOT(N_a) + α'·p. (S' = (C − (ī + Δ)/2) / (ī + Δ + n̄/2):
  a prompt is admitted only when all of it fits, so half a prompt's room stands empty.)
- Throughput (closed loop, Little's law): X' = X · E2E̅ / (r + E2E̅'). Capacity within SLO:
  the SLO boundaries found again on the predicted levels. Cost per user scales as X / X'
  at the operating point moved with the capacity.

Range: b_lo and b_hi propagated, widened by the measured statistic's own interval.
Not modelled (stated with every prediction): decode's per-step cost growing with context
(attention over more KV; a sweep at one prompt length cannot tell it from the per-sequence
cost, so E2E is a low estimate where attention dominates decode); preemption recompute;
prefix caching of chunks shared between requests; prefill's superlinear share beyond the
measured prompt lengths; the server load the retrieval time takes off (users spend r
outside the server: the prediction is on the safe side).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from statistics import NormalDist

import polars as pl

from loadlens.analysis.saturation import (
    OperatingZone,
    SloBoundary,
    max_load_within_slos,
    slo_boundary,
    value_at,
)
from loadlens.config import SLO
from loadlens.errors import ConfigError

MIN_REQUESTS = 10  # at the lightest load, to fit b
METRICS = ("ttft_s", "tpot_s", "e2e_s")
STATS = {"mean": None, "p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
NOT_MODELLED = (
    "decode's per-step cost growing with the longer context (attention over more KV: a sweep "
    "at one prompt length cannot tell it from the per-sequence cost, so E2E may be higher)",
    "preemption recompute",
    "prefix caching of chunks shared between requests",
)
_SPEC = re.compile(r"^(?:rag=)?(\d+)x(\d+)(?:\+(\d+(?:\.\d+)?)(ms|s))?$")


@dataclass(frozen=True)
class RagSpec:
    """m chunks of L tokens added to every prompt, and a fixed retrieval latency."""

    chunks: int
    chunk_tokens: int
    retrieval_s: float = 0.0

    @property
    def added_tokens(self) -> int:
        return self.chunks * self.chunk_tokens

    @classmethod
    def parse(cls, text: str) -> RagSpec:
        """`rag=4x512`, `rag=4x512+200ms`, `rag=2x1024+0.3s`."""
        m = _SPEC.match(text.strip().replace(" ", ""))
        if not m or int(m[1]) < 1 or int(m[2]) < 1:
            raise ConfigError(
                f"--what-if '{text}': expected rag=CHUNKSxTOKENS[+LATENCYms], e.g. rag=4x512+200ms"
            )
        retrieval = float(m[3] or 0.0) / (1000.0 if m[4] == "ms" else 1.0)
        return cls(int(m[1]), int(m[2]), retrieval)

    def __str__(self) -> str:
        tail = f"+{self.retrieval_s * 1000:g}ms" if self.retrieval_s else ""
        return f"rag={self.chunks}x{self.chunk_tokens}{tail}"


@dataclass(frozen=True)
class PrefillSlope:
    """TTFT ≈ a + b·input tokens at the lightest load, with b's interval."""

    a: float
    b: float
    b_lo: float
    b_hi: float
    n: int
    input_mean: float
    input_min: float
    input_max: float
    input_sd: float
    load: float
    residual_sd: float = 0.0  # of TTFT about the fit: what is noise, not queueing


@dataclass(frozen=True)
class RagLevel:
    """One measured level and its prediction with the retrieved context."""

    run_id: str
    load: float
    kv_bound: bool  # the longer sequences no longer all fit the KV cache at this load
    measured: dict[str, float]  # column (p95_ttft_s, ...) -> value, from the requests
    predicted: dict[str, float]
    lo: dict[str, float]
    hi: dict[str, float]
    rps: float | None  # request throughput, measured
    rps_predicted: float | None
    rps_lo: float | None  # the throughput at the pessimistic end of the range
    rps_hi: float | None


@dataclass(frozen=True)
class RagPrediction:
    deployment: str
    load_mode: str
    spec: RagSpec
    slope: PrefillSlope | None
    refused: str | None  # why there is no prediction; None when there is one
    refused_evidence: dict[str, float] = field(default_factory=dict)  # its numbers
    levels: tuple[RagLevel, ...] = ()
    before: SloBoundary | None = None  # the binding SLO as measured
    after: SloBoundary | None = None  # ... and as predicted
    kv_capacity_tokens: float | None = None
    kv_sequences: float | None = None  # S': sequences of the new length the cache holds
    not_modelled: tuple[str, ...] = field(default=NOT_MODELLED)
    # $ per user per month (before, after, lo, hi), where the deployment is priced
    usd_per_user: tuple[float, float, float | None, float | None] | None = None

    def level(self, load: float) -> RagLevel | None:
        return next((lv for lv in self.levels if lv.load == load), None)

    def throughput(self, load: float, which: str = "rps_predicted") -> float | None:
        """Request throughput at `load`, interpolated between levels (never extrapolated)."""
        pts = sorted((lv.load, v) for lv in self.levels if (v := getattr(lv, which)) is not None)
        return value_at(pts, load)


def capacity(b: SloBoundary | None) -> float | None:
    """The load a binding SLO allows: its crossing, the highest load measured when never
    breached; None when breached at the lightest load (or no SLO)."""
    if b is None or b.status == "breached_at_lowest":
        return None
    return b.boundary_load if b.status == "crossed" else b.max_load_measured


Refusal = tuple[str, dict[str, float]]  # why, and the numbers it states


def prefill_slope(requests: pl.DataFrame, confidence: float = 0.95) -> PrefillSlope | Refusal:
    """b from `requests` (one load's), or the reason it cannot be fitted."""
    rows = (
        requests.filter(pl.col("status") == "ok")
        .select(x=pl.col("input_tokens").cast(pl.Float64), y=pl.col("ttft_s"))
        .drop_nulls()
    )
    if rows.height < MIN_REQUESTS:
        return (
            f"only {rows.height} requests there record both a prompt length and a TTFT "
            f"(at least {MIN_REQUESTS} needed)",
            {"requests_with_lengths": rows.height, "min_requests": MIN_REQUESTS},
        )
    s = rows.select(
        n=pl.len(),
        mx=pl.col("x").mean(),
        my=pl.col("y").mean(),
        sxx=((pl.col("x") - pl.col("x").mean()) ** 2).sum(),
        sxy=((pl.col("x") - pl.col("x").mean()) * (pl.col("y") - pl.col("y").mean())).sum(),
        syy=((pl.col("y") - pl.col("y").mean()) ** 2).sum(),
        lo=pl.col("x").min(),
        hi=pl.col("x").max(),
        sd=pl.col("x").std(),
    ).row(0, named=True)
    if s["sxx"] <= 0:
        return f"every prompt there had {s['lo']:,.0f} tokens", {"input_tokens": s["lo"]}
    b = s["sxy"] / s["sxx"]
    sigma2 = max(s["syy"] - b * s["sxy"], 0.0) / (s["n"] - 2)
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(sigma2 / s["sxx"])
    if b - half <= 0:
        return (
            f"prompts there ranged only {s['lo']:,.0f}–{s['hi']:,.0f} tokens (sd {s['sd']:,.0f}): "
            f"the first-token cost per prompt token, {b * 1e6:.0f} ± {half * 1e6:.0f} µs, "
            "cannot be told from zero",
            {
                "input_min": s["lo"],
                "input_max": s["hi"],
                "input_sd": s["sd"],
                "per_token_us": b * 1e6,
                "per_token_us_half_width": half * 1e6,
            },
        )
    return PrefillSlope(
        a=s["my"] - b * s["mx"],
        b=b,
        b_lo=b - half,
        b_hi=b + half,
        n=s["n"],
        input_mean=s["mx"],
        input_min=s["lo"],
        input_max=s["hi"],
        input_sd=s["sd"],
        load=math.nan,
        residual_sd=math.sqrt(sigma2),
    )


def kv_capacity_tokens(requests: pl.DataFrame, samples: pl.DataFrame) -> float | None:
    """KV-cache room in tokens, C ≈ running × (ī + n̄/2) / usage, median over the runs that
    scraped both signals with the cache at least 5% used; None where none did."""
    if samples.is_empty():
        return None
    signals = (
        samples.filter(pl.col("signal").is_in(["kv_cache_usage", "requests_running"]))
        .group_by("run_id")
        .agg(
            usage=pl.col("value").filter(pl.col("signal") == "kv_cache_usage").mean(),
            running=pl.col("value").filter(pl.col("signal") == "requests_running").mean(),
        )
        .filter((pl.col("usage") >= 0.05) & (pl.col("running") > 0))
    )
    per_seq = (
        requests.filter(pl.col("status") == "ok")
        .group_by("run_id")
        .agg(tokens=(pl.col("input_tokens") + pl.col("output_tokens") / 2).cast(pl.Float64).mean())
    )
    c = signals.join(per_seq, on="run_id").select(
        (pl.col("running") * pl.col("tokens") / pl.col("usage")).median()
    )
    value = c.item() if c.height else None
    return float(value) if value is not None and value > 0 else None


def _stats(frame: pl.DataFrame) -> dict[str, float]:
    out = {}
    for metric in METRICS:
        values = frame[metric].drop_nulls()
        if values.is_empty():
            continue
        for stat, q in STATS.items():
            v = values.mean() if q is None else values.quantile(q, "linear")
            if v is not None:
                out[f"{stat}_{metric}"] = float(v)  # type: ignore[arg-type]
    return out


@dataclass(frozen=True)
class _Curve:
    """The sweep's mean TTFT and TPOT against achieved concurrency."""

    points: list[tuple[float, float, float]]

    def at(self, n: float) -> tuple[float, float]:
        first, last = self.points[0], self.points[-1]
        if n <= first[0]:
            return first[1], first[2]
        if n >= last[0]:
            return last[1], last[2]
        ttft = value_at([(p[0], p[1]) for p in self.points], n)
        tpot = value_at([(p[0], p[2]) for p in self.points], n)
        assert ttft is not None and tpot is not None
        return ttft, tpot


def predict_level(
    requests: pl.DataFrame,
    spec: RagSpec,
    a: float,
    b: float,
    in_flight: float,
    kv_sequences: float | None = None,
    curve: _Curve | None = None,
    noise_s: float = 0.0,
) -> tuple[pl.DataFrame, bool]:
    """One closed-loop level's successful requests as they would be with the retrieved
    context (columns ttft_s, tpot_s, e2e_s), and whether the KV cache binds."""
    ok = requests.filter(
        (pl.col("status") == "ok") & pl.col("ttft_s").is_not_null() & pl.col("e2e_s").is_not_null()
    ).with_columns(
        n=pl.col("output_tokens").cast(pl.Float64).clip(lower_bound=1),
        base=a + b * pl.col("input_tokens").cast(pl.Float64).fill_null(0.0),
    )
    ok = ok.with_columns(
        tpot_s=pl.when(pl.col("n") > 1)
        .then((pl.col("e2e_s") - pl.col("ttft_s")) / (pl.col("n") - 1))
        .otherwise(0.0),
        q=(pl.col("ttft_s") - pl.col("base") - 2 * noise_s).clip(lower_bound=0.0),
    )
    steps = float(ok["n"].mean() or 1.0)  # type: ignore[arg-type]
    p = b * spec.added_tokens
    r = spec.retrieval_s
    kv_bound = kv_sequences is not None and curve is not None and in_flight > kv_sequences
    if kv_bound:
        assert kv_sequences is not None and curve is not None
        s = kv_sequences
        alpha = max(s - 1, 0.0) / steps
        ttft_s, tpot_s = curve.at(s)
        service = ttft_s + p * (1 + alpha) + (steps - 1) * (tpot_s + alpha * p)
        wait = (in_flight - s) * service / s
        # Each waiter waits for the next (N_a − S') departures, about S'/T' a second and
        # close to Poisson with S' sequences finishing independently: the spread of that
        # wait, placed by the request's own measured first-token rank (deterministic).
        spread = math.sqrt(in_flight - s) * service / s
        rank = (ok["ttft_s"].rank("ordinal") - 0.5) / ok.height
        z = pl.Series([NormalDist().inv_cdf(float(u)) for u in rank], dtype=pl.Float64)
        ok = ok.with_columns(wait=(wait + spread * z).clip(lower_bound=0.0))
        decode_s = float((ok["e2e_s"] - ok["ttft_s"]).sum())
        decode_steps = float((ok["n"] - 1).clip(lower_bound=0).sum())
        tpot_now = decode_s / decode_steps if decode_steps > 0 else 0.0
        scale = tpot_s / tpot_now if tpot_now > 0 else 1.0
        out = ok.with_columns(
            ttft_s=pl.col("ttft_s") - pl.col("q") + p * (1 + alpha) + pl.col("wait") + r,
            tpot_s=pl.col("tpot_s") * scale + alpha * p,
        )
    else:
        # The others' prompts admitted per decode step: their admission rate (N_a − 1)/E2E'
        # times the step, TPOT'; a fixed point, as both grow with α. Where decode dominates
        # E2E it is (N_a − 1)/n̄; where prefill dominates, fewer prompts land in a step.
        # The queue ahead of a request is other requests' work (prefill and decode steps,
        # or a slot they hold): it grows by g, as the work per request does.
        total = float((ok["e2e_s"] - ok["q"]).sum())
        tpot = float(ok["tpot_s"].mean() or 0.0)  # type: ignore[arg-type]
        e2e, q = float(ok["e2e_s"].mean() or 0.0), float(ok["q"].mean() or 0.0)  # type: ignore[arg-type]
        alpha, g = max(in_flight - 1, 0.0) / steps, 1.0
        for _ in range(50):
            extra = p * (1 + alpha) + (steps - 1) * alpha * p
            g = (total + extra * ok.height) / total if total > 0 else 1.0
            e2e_new = e2e + extra + q * (g - 1)
            alpha = max(in_flight - 1, 0.0) * (tpot + alpha * p) / e2e_new if e2e_new else 0.0
        out = ok.with_columns(
            ttft_s=pl.col("ttft_s") + p * (1 + alpha) + pl.col("q") * (g - 1) + r,
            tpot_s=pl.col("tpot_s") + alpha * p,
        )
    out = out.with_columns(e2e_s=pl.col("ttft_s") + (pl.col("n") - 1) * pl.col("tpot_s"))
    return out.select("ttft_s", "tpot_s", "e2e_s"), kv_bound


def _reference(deployment: str, mode: str, slos: tuple[SLO, ...], lv: pl.DataFrame):
    bounds = [b for s in slos for b in slo_boundary(lv, s)]
    return max_load_within_slos(bounds).get((deployment, mode))


def predict(
    levels: pl.DataFrame,
    requests: pl.DataFrame,
    runs: pl.DataFrame,
    samples: pl.DataFrame,
    slos: tuple[SLO, ...],
    spec: RagSpec,
    confidence: float = 0.95,
) -> list[RagPrediction]:
    """The RAG what-if for every deployment and load mode: a prediction per measured
    level, or the reason there is none."""
    out: list[RagPrediction] = []
    if "signal" not in samples.columns:  # none scraped
        samples = pl.DataFrame(
            schema={
                "run_id": pl.String,
                "t_s": pl.Float64,
                "signal": pl.String,
                "value": pl.Float64,
            }
        )
    measured = levels.filter(pl.col("load_value").is_not_null())
    for (deployment, mode), lv in measured.group_by("deployment", "load_mode", maintain_order=True):
        deployment, mode = str(deployment), str(mode)
        lv = lv.sort("load_value")
        refuse = (deployment, mode, spec)
        if mode != "concurrency":
            why = (
                "an open-loop (rate) sweep: how longer prompts grow the queue at a fixed arrival "
                "rate is not modelled yet; sweep concurrency instead"
                if mode == "rate"
                else f"its load ({mode}) is not a concurrency sweep"
            )
            out.append(RagPrediction(*refuse, None, why))
            continue
        ids = lv["run_id"].to_list()
        reqs = requests.filter(pl.col("run_id").is_in(ids))
        lightest = float(lv["load_value"][0])
        light_ids = lv.filter(pl.col("load_value") == lightest)["run_id"].to_list()
        fit = prefill_slope(reqs.filter(pl.col("run_id").is_in(light_ids)), confidence)
        if isinstance(fit, tuple):
            text, numbers = fit
            out.append(
                RagPrediction(
                    *refuse,
                    None,
                    f"at concurrency {lightest:g}, {text}",
                    numbers | {"lightest_load": lightest},
                )
            )
            continue
        fit = PrefillSlope(**{**fit.__dict__, "load": lightest})
        kv_c = kv_capacity_tokens(reqs, samples.filter(pl.col("run_id").is_in(ids)))
        ok = reqs.filter(pl.col("status") == "ok")
        mean_in = float(ok["input_tokens"].mean() or 0.0)  # type: ignore[arg-type]
        mean_out = float(ok["output_tokens"].mean() or 0.0)  # type: ignore[arg-type]
        # A prompt is admitted only when all of it fits: about half a prompt's room stands
        # empty on average while the cache is full.
        prompt = mean_in + spec.added_tokens
        kv_seqs = (kv_c - prompt / 2) / (prompt + mean_out / 2) if kv_c else None
        if kv_seqs is not None and kv_seqs < 1:
            out.append(
                RagPrediction(
                    *refuse,
                    fit,
                    f"a sequence of {mean_in + spec.added_tokens:,.0f} prompt tokens does not fit "
                    f"the KV cache (about {kv_c:,.0f} tokens)",
                    {"prompt_tokens": mean_in + spec.added_tokens, "kv_tokens": kv_c or 0.0},
                )
            )
            continue
        cols = ("achieved_concurrency", "mean_ttft_s", "mean_tpot_s")
        pts = (
            lv.select(cols).drop_nulls().sort("achieved_concurrency").rows()
            if all(c in lv.columns for c in cols)
            else []
        )
        curve = _Curve([(float(n), float(t), float(p)) for n, t, p in pts]) if pts else None
        rows = []
        for row in lv.iter_rows(named=True):
            level_reqs = reqs.filter(pl.col("run_id") == row["run_id"])
            if level_reqs.filter(pl.col("status") == "ok").is_empty():
                continue
            n_a = row.get("achieved_concurrency") or row["load_value"]
            before = _stats(
                level_reqs.filter(pl.col("status") == "ok").with_columns(
                    tpot_s=(pl.col("e2e_s") - pl.col("ttft_s"))
                    / (pl.col("output_tokens") - 1).clip(lower_bound=1)
                )
            )
            runs_of = {}
            for name, b in (("mid", fit.b), ("lo", fit.b_lo), ("hi", fit.b_hi)):
                frame, kv_bound = predict_level(
                    level_reqs,
                    spec,
                    fit.a + (fit.b - b) * fit.input_mean,
                    b,
                    n_a,
                    kv_seqs,
                    curve,
                    fit.residual_sd,
                )
                runs_of[name] = (_stats(frame), float(frame["e2e_s"].mean() or 0.0))  # type: ignore[arg-type]
            mid, lo, hi = runs_of["mid"][0], runs_of["lo"][0], runs_of["hi"][0]
            # The measured statistic's own interval widens the range (the shift is added to it).
            lo = {
                c: v - max(0.0, before[c] - (row.get(f"{c}_lo") or before[c]))
                for c, v in lo.items()
            }
            hi = {
                c: v + max(0.0, (row.get(f"{c}_hi") or before[c]) - before[c])
                for c, v in hi.items()
            }
            rps = row.get("request_throughput_rps")
            e2e_now = before.get("mean_e2e_s")

            def scaled(e2e_new: float, rps: float | None = rps, e2e_now: float | None = e2e_now):
                if not rps or not e2e_now:
                    return None
                return rps * e2e_now / (spec.retrieval_s + e2e_new)

            rows.append(
                RagLevel(
                    run_id=row["run_id"],
                    load=float(row["load_value"]),
                    kv_bound=kv_bound,
                    measured=before,
                    predicted=mid,
                    lo=lo,
                    hi=hi,
                    rps=rps,
                    rps_predicted=scaled(runs_of["mid"][1]),
                    rps_lo=scaled(runs_of["hi"][1]),
                    rps_hi=scaled(runs_of["lo"][1]),
                )
            )
        latency = tuple(s for s in slos if s.is_latency and s.metric in METRICS)
        predicted_lv = _predicted_levels(lv, rows, latency)
        out.append(
            RagPrediction(
                deployment,
                mode,
                spec,
                fit,
                None,
                levels=tuple(rows),
                before=_reference(deployment, mode, slos, lv),
                after=_reference(
                    deployment,
                    mode,
                    latency + tuple(s for s in slos if s.metric == "error_rate"),
                    predicted_lv,
                ),
                kv_capacity_tokens=kv_c,
                kv_sequences=kv_seqs,
            )
        )
    return out


def _predicted_levels(
    lv: pl.DataFrame, rows: list[RagLevel], slos: tuple[SLO, ...]
) -> pl.DataFrame:
    """The measured levels with each latency SLO's column (and its interval) predicted."""
    kept = lv.filter(pl.col("run_id").is_in([r.run_id for r in rows]))
    by_id = {r.run_id: r for r in rows}
    ids = kept["run_id"].to_list()
    updates = {}
    for s in slos:
        c = s.column
        for suffix, source in (("", "predicted"), ("_lo", "lo"), ("_hi", "hi")):
            updates[c + suffix] = pl.Series(
                [getattr(by_id[i], source).get(c) for i in ids], dtype=pl.Float64
            )
    return kept.with_columns(**updates) if updates else kept


def cost_per_user(
    pred: RagPrediction, zone: OperatingZone | None, usd_per_user: float | None
) -> tuple[float, float, float | None, float | None] | None:
    """Cost per user per month with the retrieved context, from `usd_per_user` as measured
    at `zone`: the operating load moves with the capacity within SLO, and a replica then
    serves users in proportion to its request throughput there. (before, after, lo, hi);
    None where the moved load falls outside the measured levels."""
    if zone is None or usd_per_user is None:
        return None
    cap_before, cap_after = capacity(pred.before), capacity(pred.after)
    if not cap_before or cap_after is None:
        return None
    load = zone.max_load * cap_after / cap_before
    now = pred.throughput(zone.max_load, "rps")
    then = pred.throughput(load)
    if not now or not then:
        return None
    lo_rps, hi_rps = pred.throughput(load, "rps_hi"), pred.throughput(load, "rps_lo")
    return (
        usd_per_user,
        usd_per_user * now / then,
        usd_per_user * now / lo_rps if lo_rps else None,
        usd_per_user * now / hi_rps if hi_rps else None,
    )
