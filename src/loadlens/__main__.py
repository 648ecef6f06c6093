"""`loadlens` and `python -m loadlens`: the CLI, with a Ctrl-C during start-up (while the
analysis stack imports) ending as quietly as one during a command: one line, exit 130."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from loadlens.cli import app

        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
