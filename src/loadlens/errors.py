"""One exception type per family, caught once in the CLI and printed as one line."""

from __future__ import annotations

from pathlib import Path


class LoadlensError(Exception):
    """Base of every error a user can act on."""


class TraceFormatError(LoadlensError):
    """A trace file cannot be read as the format it claims (or any format)."""

    def __init__(
        self,
        path: str | Path,
        problem: str,
        *,
        field: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path)
        self.problem = problem
        self.field = field
        self.line = line
        self.hint = hint
        where = self.path + (f":{line}" if line is not None else "")
        what = f"field '{field}': {problem}" if field else problem
        super().__init__(f"{where}: {what}" + (f" ({hint})" if hint else ""))


class ConfigError(LoadlensError):
    """A config file, SLO spec or command-line option is invalid."""


class WarehouseError(LoadlensError):
    """The warehouse cannot answer (no such deployment, no runs, ...)."""


class InternalError(Exception):
    """A bug in loadlens met on a given input: carries the file or run it happened on, so
    the CLI can say where (exit 3) instead of ending in a traceback."""

    def __init__(self, where: str, cause: BaseException) -> None:
        self.where = where
        self.cause = cause
        super().__init__(f"{where}: {type(cause).__name__}: {cause}")


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a write, with what became of it: `committed` True when every row of
    the write was stored (the interrupt came while committing and waited for it), False
    when none was (rolled back). A write is never left half-stored."""

    def __init__(self, committed: bool) -> None:
        super().__init__("committed" if committed else "rolled back")
        self.committed = committed


def causes(e: BaseException) -> list[BaseException]:
    """The exception and everything it was raised from, outermost first."""
    chain, seen = [], set()
    current: BaseException | None = e
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return chain


def ctrl_c(e: BaseException) -> bool:
    """A Ctrl-C anywhere in the exception's chain: as Python raises it, or as DuckDB
    reports a statement it cut short (its InterruptException, or "Query interrupted")."""
    return any(
        isinstance(c, KeyboardInterrupt)
        or type(c).__name__ == "InterruptException"
        or (isinstance(c, RuntimeError) and "Query interrupted" in str(c))
        for c in causes(e)
    )
