"""The wire decoder's fast paths against the general ones they shortcut.

decode_market_frame decodes a lone price_change object with its own Struct and maps it through
dict caches; these tests hold that to the union decoder and the uncached parsers, value for
value and error for error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.model import ONE, parse_micro
from mmbot.venues.polymarket import wire, wire_base
from mmbot.venues.polymarket.wire_base import (
    WireError,
    best_ask_of,
    best_bid_of,
    optional_price,
    parse_decimal,
    parse_price,
    parse_size,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "polymarket" / "ws-market"

# Venue-like decimals, near misses, and anything at all.
decimal_texts = (
    st.from_regex(r"\A[0-9]{0,20}(\.[0-9]{0,8})?\Z")
    | st.text(alphabet="0123456789.٣_+- e", max_size=10)
    | st.text(max_size=8)
)


def outcome(parse: Callable[[Any], Any], text: Any) -> Any:
    try:
        return parse(text)
    except WireError as exc:
        return ("WireError", str(exc))


def spell(whole_of: str, fraction_of: str) -> str:
    """A size made of one text's whole part and another's fraction."""
    return whole_of.partition(".")[0] + "." + fraction_of.partition(".")[2]


@settings(max_examples=400, deadline=None)
@given(st.lists(decimal_texts, min_size=1, max_size=6))
def test_cached_parsers_equal_parse_decimal(texts: list[str]) -> None:
    combos = [spell(a, b) for a in texts for b in texts]
    for text in [*texts, *combos, *texts]:  # the second pass reads what the first one cached
        expected = outcome(parse_decimal, text)
        assert outcome(parse_price, text) == expected, text
        assert outcome(parse_size, text) == expected, text
        if not isinstance(expected, tuple):
            assert expected == parse_micro(text)


@settings(max_examples=200, deadline=None)
@given(st.none() | decimal_texts)
def test_cached_tops_equal_their_definition(text: str | None) -> None:
    price = outcome(optional_price, text)
    bid = price if isinstance(price, tuple) else (None if price == 0 else price)
    ask = price if isinstance(price, tuple) else (None if price in (0, ONE) else price)
    for _ in range(2):
        assert outcome(best_bid_of, text) == bid
        assert outcome(best_ask_of, text) == ask


def test_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    caches = [
        wire_base.PRICES,
        wire_base.WHOLES,
        wire_base.FRACTIONS,
        wire_base.BEST_BIDS,
        wire_base.BEST_ASKS,
    ]
    for cache in caches:
        cache.clear()  # they refill from use
    monkeypatch.setattr(wire_base, "CACHE_LIMIT", 5)
    for n in range(2, 52):
        text = f"{n}.{n % 7}"
        assert parse_price(text) == parse_size(text) == parse_micro(text)
        assert best_bid_of(text) == best_ask_of(text) == parse_micro(text)
        assert all(len(cache) <= 5 for cache in caches)
    assert all(caches)


# --------------------------------------------------------------------------- the fast frame path

ENTRY_VALUES: dict[str, list[Any]] = {
    "asset_id": ["111", "222", "", 5, None],
    "price": ["0.5", "0.51", ".5", "1", "0.5x", "0.1234567", "", 0.5, None],
    "size": ["0", "264.9", "86.19", "150.0", "5.", "0.9200000", "-3", "1e5", "١", "9" * 30, 7],
    "side": ["BUY", "SELL", "buy", "", None],
    "hash": ["h1", "", None],
    "best_bid": ["0", "0.49", "", "1", None, "x"],
    "best_ask": ["1", "0.51", "0", "", None, "0.5.1"],
}
FRAME_VALUES: dict[str, list[Any]] = {
    "market": ["m", "", None, 3],
    "timestamp": ["1729084877448", 1729084877448, "17.5", -1, None],
    "event_type": ["price_change", "book", None],
    "asset_id": ["111", None],
    "hash": ["h0", None],
    "price": ["0.4", None],
    "size": ["10", "x", None],
    "side": ["SELL", None],
}
MISSING = object()


def pick(draw: st.DrawFn, values: dict[str, list[Any]], usual: float) -> dict[str, Any]:
    """Each key with its first (usual) value most of the time, else another value or absent."""
    obj = {}
    for key, choices in values.items():
        if draw(st.floats(0, 1)) < usual:
            value = choices[0]
        else:
            value = draw(st.sampled_from([*choices, MISSING]))
        if value is not MISSING:
            obj[key] = value
    keys = draw(st.permutations(list(obj)))
    return {key: obj[key] for key in keys}


@st.composite
def price_change_frames(draw: st.DrawFn) -> str | bytes:
    frame = pick(draw, FRAME_VALUES, usual=0.8)
    shape = draw(st.sampled_from(["current", "current", "legacy", "none"]))
    if shape == "current":
        entries = [pick(draw, ENTRY_VALUES, usual=0.85) for _ in range(draw(st.integers(0, 4)))]
        frame = {"price_changes": entries, **frame}
    elif shape == "legacy":
        values = {k: ENTRY_VALUES[k] for k in ("price", "size", "side")}
        changes = [pick(draw, values, usual=0.85) for _ in range(draw(st.integers(0, 3)))]
        frame = {"changes": changes, **frame}
    text = json.dumps(frame)
    if draw(st.booleans()):
        text = text.replace('"event_type": "price_change"', '"event_type": "book"', 1)
    if draw(st.integers(0, 9)) == 0:  # a duplicated tag: the union reads the first one
        again = draw(st.sampled_from(["book", "price_change"]))
        text = f'{text[:-1]}, "event_type": "{again}"}}'
    if draw(st.integers(0, 9)) == 0:
        text = f"[{text}]"
    return text.encode() if draw(st.booleans()) else text


@settings(max_examples=600, deadline=None)
@given(price_change_frames())
def test_fast_path_equals_the_union_decoder(text: str | bytes) -> None:
    fast = wire.decode_market_frame(text, recv_ns=3, cid="c")
    general = wire._MARKET.decode(text, 3, "c")
    assert fast == general
    assert repr(fast) == repr(general)


@pytest.mark.parametrize("name", ["price_change_v2.json", "ws_market_price_change_msg.json"])
def test_captured_price_changes_take_the_fast_path(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (FIXTURES / name).read_text()
    expected = wire._MARKET.decode(text, 3, "c")

    class NoGeneralPath:
        def decode(self, *args: Any) -> Any:
            raise AssertionError("took the general path")

    monkeypatch.setattr(wire, "_MARKET", NoGeneralPath())
    for frame in (text, text.encode()):
        assert wire.decode_market_frame(frame, recv_ns=3, cid="c") == expected
