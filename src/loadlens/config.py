"""Configuration: SLO specs and the TOML config file, validated by pydantic.

Every CLI flag has a config key (`loadlens.toml`, or `--config FILE`):

    db = "loadlens.duckdb"            # --db
    slo = "p95_e2e<10s,p95_ttft<2s"   # --slo
    confidence = 0.95                 # --confidence
    headroom = 0.8                    # stable zone = headroom x min(SLO limit, latency knee)

    [ingest]
    format = "vllm"                   # --format
    map = { ttft = "ttft_ms:ms", e2e = "latency_ms:ms" }   # --map
    load_mode = "concurrency"         # --load-mode
    load_value = 16                   # --load-value

    [report]
    out = "reports/brief.pdf"         # --out
    format = "pdf"                    # --format

    [sweep]                           # loadlens sweep: every option, same names
    concurrency = "1,5,20,40"
    requests = 200
    metrics_url = ["http://127.0.0.1:8000/metrics"]

    [cost]                            # $ per 1M tokens, per request, per user
    gpu_hour_usd = 2.5
    hosted_input_usd_per_1m = 0.2     # optional: break-even against a hosted API
    hosted_output_usd_per_1m = 0.6

    [users]                           # the user profile costs are computed for
    count = 10000
    requests_per_day = 20
    active_hours = 8
    peak_factor = 2.0

    [check]
    min_capacity = 40                 # loadlens check --min-capacity

    [deployments.h100-vllm-tp1]       # --deployment; attributes stored in the warehouse
    hardware = "1x H100 80GB"
    engine = "vLLM"
    gpus_per_replica = 1
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loadlens.errors import ConfigError

METRIC_NAMES = {"ttft": "ttft_s", "tpot": "tpot_s", "itl": "itl_s", "e2e": "e2e_s"}
METRIC_LABELS = {"ttft_s": "TTFT", "tpot_s": "TPOT", "itl_s": "ITL", "e2e_s": "E2E"}
UNIT_SECONDS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
SLO_PATTERN = re.compile(
    r"^\s*(?P<stat>p\d{1,2}(?:\.\d+)?|mean)_(?P<metric>ttft|tpot|itl|e2e)\s*<=?\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>s|ms|us)\s*$"
)
ERROR_BUDGET_PATTERN = re.compile(
    r"^\s*error_rate\s*<=?\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<pct>%?)\s*$"
)
DEFAULT_SLO = "p95_e2e<10s,p95_ttft<2s"
DEFAULT_ERROR_BUDGET = 0.01  # of requests; `--slo error_rate<100%` switches it off


def quantile_of(statistic: str) -> float | None:
    """The quantile a statistic name stands for (`p95` -> 0.95); None for `mean`, `std`..."""
    if not statistic.startswith("p"):
        return None
    try:
        return float(statistic[1:]) / 100
    except ValueError:
        return None


class SLO(BaseModel):
    """One objective: `statistic` of `metric` must stay at or under `threshold_s`.

    A latency SLO (`p95_e2e<10s`) holds a percentile or mean of a latency, in seconds. The
    error budget (`error_rate<1%`: metric "error_rate", statistic "share") holds the share
    of requests that failed, as a fraction in `threshold_s`; it is judged per level like
    any other objective, so a level that fails more requests than its budget does not
    meet the SLOs however fast the rest were. "Sustained load" (metric "latency_rise",
    analysis/timeline.py) is never asked for: a level whose latency kept growing through
    the run misses it, since its percentiles then say how long the test ran.
    """

    model_config = ConfigDict(frozen=True)

    metric: Literal["ttft_s", "tpot_s", "itl_s", "e2e_s", "error_rate", "latency_rise"]
    statistic: str  # "p95", "p99", "mean", ... ("share" for the error budget)
    threshold_s: float = Field(gt=0)

    @property
    def is_latency(self) -> bool:
        return self.metric not in ("error_rate", "latency_rise")

    @property
    def quantile(self) -> float | None:
        return quantile_of(self.statistic) if self.is_latency else None

    @property
    def column(self) -> str:
        """The column of the levels table this SLO is judged on."""
        return f"{self.statistic}_{self.metric}" if self.is_latency else self.metric

    @property
    def label(self) -> str:
        if self.is_latency:
            return f"{self.statistic} {METRIC_LABELS[self.metric]}"
        return "error rate" if self.metric == "error_rate" else "sustained load"

    def format(self, value: float | None) -> str:
        """A value of this SLO's statistic: `12.4 s` or `3.2%`."""
        if self.is_latency or value is None:
            return format_seconds(value)
        return format_share(value)

    def __str__(self) -> str:
        if self.metric == "latency_rise":
            return "sustained load"
        return f"{self.label} ≤ {self.format(self.threshold_s)}"


def format_share(value: float) -> str:
    """`1%`, `0.5%`, `87%`, `100%`."""
    pct = value * 100
    if 0 < pct < 0.01:
        return "<0.01%"
    return f"{pct:.0f}%" if pct >= 10 or pct == round(pct) else f"{pct:.2g}%"


def error_budget(threshold: float = DEFAULT_ERROR_BUDGET) -> SLO:
    return SLO(metric="error_rate", statistic="share", threshold_s=threshold)


def with_error_budget(slos: tuple[SLO, ...]) -> tuple[SLO, ...]:
    """The SLOs with the default error budget added, unless one was given."""
    if any(not s.is_latency for s in slos):
        return slos
    return (*slos, error_budget())


def parse_slos(spec: str) -> tuple[SLO, ...]:
    """Parse `p95_e2e<10s,p95_ttft<2s` into SLOs; raise ConfigError naming the bad part."""
    slos = []
    for part in spec.split(","):
        if not part.strip():
            continue
        if budget := ERROR_BUDGET_PATTERN.match(part):
            value = float(budget["value"]) / (100 if budget["pct"] else 1)
            if not 0 < value <= 1:
                raise ConfigError(
                    f"--slo '{part.strip()}': the error budget is a share of requests, "
                    "above 0 and at most 100%, e.g. error_rate<1% (error_rate<100% switches "
                    "it off)"
                )
            slos.append(error_budget(value))
            continue
        m = SLO_PATTERN.match(part)
        if not m:
            raise ConfigError(
                f"--slo '{part.strip()}': expected <pNN|mean>_<ttft|tpot|itl|e2e><<value><s|ms>"
                " (e.g. p95_e2e<10s or p99_tpot<50ms) or error_rate<N% (e.g. error_rate<1%)"
            )
        slos.append(
            SLO(
                metric=METRIC_NAMES[m["metric"]],  # type: ignore[arg-type]
                statistic=m["stat"],
                threshold_s=float(m["value"]) * UNIT_SECONDS[m["unit"]],
            )
        )
    if not slos:
        raise ConfigError("--slo is empty; e.g. --slo 'p95_e2e<10s,p95_ttft<2s'")
    return tuple(slos)


def format_seconds(value: float | None) -> str:
    """Human units: 12.4 s, 850 ms, 7.9 ms, 120 µs."""
    if value is None:
        return "n/a"
    if value >= 1:
        return f"{value:.3g} s" if value < 100 else f"{value:.0f} s"
    if value >= 1e-3:
        return f"{value * 1e3:.3g} ms"
    return f"{value * 1e6:.3g} µs"


class IngestConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    load_mode: Literal["concurrency", "rate", "throughput", "unknown"] = "unknown"
    load_value: float | None = None


class ReportConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    out: str | None = None
    format: Literal["pdf", "html", "md", "json"] | None = None


class SweepConfig(BaseModel):
    """`loadlens sweep` options (the URL, model and deployment may be set here too)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    model: str | None = None
    concurrency: str | None = None
    rate: str | None = None
    requests: int | None = Field(default=None, ge=1)
    duration_s: float | None = Field(default=None, gt=0)
    warmup: int = Field(default=0, ge=0)
    timeout_s: float = Field(default=600.0, gt=0)
    input_tokens: str = "512"
    output_tokens: str = "256"
    prompts: str | None = None
    profile: Literal["synthetic", "rag"] = "synthetic"
    api: Literal["chat", "completions"] = "chat"
    metrics_url: list[str] = Field(default_factory=list)
    nvml: bool = True
    arrival: Literal["poisson", "constant"] = "poisson"
    ignore_eos: bool = True
    stream: bool = True
    out_dir: str = "runs"
    seed: int = 0
    workers: int = Field(default=1, ge=1)
    ray: str | None = None  # a Ray cluster's address: the workers run as actors there


class CheckConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min_capacity: float | None = Field(default=None, gt=0)


class DeploymentConfig(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    engine: str | None = None
    engine_version: str | None = None
    hardware: str | None = None
    gpus_per_replica: int | None = Field(default=None, ge=1)
    gpu_hour_usd: float | None = Field(default=None, gt=0)  # overrides [cost]


class CostConfig(BaseModel):
    """Prices for the cost model; without gpu_hour_usd (here or per deployment) the brief
    has no cost section."""

    model_config = ConfigDict(extra="forbid")

    gpu_hour_usd: float | None = Field(default=None, gt=0)
    hosted_input_usd_per_1m: float | None = Field(default=None, ge=0)
    hosted_output_usd_per_1m: float | None = Field(default=None, ge=0)


class UsersConfig(BaseModel):
    """Who will use the deployment: the profile cost per user is computed for."""

    model_config = ConfigDict(extra="forbid")

    count: int = Field(default=1000, ge=1)
    requests_per_day: float = Field(default=20, gt=0)
    active_hours: float = Field(default=8, gt=0, le=24)
    peak_factor: float = Field(default=2.0, ge=1)
    input_tokens: float | None = Field(default=None, gt=0)
    output_tokens: float | None = Field(default=None, gt=0)


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    db: str | None = None
    slo: str = DEFAULT_SLO
    confidence: float = Field(default=0.95, gt=0.5, lt=1)
    # Judge a percentile SLO a file lacks on the next higher percentile it carries.
    slo_stand_in: bool = False
    exclude_warmup: str = "0"  # cold starts: 0 kept, auto left out where found, N first N
    what_if: str | None = None  # e.g. "rag=4x512+200ms": a what-if every report predicts
    headroom: float = Field(default=0.8, gt=0, le=1)  # stable zone: of min(SLO limit, knee)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    report: ReportConfig = Field(default_factory=ReportConfig)
    sweep: SweepConfig = Field(default_factory=SweepConfig)
    cost: CostConfig = Field(default_factory=CostConfig)
    users: UsersConfig = Field(default_factory=UsersConfig)
    check: CheckConfig = Field(default_factory=CheckConfig)
    deployments: dict[str, DeploymentConfig] = Field(default_factory=dict)

    @property
    def slos(self) -> tuple[SLO, ...]:
        return parse_slos(self.slo)


def load_config(path: Path | None) -> Config:
    """Read a TOML config (`path`, else ./loadlens.toml if present, else defaults)."""
    if path is None:
        path = Path("loadlens.toml")
        if not path.exists():
            return Config()
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    try:
        config = Config(**raw)
        config.slos  # noqa: B018  (validate the SLO spec now, not at report time)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{path}: {loc}: {err['msg']}") from None
    except ConfigError as e:
        raise ConfigError(f"{path}: slo: {e}") from None
    return config
