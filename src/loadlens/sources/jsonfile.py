"""One reader of the JSON that real benchmark tools write, standard or not.

Tools written in Python emit bare `NaN`, `Infinity` and `-Infinity` (json.dumps's default),
which orjson refuses; stdlib json reads them. orjson is tried first because it is several
times faster on the large per-request files; the fallback only runs on such files.
"""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import orjson

from loadlens.errors import TraceFormatError


def read_json(path: Path, data: bytes | None = None) -> Any:
    """The JSON document in `path` (or `data`, read from it), NaN/Infinity included, a
    leading UTF-8 byte-order mark passed over; a TraceFormatError naming the file, line and
    column otherwise (nesting too deep for a trace included)."""
    try:
        raw = path.read_bytes() if data is None else data
    except OSError as e:
        raise TraceFormatError(path, f"cannot read: {e.strerror or e}") from None
    raw = raw.removeprefix(codecs.BOM_UTF8)
    if raw[:4].count(0):  # stdlib json would read UTF-16/32; no tool writes it, detect can't
        raise TraceFormatError(path, "not UTF-8 text (UTF-16 or UTF-32?): save it as UTF-8")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return json.loads(raw)
    except RecursionError:
        raise TraceFormatError(path, "not a trace: JSON nested too deeply") from None
    except UnicodeDecodeError as e:
        raise TraceFormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise TraceFormatError(
            path, f"not valid JSON: {e.msg} at column {e.colno}", line=e.lineno
        ) from None


def read_json_object(path: Path, data: bytes | None = None) -> dict[str, Any]:
    """`read_json`, refusing anything but an object at the top level."""
    doc = read_json(path, data)
    if not isinstance(doc, dict):
        raise TraceFormatError(path, f"expected a JSON object at the top level, got {_kind(doc)}")
    return doc


def as_float(value: Any) -> float | None:
    """A number a tool wrote as a number or as text ("inf", "12.5"); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _kind(doc: Any) -> str:
    return {list: "an array", str: "a string", type(None): "null"}.get(type(doc), "a number")
