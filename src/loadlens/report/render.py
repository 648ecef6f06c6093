"""Render a Brief to standalone HTML, PDF (weasyprint), Markdown or JSON.

The PDF renderer may fetch nothing from the network: only `data:` URLs (the embedded
charts) are allowed, so a brief renders the same offline as online.
"""

from __future__ import annotations

import base64
import os
import re
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from loadlens.errors import ConfigError

if TYPE_CHECKING:
    from loadlens.api import Analysis
    from loadlens.report.brief import Brief

FORMATS = ("pdf", "html", "md", "json")


def templates_dir() -> Path:
    """templates/ inside the installed wheel, else at the repository root (editable)."""
    packaged = Path(str(resources.files("loadlens"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "templates"


def _env(finalize: Callable[[Any], Any] | None = None) -> Environment:
    env = Environment(
        finalize=finalize,
        loader=FileSystemLoader(templates_dir()),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["svg_data_uri"] = lambda svg: (
        "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    )
    return env


def render_html(brief: Any, template: str = "brief.html.j2") -> str:
    css = (templates_dir() / "brief.css").read_text()
    return _env().get_template(template).render(brief=brief, css=css)


def html_to_pdf(html: str) -> bytes:
    # Imported here: WeasyPrint loads Pango at import (~1 s), which every other command
    # (`--help`, `sweep`, `serve-sim`) would otherwise pay for.
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"})
    pdf = HTML(string=html, url_fetcher=fetcher).write_pdf()
    assert pdf is not None
    return pdf


def render_by_suffix(brief: Any, template: str, suffix: str, command: str) -> bytes:
    """A compare or budget brief as the output file's suffix asks: .pdf, .html or .json."""
    if suffix == ".json":
        return brief.model_dump_json(indent=2, exclude={"charts"}).encode()
    html = render_html(brief, template)
    if suffix == ".html":
        return html.encode()
    if suffix == ".pdf":
        return html_to_pdf(html)
    raise ConfigError(f"--out '{suffix}': {command} writes .pdf, .html or .json")


def render_pdf(brief: Brief) -> bytes:
    return html_to_pdf(render_html(brief))


# Characters data must never carry to a reader: control characters (terminal escapes) and
# bidi overrides (U+202E reorders what follows), in the terminal and in Markdown alike.
UNSAFE_CHARS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What would open raw HTML, a table cell, an image or a link in Markdown.
_MARKDOWN = str.maketrans({"<": "&lt;", ">": "&gt;", "|": "\\|", "\n": " ", "\r": " "})


def markdown_text(value: object) -> str:
    """Any value as inert Markdown text: never raw HTML, a cell break, an image or a link
    (the Markdown brief goes into PR comments)."""
    text = UNSAFE_CHARS.sub("\ufffd", str(value)).translate(_MARKDOWN)
    return text.replace("![", "!\\[").replace("](", "]\\(")


def render_markdown(brief: Brief) -> str:
    env = _env(lambda value: markdown_text(value) if isinstance(value, str) else value)
    return env.get_template("brief.md.j2").render(brief=brief)


def render_json(brief: Brief, analysis: Analysis) -> bytes:
    from dataclasses import asdict

    def over_time(run_id: str) -> dict[str, Any]:
        """A level's story in numbers: steady or not, its cold start, its spread."""
        parts = {
            "steadiness": analysis.steadiness.get(run_id),
            "cold_start": analysis.cold_starts.get(run_id),
            "spread": analysis.spreads.get(run_id),
        }
        return {"run_id": run_id, **{k: asdict(v) if v else None for k, v in parts.items()}}

    doc = {
        **brief.model_dump(mode="json", exclude={"charts"}),
        "levels": analysis.levels.to_dicts(),
        "levels_over_time": [over_time(r) for r in analysis.levels["run_id"].to_list()],
        "early_warnings": [asdict(w) for w in analysis.strains],
        "unpredictable": [asdict(u) for u in analysis.unpredictable],
        "warmup": {"policy": analysis.warmup, "excluded": analysis.excluded},
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)


def render(brief: Brief, analysis: Analysis, fmt: str) -> bytes:
    if fmt == "pdf":
        return render_pdf(brief)
    if fmt == "html":
        return render_html(brief).encode()
    if fmt == "md":
        return render_markdown(brief).encode()
    if fmt == "json":
        return render_json(brief, analysis)
    raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file, so a failed render never leaves half a brief. Only a
    regular file is written or replaced: a directory, a symlink, a FIFO or a device
    (`--out /dev/null` as root) is refused, and no temporary is left behind."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        kind = (
            "a symlink"
            if path.is_symlink()
            else "a directory"
            if path.is_dir()
            else ("a special file (device, FIFO or socket)")
        )
        raise ConfigError(f"{path}: is {kind}; --out takes a regular file's path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise ConfigError(f"{path}: cannot write here ({e.strerror or e})") from None
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o644)  # as a plain write would leave it, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        tmp.replace(path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise ConfigError(f"{path}: cannot write here ({e.strerror or e})") from None
        raise
