"""A recording file's lines: opened as gzip or plain text by its name, read in order, and a
damaged file (unreadable, truncated, corrupt, not UTF-8) reported as ``RecordingError`` naming
the file and the last line read. ``facts/recording.py`` gives the lines their meaning.

This module belongs to the facts layer: it imports only the stdlib.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from typing import IO, Any, Callable, Iterator


class RecordingError(Exception):
    """The file is not a readable recording; the message is one line naming file and line."""


def _open_text(path: str | Path) -> IO[str]:
    path = Path(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(line number, text) pairs; unreadable or truncated files become RecordingError."""
    return _numbered(path, _open_text)


def _open_bytes(path: str | Path) -> IO[bytes]:
    return gzip.open(path, "rb") if Path(path).suffix == ".gz" else open(path, "rb")


def _numbered(path: str | Path, opener: Callable[[str | Path], IO[Any]]) -> Iterator[tuple[int, Any]]:
    line_no = 0
    try:
        with opener(path) as f:
            for line_no, line in enumerate(f, start=1):
                yield line_no, line
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise _unreadable(path, line_no, exc) from None


def _unreadable(path: str | Path, line_no: int, exc: Exception) -> RecordingError:
    """Why the file could not be read past line ``line_no``, in one line."""
    if isinstance(exc, UnicodeDecodeError):
        return RecordingError(f"{path}: line {line_no + 1}: not UTF-8 text")
    if isinstance(exc, (EOFError, zlib.error)):
        return RecordingError(f"{path}: truncated or corrupt after line {line_no}: {exc}")
    return RecordingError(f"{path}: cannot read after line {line_no}: {exc}")  # gzip.BadGzipFile too


_CHUNK_BYTES = 1 << 16


def byte_line_chunks(path: str | Path) -> Iterator[tuple[int, list[bytes]]]:
    """The file's lines, undecoded and without their ends, in chunks of whole lines: (number of the
    chunk's first line, its lines). Splitting a block in one call spares the buffered reader's
    per-line work, a tenth of reading a recording; a damaged file is reported as there."""
    line_no = 0
    try:
        with _open_bytes(path) as f:
            tail = b""
            while block := f.read(_CHUNK_BYTES):
                lines = (tail + block).split(b"\n")
                tail = lines.pop()  # unfinished: its end is in the next block
                if lines:
                    yield line_no + 1, lines
                    line_no += len(lines)
            if tail:
                yield line_no + 1, [tail]
    except (OSError, EOFError, zlib.error) as exc:
        raise _unreadable(path, line_no, exc) from None
