"""`loadlens` and `python -m loadlens`: the CLI, with a Ctrl-C during start-up (while the
analysis stack imports) ending as quietly as one during a command: one line, exit 130."""

from __future__ import annotations

import signal
import sys


def main() -> None:
    try:
        from loadlens import cli

        cli.after_command.append(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        cli.app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except SystemExit as e:
        # typer ends a Ctrl-C outside a command (while parsing) with a silent 130
        if e.code == 130 and not cli.interrupt_said:
            sys.stderr.write("interrupted\n")
        # The command has ended and said so: a Ctrl-C now (while Python shuts down) would
        # only turn a finished run into a killed one.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise


if __name__ == "__main__":
    main()
