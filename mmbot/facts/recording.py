"""Recordings: a header line, then every received frame with its receive time (DESIGN §10).

A recording is JSON Lines, gzip-compressed when the file name ends in ``.gz``. Line 1 is the
header (format, version, start time, the markets with their token ids, tick and minimum sizes,
end times and fees); every further line is one frame exactly as it was received:
``{"t": <receive ns>, "ch": "market"|"user"|"underlying", "frame": "<text>"}``.

Replay must be byte-for-byte reproducible, so the writer adds nothing of its own: compact JSON
in a fixed key order, and gzip with ``mtime=0`` and no file name, so the same content always
gives the same bytes. Prices and sizes in the header are decimal strings, as on the wire.

This module belongs to the facts layer: it imports only ``mmbot.model``, msgspec and the stdlib
(and ``recording_file``, which reads a recording's lines and reports a damaged file).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import IO, Any, Iterator

import attrs
import msgspec

from mmbot.facts.recording_file import (  # noqa: F401  (RecordingError re-exported: readers catch it from here)
    RecordingError,
    byte_line_chunks,
    text_lines,
)
from mmbot.model import ONE, MarketInfo, format_micro, parse_micro

FORMAT = "mmbot-recording"
VERSION = 1
CHANNELS = ("market", "user", "underlying")

_COMPACT = {"separators": (",", ":")}


@attrs.frozen(kw_only=True)
class RecordingHeader:
    start_ns: int
    markets: tuple[MarketInfo, ...]
    source: str = ""
    seed: int | None = None
    version: int = VERSION


# --------------------------------------------------------------------------- header <-> JSON


def _market_to_json(info: MarketInfo) -> dict[str, Any]:
    return {
        "market": info.market,
        "tokens": list(info.tokens),
        "outcomes": list(info.outcomes),
        "tick": format_micro(info.tick),
        "min_size": format_micro(info.min_size),
        "end_ns": info.end_ns,
        "fee_rate": format_micro(info.fee_rate),
        "fee_exponent": info.fee_exponent,
        "neg_risk": info.neg_risk,
        "slug": info.slug,
        "question": info.question,
    }


def header_to_json(header: RecordingHeader) -> str:
    return json.dumps(
        {
            "format": FORMAT,
            "version": header.version,
            "start_ns": header.start_ns,
            "markets": [_market_to_json(m) for m in header.markets],
            "source": header.source,
            "seed": header.seed,
        },
        **_COMPACT,
    )


def _require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise ValueError(f"{where}: missing {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ValueError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _pair_of_strings(value: Any, where: str) -> tuple[str, str]:
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ValueError(f"{where}: expected a list of two strings")
    return (value[0], value[1])


def _micro(obj: dict[str, Any], key: str, default: int, where: str) -> int:
    if key not in obj:
        return default
    try:
        return parse_micro(_require(obj, key, str, where))
    except ValueError as exc:
        raise ValueError(f"{where}: {key!r}: {exc}") from None


def _market_from_json(obj: Any, where: str) -> MarketInfo:
    if not isinstance(obj, dict):
        raise ValueError(f"{where}: expected an object")
    defaults = MarketInfo(market="", tokens=("", ""))
    end_ns = obj.get("end_ns")
    if end_ns is not None and (not isinstance(end_ns, int) or isinstance(end_ns, bool)):
        raise ValueError(f"{where}: 'end_ns' must be an integer or null")
    return MarketInfo(
        market=_require(obj, "market", str, where),
        tokens=_pair_of_strings(_require(obj, "tokens", list, where), f"{where}: 'tokens'"),
        outcomes=_pair_of_strings(obj.get("outcomes", list(defaults.outcomes)), f"{where}: 'outcomes'"),
        tick=_micro(obj, "tick", defaults.tick, where),
        min_size=_micro(obj, "min_size", defaults.min_size, where),
        end_ns=end_ns,
        fee_rate=_micro(obj, "fee_rate", defaults.fee_rate, where),
        fee_exponent=_require(obj, "fee_exponent", int, where) if "fee_exponent" in obj else 1,
        neg_risk=_require(obj, "neg_risk", bool, where) if "neg_risk" in obj else False,
        slug=_require(obj, "slug", str, where) if "slug" in obj else "",
        question=_require(obj, "question", str, where) if "question" in obj else "",
    )


def header_from_json(line: str) -> RecordingHeader:
    """Parse a header line; raises ValueError with a short reason."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"header is not JSON ({exc.msg})") from None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ValueError(f"not an {FORMAT} file (no header with \"format\": \"{FORMAT}\")")
    version = _require(obj, "version", int, "header")
    if version != VERSION:
        raise ValueError(f"unsupported recording version {version} (this reader knows {VERSION})")
    seed = obj.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise ValueError("header: 'seed' must be an integer or null")
    markets = _require(obj, "markets", list, "header")
    header = RecordingHeader(
        start_ns=_require(obj, "start_ns", int, "header"),
        markets=tuple(_market_from_json(m, f"header: market {i}") for i, m in enumerate(markets)),
        source=_require(obj, "source", str, "header") if "source" in obj else "",
        seed=seed,
        version=version,
    )
    check_header(header)
    return header


MAX_FEE_EXPONENT = 4  # the venue's formula uses 1 today (protocol doc §8); past 4 it is damage, not a fee


def _market_problem(info: MarketInfo) -> str | None:
    if not info.market:
        return "'market' is empty"
    if not all(info.tokens):
        return "a token id is empty"
    if info.tokens[0] == info.tokens[1]:
        return f"both outcomes have the same token {info.tokens[0]!r}"
    if not 0 < info.tick < ONE or ONE % info.tick:
        return f"'tick' must be above 0, below 1 and divide 1, got {format_micro(info.tick)}"
    if info.min_size < 0:
        return f"'min_size' must not be negative, got {format_micro(info.min_size)}"
    if not 0 <= info.fee_rate <= ONE:
        return f"'fee_rate' must be from 0 to 1, got {format_micro(info.fee_rate)}"
    if not 0 <= info.fee_exponent <= MAX_FEE_EXPONENT:
        return f"'fee_exponent' must be from 0 to {MAX_FEE_EXPONENT}, got {info.fee_exponent}"
    if info.end_ns is not None and info.end_ns < 0:
        return f"'end_ns' must not be negative, got {info.end_ns}"
    return None


def check_header(header: RecordingHeader) -> None:
    """Refuse a header no recorder writes (ValueError, one line naming the market and field):
    negative times, a tick outside (0, 1) or not dividing 1, a negative minimum size, a fee rate
    outside [0, 1] or an exponent outside [0, 4], a market listed twice, the same token twice in a
    market or in two markets. (A market may end before the recording starts: a listed market can
    still trade past its end date.)"""
    if header.start_ns < 0:
        raise ValueError(f"header: 'start_ns' must not be negative, got {header.start_ns}")
    seen_markets: dict[str, int] = {}
    seen_tokens: dict[str, int] = {}
    for i, info in enumerate(header.markets):
        where = f"header: market {i}"
        problem = _market_problem(info)
        if problem is not None:
            raise ValueError(f"{where}: {problem}")
        if info.market in seen_markets:
            raise ValueError(f"{where}: market {info.market!r} is listed twice (also market {seen_markets[info.market]})")
        seen_markets[info.market] = i
        for token in info.tokens:
            if token in seen_tokens:
                raise ValueError(f"{where}: token {token!r} is also in market {seen_tokens[token]}")
            seen_tokens[token] = i


# --------------------------------------------------------------------------- reading


def read_header(path: str | Path) -> RecordingHeader:
    """The recording's header line, or RecordingError with a one-line reason."""
    for _, line in text_lines(path):
        try:
            return header_from_json(line)
        except ValueError as exc:
            raise RecordingError(f"{path}: line 1: {exc}") from None
    raise RecordingError(f"{path}: empty file, expected a {FORMAT} header")


class _FrameLine(msgspec.Struct):
    t: int
    ch: str
    frame: str


# A frame line decoded straight from its bytes: half what the text wrapper and the standard
# library's json cost a frame. A line it refuses is read again the slow way, for the reason.
_FRAME_LINE = msgspec.json.Decoder(_FrameLine)


def _frame_from_bytes(line: bytes) -> tuple[int, str, str]:
    """A frame line ``_FRAME_LINE`` refused, read the slow way: the frame, or ValueError's reason."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    return _frame_from_json(text)


def _frame_from_json(line: str) -> tuple[int, str, str]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg})") from None
    if not isinstance(obj, dict):
        raise ValueError("expected an object with t, ch, frame")
    t = _require(obj, "t", int, "frame line")
    if t < 0:
        raise ValueError(f"negative receive time {t}")
    channel = _require(obj, "ch", str, "frame line")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}")
    return t, channel, _require(obj, "frame", str, "frame line")


def iter_frames(path: str | Path) -> Iterator[tuple[int, str, str]]:
    """(receive ns, channel, frame text) for every frame, in file order.

    A malformed line, or a receive time earlier than the line before, raises RecordingError
    naming the line: a recording is produced by our own writer, so damage means the file
    cannot be trusted as a whole.
    """
    last_t = -1
    decode = _FRAME_LINE.decode
    for first_no, lines in byte_line_chunks(path):
        for line_no, line in enumerate(lines, start=first_no):
            if line_no == 1:
                try:
                    header_from_json(line.decode("utf-8"))
                except UnicodeDecodeError:
                    raise RecordingError(f"{path}: line 1: not UTF-8 text") from None
                except ValueError as exc:
                    raise RecordingError(f"{path}: line 1: {exc}") from None
                continue
            try:
                fast = decode(line)
            except msgspec.DecodeError:
                fast = None
            if fast is not None and fast.t >= 0 and fast.ch in CHANNELS:
                t, channel, frame = fast.t, fast.ch, fast.frame
            elif not line.strip():
                continue
            else:
                try:
                    t, channel, frame = _frame_from_bytes(line)
                except ValueError as exc:
                    raise RecordingError(f"{path}: line {line_no}: {exc}") from None
            if t < last_t:
                raise RecordingError(f"{path}: line {line_no}: time goes backwards ({t} < {last_t})")
            last_t = t
            yield t, channel, frame


def count_frames(path: str | Path) -> int:
    """How many frame lines follow the header (for a progress bar); lines are not decoded."""
    read_header(path)
    return sum(1 for first_no, lines in byte_line_chunks(path)
               for line_no, line in enumerate(lines, start=first_no) if line_no > 1 and line.strip())


# --------------------------------------------------------------------------- writing


class RecordingWriter:
    """Writes a recording with deterministic bytes. Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._raw: IO[bytes] = open(self.path, "wb")
        self._out: IO[bytes] = (
            gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, mtime=0)
            if self.path.suffix == ".gz"
            else self._raw
        )
        self._header_written = False
        self._last_t: int | None = None
        self.frames_written = 0

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write_line(self, text: str) -> None:
        self._out.write(text.encode("utf-8"))
        self._out.write(b"\n")

    def write_header(self, header: RecordingHeader) -> None:
        if self._header_written:
            raise ValueError("the header is written once, first")
        self._write_line(header_to_json(header))
        self._header_written = True

    def write_frame(self, t_ns: int, channel: str, text: str) -> None:
        if not self._header_written:
            raise ValueError("write_header must come before any frame")
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        if self._last_t is not None and t_ns < self._last_t:
            raise ValueError(f"frame times must not decrease ({t_ns} < {self._last_t})")
        self._last_t = t_ns
        self._write_line(json.dumps({"t": t_ns, "ch": channel, "frame": text}, **_COMPACT))
        self.frames_written += 1

    def close(self) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()
