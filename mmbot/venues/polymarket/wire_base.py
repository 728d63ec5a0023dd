"""What both Polymarket channels share: the wire error, field parsers and the frame decoder.

Decoding happens in two explicit steps (DESIGN §13). msgspec first decodes the JSON straight
into venue-shaped Structs that mirror the wire (a tagged union on ``event_type``; prices and
sizes stay strings there). Mapping functions then turn each Struct into the frozen domain
message of mmbot.model, in integer micro-units, using the parsers here. Keeping the venue shape
apart means a venue quirk is handled in one mapping function and never leaks further.

Frame rules (protocol doc §2, §10): a frame is one object or an array of objects; array
elements get the cid ``f"{cid}.{i}"``. Non-JSON text (``PONG``, ``NO NEW ASSETS``) is not a
message and yields nothing. Bad input never raises out of a frame decoder: the offending
element becomes a ``MalformedFrame`` in its place and its neighbours survive.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable, Union

import msgspec

from mmbot.model import ONE, MalformedFrame, Side


class WireError(ValueError):
    """A venue frame or field that cannot be turned into a domain message (bad input, not a bug)."""


# --------------------------------------------------------------------------- field parsing

# Besides DecodeError, msgspec raises RecursionError for absurdly deep nesting and
# UnicodeDecodeError for bytes that are not UTF-8: all three are just bad input.
BAD_JSON = (msgspec.DecodeError, RecursionError, UnicodeDecodeError)

# A venue time: whole unix seconds or milliseconds, as a JSON number or a string of digits, or
# ISO-8601 text; as_seconds and as_millis read every form.
Stamp = Union[str, int]


SCALE = (1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)  # by number of decimal places


def parse_decimal(text: str) -> int:
    """A venue decimal string ("0.513", "3149725.72", "150.0") as exact integer micro-units.

    The uncached hot-path twin of model.parse_micro, equal to it on every string it accepts. It
    takes only the plain form the venue sends (ASCII digits with at most one dot; no sign,
    exponent, whitespace or underscore) and more than six places only when the extra ones are
    zeros. Use parse_price, its cached front, unless the text is unlikely to repeat.
    """
    whole, _, frac = text.partition(".")
    if len(frac) > 6:
        extra = frac[6:]
        if extra.strip("0"):
            kind = "more than six decimal places" if extra.isdigit() else "not a decimal"
            raise WireError(f"{kind}: {text[:40]!r}")
        frac = frac[:6]
    digits = whole + frac
    if not (digits.isdigit() and digits.isascii()):
        raise WireError(f"not a decimal: {text[:40]!r}")
    try:
        return int(digits) * SCALE[len(frac)]
    except ValueError:  # past Python's limit on digits in an int string
        raise WireError(f"number too long: {text[:40]!r}") from None


# Prices sit on a grid of at most a thousand values and the venue's tops repeat, so the hot
# path reads plain dicts keyed by the venue's text (a hit is one C-level lookup, cheaper than
# functools.lru_cache's wrapper). Only values that parsed are stored, so a text that raises is
# never cached; a dict that reaches CACHE_LIMIT entries is emptied and refills from the feed.
CACHE_LIMIT = 16384
PRICES: dict[str, int] = {}
BEST_BIDS: dict[str | None, int | None] = {None: None}
BEST_ASKS: dict[str | None, int | None] = {None: None}


def remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    """Stores ``value`` under ``key`` in one of the caches above, keeping it bounded."""
    if len(cache) >= CACHE_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def parse_price(text: str) -> int:
    """parse_decimal through the PRICES cache: the same value, or the same WireError."""
    value = PRICES.get(text)
    return remember(PRICES, text, parse_decimal(text)) if value is None else value


# Sizes seldom repeat as a whole ("264.9", "86.19") but their parts do: a size is the sum of
# its whole part, in micro-units, and its fraction's. A part is stored only from a size that
# parsed, and only in the plain form (1-18 digits before the dot, at most six after it), so
# any sum of stored parts is the value parse_decimal gives the text they spell.
WHOLES: dict[str, int] = {}  # "264" -> 264_000_000
FRACTIONS: dict[str, int] = {"": 0}  # "9" -> 900_000, "19" -> 190_000


def parse_size(text: str) -> int:
    """parse_decimal through the WHOLES and FRACTIONS caches: the same value or WireError."""
    whole, _, frac = text.partition(".")
    try:
        return WHOLES[whole] + FRACTIONS[frac]
    except KeyError:
        value = parse_decimal(text)
        if 0 < len(whole) <= 18 and len(frac) <= 6:
            remember(WHOLES, whole, int(whole) * ONE)
            remember(FRACTIONS, frac, int(frac) * SCALE[len(frac)] if frac else 0)
        return value


def parse_count(value: str | int, field: str) -> int:
    """A non-negative whole number sent as a string or a JSON integer (timestamps, bps)."""
    if isinstance(value, int):
        if value < 0:
            raise WireError(f"{field}: negative: {value}")
        return value
    if value.isdigit() and value.isascii() and len(value) <= 30:
        return int(value)
    raise WireError(f"{field}: not a whole number: {value[:40]!r}")


def optional_count(value: str | int | None, field: str) -> int | None:
    return None if value is None or value == "" else parse_count(value, field)


def optional_price(text: str | None) -> int | None:
    return None if text is None or text == "" else parse_price(text)


# Venue timestamps come as ms or as unix seconds depending on field and capture (protocol §10.8).
# 10**11 ms is 1973 and 10**11 s is the year 5138, so a value below it must be seconds; from
# 10**14 on it would be milliseconds past the year 5138, which no venue time is (µs or ns).
_SECONDS_LIMIT = 10**11
_MILLIS_LIMIT = 10**14

# ISO-8601 in its extended form (REST answers and some user-channel captures): date, "T" or a
# space, time to the second, an optional fraction, an optional zone (none means UTC).
_ISO = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2})(?::?([0-9]{2}))?)?"
)
_EPOCH = datetime(1970, 1, 1)


def _iso_millis(text: str, field: str) -> int:
    """Exact unix milliseconds of an ISO-8601 time; digits past the millisecond are cut (floor)."""
    match = _ISO.fullmatch(text)
    if match is None:
        raise WireError(f"{field}: not a time: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, _, sign, zone_h, zone_m = match.groups()
    try:
        since_epoch = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second)) - _EPOCH
    except ValueError as exc:  # a day, hour or second that does not exist
        raise WireError(f"{field}: not a time: {text[:40]!r} ({exc})") from None
    seconds = since_epoch.days * 86_400 + since_epoch.seconds
    if sign is not None:  # local time = UTC + offset
        hours, minutes = int(zone_h), int(zone_m or 0)
        if hours > 23 or minutes > 59:
            raise WireError(f"{field}: bad zone offset: {text[:40]!r}")
        offset = (hours * 60 + minutes) * 60
        seconds -= offset if sign == "+" else -offset
    if seconds < 0:
        raise WireError(f"{field}: before 1970: {text[:40]!r}")
    return seconds * 1000 + int((fraction or "")[:3].ljust(3, "0"))


def as_millis(value: Stamp, field: str) -> int:
    """A venue time, in any form a Stamp takes, as exact unix milliseconds; WireError otherwise."""
    if isinstance(value, str) and not (value.isdigit() and value.isascii()):
        return _iso_millis(value, field)
    if isinstance(value, bool):  # a JSON true is an int to Python, never a time
        raise WireError(f"{field}: not a time: {value!r}")
    number = parse_count(value, field)
    if number >= _MILLIS_LIMIT:
        raise WireError(f"{field}: neither seconds nor milliseconds: {str(number)[:40]}")
    return number * 1000 if number < _SECONDS_LIMIT else number


def as_seconds(value: Stamp, field: str) -> int:
    """A venue time, in any form a Stamp takes, as whole unix seconds (rounded down)."""
    return as_millis(value, field) // 1000


def valid_tick(tick: int, source: str | bytes) -> int:
    """A tick outside (0, 1) could only poison every price rounded to it."""
    if not 0 < tick < ONE:
        raise WireError(f"tick size out of range: {source[:40]!r}")
    return tick


def tick_value(text: str) -> int:
    return valid_tick(parse_price(text), text)


SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}


def side_of(text: str) -> Side:
    side = SIDES.get(text)
    if side is None:
        raise WireError(f"unknown side {text[:40]!r}")
    return side


def best_bid_of(text: str | None) -> int | None:
    """The venue writes "0" for an empty bid side; no real bid is at 0, so that means none."""
    try:
        return BEST_BIDS[text]
    except KeyError:
        price = optional_price(text)
        return remember(BEST_BIDS, text, None if price == 0 else price)


def best_ask_of(text: str | None) -> int | None:
    """The venue writes "0" or "1" for an empty ask side; no real ask is at 0 or 1."""
    try:
        return BEST_ASKS[text]
    except KeyError:
        price = optional_price(text)
        return remember(BEST_ASKS, text, None if price == 0 or price == ONE else price)


_STRING_LIST = msgspec.json.Decoder(list[str])


def string_list(value: list[str] | str | None, field: str) -> tuple[str, ...]:
    """A list the venue sends either as a JSON array or as a JSON-encoded string of one."""
    if value is None or value == "":
        return ()
    if isinstance(value, list):
        return tuple(value)
    try:
        return tuple(_STRING_LIST.decode(value))
    except BAD_JSON as exc:
        raise WireError(f"{field}: not a list of strings: {exc}") from None


def required(value: Any, field: str) -> Any:
    if value is None or value == "":
        raise WireError(f"missing {field}")
    return value


_JSON_START_TEXT = re.compile(r"[ \t\r\n]*[\[{]")
_JSON_START_BYTES = re.compile(rb"[ \t\r\n]*[\[{]")


class _Envelope(msgspec.Struct):
    """Just enough of an element to name its event_type when the full decode failed."""

    event_type: Any = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)
_RAW_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])
_RAW_VALUE = msgspec.json.Decoder(msgspec.Raw)


def _json_opener(text: str | bytes) -> str | None:
    """'[' or '{' when the text is a JSON frame, None for a text control frame."""
    first = text[:1]
    if isinstance(text, str):
        if first == "{" or first == "[":  # the common case, without the regex
            return first
        match = _JSON_START_TEXT.match(text)
        return None if match is None else match.group()[-1]
    if first == b"{" or first == b"[":
        return chr(first[0])
    match = _JSON_START_BYTES.match(text)
    return None if match is None else chr(match.group()[-1])


def excerpt(text: str | bytes | msgspec.Raw) -> str:
    """The first 200 characters of an offending text, for the MalformedFrame record."""
    if isinstance(text, str):
        return text[:200]
    return bytes(memoryview(text)[:800]).decode("utf-8", "replace")[:200]


class FrameDecoder:
    """Decodes one channel's frames: a tagged union of venue Structs plus their mappers.

    The common frame decodes in one msgspec call and maps without touching a Python dict.
    Only when that fails does the frame go the slow way, element by element through raw
    JSON, so that one bad element is pinned down and its neighbours still decode.
    """

    def __init__(self, channel: str, mappers: dict[type, Callable[[Any, int, str], Any]]) -> None:
        self.channel = channel
        self._mappers = mappers
        self._known = frozenset(t.__struct_config__.tag for t in mappers)
        event = Union[tuple(mappers)]  # type: ignore[valid-type]
        self._frame = msgspec.json.Decoder(Union[list[event], event])  # type: ignore[valid-type]
        self._element = msgspec.json.Decoder(event)

    def decode(self, text: str | bytes, recv_ns: int, cid: str) -> list[Any]:
        opener = _json_opener(text)
        if opener is None:
            return []  # PONG, NO NEW ASSETS and other text control frames
        mappers = self._mappers
        try:
            decoded = self._frame.decode(text)
            if isinstance(decoded, list):
                return [mappers[type(w)](w, recv_ns, f"{cid}.{i}") for i, w in enumerate(decoded)]
            return [mappers[type(decoded)](decoded, recv_ns, cid)]
        except (*BAD_JSON, WireError):
            return self._decode_elementwise(text, opener == "[", recv_ns, cid)

    def _decode_elementwise(
        self, text: str | bytes, is_array: bool, recv_ns: int, cid: str
    ) -> list[Any]:
        try:
            if not is_array:
                return [self._decode_element(_RAW_VALUE.decode(text), recv_ns, cid)]
            elements = _RAW_ARRAY.decode(text)
        except BAD_JSON as exc:
            return [self.malformed(cid, recv_ns, f"invalid JSON: {exc}", text)]
        return [self._decode_element(raw, recv_ns, f"{cid}.{i}") for i, raw in enumerate(elements)]

    def _decode_element(self, raw: msgspec.Raw, recv_ns: int, cid: str) -> Any:
        try:
            wire = self._element.decode(raw)
        except BAD_JSON as exc:
            return self.malformed(cid, recv_ns, self._explain(raw, exc), raw)
        try:
            return self._mappers[type(wire)](wire, recv_ns, cid)
        except WireError as exc:
            return self.malformed(cid, recv_ns, f"{wire.__struct_config__.tag}: {exc}", raw)

    def _explain(self, raw: msgspec.Raw, exc: Exception) -> str:
        try:
            event_type = _ENVELOPE.decode(raw).event_type
        except BAD_JSON:
            return str(exc)  # not even an object
        if event_type is None:
            return "missing event_type"
        if not isinstance(event_type, str) or event_type not in self._known:
            return f"unknown event_type {event_type!r}"
        return f"{event_type}: {exc}"

    def malformed(self, cid: str, recv_ns: int, error: str, text: Any) -> MalformedFrame:
        return MalformedFrame(
            cid=cid, recv_ns=recv_ns, channel=self.channel, error=error, excerpt=excerpt(text)
        )
