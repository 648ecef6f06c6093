"""Why latency grew: the growth of mean E2E over the lightest level, split into causes.

Each request's E2E is TTFT plus decode time, and decode time is (output tokens − 1) ×
TPOT. Per level, with token-weighted TPOT t̄ = Σdecode / Σ(tokens − 1) and n̄ the mean
tokens − 1, mean decode time is exactly n̄·t̄. TTFT is prefill plus queueing; prefill is
modelled from the lightest level, where requests barely queue, as a + b × input tokens
(least squares). Against the lightest level (subscript 0):

    queueing          = Δ(TTFT − a − b·input)      waiting for a batch slot or KV room
    context length    = b · Δ input tokens          longer prompts, longer prefill
    decode contention = n̄₁ · (t̄₁ − t̄₀)              more sequences sharing each step
    output length     = (n̄₁ − n̄₀) · t̄₀              more tokens to generate

These four sum to the growth of mean E2E exactly. (Means, not p95: percentiles do not
add; the brief states p95 beside them.) Server signals, where scraped, are evidence.

`token_costs` is the per-request view of the same question: at each level, the least-
squares fit E2E = c + β_in·input tokens + β_out·output tokens, with normal-theory
intervals on the slopes. β_out is what one more generated token costs at that load; its
growth with load is decode contention seen request by request, not through means.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import polars as pl

CAUSES = ("queueing", "context_length", "decode_contention", "output_length")
# The light-load first-token time: prefill on a self-hosted engine, but on a hosted API also
# the network and the provider's own queue, so it is never called "prefill" to a reader.
FIRST_TOKEN = "first token at light load"
CAUSE_LABELS = {
    "queueing": "queueing",
    "context_length": "context length",
    "decode_contention": "decode contention",
    "output_length": "output length",
}


@dataclass(frozen=True)
class Drivers:
    deployment: str
    load_mode: str
    load: float
    baseline_load: float
    e2e_mean_s: float
    baseline_e2e_mean_s: float
    contributions_s: dict[str, float]  # cause -> seconds of mean-E2E growth
    kv_cache_peak: float | None
    preemptions: float | None
    waiting_mean: float | None
    n: int
    # Per-request regression (token_costs): seconds per output token here and at the
    # lightest level, with this level's 95% interval; None where outputs did not vary.
    per_output_token_s: float | None = None
    per_output_token_ci: tuple[float, float] | None = None
    baseline_per_output_token_s: float | None = None

    @property
    def growth_s(self) -> float:
        return self.e2e_mean_s - self.baseline_e2e_mean_s

    def ranked(self) -> list[tuple[str, float]]:
        """Causes by their share of the growth, largest first."""
        total = self.growth_s
        shares = [(c, v / total if total else 0.0) for c, v in self.contributions_s.items()]
        return sorted(shares, key=lambda cs: cs[1], reverse=True)


def per_level(requests: pl.DataFrame, runs: pl.DataFrame) -> pl.DataFrame:
    """Per run: the means the decomposition needs (successful requests only)."""
    ok = requests.filter(
        (pl.col("status") == "ok") & pl.col("ttft_s").is_not_null() & pl.col("e2e_s").is_not_null()
    )
    stats = ok.group_by("run_id").agg(
        n=pl.len(),
        e2e=pl.col("e2e_s").mean(),
        ttft=pl.col("ttft_s").mean(),
        input=pl.col("input_tokens").cast(pl.Float64).mean(),
        steps=(pl.col("output_tokens") - 1).clip(lower_bound=0).cast(pl.Float64).mean(),
        tpot=(pl.col("e2e_s") - pl.col("ttft_s")).sum()
        / (pl.col("output_tokens") - 1).clip(lower_bound=0).sum(),
    )
    return runs.select("run_id", "deployment", "load_mode", "load_value").join(stats, on="run_id")


def prefill_fit(requests: pl.DataFrame, run_id: str) -> tuple[float, float]:
    """TTFT ≈ a + b·input tokens at one (light) level, by least squares; b ≥ 0."""
    rows = (
        requests.filter((pl.col("run_id") == run_id) & (pl.col("status") == "ok"))
        .select(x=pl.col("input_tokens").cast(pl.Float64), y=pl.col("ttft_s"))
        .drop_nulls()
    )
    if rows.height < 3 or rows["x"].std() in (None, 0.0):
        return (float(rows["y"].mean() or 0.0), 0.0)  # type: ignore[arg-type]
    fit = rows.select(
        b=pl.cov("x", "y") / pl.col("x").var(), mx=pl.col("x").mean(), my=pl.col("y").mean()
    ).row(0, named=True)
    b = max(0.0, fit["b"])
    return fit["my"] - b * fit["mx"], b


TOKEN_COST_MIN_REQUESTS = 10


def token_costs(requests: pl.DataFrame, confidence: float = 0.95) -> pl.DataFrame:
    """Per run: E2E regressed on input and output tokens over its successful requests.

    Columns: run_id, n, per_input_token_s, per_output_token_s, each with _lo/_hi (at `confidence`,
    normal approximation), and r2. A slope is null where its tokens do not vary (forced
    output lengths leave nothing to regress on); runs under 10 requests are left out.
    """
    x1, x2, y = pl.col("x1"), pl.col("x2"), pl.col("y")
    sums = (
        requests.filter(pl.col("status") == "ok")
        .select(
            "run_id",
            x1=pl.col("input_tokens").cast(pl.Float64),
            x2=pl.col("output_tokens").cast(pl.Float64),
            y=pl.col("e2e_s"),
        )
        .drop_nulls()
        .group_by("run_id")
        .agg(
            n=pl.len(),
            s11=((x1 - x1.mean()) ** 2).sum(),
            s22=((x2 - x2.mean()) ** 2).sum(),
            s12=((x1 - x1.mean()) * (x2 - x2.mean())).sum(),
            s1y=((x1 - x1.mean()) * (y - y.mean())).sum(),
            s2y=((x2 - x2.mean()) * (y - y.mean())).sum(),
            syy=((y - y.mean()) ** 2).sum(),
        )
        .filter(pl.col("n") >= TOKEN_COST_MIN_REQUESTS)
        .sort("run_id")
    )
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    rows = []
    for r in sums.iter_rows(named=True):
        rows.append({"run_id": r["run_id"], "n": r["n"], **_ols2(r, z)})
    schema = {"run_id": pl.String, "n": pl.Int64, "r2": pl.Float64}
    for name in ("per_input_token_s", "per_output_token_s"):
        schema |= {name: pl.Float64, f"{name}_lo": pl.Float64, f"{name}_hi": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def _ols2(r: dict[str, float], z: float) -> dict[str, float | None]:
    """Two-regressor least squares from centred sums; a regressor without variance is
    dropped (its slope null) and the other fitted alone."""
    keep = [k for k in ("1", "2") if r[f"s{k}{k}"] > 1e-9]
    out: dict[str, float | None] = {"r2": None}
    for name in ("per_input_token_s", "per_output_token_s"):
        out |= {name: None, f"{name}_lo": None, f"{name}_hi": None}
    if not keep:
        return out
    if len(keep) == 2:
        det = r["s11"] * r["s22"] - r["s12"] ** 2
        if det <= 1e-9 * r["s11"] * r["s22"]:  # collinear: cannot separate the two
            return out
        inv = {"11": r["s22"] / det, "22": r["s11"] / det, "12": -r["s12"] / det}
        beta = {
            "1": inv["11"] * r["s1y"] + inv["12"] * r["s2y"],
            "2": inv["12"] * r["s1y"] + inv["22"] * r["s2y"],
        }
    else:
        k = keep[0]
        inv = {f"{k}{k}": 1 / r[f"s{k}{k}"]}
        beta = {k: r[f"s{k}y"] / r[f"s{k}{k}"]}
    explained = sum(beta[k] * r[f"s{k}y"] for k in keep)
    dof = r["n"] - 1 - len(keep)
    sigma2 = max(r["syy"] - explained, 0.0) / dof if dof > 0 else math.nan
    out["r2"] = explained / r["syy"] if r["syy"] > 0 else None
    for k, name in (("1", "per_input_token_s"), ("2", "per_output_token_s")):
        if k in beta:
            half = z * math.sqrt(sigma2 * inv[f"{k}{k}"]) if dof > 0 else math.inf
            out |= {name: beta[k], f"{name}_lo": beta[k] - half, f"{name}_hi": beta[k] + half}
    return out


def _signals(samples: pl.DataFrame) -> pl.DataFrame:
    """Per run: peak KV-cache usage, preemptions during the run, peak waiting queue."""
    schema = {
        "run_id": pl.String,
        "kv_cache_peak": pl.Float64,
        "preemptions": pl.Float64,
        "waiting_mean": pl.Float64,
    }
    if samples.is_empty():
        return pl.DataFrame(schema=schema)
    value = pl.col("value")
    return (
        samples.group_by("run_id")
        .agg(
            kv_cache_peak=value.filter(pl.col("signal") == "kv_cache_usage").max(),
            preemptions=value.filter(pl.col("signal") == "preemptions_total").max()
            - value.filter(pl.col("signal") == "preemptions_total").min(),
            waiting_mean=value.filter(pl.col("signal") == "requests_waiting").mean(),
        )
        .select(list(schema))
    )


def decompose(
    runs: pl.DataFrame,
    requests: pl.DataFrame,
    samples: pl.DataFrame,
    confidence: float = 0.95,
) -> list[Drivers]:
    """Drivers of every level above the lightest, per deployment and load mode."""
    means = (
        per_level(requests, runs)
        .join(_signals(samples), on="run_id", how="left")
        .join(
            token_costs(requests, confidence).select(
                "run_id", "per_output_token_s", "per_output_token_s_lo", "per_output_token_s_hi"
            ),
            on="run_id",
            how="left",
        )
    )
    out: list[Drivers] = []
    for (deployment, mode), group in means.filter(pl.col("load_value").is_not_null()).group_by(
        "deployment", "load_mode", maintain_order=True
    ):
        rows = group.sort("load_value").to_dicts()
        if len(rows) < 2:
            continue
        for row in rows:  # a tool that records no prompt lengths: no context-length term
            row["input"] = row["input"] if row["input"] is not None else 0.0
        base = rows[0]
        a, b = prefill_fit(requests, base["run_id"])
        queue0 = base["ttft"] - a - b * base["input"]
        for row in rows[1:]:
            contributions = {
                "queueing": (row["ttft"] - a - b * row["input"]) - queue0,
                "context_length": b * (row["input"] - base["input"]),
                "decode_contention": row["steps"] * (row["tpot"] - base["tpot"]),
                "output_length": (row["steps"] - base["steps"]) * base["tpot"],
            }
            out.append(
                Drivers(
                    deployment=str(deployment),
                    load_mode=str(mode),
                    load=row["load_value"],
                    baseline_load=base["load_value"],
                    e2e_mean_s=row["e2e"],
                    baseline_e2e_mean_s=base["e2e"],
                    contributions_s=contributions,
                    kv_cache_peak=row.get("kv_cache_peak"),
                    preemptions=row.get("preemptions"),
                    waiting_mean=row.get("waiting_mean"),
                    n=row["n"],
                    per_output_token_s=row.get("per_output_token_s"),
                    per_output_token_ci=(
                        (row["per_output_token_s_lo"], row["per_output_token_s_hi"])
                        if row.get("per_output_token_s_lo") is not None
                        else None
                    ),
                    baseline_per_output_token_s=base.get("per_output_token_s"),
                )
            )
    return out


def stacked(runs: pl.DataFrame, requests: pl.DataFrame) -> pl.DataFrame:
    """Mean E2E of every level split into prefill, queueing, decode at the lightest
    level's speed, and decode contention — the parts the drivers chart stacks."""
    means = per_level(requests, runs)
    parts = []
    for (deployment, mode), group in means.filter(pl.col("load_value").is_not_null()).group_by(
        "deployment", "load_mode", maintain_order=True
    ):
        rows = group.sort("load_value").to_dicts()
        base = rows[0]
        a, b = prefill_fit(requests, base["run_id"])
        for row in rows:
            prefill = a + b * (row["input"] or 0.0)
            parts += [
                (deployment, mode, row["load_value"], FIRST_TOKEN, prefill),
                (deployment, mode, row["load_value"], "queueing", row["ttft"] - prefill),
                (deployment, mode, row["load_value"], "decode", row["steps"] * base["tpot"]),
                (
                    deployment,
                    mode,
                    row["load_value"],
                    "decode contention",
                    row["steps"] * (row["tpot"] - base["tpot"]),
                ),
            ]
    return pl.DataFrame(
        parts,
        schema={
            "deployment": pl.String,
            "load_mode": pl.String,
            "load_value": pl.Float64,
            "part": pl.String,
            "seconds": pl.Float64,
        },
        orient="row",
    )
