"""The command line: parse, call the library, print. Errors a user can act on exit 2."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loadlens.errors import (
    ConfigError,
    InternalError,
    Interrupted,
    LoadlensError,
    WarehouseError,
    ctrl_c,
)
from loadlens.report.render import FORMATS, UNSAFE_CHARS, write_atomic

# The analysis stack (polars, duckdb, altair, weasyprint) is imported by the commands
# that use it, so `--help` and a mistyped option answer at once.
if TYPE_CHECKING:
    from loadlens import api
    from loadlens.config import Config
    from loadlens.warehouse import Warehouse

app = typer.Typer(
    help=(
        "loadlens turns LLM serving benchmark traces into capacity, latency and cost "
        "decisions.\n\nTypical flow: `loadlens ingest results/ -d h100-vllm-tp1`, then "
        "`loadlens runs`, then `loadlens report --slo 'p95_e2e<10s,p95_ttft<2s'`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


# Piped output (CI logs, files) gets long lines instead of 80-column wrapping.
def shown(text: object) -> str:
    """Data (names, paths, sentences) as the terminal shows it: never read as rich markup,
    never acting on the terminal."""
    return escape(UNSAFE_CHARS.sub("\ufffd", str(text)))


out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
F = TypeVar("F", bound=Callable[..., Any])

DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="Warehouse file (config: db; env: LOADLENS_DB).", show_default=False),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="TOML config file (default: ./loadlens.toml if present)."),
]
DeploymentsOpt = Annotated[
    list[str] | None,
    typer.Option("--deployment", "-d", help="Deployment(s) to include (repeatable; default all)."),
]
SloOpt = Annotated[
    str | None,
    typer.Option(
        "--slo",
        help="Objectives, e.g. 'p95_e2e<10s,p95_ttft<2s,p99_tpot<50ms' "
        "(config: slo; default p95_e2e<10s,p95_ttft<2s).",
    ),
]


interrupt_said: list[bool] = []  # a Ctrl-C was answered here (see loadlens.__main__)
# Called when a command has finished and said so (loadlens.__main__: from then on a Ctrl-C
# cannot turn a finished run into an interrupted one).
after_command: list[Callable[[], object]] = []


def handles_errors(fn: F) -> F:
    """A LoadlensError (bad input) is one line and exit 2; any other exception is a bug in
    loadlens: one line naming the file or deployments it met, the traceback saved, exit 3
    (exit 1 stays `check`'s "regressed")."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
            for done in after_command:
                done()
            return result
        except LoadlensError as e:
            # One line, whatever a library put in the message (polars writes several).
            line = " ".join(str(e).split())
            err.print(f"[bold red]error:[/] {shown(line)}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Interrupted as e:
            interrupt_said.append(True)
            err.print(
                "interrupted: the write was committed before it stopped; every row of it is stored"
                if e.committed
                else "interrupted: nothing of this write was stored (rolled back)"
            )
            raise typer.Exit(130) from None
        except KeyboardInterrupt:
            interrupt_said.append(True)
            err.print("interrupted")
            raise typer.Exit(130) from None
        except Exception as e:
            if ctrl_c(e):  # DuckDB reports a Ctrl-C mid-statement as its own error
                interrupt_said.append(True)
                err.print("interrupted")
                raise typer.Exit(130) from None
            _internal_error(fn.__name__, kwargs, e)
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def _internal_error(verb: str, kwargs: dict[str, Any], e: Exception) -> None:
    """Say where a bug struck and keep its traceback for the report."""
    import tempfile
    import traceback

    if isinstance(e, InternalError):
        where, cause = e.where, e.cause
    else:
        names = kwargs.get("deployment") or kwargs.get("deployments")
        where = f"{verb} on {', '.join(names) if names else 'every deployment'}"
        cause = e
    with tempfile.NamedTemporaryFile(
        "w", prefix="loadlens-crash-", suffix=".txt", delete=False
    ) as f:
        traceback.print_exception(cause, file=f)
    err.print(
        f"[bold red]internal error[/] (a bug in loadlens) while {escape(where)}: "
        f"{type(cause).__name__}: {escape(str(cause))}\n  traceback saved to {f.name}; "
        "please report it with that file",
        highlight=False,
        soft_wrap=True,
    )


# --db and --config given before the command (`loadlens --db X ingest ...`): used where the
# command's own option is not given.
_before_command: dict[str, Path | None] = {"db": None, "config": None}


@app.callback()
def _options_before_the_command(db: DbOpt = None, config_path: ConfigOpt = None) -> None:
    """--db and --config work before the command as well as after it."""
    _before_command.update(db=db, config=config_path)


def _config(path: Path | None) -> Config:
    from loadlens.config import load_config

    return load_config(path or _before_command["config"])


def _warehouse(config: Config, db: Path | None, read_only: bool = False) -> Warehouse:
    from loadlens.warehouse import Warehouse

    db = db or _before_command["db"]
    path = db or (Path(config.db) if config.db else None)
    return Warehouse(path, read_only=read_only)


@app.command()
@handles_errors
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Trace files or directories (walked).")],
    deployment: Annotated[
        str | None,
        typer.Option(
            "--deployment",
            "-d",
            help="Name of what was measured, e.g. h100-vllm-tp1 (attributes: [deployments.NAME] "
            "in the config).",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format", help="Force a format instead of auto-detecting (config: ingest.format)."
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            help="Read a home-grown CSV/JSONL/Parquet: field=column[:unit], repeatable or "
            "comma-separated. Fields: ttft, e2e, start, end, input_tokens, output_tokens, "
            "status, error, load. Units: s, ms, us, ns (config: ingest.map).",
        ),
    ] = None,
    load_mode: Annotated[
        str | None,
        typer.Option(
            "--load-mode", help="With --map: concurrency | rate (config: ingest.load_mode)."
        ),
    ] = None,
    load_value: Annotated[
        float | None,
        typer.Option("--load-value", help="With --map and no load column: the run's load."),
    ] = None,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """Load trace files or whole result folders into the warehouse.

    Auto-detects vLLM (bench serve, bench sweep), SGLang bench_serving,
    GuideLLM, NVIDIA AIPerf and GenAI-Perf, genai-bench, Ray LLMPerf,
    inference-perf, HF inference-benchmarker and loadlens's own traces; --map reads your
    own CSV/JSONL/Parquet. Files one tool writes for one run are read
    together; its side files are listed and passed over.

    Example: loadlens ingest results/guidellm/ -d h100-vllm-tp1

    All files are parsed and checked first; if any is bad, nothing is
    written and the error names the file and field. A file already
    ingested is reported, not duplicated.
    """
    from loadlens import api
    from loadlens.sources import plan
    from loadlens.sources.generic import parse_mapping

    config = _config(config_path)
    if deployment is None:
        if len(config.deployments) != 1:
            raise ConfigError(
                "--deployment is required: name what was measured, e.g. -d h100-vllm-tp1"
            )
        deployment = next(iter(config.deployments))
    options: dict[str, Any] = {}
    map_specs = mapping or config.ingest.map
    if map_specs:
        fmt = "generic"
        options = {
            "mapping": parse_mapping(map_specs),
            "load_mode": load_mode or config.ingest.load_mode,
            "load_value": load_value if load_value is not None else config.ingest.load_value,
        }
        if options["load_mode"] not in {"concurrency", "rate", "throughput", "unknown"}:
            raise ConfigError(f"--load-mode '{options['load_mode']}': use concurrency or rate")
    fmt = fmt or config.ingest.format
    attrs = config.deployments.get(deployment)
    files, _ = plan(paths, fmt)
    with Progress(
        TextColumn("[bold]reading"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task("", total=len(files))
        with _warehouse(config, db) as wh:
            result = api.ingest(
                wh,
                paths,
                deployment,
                fmt,
                attributes=attrs.model_dump(exclude_none=True) if attrs else None,
                on_file=lambda f: progress.update(task, advance=1, description=f.name),
                **options,
            )
    for o in result.outcomes:
        if o.status == "ingested":
            out.print(
                f"ingested  {shown(o.path)}  ({shown(o.tool)}: {o.runs} run(s), "
                f"{o.requests:,} requests) → {shown(o.deployment)}",
                highlight=False,
            )
        else:
            out.print(
                f"skipped   {shown(o.path)}  (already ingested as {shown(o.deployment)})",
                highlight=False,
            )
    for s in result.skipped:
        out.print(f"ignored   {shown(s.path)}  ({shown(s.reason)})", highlight=False)


@app.command()
@handles_errors
def delete(
    deployment: Annotated[
        str, typer.Argument(help="The deployment to delete (or one of its runs).")
    ],
    run: Annotated[
        str | None, typer.Option("--run", help="Only this run (its run_id, see `loadlens runs`).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask; delete.")] = False,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """Take back what was ingested: a deployment (every run, request and source file of
    it), or one run with --run. Asks first unless --yes; all of it goes, or nothing."""
    import polars as pl

    config = _config(config_path)
    with _warehouse(config, db) as wh:
        frame = wh.runs([deployment])
        if run:
            frame = frame.filter(pl.col("run_id") == run)
        what = f"run {run} of {deployment}" if run else f"deployment {deployment}"
        n = int(frame["num_requests"].fill_null(0).sum()) if frame.height else 0
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError(f"delete {what}: pass --yes to delete without a prompt")
            typer.confirm(
                f"Delete {shown(what)} ({frame.height} run(s), {n:,} requests)?", abort=True
            )
        counts = wh.delete(deployment, run)
    out.print(
        f"deleted {shown(what)}: {counts['runs']} run(s), {counts['requests']:,} request rows, "
        f"{counts['sources']} source file(s)",
        highlight=False,
    )


@app.command()
@handles_errors
def runs(
    deployment: DeploymentsOpt = None, db: DbOpt = None, config_path: ConfigOpt = None
) -> None:
    """List what the warehouse holds: one line per run (load level)."""
    from loadlens.analysis.variants import run_variants
    from loadlens.findings import format_load

    config = _config(config_path)
    with _warehouse(config, db, read_only=True) as wh:
        frame = wh.runs(deployment or None)
    if frame.is_empty():
        out.print("no runs (ingest some traces with `loadlens ingest`)")
        return
    table = Table(box=None, header_style="bold")
    variant = run_variants(frame)
    columns = ("deployment", "load", "variant", "tool", "requests", "errors", "duration", "source")
    for col in columns:
        table.add_column(
            col,
            justify="right" if col in {"requests", "errors", "duration"} else "left",
            overflow="fold",
        )
    for r in frame.iter_rows(named=True):
        table.add_row(
            shown(r["deployment"]),
            format_load(r["load_mode"], r["load_value"]),
            shown(variant[r["run_id"]] or "–"),
            shown(r["tool"] + (f" {r['tool_version']}" if r["tool_version"] else "")),
            f"{r['num_requests']:,}" if r["num_requests"] is not None else "–",
            str(r["num_errors"]) if r["num_errors"] is not None else "–",
            f"{r['duration_s']:.1f} s" if r["duration_s"] is not None else "–",
            shown(r["source_path"] + ("" if r["request_rows"] else "  [summary only]")),
        )
    # Piped (a file, grep): one line per run, however long, rather than folded cells.
    (out if out.is_terminal else Console(width=100_000)).print(table)


def _analysis(
    config: Config,
    db: Path | None,
    deployment: list[str] | None,
    slo: str | None,
    confidence: float | None,
    stand_in: bool | None = None,
    exclude_warmup: str | None = None,
    what_if: str | None = None,
) -> api.Analysis:
    from loadlens import api
    from loadlens.analysis.rag import RagSpec
    from loadlens.config import parse_slos

    slos = parse_slos(slo) if slo else config.slos
    with _warehouse(config, db, read_only=True) as wh:
        return api.analyze(
            wh,
            deployment or None,
            slos,
            confidence or config.confidence,
            config.headroom,
            config,
            stand_in=config.slo_stand_in if stand_in is None else stand_in,
            exclude_warmup=exclude_warmup or config.exclude_warmup,
            what_if=RagSpec.parse(spec) if (spec := what_if or config.what_if) else None,
        )


StandInOpt = Annotated[
    bool | None,
    typer.Option(
        "--stand-in/--no-stand-in",
        help="Where a file lacks an SLO's percentile (summary-only files often have p99 but "
        "no p95), judge it on the next higher one the file carries: an upper bound, so a "
        "pass is certain and a breach may be overstated (config: slo_stand_in; default off: "
        "the brief lists what cannot be judged).",
        show_default=False,
    ),
]
WarmupOpt = Annotated[
    str | None,
    typer.Option(
        "--exclude-warmup",
        metavar="auto|N|0",
        help="A level's cold start (first requests far slower than the rest): 0 keeps it in "
        "every statistic (default; the brief says what it cost), auto leaves out each one "
        "found, N the first N requests of every level (config: exclude_warmup).",
        show_default=False,
    ),
]
ConfidenceOpt = Annotated[
    float | None,
    typer.Option("--confidence", help="Confidence level of intervals (config: confidence; 0.95)."),
]


@app.command()
@handles_errors
def report(
    deployment: DeploymentsOpt = None,
    slo: SloOpt = None,
    out_path: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Output file; its suffix picks the format (config: report.out).",
        ),
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="pdf | html | md | json; md and json print to stdout without --out "
            "(config: report.format).",
        ),
    ] = None,
    confidence: ConfidenceOpt = None,
    stand_in: StandInOpt = None,
    exclude_warmup: WarmupOpt = None,
    what_if: Annotated[
        str | None,
        typer.Option(
            "--what-if",
            metavar="rag=CHUNKSxTOKENS[+MSms]",
            help="Predict a change from the runs: rag=4x512+200ms adds 4 retrieved chunks of "
            "512 tokens to every prompt and 200 ms of retrieval (TTFT, E2E, capacity within "
            "SLO, cost per user), or says why the runs cannot tell (config: what_if).",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """Write the capacity brief: the decision, key numbers, findings, charts, provenance."""
    from loadlens.report.brief import build_brief
    from loadlens.report.render import render

    config = _config(config_path)
    out_path = out_path or (Path(config.report.out) if config.report.out else None)
    fmt = fmt or config.report.format
    if fmt is None:
        fmt = out_path.suffix.lstrip(".").lower() if out_path else "pdf"
    if fmt not in FORMATS:
        raise ConfigError(f"--format '{fmt}': use one of {', '.join(FORMATS)}")
    if out_path is None and fmt in {"pdf", "html"}:
        out_path = Path("reports") / f"brief.{fmt}"
    analysis = _analysis(config, db, deployment, slo, confidence, stand_in, exclude_warmup, what_if)
    brief = build_brief(analysis, with_charts=fmt in {"pdf", "html"})
    data = render(brief, analysis, fmt)
    if out_path is None:
        sys.stdout.write(data.decode())
        return
    write_atomic(out_path, data)
    out.print(f"wrote {shown(out_path)}", highlight=False)


@app.command()
@handles_errors
def findings(
    deployment: DeploymentsOpt = None,
    slo: SloOpt = None,
    confidence: ConfidenceOpt = None,
    stand_in: StandInOpt = None,
    exclude_warmup: WarmupOpt = None,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """Print the findings, most important first, each with how sure it is."""
    config = _config(config_path)
    analysis = _analysis(config, db, deployment, slo, confidence, stand_in, exclude_warmup)
    styles = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
    for f in analysis.findings:
        out.print(f"[{styles[f.severity]}]{f.severity:>8}[/]  {shown(f.sentence)}", highlight=False)
        out.print(f"          [dim]{shown(f.confidence)}[/]", highlight=False)


@app.command()
@handles_errors
def compare(
    deployments: Annotated[
        list[str],
        typer.Argument(
            help=(
                "Two or more deployments to compare, or one whose runs differ in workload "
                "or server settings (each variant is an option)."
            )
        ),
    ],
    slo: SloOpt = None,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Output file: .pdf, .html or .json.")
    ] = Path("reports/compare.pdf"),
    confidence: ConfidenceOpt = None,
    stand_in: StandInOpt = None,
    exclude_warmup: WarmupOpt = None,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """The deployment-options brief: options side by side on the same SLOs and user
    profile, the cost/latency frontier, and the recommendation with its reason."""
    from loadlens.report.compare import build_compare
    from loadlens.report.render import render_by_suffix

    if not deployments:
        raise ConfigError("compare needs two or more deployments, or one with variants")
    config = _config(config_path)
    analysis = _analysis(config, db, deployments, slo, confidence, stand_in, exclude_warmup)
    missing = set(deployments) - set(analysis.levels["base_deployment"].to_list())
    if missing:
        raise ConfigError(f"no runs for {', '.join(sorted(missing))}")
    if analysis.levels["deployment"].n_unique() < 2:
        raise ConfigError(
            f"{deployments[0]} has one series of runs (they differ only in load): "
            "compare needs two or more deployments, or one whose runs differ in workload or "
            "server settings"
        )
    write_atomic(
        out_path,
        render_by_suffix(build_compare(analysis), "compare.html.j2", out_path.suffix, "compare"),
    )
    out.print(f"wrote {shown(out_path)}", highlight=False)


@app.command()
@handles_errors
def budget(
    deployment: DeploymentsOpt = None,
    slo: SloOpt = None,
    out_path: Annotated[
        Path, typer.Option("--out", "-o", help="Output file: .pdf, .html or .json.")
    ] = Path("reports/budget.pdf"),
    confidence: ConfidenceOpt = None,
    stand_in: StandInOpt = None,
    exclude_warmup: WarmupOpt = None,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """The cost-per-user brief: users → replicas → $ per month, sensitivity to output
    length and SLO, break-even against a hosted API. Needs the config's cost and users
    sections (see the README)."""
    config = _config(config_path)
    analysis = _analysis(config, db, deployment, slo, confidence, stand_in, exclude_warmup)
    if analysis.economics is None:
        raise ConfigError(
            "no cost to report: set [cost] gpu_hour_usd (or [deployments.NAME] gpu_hour_usd) "
            "and [users] in the config (see loadlens.toml in README)"
        )
    if not analysis.costs:
        raise WarehouseError(
            "no deployment has a measured load within every SLO, so there is no capacity to "
            "price; `loadlens report` says which SLO breaks where (or cannot be judged)"
        )
    write_atomic(out_path, _render_budget(analysis, out_path.suffix))
    out.print(f"wrote {shown(out_path)}", highlight=False)


def _render_budget(analysis: api.Analysis, suffix: str) -> bytes:
    from loadlens.report.budget import build_budget
    from loadlens.report.render import render_by_suffix

    brief = build_budget(analysis, analysis.scenarios)
    return render_by_suffix(brief, "budget.html.j2", suffix, "budget")


@app.command()
@handles_errors
def check(
    min_capacity: Annotated[
        float | None,
        typer.Option(help="Required load within every SLO (config: check.min_capacity)."),
    ] = None,
    deployment: DeploymentsOpt = None,
    slo: SloOpt = None,
    confidence: ConfidenceOpt = None,
    stand_in: StandInOpt = None,
    exclude_warmup: WarmupOpt = None,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """For CI pipelines: exit 1 when a deployment's SLO capacity falls below --min-capacity.

    Capacity is the highest measured load meeting every SLO, the error budget included
    (measured, not interpolated). A run with no load to place it (all requests sent at
    once, or an unrecorded load) fails when it misses any SLO; a deployment none of whose
    runs can be judged fails too. Every deployment judged is named.
    Exit codes: 0 every deployment passes, 1 at least one failed, 2 bad input.
    """
    from loadlens.findings import format_load

    config = _config(config_path)
    required = min_capacity or config.check.min_capacity
    if required is None:
        raise ConfigError("check needs --min-capacity (or check.min_capacity in the config)")
    analysis = _analysis(config, db, deployment, slo, confidence, stand_in, exclude_warmup)
    failed = False

    def say(ok: bool | None, text: str, why: str | None = None) -> None:
        verdict = {True: "[green]PASS[/]", False: "[bold red]FAIL[/]", None: "[yellow]FAIL[/]"}
        out.print(f"{verdict[ok]} {shown(text)}", highlight=False)
        if why:
            out.print(f"     {shown(why)}", highlight=False)

    capacity_sentences = {
        (f.deployment, f.evidence.get("slo")): f.sentence
        for f in analysis.findings
        if f.kind == "capacity"
    }
    for name in analysis.levels["deployment"].unique(maintain_order=True).to_list():
        judged = False
        for b in analysis.binding_of(name):
            judged = True
            capacity = b.last_ok.load if b.last_ok else None
            ok = capacity is not None and capacity >= required
            failed = failed or not ok
            say(
                ok,
                f"{name}: capacity "
                + (format_load(b.load_mode, capacity) if capacity is not None else "none")
                + f" ({'≥' if ok else '<'} {required:g} required)",
                capacity_sentences.get((name, str(b.slo))),
            )
        for f in analysis.findings:
            if f.kind == "capacity" and f.deployment == name and "run_id" in f.evidence:
                judged = True
                ok = f.severity != "critical"
                failed = failed or not ok
                say(
                    ok,
                    f"{name}: {'meets' if ok else 'misses'} its SLOs on a run with no load",
                    f.sentence,
                )
        for c in analysis.coverage:
            if c.deployment == name and c.judged_on is None:
                failed = True
                carried = ", ".join(c.carried) or "no statistic of it"
                say(None, f"{name}: {c.slo} cannot be judged: its files carry {carried}")
        if not judged:
            failed = True
            say(None, f"{name}: not judged: no run carries a statistic the SLOs are set on")
    if failed:
        raise typer.Exit(1)


@app.command()
@handles_errors
def demo(
    data: Annotated[Path, typer.Option(help="Sample data: one folder per deployment.")] = Path(
        "sample_data"
    ),
    out_dir: Annotated[Path, typer.Option("--out", help="Where the brief goes.")] = Path("reports"),
    slo: SloOpt = None,
) -> None:
    """Ingest sample_data/ into a fresh warehouse and write the three briefs to reports/:
    demo-brief (capacity; PDF, HTML, Markdown), demo-compare and demo-budget (PDF)."""
    from loadlens import api
    from loadlens.config import load_config, parse_slos
    from loadlens.report.brief import build_brief
    from loadlens.report.render import render, render_by_suffix
    from loadlens.warehouse import Warehouse

    config = load_config(data / "loadlens.toml" if (data / "loadlens.toml").exists() else None)
    folders = sorted(p for p in data.iterdir() if p.is_dir()) if data.is_dir() else []
    if not folders:
        raise ConfigError(f"{data}: expected one folder of traces per deployment")
    out_dir.mkdir(parents=True, exist_ok=True)
    db = out_dir / "demo.duckdb"
    db.unlink(missing_ok=True)
    with Warehouse(db) as wh:
        for folder in folders:
            attrs = config.deployments.get(folder.name)
            result = api.ingest(
                wh,
                [folder],
                folder.name,
                attributes=attrs.model_dump(exclude_none=True) if attrs else None,
            )
            n = sum(o.requests for o in result.outcomes)
            out.print(f"ingested  {shown(folder)}  ({len(result.outcomes)} files, {n:,} requests)")
        analysis = api.analyze(
            wh,
            None,
            parse_slos(slo) if slo else config.slos,
            config.confidence,
            config.headroom,
            config,
        )
    brief = build_brief(analysis)
    for fmt in ("pdf", "html", "md"):
        path = out_dir / f"demo-brief.{fmt}"
        write_atomic(path, render(brief, analysis, fmt))
        out.print(f"wrote     {shown(path)}", highlight=False)
    if analysis.levels["deployment"].n_unique() > 1:
        from loadlens.report.compare import build_compare

        path = out_dir / "demo-compare.pdf"
        write_atomic(
            path, render_by_suffix(build_compare(analysis), "compare.html.j2", ".pdf", "compare")
        )
        out.print(f"wrote     {shown(path)}", highlight=False)
    if analysis.costs:
        path = out_dir / "demo-budget.pdf"
        write_atomic(path, _render_budget(analysis, ".pdf"))
        out.print(f"wrote     {shown(path)}", highlight=False)
    out.print(f"\n[bold]Decision:[/] {shown(brief.decision)}", highlight=False)


def _floats(spec: str | None, flag: str) -> list[float]:
    if not spec:
        return []
    try:
        values = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{flag} '{spec}': expected comma-separated numbers") from None
    if any(v <= 0 for v in values):
        raise ConfigError(f"{flag} '{spec}': every level must be positive")
    return values


@app.command()
@handles_errors
def sweep(
    url: Annotated[
        str | None, typer.Argument(help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name to request.")] = None,
    deployment: Annotated[
        str | None, typer.Option("--deployment", "-d", help="Name of what is measured.")
    ] = None,
    concurrency: Annotated[
        str | None, typer.Option(help="Closed-loop levels, e.g. 1,5,20,40 (requests in flight).")
    ] = None,
    rate: Annotated[
        str | None, typer.Option(help="Open-loop levels in requests/s, e.g. 1,2,4,8.")
    ] = None,
    requests: Annotated[int | None, typer.Option(help="Recorded requests per level.")] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration", help="Seconds per level (instead of, or as well as, --requests)."
        ),
    ] = None,
    warmup: Annotated[
        int | None, typer.Option(help="Requests per level sent first and not recorded.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Per-request timeout, seconds.")
    ] = None,
    input_tokens: Annotated[
        str | None, typer.Option(help="Synthetic prompt length: N or MEAN:SD (default 512).")
    ] = None,
    output_tokens: Annotated[
        str | None, typer.Option(help="max_tokens: N or MEAN:SD (default 256).")
    ] = None,
    prompts: Annotated[
        Path | None, typer.Option(help="Prompts from a JSONL file or a ShareGPT JSON instead.")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="synthetic (default) or rag (4,096-token context, short answers)."),
    ] = None,
    api_kind: Annotated[
        str | None, typer.Option("--api", help="chat (default) or completions.")
    ] = None,
    metrics_url: Annotated[
        list[str] | None,
        typer.Option(
            help="Prometheus /metrics to sample every second (repeatable; vLLM, "
            "SGLang, TGI, llama.cpp, DCGM exporter)."
        ),
    ] = None,
    nvml: Annotated[
        bool | None, typer.Option("--nvml/--no-nvml", help="Sample local GPUs through NVML.")
    ] = None,
    arrival: Annotated[
        str | None, typer.Option(help="With --rate: poisson (default) or constant.")
    ] = None,
    ignore_eos: Annotated[
        bool | None, typer.Option("--ignore-eos/--no-ignore-eos", help="Force output length.")
    ] = None,
    stream: Annotated[
        bool | None,
        typer.Option(
            "--stream/--no-stream",
            help="Stream tokens (default: TTFT and ITL measured) or take one response (E2E only).",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="OPENAI_API_KEY", help="API key (never stored).", show_default=False),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option(help="Where level traces are written (runs/).")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Keep levels already measured; run the rest.")
    ] = False,
    seed: Annotated[int | None, typer.Option(help="Seed for prompts and arrivals.")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Client processes sharing each level (default 1). One process times "
            "a few hundred streams well; above that, use one worker per core. A level "
            "whose client fell behind says so in its results.",
        ),
    ] = None,
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            metavar="ADDRESS",
            help="Run the --workers as Ray actors across a Ray cluster's nodes: auto (the "
            "cluster this host joined with `ray start`), ray://HOST:10001, or local (a "
            "cluster on this machine). Needs pip install 'loadlens[ray]'.",
        ),
    ] = None,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """Measure an endpoint level by level, storing each level as soon as it completes.

    Example: loadlens sweep http://127.0.0.1:8000/v1 --model m -d h100-vllm-tp1
    --concurrency 1,5,20,40 --requests 200 --metrics-url http://127.0.0.1:8000/metrics
    """
    from loadlens import api
    from loadlens.runner import loop, workloads
    from loadlens.runner.loadgen import Level, Plan
    from loadlens.runner.sweep import Target, run_sweep

    config = _config(config_path)
    c = config.sweep
    url = url or c.url
    model = model or c.model
    if not url or not model or not deployment:
        raise ConfigError("sweep needs a URL, --model and --deployment")
    levels = [
        Level("concurrency", v) for v in _floats(concurrency or c.concurrency, "--concurrency")
    ]
    levels += [Level("rate", v) for v in _floats(rate or c.rate, "--rate")]
    if not levels:
        raise ConfigError("give the levels to measure: --concurrency 1,5,20 and/or --rate 1,2,4")
    n = requests or c.requests
    plan = Plan(
        requests=n if n or not (duration or c.duration_s) else None,
        duration_s=duration or c.duration_s,
        warmup=warmup if warmup is not None else c.warmup,
        arrival=(arrival or c.arrival),  # type: ignore[arg-type]
        seed=seed if seed is not None else c.seed,
        workers=workers or c.workers,
        ray=ray or c.ray,
    )
    if plan.requests is None and plan.duration_s is None:
        plan = dataclasses.replace(plan, requests=200)
    prompt_file = prompts or (Path(c.prompts) if c.prompts else None)
    if prompt_file:
        workload = workloads.from_file(prompt_file, output_tokens, plan.seed)
    elif (profile or c.profile) == "rag":
        workload = workloads.rag(plan.seed)
    else:
        workload = workloads.synthetic(
            input_tokens or c.input_tokens, output_tokens or c.output_tokens, plan.seed
        )
    target = Target(
        base_url=url,
        model=model,
        api=(api_kind or c.api),  # type: ignore[arg-type]
        api_key=api_key,
        timeout_s=timeout or c.timeout_s,
        ignore_eos=ignore_eos if ignore_eos is not None else c.ignore_eos,
        metrics_urls=tuple(metrics_url or c.metrics_url),
        use_nvml=nvml if nvml is not None else c.nvml,
        stream=stream if stream is not None else c.stream,
    )
    live = _SweepProgress(plan)
    done: list[Any] = []
    with _warehouse(config, db) as wh, live.progress:

        def level_done(outcome: Any) -> None:
            done.append(outcome)
            live.finish(outcome)

        try:
            loop.run(
                run_sweep(
                    target,
                    workload,
                    levels,
                    plan,
                    deployment=deployment,
                    out_dir=out_dir or Path(c.out_dir),
                    warehouse=wh,
                    resume=resume,
                    on_level_start=live.start,
                    on_record=live.record,
                    on_level_done=level_done,
                )
            )
        except KeyboardInterrupt as e:
            interrupt_said.append(True)
            stored = len(done) + (1 if isinstance(e, Interrupted) and e.committed else 0)
            err.print(
                f"interrupted: {stored} completed level(s) are stored in {wh.path}; "
                "rerun with --resume to measure the rest"
            )
            raise typer.Exit(130) from None
        analysis = api.analyze(
            wh, [deployment], config.slos, config.confidence, config.headroom, config
        )
    _print_levels(analysis)


class _SweepProgress:
    """A live line per level: requests done, errors, p95 E2E so far, output tokens/s."""

    def __init__(self, plan: Any) -> None:
        self.plan = plan
        self.progress = Progress(
            TextColumn("[bold]{task.description:>10}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            console=err,
        )
        self.task: Any = None

    def start(self, level: Any) -> None:
        self.e2e: list[float] = []
        self.errors = self.tokens = 0
        self.t0 = time.perf_counter()
        self.task = self.progress.add_task(level.key, total=self.plan.requests, stats="starting")

    def record(self, level: Any, r: Any) -> None:
        if r.status == "ok" and r.chunks:
            self.e2e.append(r.chunks[-1] - r.sent)
            self.tokens += r.output_tokens or 0
        else:
            self.errors += 1
        ordered = sorted(self.e2e)
        p95 = f"{ordered[int(0.95 * (len(ordered) - 1))]:.2f} s" if ordered else "–"
        rate = self.tokens / max(1e-9, time.perf_counter() - self.t0)
        self.progress.update(
            self.task,
            advance=1,
            stats=f"errors {self.errors}  p95 E2E {p95}  {rate:,.0f} tok/s",
        )

    def finish(self, outcome: Any) -> None:
        scrape = outcome.scrape
        skipped = sum(scrape.get("skipped", {}).values())
        problems = "; ".join(f"{u}: {p}" for u, p in outcome.scrape_failures.items())
        if scrape and not scrape.get("done"):
            err.print(
                f"[yellow]warning:[/] no scrape of the server's metrics succeeded "
                f"({shown(problems or 'no answer')}); its signals are missing for this "
                "level, not zero",
                highlight=False,
            )
        elif skipped:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(scrape["skipped"].items()) if v)
            err.print(
                f"[yellow]warning:[/] {skipped} of {scrape.get('planned', 0)} scrapes skipped "
                f"({shown(reasons)}); the level's server signals are partial",
                highlight=False,
            )
        if outcome.skipped:
            err.print(f"kept      {shown(outcome.path)} (measured before; --resume)")
        elif outcome.errors:
            kinds = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.errors.items()))
            err.print(
                f"{outcome.level.key}: {sum(outcome.errors.values())} failed ({shown(kinds)})"
            )


def _print_levels(analysis: api.Analysis) -> None:
    from loadlens.config import format_seconds
    from loadlens.findings import format_load

    table = Table(box=None, header_style="bold")
    for col in ("load", "requests", "errors", "p95 TTFT", "p95 E2E", "output tok/s"):
        table.add_column(col, justify="left" if col == "load" else "right")
    for r in analysis.levels.iter_rows(named=True):
        table.add_row(
            format_load(r["load_mode"], r["load_value"]),
            f"{r['n_requests']:,}",
            f"{r['n_errors']}",
            format_seconds(r.get("p95_ttft_s")),
            format_seconds(r.get("p95_e2e_s")),
            f"{r['output_throughput_tps'] or 0:,.0f}",
        )
    out.print(table)
    for f in analysis.findings[:3]:
        out.print(f"- {shown(f.sentence)}", highlight=False)


@app.command("serve-sim")
@handles_errors
def serve_sim(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0: any free port).")] = 8000,
    profile: Annotated[
        str, typer.Option(help="Server model: h100-vllm-tp1, a100-vllm-tp1, or instant.")
    ] = "h100-vllm-tp1",
    step_ms: Annotated[
        float, typer.Option(help="With --profile instant: ms per token step.")
    ] = 20.0,
    model: Annotated[str, typer.Option(help="Model name it answers as.")] = "loadlens-sim",
    fail_rate: Annotated[float, typer.Option(help="Fraction of requests answered HTTP 500.")] = 0.0,
    drop_rate: Annotated[
        float, typer.Option(help="Fraction whose connection drops mid-stream.")
    ] = 0.0,
    stall_rate: Annotated[
        float, typer.Option(help="Fraction that stall after the first token.")
    ] = 0.0,
    stall_s: Annotated[float, typer.Option(help="How long a stall lasts, seconds.")] = 30.0,
    close_rate: Annotated[
        float,
        typer.Option(help="Fraction whose connection is closed on arrival, before any header."),
    ] = 0.0,
    usage_factor: Annotated[
        float, typer.Option(help="Report completion_tokens times this (a miscounting server).")
    ] = 1.0,
    keepalive_s: Annotated[
        float,
        typer.Option(help="Close keep-alive connections idle this long (llama.cpp: 5 s)."),
    ] = 75.0,
    seed: Annotated[int, typer.Option(help="Seed of the step noise and the faults.")] = 0,
    max_seconds: Annotated[
        float | None, typer.Option(help="Stop by itself after this many seconds.")
    ] = None,
) -> None:
    """Serve the simulator as an OpenAI-compatible streaming endpoint on 127.0.0.1, with
    vLLM's Prometheus metrics at /metrics — saturation to measure, without a GPU."""
    from loadlens.serve_sim import Faults, SimServer, instant_profile, start
    from loadlens.sim import PROFILES

    if profile == "instant":
        server_profile = instant_profile(step_ms / 1000)
    elif profile in PROFILES:
        server_profile = PROFILES[profile]
    else:
        raise ConfigError(f"--profile '{profile}': use {', '.join([*PROFILES, 'instant'])}")
    faults = Faults(
        fail_rate, drop_rate, stall_rate, stall_s, seed, close_rate, usage_factor, keepalive_s
    )

    async def main() -> None:
        server = SimServer(server_profile, model=model, faults=faults, seed=seed)
        runner, bound = await start(server, port)
        print(
            f"serving {model} ({server_profile.name}) on http://127.0.0.1:{bound}/v1 "
            f"— metrics at http://127.0.0.1:{bound}/metrics",
            flush=True,
        )
        try:
            await asyncio.sleep(max_seconds if max_seconds is not None else float("inf"))
        finally:
            await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
