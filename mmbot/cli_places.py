"""Where the commands find things and write, checked before anything starts: the market listing's
URL for a CLOB; URLs given on the command line (``check_url``); ports to listen on
(``check_port_free``); event logs, which are never overwritten (``event_log_path``: a timestamped
default name, or a ``--db`` that must not exist yet); files to write (``check_out_path``).

Each refusal is a ``UsageError``: one line naming the option, exit code 2. Its own module, so that
``cli``, ``cli_live``, ``cli_run`` and ``cli_wallet_chain`` share them without importing each other.
"""

from __future__ import annotations

import errno
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable
from urllib.parse import urlsplit

from mmbot.cli_errors import UsageError

if TYPE_CHECKING:
    from mmbot.config import Config

GAMMA_FOR = {"https://clob.polymarket.com": "https://gamma-api.polymarket.com"}  # Polymarket lists elsewhere
WS = ("ws", "wss")
HTTP = ("http", "https")
OUT = Path("out")


def gamma_url(gamma: str | None, rest: str) -> str:
    """The market listing's base URL: ``--gamma``; else Polymarket's Gamma for its CLOB; else the
    simulator's, ``{rest}/gamma`` (any other CLOB is taken for a simulator)."""
    rest = rest.rstrip("/")
    return gamma or GAMMA_FOR.get(rest, f"{rest}/gamma")


# --------------------------------------------------------------------------- URLs


def url_problem(value: str, schemes: Iterable[str]) -> str | None:
    """Why ``value`` is not a ``scheme://host[:port][/path]`` URL of one of ``schemes`` (None: it is)."""
    schemes = tuple(schemes)
    want = " or ".join(f"{s}://" for s in schemes)
    if not value or any(c.isspace() for c in value):
        return f"expected a {want}host URL, got {value!r}"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError as exc:
        return f"expected a {want}host URL, got {value!r} ({exc})"
    if parts.scheme.lower() not in schemes:
        return f"expected a {want}host URL, got {value!r}"
    if not parts.hostname:
        return f"expected a {want}host URL with a host, got {value!r}"
    if port == 0:
        return f"expected a {want}host URL with a port from 1 to 65535, got {value!r}"
    return None


def check_url(flag: str, value: str | None, schemes: Iterable[str], who: str = "mmbot") -> str | None:
    """``value`` if it is a URL of one of ``schemes`` with a host (None passes: the option was left
    out); else ``UsageError`` "who: --ws: expected a ws:// or wss://host URL, got 'x'"."""
    if value is None:
        return None
    problem = url_problem(value, schemes)
    if problem is not None:
        raise UsageError(f"{who}: {flag}: {problem}")
    return value


# --------------------------------------------------------------------------- ports


def port_in_use(host: str, port: int) -> bool:
    """Whether listening on ``host:port`` would fail because something else listens there (a port
    in TIME_WAIT is free: servers bind with SO_REUSEADDR, and so does this check). Port 0 is free."""
    if port == 0:
        return False
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def port_in_use_error(flag: str, host: str, port: int, who: str = "mmbot") -> UsageError | None:
    """The one-line error for a port that is taken (None when it is free), for a command to raise."""
    if not port_in_use(host, port):
        return None
    return UsageError(f"{who}: {flag}: port {port} is in use on {host} (another mmbot? choose another port,"
                      " or 0 for any free one)")


def check_port_free(flag: str, host: str, port: int, who: str = "mmbot") -> None:
    error = port_in_use_error(flag, host, port, who)
    if error is not None:
        raise error


# --------------------------------------------------------------------------- files


def _taken(path: Path) -> Path | None:
    """The file that makes ``path`` taken as an event log: itself, or its WAL left beside it."""
    for candidate in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if candidate.exists() or candidate.is_symlink():
            return candidate
    return None


def _make_parent(path: Path, flag: str, who: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{who}: {flag} {path}: cannot make its directory {path.parent}: {exc.strerror}") from None


def fresh_db(path: Path, who: str = "mmbot", flag: str = "--db") -> Path:
    """``path`` ready for a new event log: never an existing file (a log is never overwritten), nor
    a directory; its missing directories made."""
    if path.is_dir():
        raise UsageError(f"{who}: {flag} {path}: is a directory; expected the event log's file name")
    taken = _taken(path)
    if taken is not None:
        raise UsageError(f"{who}: {flag} {taken}: exists; choose another {flag} or delete it")
    _make_parent(path, flag, who)
    return path


def timestamp(ns: int) -> str:
    """``YYYYMMDD-HHMMSS`` in UTC of a wall-clock reading in nanoseconds."""
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=timezone.utc).strftime("%Y%m%d-%H%M%S")


def default_db(stem: str, *, wall: Callable[[], int] | None = None, directory: Path = OUT) -> Path:
    """``out/<stem>-YYYYMMDD-HHMMSS.db`` (UTC now), with -2, -3 … added when that name is taken."""
    if wall is None:
        from mmbot.clock import wall_ns as wall
    base = f"{stem}-{timestamp(wall())}"
    path, n = directory / f"{base}.db", 1
    while _taken(path) is not None:
        n += 1
        path = directory / f"{base}-{n}.db"
    return path


def event_log_path(db: str | None, stem: str, who: str = "mmbot", *, wall: Callable[[], int] | None = None) -> Path:
    """The event log a command writes: ``--db`` when given (refused if it exists or is a
    directory), else a new timestamped name under ``out/``; its directory made."""
    if db is not None:
        return fresh_db(Path(db), who)
    return fresh_db(default_db(stem, wall=wall), who)


def check_out_path(flag: str, value: str, who: str = "mmbot", *, overwrite: bool = True) -> Path:
    """A file to write (``--out``, ``--plot``): not a directory; not an existing file unless
    ``overwrite``; its missing directories made."""
    path = Path(value)
    if value.endswith(("/", "\\")) or path.is_dir():
        raise UsageError(f"{who}: {flag} {value}: is a directory; expected a file name")
    if not overwrite and (path.exists() or path.is_symlink()):
        raise UsageError(f"{who}: {flag} {value}: exists; choose another {flag} or delete it")
    _make_parent(path, flag, who)
    return path


def load_config_or_refuse(path: str | None, who: str = "mmbot") -> Config:
    """``--config`` read and checked (types, then ranges), or one line naming the file or field."""
    from mmbot.config import ConfigError, load_config

    if path is not None and Path(path).exists() and not Path(path).is_file():
        raise UsageError(f"{who}: --config {path}: not a file")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise UsageError(f"mmbot: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{who}: --config {path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_event_log(value: str, who: str = "mmbot") -> Path:
    """An event log to read (``status``, ``report``, ``explain``…): an existing SQLite file, else one
    line — no such file, a directory, or not an SQLite database (an empty file is one not begun)."""
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"{who}: {value}: is a directory; expected an event log (.db)")
    if not path.is_file():
        raise UsageError(f"{who}: {value}: no such event log")
    try:
        with path.open("rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise UsageError(f"{who}: {value}: cannot read it: {exc.strerror}") from None
    if head and head != SQLITE_MAGIC:
        raise UsageError(f"{who}: {value}: not an SQLite database, so not an mmbot event log")
    return path
