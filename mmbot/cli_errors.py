"""What every subcommand shares to fail well: a bad argument, config or input file is one line
naming it and exit code 2 (its own module, so that ``cli`` and ``cli_live`` share one class
without importing each other — run as ``python -m mmbot.cli`` the first is ``__main__``)."""

from __future__ import annotations

EXIT_USAGE = 2


class UsageError(Exception):
    """A bad command line, config or input file: printed as one line, exit code 2."""
