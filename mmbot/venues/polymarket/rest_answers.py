"""The CLOB REST API's answers as typed values, decoded strictly from the bytes the venue sent.

Each ``decode_*`` takes a 2xx body and returns the typed answer, or raises ``AnswerError`` with a
one-line description of what was wrong (``rest.py`` turns that into ``Retryable`` for a read and
``OutcomeUnknown`` for a call that changes state). Wire shapes (protocol doc §4) are msgspec
Structs; the nulls the venue sends for absent strings (``"orderID": null`` on a refusal) become
``""``. Prices and sizes are integer micro-units.
"""

from __future__ import annotations

from typing import TypeVar

import attrs
import msgspec

from mmbot.model import Side
from mmbot.venues.polymarket.wire_base import BAD_JSON, WireError, parse_decimal, side_of

ACCEPTED_STATUSES = frozenset({"live", "matched", "delayed", "unmatched"})


class AnswerError(ValueError):
    """A 2xx answer that does not have the shape the venue documents."""


@attrs.frozen
class PostAnswer:
    """One order's answer to ``POST /order`` or one leg of ``POST /orders``."""

    success: bool
    order_id: str  # the venue's id (the order's digest); "" when refused
    status: str  # lower case: live, matched, delayed, unmatched; "" when refused
    error: str  # the venue's errorMsg, "" when none

    @property
    def accepted(self) -> bool:
        """A batch leg may say ``success`` with an empty id and the refusal in ``error``."""
        return self.success and bool(self.order_id) and self.status in ACCEPTED_STATUSES


@attrs.frozen
class CancelAnswer:
    """``DELETE /order``, ``/orders``, ``/cancel-market-orders`` and ``/cancel-all``."""

    canceled: list[str]  # venue order ids
    not_canceled: dict[str, str]  # venue order id -> the venue's reason


@attrs.frozen
class OpenOrder:
    """One item of ``GET /data/orders``."""

    id: str
    market: str
    asset_id: str
    side: Side
    price: int
    original_size: int
    size_matched: int
    status: str


@attrs.frozen
class Collateral:
    balance: int  # pUSD micro-units, open orders not deducted
    allowance: int | None  # the least the exchanges may spend; None when the venue gave none


# --------------------------------------------------------------------------- wire shapes


class _Post(msgspec.Struct):
    success: bool
    orderID: str | None = None  # noqa: N815 (the venue's spelling)
    status: str | None = None
    errorMsg: str | None = None  # noqa: N815


class _Cancel(msgspec.Struct):
    canceled: list[str] | None
    not_canceled: dict[str, str | None] | None = None


class _OpenOrder(msgspec.Struct):
    id: str
    market: str
    asset_id: str
    side: str
    price: str
    original_size: str
    size_matched: str
    status: str


class _Page(msgspec.Struct):
    data: list[msgspec.Raw] | None = None
    next_cursor: str | None = None


class _Balance(msgspec.Struct):
    balance: str | int
    allowance: str | int | None = None
    allowances: dict[str, str | int] | None = None


class _Heartbeat(msgspec.Struct):
    heartbeat_id: str


class _Version(msgspec.Struct):
    version: int | str


class _Mid(msgspec.Struct):
    mid: str | None = None


class _ApiKey(msgspec.Struct):
    apiKey: str  # noqa: N815
    secret: str
    passphrase: str


_POSTS = msgspec.json.Decoder(list[_Post])
_POST = msgspec.json.Decoder(_Post)
_CANCEL = msgspec.json.Decoder(_Cancel)
_OPEN_ORDER = msgspec.json.Decoder(_OpenOrder)
_PAGE = msgspec.json.Decoder(_Page)
_BALANCE = msgspec.json.Decoder(_Balance)
_HEARTBEAT = msgspec.json.Decoder(_Heartbeat)
_VERSION = msgspec.json.Decoder(_Version)
_MID = msgspec.json.Decoder(_Mid)
_API_KEY = msgspec.json.Decoder(_ApiKey)


T = TypeVar("T")


def _decode(decoder: msgspec.json.Decoder[T], content: bytes | msgspec.Raw) -> T:
    try:
        return decoder.decode(content)
    except BAD_JSON as exc:
        raise AnswerError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None


def _count(value: str | int, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit() and value.isascii():
        return int(value)
    raise AnswerError(f"{field}: not a whole number: {str(value)[:40]!r}")


# --------------------------------------------------------------------------- decoders


def _post_answer(wire: _Post) -> PostAnswer:
    return PostAnswer(success=wire.success, order_id=wire.orderID or "", status=(wire.status or "").lower(),
                      error=wire.errorMsg or "")


def decode_post(content: bytes) -> PostAnswer:
    return _post_answer(_decode(_POST, content))


def decode_posts(content: bytes, expected: int) -> list[PostAnswer]:
    answers = [_post_answer(w) for w in _decode(_POSTS, content)]
    if len(answers) != expected:
        raise AnswerError(f"{len(answers)} answers for {expected} orders")
    return answers


def decode_cancel(content: bytes) -> CancelAnswer:
    wire = _decode(_CANCEL, content)
    return CancelAnswer(canceled=list(wire.canceled or ()),
                        not_canceled={k: v or "" for k, v in (wire.not_canceled or {}).items()})


def decode_page(content: bytes) -> tuple[list[msgspec.Raw], str | None]:
    """One page of a paged read: its items, still raw, and the next cursor."""
    page = _decode(_PAGE, content)
    return list(page.data or ()), page.next_cursor


def decode_open_order(raw: msgspec.Raw) -> OpenOrder:
    wire = _decode(_OPEN_ORDER, raw)
    try:
        return OpenOrder(id=wire.id, market=wire.market, asset_id=wire.asset_id, side=side_of(wire.side),
                         price=parse_decimal(wire.price), original_size=parse_decimal(wire.original_size),
                         size_matched=parse_decimal(wire.size_matched), status=wire.status)
    except WireError as exc:
        raise AnswerError(f"order {wire.id[:20]}: {exc}") from None


def decode_collateral(content: bytes) -> Collateral:
    """``allowances`` per spender (current; the least counts) or the legacy single ``allowance``."""
    wire = _decode(_BALANCE, content)
    balance = _count(wire.balance, "balance")
    if wire.allowances:
        return Collateral(balance=balance, allowance=min(_count(v, "allowances") for v in wire.allowances.values()))
    if wire.allowance is not None:
        return Collateral(balance=balance, allowance=_count(wire.allowance, "allowance"))
    return Collateral(balance=balance, allowance=None)


def decode_balance(content: bytes) -> int:
    return _count(_decode(_BALANCE, content).balance, "balance")


def decode_heartbeat(content: bytes) -> str:
    return _decode(_HEARTBEAT, content).heartbeat_id


def decode_version(content: bytes) -> int:
    return _count(_decode(_VERSION, content).version, "version")


def decode_mid(content: bytes) -> int | None:
    """The midpoint, or None when the venue gave none or an unreadable one."""
    try:
        mid = _decode(_MID, content).mid
        return None if mid is None else parse_decimal(mid)
    except (AnswerError, WireError):
        return None


def decode_api_key(content: bytes) -> tuple[str, str, str]:
    wire = _decode(_API_KEY, content)
    return wire.apiKey, wire.secret, wire.passphrase

