"""``mmbot decode FILE...``: show what mmbot makes of captured or recorded Polymarket frames.

Each file holds one JSON document (an object or an array, pretty-printed or not), or JSON
Lines with one frame per line, or an mmbot recording (DESIGN §10: a header line, then
``{"t": recv_ns, "ch": channel, "frame": raw text}`` lines); ``.gz`` files are read too.
Every decoded domain message prints as one line ``<ClassName> <json of its fields>`` so a
person can check a capture against the wire decoder, and a last line counts everything.
"""

from __future__ import annotations

import enum
import gzip
import json
import zlib
from typing import Any, Iterator, TextIO

import attrs
import msgspec

from mmbot.facts.recording import FORMAT as RECORDING_FORMAT
from mmbot.model import MalformedFrame
from mmbot.venues.polymarket.wire import (
    WireError,
    decode_market_frame,
    decode_order_record,
    decode_trade_record,
    decode_user_frame,
)
from mmbot.venues.polymarket.wire_base import BAD_JSON, excerpt

_USER_EVENTS = frozenset({"order", "trade"})


class _Peek(msgspec.Struct):
    """The few keys that say what a line or frame is; everything else is skipped unread."""

    event_type: Any = None
    taker_order_id: Any = None
    original_size: Any = None
    format: Any = None
    t: Any = None
    ch: Any = None
    frame: Any = None


_PEEK = msgspec.json.Decoder(_Peek | list[_Peek])
_JSON = msgspec.json.Decoder(msgspec.Raw)  # validates without building Python objects

# How a frame is decoded, by the kind _frame_of gives it.
_DECODERS = {
    "market": decode_market_frame,
    "user": decode_user_frame,
}
_RECORD_DECODERS = {
    "trade record": decode_trade_record,
    "order record": decode_order_record,
}


@attrs.frozen
class _Frame:
    text: str
    kind: str  # a key of _DECODERS or _RECORD_DECODERS
    recv_ns: int = 0


def run_decode(paths: list[str], out: TextIO, err: TextIO) -> int:
    """Decode every frame of every file onto ``out``; 0 if all files were read, else 2."""
    texts = []
    for path in paths:
        try:
            texts.append(_read_text(path))
        except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
            err.write(f"mmbot decode: cannot read {path}: {exc}\n")
            return 2
    frames = messages = malformed = 0
    for file_index, text in enumerate(texts):
        for frame_index, frame in enumerate(_frames(text)):
            frames += 1
            for decoded in _decode(frame, cid=f"{file_index}:{frame_index}"):
                messages += 1
                malformed += isinstance(decoded, MalformedFrame)
                out.write(f"{type(decoded).__name__} {_to_json(decoded)}\n")
    out.write(f"frames: {frames}, messages: {messages}, malformed: {malformed}\n")
    return 0


def _read_text(path: str) -> str:
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as stream:
            return stream.read().decode("utf-8")
    with open(path, encoding="utf-8") as stream:
        return stream.read()


def _is_json(text: str) -> bool:
    try:
        _JSON.decode(text)
    except BAD_JSON:
        return False
    return True


def _frames(text: str) -> Iterator[_Frame]:
    """The whole file as one document when it parses as one; else one frame per line when
    the first lines parse alone (JSON Lines, recordings); else the whole (broken) text."""
    pieces = [text]
    if not _is_json(text):
        lines = [line for line in text.splitlines() if line.strip()]
        if any(_is_json(line) for line in lines[:2]):
            pieces = lines
    for piece in pieces:
        if piece.strip():
            frame = _frame_of(piece)
            if frame is not None:
                yield frame


def _frame_of(text: str) -> _Frame | None:
    """What one piece of a file is; None for a recording header or a channel we do not decode."""
    try:
        peek = _PEEK.decode(text)
    except BAD_JSON:
        return _Frame(text, "market")  # not JSON objects: the market decoder says why
    if isinstance(peek, list):
        return _Frame(text, "user" if any(map(_is_user_event, peek)) else "market")
    if peek.format == RECORDING_FORMAT:
        return None
    if isinstance(peek.frame, str) and isinstance(peek.ch, str) and isinstance(peek.t, int):
        return _Frame(peek.frame, peek.ch, peek.t) if peek.ch in _DECODERS else None
    if _is_user_event(peek):
        return _Frame(text, "user")
    if peek.event_type is None and peek.taker_order_id is not None:
        return _Frame(text, "trade record")
    if peek.event_type is None and peek.original_size is not None:
        return _Frame(text, "order record")
    return _Frame(text, "market")


def _is_user_event(peek: _Peek) -> bool:
    return isinstance(peek.event_type, str) and peek.event_type in _USER_EVENTS


def _decode(frame: _Frame, cid: str) -> list[Any]:
    if frame.kind in _DECODERS:
        return _DECODERS[frame.kind](frame.text, recv_ns=frame.recv_ns, cid=cid)
    try:
        return [_RECORD_DECODERS[frame.kind](frame.text, recv_ns=frame.recv_ns, cid=cid)]
    except WireError as exc:
        return [
            MalformedFrame(
                cid=cid,
                recv_ns=frame.recv_ns,
                channel="user",
                error=str(exc),
                excerpt=excerpt(frame.text),
            )
        ]


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple) and value and isinstance(value[0], msgspec.Struct):  # PriceChange.changes
        return [{k: _plain(v) for k, v in msgspec.structs.asdict(item).items()} for item in value]
    return value


def _to_json(message: Any) -> str:
    if isinstance(message, msgspec.Struct):  # a HotMessage (PriceChange)
        fields = {k: _plain(v) for k, v in msgspec.structs.asdict(message).items()}
    else:
        fields = attrs.asdict(message, value_serializer=lambda _inst, _field, value: _plain(value))
    return json.dumps(fields, ensure_ascii=False)
