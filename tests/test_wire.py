"""The Polymarket wire decoder against real captured frames, their quirks and corrupted copies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.model import (
    BestBidAsk,
    BookSnapshot,
    LastTrade,
    Liquidity,
    MakerFill,
    MalformedFrame,
    MarketResolved,
    NewMarket,
    PriceChange,
    Side,
    TickSizeChange,
    UserOrder,
    UserTrade,
    parse_micro,
)
from mmbot.venues.polymarket.wire import (
    WireError,
    decode_market_frame,
    decode_order_record,
    decode_trade_record,
    decode_user_frame,
    parse_price,
)
from mmbot.venues.polymarket.wire_base import as_millis, as_seconds

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "polymarket"
FRAME_FILES = sorted(
    [*(FIXTURES / "ws-market").glob("*.json"), *(FIXTURES / "ws-user").glob("*.json")]
)
RECORD_DECODERS = {  # captures stored without their event_type envelope
    "trades.json": decode_trade_record,
    "ws_user_order_update.json": decode_order_record,
}
MARKET_ID = "0xdd22472e552920b8438158ea7238bfadfa4f736aa4cee91a6b86c39ead110917"
TOKEN = "21742633143463906290569050155826241533067272736897614950488156847949938836455"
NVDA_YES = "76043073756653678226373981964075571318267289248134717369284518995922789326425"
NVDA_NO = "31690934263385727664202099278545688007799199447969475608906331829650099442770"


def text_of(name: str) -> str:
    for path in FRAME_FILES:
        if path.name == name:
            return path.read_text()
    raise KeyError(name)


def obj_of(name: str) -> dict[str, Any]:
    return json.loads(text_of(name))


def decode_file(path: Path, text: str | bytes, cid: str = "c") -> list[Any]:
    """What the feed would do with this capture (records go through their entry points)."""
    if path.name in RECORD_DECODERS:
        return [RECORD_DECODERS[path.name](text, recv_ns=7, cid=cid)]
    decode = decode_user_frame if path.parent.name == "ws-user" else decode_market_frame
    return decode(text, recv_ns=7, cid=cid)


def one(text: str | bytes, decode: Any = decode_market_frame) -> Any:
    [message] = decode(text, recv_ns=7, cid="c")
    return message


# --------------------------------------------------------------------------- every capture decodes


@pytest.mark.parametrize("path", FRAME_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_capture_decodes_cleanly(path: Path) -> None:
    for text in (path.read_text(), path.read_bytes()):
        messages = decode_file(path, text)
        assert len(messages) == 1
        assert not isinstance(messages[0], MalformedFrame), messages[0]
        assert messages[0].cid == "c" and messages[0].recv_ns == 7


@pytest.mark.parametrize("name", sorted(RECORD_DECODERS))
def test_records_without_event_type_need_their_entry_point(name: str) -> None:
    [bad] = decode_user_frame(text_of(name), recv_ns=0, cid="c")
    assert isinstance(bad, MalformedFrame) and bad.error == "missing event_type"


# --------------------------------------------------------------------------- one test per message type


def test_book_snapshot_values() -> None:
    book = one(text_of("ws_book_snapshot_captured.json"))
    assert isinstance(book, BookSnapshot)
    assert book.market == "0x6bd56627aa21311850825edb27e53434a0e17a4f782be0086bc07f71eee00d0d"
    assert book.token == "350977769852917329387037893294763093471844346281449484439085576212613048126"
    assert (len(book.bids), len(book.asks)) == (7, 57)
    assert book.bids[0] == (10_000, 3_149_725_720_000)  # kept in the venue's order: best last
    assert max(book.bids) == book.bids[-1] == (70_000, 182_528_550_000)
    assert min(book.asks) == book.asks[-1] == (80_000, 228_198_280_000)
    assert book.tick == 10_000 and book.last_trade_price == 920_000
    assert book.venue_ts_ms == 1786604072222
    assert book.hash == "ed47eb91f3c7985fac1cb18cb7c19535eddd3c0a"


def test_book_without_tick_or_last_trade() -> None:
    book = one(text_of("book.json"))
    assert (len(book.bids), len(book.asks)) == (76, 86)
    assert book.bids[-1] == (511_000, 1_304_720_000) and book.asks[-1] == (514_000, 20_230_870_000)
    assert book.tick is None and book.last_trade_price is None


def test_book_with_empty_sides_and_empty_last_trade_price() -> None:
    frame = {**obj_of("ws_book_snapshot_captured.json"), "bids": [], "asks": [], "last_trade_price": ""}
    book = one(json.dumps(frame))
    assert book.bids == () and book.asks == () and book.last_trade_price is None


def test_price_change_values() -> None:
    change = one(text_of("price_change_v2.json"))
    assert isinstance(change, PriceChange)
    assert change.market == "0x5f65177b394277fd294cd75650044e32ba009a95022d88a0c1d565897d72f8f1"
    assert change.venue_ts_ms == 1729084877448
    assert [(c.side, c.price, c.size) for c in change.changes] == [
        (Side.BUY, 600_000, 3_300_000_000),
        (Side.BUY, 500_000, 3_400_000_000),
        (Side.BUY, 700_000, 3_400_000_000),
    ]
    first = change.changes[0]
    assert (first.best_bid, first.best_ask) == (600_000, 700_000)
    assert first.hash == "bf32b3746fff40c76c98021b7f3f07261169dd26"
    assert first.token == "52114319501245915516055106046884209969926127482827954674443846427813813222426"


@pytest.mark.parametrize(
    ("best_bid", "best_ask", "expected"),
    [
        ("0", "1", (None, None)),  # how the venue writes an empty book
        ("0", "0", (None, None)),
        ("0.48", "1.0", (480_000, None)),
        (None, None, (None, None)),  # absent
        ("0.01", "0.99", (10_000, 990_000)),
    ],
)
def test_price_change_empty_side_markers(best_bid: Any, best_ask: Any, expected: tuple) -> None:
    frame = obj_of("ws_market_price_change_msg.json")
    entry = frame["price_changes"][0]
    for key, value in (("best_bid", best_bid), ("best_ask", best_ask)):
        entry.pop(key)
        if value is not None:
            entry[key] = value
    [change] = one(json.dumps(frame)).changes
    assert (change.best_bid, change.best_ask) == expected


def test_price_change_legacy_single_change_at_top_level() -> None:
    frame = {
        "asset_id": TOKEN, "event_type": "price_change", "hash": "h1", "market": MARKET_ID,
        "price": "0.52", "side": "SELL", "size": "0", "timestamp": "1700000000000",
    }
    change = one(json.dumps(frame))
    assert change.venue_ts_ms == 1700000000000 and change.market == MARKET_ID
    [level] = change.changes
    assert (level.token, level.side, level.price, level.size, level.hash) == (TOKEN, Side.SELL, 520_000, 0, "h1")
    assert (level.best_bid, level.best_ask) == (None, None)


def test_price_change_legacy_changes_list() -> None:
    frame = {
        "event_type": "price_change", "asset_id": TOKEN, "market": MARKET_ID, "hash": "h2",
        "timestamp": "1700000000001",
        "changes": [{"price": "0.4", "side": "BUY", "size": "12.5"}, {"price": "0.6", "side": "SELL", "size": "3"}],
    }
    change = one(json.dumps(frame))
    assert [(c.token, c.side, c.price, c.size, c.hash) for c in change.changes] == [
        (TOKEN, Side.BUY, 400_000, 12_500_000, "h2"),
        (TOKEN, Side.SELL, 600_000, 3_000_000, "h2"),
    ]


def test_last_trade_price_values() -> None:
    trade = one(text_of("last_trade_price.json"))
    assert isinstance(trade, LastTrade)
    assert (trade.price, trade.size, trade.side) == (491_000, 85_360_000, Side.SELL)
    assert (trade.market, trade.token) == (MARKET_ID, TOKEN)
    assert trade.fee_rate_bps == 0 and trade.transaction_hash == ""
    assert trade.venue_ts_ms == 1724564136087


def test_last_trade_price_optional_fields() -> None:
    frame = {**obj_of("last_trade_price.json"), "transaction_hash": "0xabc"}
    del frame["fee_rate_bps"]
    trade = one(json.dumps(frame))
    assert trade.fee_rate_bps is None and trade.transaction_hash == "0xabc"


def test_tick_size_change_values() -> None:
    change = one(text_of("ws_market_tick_size_msg.json"))
    assert isinstance(change, TickSizeChange)
    assert (change.old_tick, change.new_tick) == (100_000, 10_000)
    assert change.token == "71321045679252212594626385532706912750332728571942532289631379312455583992563"
    assert change.venue_ts_ms == 1703875210000


def test_best_bid_ask_values() -> None:
    top = one(text_of("ws_market_best_bid_ask_msg.json"))
    assert isinstance(top, BestBidAsk)
    assert (top.best_bid, top.best_ask, top.venue_ts_ms) == (730_000, 770_000, 1766789469958)
    frame = {**obj_of("ws_market_best_bid_ask_msg.json"), "best_bid": ""}
    del frame["best_ask"]
    top = one(json.dumps(frame))
    assert (top.best_bid, top.best_ask) == (None, None)


def test_new_market_values() -> None:
    market = one(text_of("ws_market_new_market_msg.json"))
    assert isinstance(market, NewMarket)
    assert market.market == "0x311d0c4b6671ab54af4970c06fcf58662516f5168997bdda209ec3db5aa6b0c1"
    assert market.market_id == "1031769" and market.slug == "nvda-above-240-on-january-30-2026"
    assert market.question == "Will NVIDIA (NVDA) close above $240 end of January?"
    assert market.tokens == (NVDA_YES, NVDA_NO) and market.outcomes == ("Yes", "No")
    assert market.tick == 10_000 and market.venue_ts_ms == 1766790415550


@pytest.mark.parametrize(
    ("tick_json", "expected"),
    [('"0.001"', 1_000), ("0.001", 1_000), ("1e-2", 10_000), ("0.0001", 100), ('""', None), ("null", None)],
)
def test_new_market_tick_as_number_or_string(tick_json: str, expected: int | None) -> None:
    text = text_of("ws_market_new_market_msg.json").replace('"0.01"', tick_json)
    assert one(text).tick == expected


def test_new_market_lists_as_json_strings() -> None:
    frame = obj_of("ws_market_new_market_msg.json")
    frame["assets_ids"] = json.dumps(frame["assets_ids"])
    frame["outcomes"] = json.dumps(frame["outcomes"])
    del frame["order_price_min_tick_size"]
    market = one(json.dumps(frame))
    assert market.tokens == (NVDA_YES, NVDA_NO) and market.outcomes == ("Yes", "No")
    assert market.tick is None


def test_market_resolved_values() -> None:
    resolved = one(text_of("ws_market_resolved_msg.json"))
    assert isinstance(resolved, MarketResolved)
    assert resolved.winning_token == NVDA_YES and resolved.winning_outcome == "Yes"
    assert resolved.tokens == (NVDA_YES, NVDA_NO) and resolved.market_id == "1031769"
    frame = {**obj_of("ws_market_resolved_msg.json"), "assets_ids": json.dumps([NVDA_YES, NVDA_NO])}
    assert one(json.dumps(frame)).tokens == (NVDA_YES, NVDA_NO)


def test_order_placement_and_cancellation_values() -> None:
    placed = one(text_of("order_placement.json"), decode_user_frame)
    assert isinstance(placed, UserOrder)
    assert (placed.event, placed.status, placed.side) == ("PLACEMENT", "LIVE", Side.BUY)
    assert (placed.price, placed.original_size, placed.size_matched) == (513_000, 5_000_000, 0)
    assert placed.order_id == "0x0f76f4dc6eaf3332f4100f2e8a0b4a927351dd64646b7bb12f37df775c657a78"
    assert (placed.market, placed.token, placed.order_type) == (MARKET_ID, TOKEN, "GTC")
    assert placed.owner == "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe" and placed.outcome == "Yes"
    assert placed.venue_ts_ms == 1725842520990 and placed.associate_trades == ()
    cancelled = one(text_of("order_cancel.json"), decode_user_frame)
    assert (cancelled.event, cancelled.status, cancelled.side) == ("CANCELLATION", "CANCELED", Side.SELL)
    assert cancelled.size_matched == cancelled.original_size == 5_000_000


def test_order_update_record_values() -> None:
    order = decode_order_record(text_of("ws_user_order_update.json"), recv_ns=3, cid="r")
    assert (order.event, order.status, order.cid, order.recv_ns) == ("UPDATE", "LIVE", "r", 3)
    assert (order.price, order.original_size, order.size_matched) == (500_000, 100_000_000, 25_000_000)
    assert order.associate_trades == ("trade-0xabcdef1234",) and order.venue_ts_ms == 1703875200500


def test_order_kill_message_with_empty_fields_and_reason_status() -> None:
    frame = {
        **obj_of("order_cancel.json"),
        "size_matched": "", "outcome": "", "created_at": "",
        "status": "CANCELED_order couldn't be fully filled. FOK orders are fully filled or killed.",
    }
    order = one(json.dumps(frame), decode_user_frame)
    assert order.size_matched == 0 and order.outcome == ""
    assert order.status.startswith("CANCELED_order couldn't")


def test_taker_trade_values() -> None:
    trade = one(text_of("user_trade2.json"), decode_user_frame)
    assert isinstance(trade, UserTrade)
    assert (trade.trade_id, trade.status) == ("f50e8ab2-652d-4dc8-9c82-8e46197fe98d", "MATCHED")
    assert (trade.side, trade.price, trade.size, trade.trader_side) == (Side.BUY, 520_000, 5_000_000, Liquidity.TAKER)
    assert trade.taker_order_id == "0x5b605a0e8e40f3402d3cb3bc19edad6733ed23fbc079d2a09ee399c3487ace81"
    assert (trade.match_time_s, trade.venue_ts_ms) == (1725958681, 1725958682125)
    assert trade.fee_rate_bps == 0 and trade.outcome == "Yes"
    assert trade.maker_orders == (
        MakerFill(
            order_id="0xa39ab90ec5515224a2a39c9ef967b51d10bda754902a318cac84135018b5885a",
            owner="ce168652-c146-2d93-a45c-f36cc52ae6f6",
            maker_address="0x629BC4a1E53e1d475beB7ea3D388791e96Dd995A",
            matched_amount=5_000_000,
            price=520_000,
            token=TOKEN,
            side=None,  # older payloads do not say
            outcome="Yes",
        ),
    )


def test_maker_trade_with_timestamp_in_seconds() -> None:
    trade = one(text_of("user_trade3.json"), decode_user_frame)
    assert (trade.trader_side, trade.status, trade.outcome) == (Liquidity.MAKER, "CONFIRMED", "No")
    assert trade.venue_ts_ms == 1762776436_000 and trade.match_time_s == 1762776367
    [fill] = trade.maker_orders
    assert (fill.side, fill.price, fill.matched_amount) == (Side.BUY, 513_000, 5_000_000)
    assert fill.maker_address == "0xa3D82Ed56F4c68d2328Fb8c29e568Ba2cAF7d7c8"


def test_trade_record_values() -> None:
    trade = decode_trade_record(text_of("trades.json"), recv_ns=0, cid="r")
    assert (trade.status, trade.price, trade.size) == ("CONFIRMED", 489_000, 5_000_000)
    assert trade.match_time_s == 1726043102
    assert trade.venue_ts_ms == 1726043282_000  # no timestamp: last_update, in ms
    assert trade.transaction_hash == "0x5fbfe1691c52958dfa3f98dc75ef516f5a9d4b370aead26598d06e3db069839f"
    assert trade.maker_orders[0].owner == "62880c97-4a03-c6fa-2665-e6072ffc6ae6"


def test_trade_spelling_variants() -> None:
    frame = {**obj_of("user_trade2.json"), "fee_rate_bps": "", "matchtime": "1725958681"}
    del frame["match_time"]
    trade = one(json.dumps(frame), decode_user_frame)
    assert trade.fee_rate_bps is None and trade.match_time_s == 1725958681


# --------------------------------------------------------------------------- framing


def test_array_frame_elements_get_indexed_cids() -> None:
    text = f"[{text_of('last_trade_price.json')}, {text_of('price_change_v2.json')}]"
    trade, change = decode_market_frame(text, recv_ns=1, cid="f")
    assert (type(trade), trade.cid) == (LastTrade, "f.0")
    assert (type(change), change.cid) == (PriceChange, "f.1")


@pytest.mark.parametrize(
    "bad",
    [
        '{"event_type": "last_trade_price", "market": "m"}',  # missing fields
        '{"event_type": "tick_size_change", "market": "m", "asset_id": "a", '
        '"old_tick_size": "0.01", "new_tick_size": "0.01.5", "timestamp": "1"}',  # bad number
        '{"event_type": "surprise"}',
        "17",
    ],
)
def test_one_bad_element_leaves_its_neighbours(bad: str) -> None:
    good = text_of("last_trade_price.json")
    first, middle, last = decode_market_frame(f"[{good}, {bad}, {good}]", recv_ns=1, cid="f")
    assert isinstance(first, LastTrade) and isinstance(last, LastTrade)
    assert (first.cid, last.cid) == ("f.0", "f.2")
    assert isinstance(middle, MalformedFrame)
    assert (middle.cid, middle.channel, middle.recv_ns) == ("f.1", "market", 1)
    assert middle.excerpt == bad


@pytest.mark.parametrize("text", ["PONG", "NO NEW ASSETS", b"PONG", "  pong", "", '"PONG"'])
def test_text_control_frames_are_not_messages(text: str | bytes) -> None:
    assert decode_market_frame(text, recv_ns=0, cid="c") == []
    assert decode_user_frame(text, recv_ns=0, cid="c") == []


def test_unknown_event_type_is_malformed() -> None:
    [bad] = decode_market_frame('{"market": "m", "event_type": "x"}', recv_ns=0, cid="c")
    assert isinstance(bad, MalformedFrame) and "unknown event_type 'x'" in bad.error
    [wrong_channel] = decode_market_frame(text_of("order_placement.json"), recv_ns=0, cid="c")
    assert "unknown event_type 'order'" in wrong_channel.error


def test_event_type_position_and_unknown_fields_do_not_matter() -> None:
    frame = obj_of("last_trade_price.json")
    first = {"event_type": frame.pop("event_type"), **frame, "novel_field": {"nested": [1, 2]}}
    last = {**frame, "novel_field": None, "event_type": "last_trade_price"}
    assert one(json.dumps(first)) == one(json.dumps(last)) == one(text_of("last_trade_price.json"))


def test_leading_whitespace_and_excerpt_length() -> None:
    assert isinstance(one("\r\n\t " + text_of("last_trade_price.json")), LastTrade)
    [bad] = decode_market_frame("{" + "x" * 500, recv_ns=0, cid="c")
    assert bad.excerpt == ("{" + "x" * 500)[:200] and "invalid JSON" in bad.error


# --------------------------------------------------------------------------- corrupted copies

# For each capture: a number to replace with junk, and a required key to drop (paths into the JSON).
CORRUPTIONS: dict[str, tuple[tuple, tuple]] = {
    "book.json": (("bids", 0, "price"), ("asset_id",)),
    "last_trade_price.json": (("price",), ("side",)),
    "price_change_v2.json": (("price_changes", 1, "size"), ("market",)),
    "ws_book_snapshot_captured.json": (("asks", 0, "size"), ("timestamp",)),
    "ws_market_best_bid_ask_msg.json": (("best_bid",), ("asset_id",)),
    "ws_market_new_market_msg.json": (("order_price_min_tick_size",), ("timestamp",)),
    "ws_market_price_change_msg.json": (("price_changes", 0, "price"), ("price_changes", 0, "asset_id")),
    "ws_market_resolved_msg.json": (("timestamp",), ("winning_asset_id",)),
    "ws_market_tick_size_msg.json": (("new_tick_size",), ("old_tick_size",)),
    "order_cancel.json": (("size_matched",), ("id",)),
    "order_placement.json": (("price",), ("status",)),
    "trades.json": (("size",), ("taker_order_id",)),
    "user_trade2.json": (("maker_orders", 0, "matched_amount"), ("trader_side",)),
    "user_trade3.json": (("match_time",), ("maker_orders", 0, "price")),
    "ws_user_order_update.json": (("original_size",), ("price",)),
}
JUNK_NUMBERS = ["0.5x", "1e5", "-3", "0.1234567", "NaN", "5 shares", "0,5", "１"]


def truncated_copies(text: str) -> list[str]:
    return [text[:cut] for cut in range(1, len(text), max(1, len(text) // 25))]


def edited_copies(text: str, number_path: tuple, key_path: tuple) -> list[str]:
    """Valid JSON with one number replaced by junk, or with one required key dropped."""
    copies = []
    for junk in [*JUNK_NUMBERS, None]:
        obj = json.loads(text)
        *parents, leaf = number_path if junk is not None else key_path
        target = obj
        for step in parents:
            target = target[step]
        if junk is None:
            del target[leaf]
        else:
            target[leaf] = junk
        copies.append(json.dumps(obj))
    return copies


def test_every_capture_has_a_corruption_plan() -> None:
    assert sorted(CORRUPTIONS) == sorted(p.name for p in FRAME_FILES)


@pytest.mark.parametrize("path", FRAME_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corrupted_copies_are_malformed_never_raised(path: Path) -> None:
    good = path.read_text().strip()
    edited = edited_copies(good, *CORRUPTIONS[path.name])
    for bad in truncated_copies(good) + edited:
        if path.name in RECORD_DECODERS:
            with pytest.raises(WireError):
                RECORD_DECODERS[path.name](bad, recv_ns=0, cid="c")
            continue
        [malformed] = decode_file(path, bad)
        assert isinstance(malformed, MalformedFrame), bad
        assert malformed.excerpt == bad[:200]
    if path.name in RECORD_DECODERS:
        return
    for bad in edited:  # inside an array between good neighbours, only the bad one is lost
        first, middle, last = decode_file(path, f"[{good},{bad},{good}]", cid="a")
        assert not isinstance(first, MalformedFrame) and not isinstance(last, MalformedFrame)
        assert isinstance(middle, MalformedFrame) and middle.cid == "a.1"
        assert middle.excerpt == bad[:200]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(FRAME_FILES), st.integers(min_value=0), st.binary(min_size=1, max_size=6))
def test_random_damage_never_raises(path: Path, position: int, junk: bytes) -> None:
    text = path.read_bytes()
    at = position % len(text)
    damaged = text[:at] + junk + text[at + len(junk) :]
    for decode in (decode_market_frame, decode_user_frame):
        for message in decode(damaged, recv_ns=0, cid="c"):
            assert message.cid.startswith("c") and message.recv_ns == 0


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000,  # deeper than msgspec will recurse
        '{"event_type": "book", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        b'{"event_type": "book", "market": "\xff"}',  # not UTF-8
        '{"event_type": ["not", "a", "name"]}',
        '{"event_type": "new_market", "timestamp": "1", "market": "m", "assets_ids": "[1, 2]"}',
    ],
)
def test_hostile_frames_are_malformed(text: str | bytes) -> None:
    [bad] = decode_market_frame(text, recv_ns=0, cid="c")
    assert isinstance(bad, MalformedFrame) and bad.error


def test_record_entry_points_reject_the_wrong_envelope() -> None:
    with pytest.raises(WireError):
        decode_trade_record(text_of("order_placement.json"), recv_ns=0, cid="c")
    with pytest.raises(WireError):
        decode_order_record("[]", recv_ns=0, cid="c")


# --------------------------------------------------------------------------- parse_price

decimals = st.from_regex(r"\A[0-9]{1,15}(\.[0-9]{0,6}0{0,3})?\Z|\A\.[0-9]{1,6}\Z")


@settings(max_examples=300, deadline=None)
@given(decimals)
def test_parse_price_equals_parse_micro(text: str) -> None:
    assert parse_price(text) == parse_micro(text)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12) | st.from_regex(r"\A[0-9]{1,3}\.[0-9]{6}[1-9]\Z"))
def test_parse_price_accepts_only_what_parse_micro_agrees_with(text: str) -> None:
    try:
        value = parse_price(text)
    except WireError:
        return
    assert value == parse_micro(text)


@pytest.mark.parametrize(
    "junk",
    ["", ".", "-0.5", "+1", " 1", "1 ", "1e-3", "0.1234567", "1_000", "0x10", "NaN", "inf", "1.2.3", "١", "0.5x"],
)
def test_parse_price_rejects_junk(junk: str) -> None:
    with pytest.raises(WireError):
        parse_price(junk)


def test_parse_price_examples() -> None:
    assert parse_price("0.513") == 513_000
    assert parse_price("3149725.72") == 3_149_725_720_000
    assert parse_price("150.0") == 150_000_000
    assert parse_price("0.920") == parse_price("0.9200000") == 920_000
    assert parse_price("1.") == 1_000_000 and parse_price(".5") == 500_000
    assert parse_price("0") == 0 and parse_price("007.50") == 7_500_000


# --------------------------------------------------------------------------- venue times

# 1725958681 s is 2024-09-10T08:58:01Z: user_trade2.json's match_time.
SAME_INSTANT = [
    1725958681, "1725958681", 1725958681000, "1725958681000",
    "2024-09-10T08:58:01Z", "2024-09-10T08:58:01", "2024-09-10T08:58:01+00:00", "2024-09-10 08:58:01+00",
    "2024-09-10T10:58:01+02:00", "2024-09-10T03:28:01-0530", "2024-09-10t08:58:01z", "2024-09-10T08:58:01.000Z",
]


@pytest.mark.parametrize("stamp", SAME_INSTANT, ids=repr)
def test_every_time_form_gives_the_same_instant(stamp: Any) -> None:
    assert as_seconds(stamp, "t") == 1725958681 and as_millis(stamp, "t") == 1725958681000


@pytest.mark.parametrize("stamp", ["2024-09-10T08:58:01.123Z", "2024-09-10T08:58:01.1239999", "2024-09-10T10:58:01,123+02",
                                   "1725958681123", 1725958681123])
def test_a_fraction_is_kept_to_the_millisecond_and_seconds_round_down(stamp: Any) -> None:
    assert as_millis(stamp, "t") == 1725958681123 and as_seconds(stamp, "t") == 1725958681


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4_102_444_799_999), st.integers(-(23 * 60 + 59), 23 * 60 + 59),
       st.sampled_from(["Z", "+hh:mm", "+hhmm", "none"]), st.text("0123456789", max_size=6), st.booleans())
def test_iso_times_in_any_zone_are_exact(ms: int, offset_min: int, zone: str, extra: str, fraction: bool) -> None:
    if not fraction:
        ms -= ms % 1000
    if zone in ("Z", "none"):
        offset_min = 0
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    local = instant.astimezone(timezone(timedelta(minutes=offset_min)))
    sign, hours, minutes = "+" if offset_min >= 0 else "-", abs(offset_min) // 60, abs(offset_min) % 60
    text = local.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}{extra}" if fraction else "") + {
        "Z": "Z", "none": "", "+hh:mm": f"{sign}{hours:02d}:{minutes:02d}", "+hhmm": f"{sign}{hours:02d}{minutes:02d}",
    }[zone]
    assert as_millis(text, "t") == ms and as_seconds(text, "t") == ms // 1000


@pytest.mark.parametrize("junk", [
    "", "x", "-3", "1e5", "1725958681.5", "１７２５９５８６８１", " 1725958681", "2024-09-10", "2024-09-10T08:58",
    "2024-02-30T00:00:00Z", "2024-09-10T24:00:00Z", "2024-09-10T08:58:60Z", "2024-09-10T08:58:01+24:00",
    "2024-09-10T08:58:01 UTC", "1969-12-31T23:59:59Z", "20240910T085801Z", "9" * 5000, 10**14, True, -1,
])
def test_anything_else_is_a_clear_wire_error(junk: Any) -> None:
    with pytest.raises(WireError, match=r"^match_time: "):
        as_millis(junk, "match_time")
    with pytest.raises(WireError, match=r"^match_time: "):
        as_seconds(junk, "match_time")


@pytest.mark.parametrize("stamp", SAME_INSTANT, ids=repr)
def test_every_time_form_decodes_in_a_user_trade_and_a_trade_record(stamp: Any) -> None:
    frame = {**obj_of("user_trade2.json"), "match_time": stamp, "timestamp": stamp}
    trade = one(json.dumps(frame), decode_user_frame)
    assert isinstance(trade, UserTrade), trade
    assert (trade.match_time_s, trade.venue_ts_ms) == (1725958681, 1725958681000)
    record = {**obj_of("trades.json"), "match_time": stamp, "last_update": stamp}
    assert decode_trade_record(json.dumps(record), recv_ns=0, cid="r").match_time_s == 1725958681


def test_the_rest_captures_with_iso_and_integer_times_decode() -> None:
    [item] = json.loads((FIXTURES / "rest" / "http_trades_page.json").read_text())["data"]
    trade = decode_trade_record(json.dumps(item), recv_ns=0, cid="r")
    assert (trade.status, trade.match_time_s, trade.venue_ts_ms) == ("MINED", 1704067200, 1704067210_000)
    orders = json.loads((FIXTURES / "rest" / "http_open_orders_page.json").read_text())["data"]
    decoded = [decode_order_record(json.dumps(o), recv_ns=0, cid="o") for o in orders]
    assert [o.venue_ts_ms for o in decoded] == [1703875200_000, 1703875201_000]  # created_at: a JSON number, seconds
    iso = decode_order_record(json.dumps({**orders[0], "created_at": "2023-12-29T18:40:00.250Z"}), recv_ns=0, cid="o")
    assert iso.venue_ts_ms == 1703875200_250


def test_a_bad_time_names_its_field_and_the_frame_is_malformed() -> None:
    frame = {**obj_of("user_trade2.json"), "timestamp": "", "last_update": "yesterday"}
    [bad] = decode_user_frame(json.dumps(frame), recv_ns=0, cid="c")
    assert isinstance(bad, MalformedFrame) and bad.error == "trade: last_update: not a time: 'yesterday'"
    order = {**obj_of("order_placement.json"), "timestamp": "", "created_at": "2024-13-01T00:00:00Z"}
    [bad] = decode_user_frame(json.dumps(order), recv_ns=0, cid="c")
    assert isinstance(bad, MalformedFrame) and bad.error.startswith("order: created_at: not a time:")


# --------------------------------------------------------------------------- trade statuses


@pytest.mark.parametrize("sent, kept", [
    ("FAILED", "FAILED"), ("failed", "FAILED"), ("TRADE_STATUS_CONFIRMED", "CONFIRMED"),
    ("trade_status_mined", "MINED"), ("Retrying", "RETRYING"),
    ("MATCHED_NOT_BROADCASTED", "MATCHED_NOT_BROADCASTED"), ("trade_status_something_new", "SOMETHING_NEW"),
])
def test_trade_statuses_are_normalised_and_unknown_ones_kept(sent: str, kept: str) -> None:
    trade = one(json.dumps({**obj_of("user_trade2.json"), "status": sent}), decode_user_frame)
    assert isinstance(trade, UserTrade) and trade.status == kept
    record = decode_trade_record(json.dumps({**obj_of("trades.json"), "status": sent}), recv_ns=0, cid="r")
    assert record.status == kept


@pytest.mark.parametrize("text", ["1E+999999", "9" * 40, "-1e+31", "1E+400000000"])
def test_parse_micro_refuses_a_huge_number_with_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="too large"):
        parse_micro(text)
    assert parse_micro("1" + "0" * 30) == 10**36  # the largest magnitude still read
