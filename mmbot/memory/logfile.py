"""Is this path an event log? The checks every command that reads one makes first, so that a
wrong path is one line naming what is wrong (no such file, a directory, not SQLite, SQLite but
not an mmbot log) instead of a traceback from deep inside a query; and the same for the path a
picture is to be written to."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


class LogFileError(ValueError):
    """The path given is not a readable event log (or not a writable picture path): one line."""


def check_event_log(path: str | Path) -> Path:
    """``path`` as a Path once it is a file holding an SQLite database with an ``events`` table.

    Opened read-only (``mode=ro``): the check writes nothing, not even a new empty database.
    A log whose run was killed (its ``-wal`` file left behind) reads as it is.
    """
    p = Path(path)
    if p.is_dir():
        raise LogFileError(f"{path}: is a directory, expected an event log file")
    if not p.exists():
        raise LogFileError(f"{path}: no such file")
    if not os.access(p, os.R_OK):
        raise LogFileError(f"{path}: not readable")
    try:
        conn = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'events'").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:  # "file is not a database", a damaged file
        raise LogFileError(f"{path}: not an event log ({exc})") from None
    if found is None:
        raise LogFileError(f"{path}: not an event log (an SQLite file without an events table)")
    return p


def check_output_file(path: str | Path, what: str = "output") -> Path:
    """A path a file can be written to: not a directory, in a directory that exists and is writable."""
    p = Path(path)
    if p.is_dir():
        raise LogFileError(f"{what} {path}: is a directory, expected a file name")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise LogFileError(f"{what} {path}: no such directory {parent}")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise LogFileError(f"{what} {path}: not writable")
    return p
