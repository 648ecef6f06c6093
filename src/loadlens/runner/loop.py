"""The event loop the runner times requests on: uvloop where it is installed (`pip install
'loadlens[fast]'`), asyncio's own otherwise. uvloop halves the client's CPU per request
(make bench-runner: 1.34 -> 0.73 ms for the lean client at 100 streams), time in which
no other stream's chunk can be stamped. LOADLENS_NO_UVLOOP=1 keeps asyncio's loop."""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def name() -> str:
    """The loop `run` uses: "uvloop" or "asyncio"."""
    if os.environ.get("LOADLENS_NO_UVLOOP") or importlib.util.find_spec("uvloop") is None:
        return "asyncio"
    return "uvloop"


def run(main: Coroutine[Any, Any, T]) -> T:
    if name() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
