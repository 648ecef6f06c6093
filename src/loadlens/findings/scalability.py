"""How throughput scales with concurrency: the Universal Scalability Law fit."""

from __future__ import annotations

import math
from typing import Any

from loadlens.findings.model import Finding

KIND = "scalability"
SECTION = "notes"
ORDER = 210
MIN_R2 = 0.9  # a worse fit says nothing worth a sentence


def find(a: Any) -> list[Finding]:
    out = []
    for f in a.usl:
        if f.r2 < MIN_R2:
            continue
        peak = f.peak_concurrency
        if math.isinf(peak):
            where = "shows no coherency cost, so throughput would keep rising, ever more slowly"
        elif peak > f.max_load_measured:
            where = (
                f"would peak near concurrency {peak:.0f}, beyond the {f.max_load_measured:g} "
                "measured"
            )
        else:
            where = f"peaks near concurrency {peak:.0f}; past it, more load lowers throughput"
        out.append(
            Finding(
                kind=KIND,
                severity="info",
                deployment=f.deployment,
                sentence=(
                    f"Throughput of {f.deployment} follows the Universal Scalability Law "
                    f"(R² {f.r2:.3f} over {f.n_points} levels; contention σ = {f.sigma:.3f}, "
                    f"coherency κ = {f.kappa:.2g}): it {where}."
                ),
                evidence={
                    "lambda_rps": f.lam,
                    "sigma": f.sigma,
                    "kappa": f.kappa,
                    "r2": f.r2,
                    "n_points": f.n_points,
                    "max_load_measured": f.max_load_measured,
                    "peak_concurrency": None if math.isinf(peak) else peak,
                },
                confidence=f"least-squares fit to {f.n_points} levels; extrapolation past "
                f"{f.max_load_measured:g} is a model, not a measurement",
            )
        )
    return out
