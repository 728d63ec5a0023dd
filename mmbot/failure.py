"""How a failed run is told: in one line, never as a traceback.

An error that ends a run reaches its caller wrapped in Trio's exception groups, nested as deep
as the nurseries it crossed. ``leaves`` unwraps them; ``expected`` says whether every one is a
fault of the input or of the world outside (the venue refused us or cannot be reached, a
recording is damaged, a config or command line is wrong) rather than a bug of mmbot's; and
``one_line`` tells the error in one line, for the user and for the event log's ``run_failed``.
"""

from __future__ import annotations

import trio

from mmbot.cli_errors import UsageError
from mmbot.config import ConfigError
from mmbot.facts.recording import RecordingError
from mmbot.ports import VenueError

EXPECTED: tuple[type[BaseException], ...] = (VenueError, RecordingError, ConfigError, UsageError)


def leaves(exc: BaseException) -> list[BaseException]:
    """The exceptions inside ``exc``'s (nested) groups, depth first; ``[exc]`` if it is none."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def expected(exc: BaseException) -> bool:
    """Whether every error in ``exc`` is one the user can act on (not a bug, not an interrupt)."""
    return all(isinstance(leaf, EXPECTED) for leaf in leaves(exc))


def only(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether every error in ``exc`` is one of ``kinds`` (e.g. only cancellations)."""
    return all(isinstance(leaf, kinds) for leaf in leaves(exc))


def one_line(exc: BaseException) -> str:
    """The error in one line: an expected error by its message, anything else by its type and
    message. In a group, the first bug if there is one (it matters most), else the first error,
    and how many more there were."""
    found = [leaf for leaf in leaves(exc) if not isinstance(leaf, trio.Cancelled)] or leaves(exc)
    first = next((leaf for leaf in found if not isinstance(leaf, EXPECTED)), found[0])
    message = next(iter(str(first).splitlines()), "")
    if isinstance(first, EXPECTED) and message:
        text = message
    else:
        text = f"{type(first).__name__}: {message}" if message else type(first).__name__
    return text if len(found) == 1 else f"{text} (and {len(found) - 1} more)"
