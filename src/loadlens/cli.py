"""The command line: parse, call the library, print. Errors a user can act on exit 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from loadlens import api
from loadlens.config import Config, load_config, parse_slos
from loadlens.errors import ConfigError, LoadlensError
from loadlens.findings import format_load
from loadlens.report.brief import build_brief
from loadlens.report.render import FORMATS, render, write_atomic
from loadlens.sources import expand
from loadlens.sources.generic import parse_mapping
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


def handles_errors(fn: F) -> F:
    """Print a LoadlensError as one line and exit 2; nothing else is caught."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LoadlensError as e:
            err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _warehouse(config: Config, db: Path | None, read_only: bool = False) -> Warehouse:
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
    """Load trace files into the warehouse (auto-detects vLLM, loadlens, ...).

    All files are parsed and checked first; if any is bad, nothing is written and the
    error names the file and field. A file already ingested is reported, not duplicated.
    """
    config = load_config(config_path)
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
    files, _ = expand(paths)
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
                f"ingested  {o.path}  ({o.tool}: {o.runs} run(s), {o.requests:,} requests) "
                f"→ {o.deployment}",
                highlight=False,
            )
        else:
            out.print(f"skipped   {o.path}  (already ingested as {o.deployment})", highlight=False)
    for s in result.skipped:
        out.print(f"ignored   {s.path}  ({s.reason})", highlight=False)


@app.command()
@handles_errors
def runs(
    deployment: DeploymentsOpt = None, db: DbOpt = None, config_path: ConfigOpt = None
) -> None:
    """List what the warehouse holds: one line per run (load level)."""
    config = load_config(config_path)
    with _warehouse(config, db, read_only=True) as wh:
        frame = wh.runs(deployment or None)
    if frame.is_empty():
        out.print("no runs (ingest some traces with `loadlens ingest`)")
        return
    table = Table(box=None, header_style="bold")
    for col in ("deployment", "load", "tool", "requests", "errors", "duration", "source"):
        table.add_column(
            col, justify="right" if col in {"requests", "errors", "duration"} else "left"
        )
    for r in frame.iter_rows(named=True):
        table.add_row(
            r["deployment"],
            format_load(r["load_mode"], r["load_value"]),
            r["tool"] + (f" {r['tool_version']}" if r["tool_version"] else ""),
            f"{r['num_requests']:,}" if r["num_requests"] is not None else "–",
            str(r["num_errors"]) if r["num_errors"] is not None else "–",
            f"{r['duration_s']:.1f} s" if r["duration_s"] is not None else "–",
            r["source_path"] + ("" if r["request_rows"] else "  [summary only]"),
        )
    out.print(table)


def _analysis(
    config: Config,
    db: Path | None,
    deployment: list[str] | None,
    slo: str | None,
    confidence: float | None,
) -> api.Analysis:
    slos = parse_slos(slo) if slo else config.slos
    with _warehouse(config, db, read_only=True) as wh:
        return api.analyze(wh, deployment or None, slos, confidence or config.confidence)


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
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """Write the capacity brief: the decision, key numbers, findings, charts, provenance."""
    config = load_config(config_path)
    out_path = out_path or (Path(config.report.out) if config.report.out else None)
    fmt = fmt or config.report.format
    if fmt is None:
        fmt = out_path.suffix.lstrip(".").lower() if out_path else "pdf"
    if fmt not in FORMATS:
        raise ConfigError(f"--format '{fmt}': use one of {', '.join(FORMATS)}")
    if out_path is None and fmt in {"pdf", "html"}:
        out_path = Path("reports") / f"brief.{fmt}"
    analysis = _analysis(config, db, deployment, slo, confidence)
    brief = build_brief(analysis, with_charts=fmt in {"pdf", "html"})
    data = render(brief, analysis, fmt)
    if out_path is None:
        sys.stdout.write(data.decode())
        return
    write_atomic(out_path, data)
    out.print(f"wrote {out_path}", highlight=False)


@app.command()
@handles_errors
def findings(
    deployment: DeploymentsOpt = None,
    slo: SloOpt = None,
    confidence: ConfidenceOpt = None,
    db: DbOpt = None,
    config_path: ConfigOpt = None,
) -> None:
    """Print the findings, most important first, each with how sure it is."""
    config = load_config(config_path)
    analysis = _analysis(config, db, deployment, slo, confidence)
    styles = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
    for f in analysis.findings:
        out.print(f"[{styles[f.severity]}]{f.severity:>8}[/]  {f.sentence}", highlight=False)
        out.print(f"          [dim]{f.confidence}[/]", highlight=False)


@app.command()
@handles_errors
def demo(
    data: Annotated[Path, typer.Option(help="Sample data: one folder per deployment.")] = Path(
        "sample_data"
    ),
    out_dir: Annotated[Path, typer.Option("--out", help="Where the brief goes.")] = Path("reports"),
    slo: SloOpt = None,
) -> None:
    """Ingest sample_data/ into a fresh warehouse and write reports/demo-brief.{pdf,html,md}."""
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
            out.print(f"ingested  {folder}  ({len(result.outcomes)} files, {n:,} requests)")
        analysis = api.analyze(wh, None, parse_slos(slo) if slo else config.slos, config.confidence)
    brief = build_brief(analysis)
    for fmt in ("pdf", "html", "md"):
        path = out_dir / f"demo-brief.{fmt}"
        write_atomic(path, render(brief, analysis, fmt))
        out.print(f"wrote     {path}", highlight=False)
    out.print(f"\n[bold]Decision:[/] {brief.decision}", highlight=False)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
