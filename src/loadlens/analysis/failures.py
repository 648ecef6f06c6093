"""What kinds of failure a level's requests met, counted: "87% rate-limited (HTTP 429)".

Tools write failures as free text (an HTTP body, an exception, a code). Each is reduced to
a kind a reader can act on, by the first rule that matches; a message no rule knows keeps
its own first words, with numbers dropped so that "Output too few tokens 39" and "... 40"
count as one kind.
"""

from __future__ import annotations

import re

import polars as pl

from loadlens.config import format_share

RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b429\b|rate.?limit|too many requests", re.I), "rate-limited (HTTP 429)"),
    (re.compile(r"not followed", re.I), "redirected (not followed)"),
    (re.compile(r"stream cut|mid-response", re.I), "stream cut mid-response"),
    (re.compile(r"closed before its response", re.I), "connection closed before a response"),
    (re.compile(r"connection refused", re.I), "connection refused"),
    (re.compile(r"read timeout", re.I), "read timeout"),
    (re.compile(r"time[d ]?out|deadline exceeded", re.I), "timed out"),
    (re.compile(r"too few tokens", re.I), "output too few tokens"),
    (re.compile(r"no output tokens", re.I), "no output tokens"),
    (re.compile(r"\(no message\)", re.I), "failed without a message"),
    (
        re.compile(r"connect(ion)? (refused|reset|error)|server disconnected", re.I),
        "connection failed",
    ),
    (
        re.compile(r"(?:HTTP\s*|status(?: code)?\s*:?\s*|')(?P<code>[45]\d\d)\b", re.I),
        "HTTP {code}",
    ),
)


def failure_kind(status: str, error: str | None) -> str:
    """One failed request's kind."""
    if status == "timeout":
        return "timed out"
    text = (error or "").strip()
    for pattern, label in RULES:
        if m := pattern.search(text):
            return label.format(**m.groupdict())
    if not text:
        return "failed without a message"
    words = re.sub(r"\s+", " ", re.sub(r"[-+]?\d+(?:\.\d+)?", "N", text))
    return words[:60].rstrip() + ("…" if len(words) > 60 else "")


def failure_kinds(requests: pl.DataFrame) -> pl.DataFrame:
    """Per run: each kind of failure and its count, most frequent first (cancelled requests,
    which the tool stopped waiting for when the run ended, are not failures)."""
    failed = requests.filter(pl.col("status").is_in(["error", "timeout"]))
    schema = {"run_id": pl.String, "kind": pl.String, "n": pl.Int64}
    if failed.is_empty():
        return pl.DataFrame(schema=schema)
    kinds = [failure_kind(s, e) for s, e in zip(failed["status"], failed["error"], strict=True)]
    return (
        failed.select("run_id")
        .with_columns(kind=pl.Series(kinds, dtype=pl.String))
        .group_by("run_id", "kind")
        .agg(n=pl.len().cast(pl.Int64))
        .sort(["run_id", "n", "kind"], descending=[False, True, False])
    )


def describe(kinds: pl.DataFrame, run_id: str, n_requests: int | None, top: int = 3) -> str:
    """`87% rate-limited (HTTP 429), 2% timed out` for one run; empty without rows."""
    rows = kinds.filter(pl.col("run_id") == run_id)
    if rows.is_empty() or not n_requests:
        return ""
    parts = [
        f"{format_share(n / n_requests)} {kind}" if n / n_requests >= 0.01 else f"{n} {kind}"
        for kind, n in zip(rows["kind"][:top], rows["n"][:top], strict=True)
    ]
    rest = int(rows["n"][top:].sum())
    if rest:
        parts.append(f"{rest} other")
    return ", ".join(parts)
