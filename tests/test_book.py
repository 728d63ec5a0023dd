"""The L2 book: Books against a from-scratch reference model, and the venue quirks one by one."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.decisions.book import Book, Books
from mmbot.model import (
    ONE,
    BestBidAsk,
    BookSnapshot,
    BookState,
    LastTrade,
    LevelChange,
    MarketResolved,
    NewMarket,
    PriceChange,
    Side,
    TickSizeChange,
    parse_micro,
)

MARKET = "0xmarket"
YES, NO = "yes-token", "no-token"
TICK = 10_000


class ListSink:
    """An EventSink that keeps every row in a list."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any] | None, str, str]] = []

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "", token: str = "") -> None:
        self.rows.append((kind, cid, payload, market, token))

    def of(self, kind: str) -> list[tuple[str, str, dict[str, Any] | None, str, str]]:
        return [row for row in self.rows if row[0] == kind]


def p(text: str) -> int:
    return parse_micro(text)


def snapshot(token: str, bids: list[tuple[int, int]], asks: list[tuple[int, int]], *, cid: str = "snap", recv_ns: int = 1, tick: int | None = None) -> BookSnapshot:
    return BookSnapshot(cid=cid, recv_ns=recv_ns, market=MARKET, token=token, bids=tuple(bids), asks=tuple(asks), venue_ts_ms=0, tick=tick)


def change(token: str, side: Side, price: int, size: int, best_bid: int | None = None, best_ask: int | None = None) -> LevelChange:
    return LevelChange(token=token, side=side, price=price, size=size, best_bid=best_bid, best_ask=best_ask)


def price_change(*changes: LevelChange, cid: str = "pc", recv_ns: int = 2) -> PriceChange:
    return PriceChange(cid=cid, recv_ns=recv_ns, market=MARKET, venue_ts_ms=0, changes=tuple(changes))


def fixture_price_change(fixtures_dir, name: str = "price_change_v2.json") -> PriceChange:
    raw = json.loads((fixtures_dir / "ws-market" / name).read_text())
    entries = tuple(
        LevelChange(
            token=entry["asset_id"],
            side=Side(entry["side"]),
            price=p(entry["price"]),
            size=p(entry["size"]),
            best_bid=p(entry["best_bid"]),
            best_ask=p(entry["best_ask"]),
            hash=entry["hash"],
        )
        for entry in raw["price_changes"]
    )
    return PriceChange(cid="fixture", recv_ns=5, market=raw["market"], venue_ts_ms=int(raw["timestamp"]), changes=entries)


# --------------------------------------------------------------------------- reference model


class RefBook:
    """The obvious model: plain dicts, bests recomputed from scratch, state as a word."""

    def __init__(self) -> None:
        self.status = "absent"  # absent, empty (tick known, no snapshot), stale, live
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None

    def venue_top(self) -> tuple[int, int]:
        """The top as the venue writes it: "0"/"1" for an empty side."""
        bid, ask = self.best_bid(), self.best_ask()
        return (0 if bid is None else bid, ONE if ask is None else ask)

    def expected_state(self) -> BookState | None:
        if self.status == "absent":
            return None
        if self.status == "empty":
            return BookState.EMPTY
        if self.status == "stale":
            return BookState.STALE
        bid, ask = self.best_bid(), self.best_ask()
        crossed = bid is not None and ask is not None and bid >= ask
        return BookState.CROSSED if crossed else BookState.SYNCED

    def set_level(self, side: Side, price: int, size: int) -> None:
        levels = self.bids if side is Side.BUY else self.asks
        if size:
            levels[price] = size
        else:
            levels.pop(price, None)


TOKENS = [YES, NO, "never-snapshotted"]
prices = st.integers(min_value=40, max_value=60).map(lambda n: n * TICK)  # a narrow band, so books cross
sizes = st.sampled_from([0, 0, 1, 5 * ONE, 12_345_678])
levels = st.lists(st.tuples(prices, sizes), max_size=6)
tokens = st.sampled_from(TOKENS)
entries = st.tuples(tokens, st.sampled_from([Side.BUY, Side.SELL]), prices, sizes)

operations = st.one_of(
    st.tuples(st.just("snapshot"), st.sampled_from([YES, NO]), levels, levels),
    st.tuples(st.just("changes"), st.lists(entries, min_size=1, max_size=6), st.sampled_from(["none", "per_entry", "final"])),
    st.tuples(st.just("changes"), st.lists(entries, min_size=1, max_size=6), st.just("none")),
    st.tuples(st.just("best_bid_ask"), tokens, st.booleans()),
    st.tuples(st.just("tick"), tokens),
    st.tuples(st.just("mark_stale"), st.lists(tokens, max_size=3)),
    st.tuples(st.just("resolved")),
)


def run_operation(books: Books, ref: dict[str, RefBook], op: tuple, step: int) -> tuple[list[str], list[str], int]:
    """Apply ``op`` to both; returns (tokens Books reported, tokens the model expects, mismatches expected)."""
    kind = op[0]
    cid = f"c{step}"
    if kind == "snapshot":
        _, token, bids, asks = op
        book = ref[token]
        book.status = "live"
        book.bids = {}
        book.asks = {}
        for price, size in bids:
            book.set_level(Side.BUY, price, size)
        for price, size in asks:
            book.set_level(Side.SELL, price, size)
        return books.apply(snapshot(token, bids, asks, cid=cid, recv_ns=step)), [token], 0
    if kind == "changes":
        _, raw_entries, tops = op
        applied: list[str] = []
        built = []
        for token, side, price, size in raw_entries:
            book = ref[token]
            if book.status == "live":
                book.set_level(side, price, size)
                if token not in applied:
                    applied.append(token)
            bid, ask = book.venue_top() if tops == "per_entry" and book.status == "live" else (None, None)
            built.append([token, side, price, size, bid, ask])
        if tops == "final":
            for entry in built:
                if ref[entry[0]].status == "live":
                    entry[4], entry[5] = ref[entry[0]].venue_top()
        msg = price_change(*(change(*entry) for entry in built), cid=cid, recv_ns=step)
        return books.apply(msg), applied, 0
    if kind == "best_bid_ask":
        _, token, correct = op
        book = ref[token]
        bid, ask = book.venue_top()
        if not correct:
            bid = bid + TICK if bid else 500_000
        msg = BestBidAsk(cid=cid, recv_ns=step, market=MARKET, token=token, best_bid=bid, best_ask=ask, venue_ts_ms=0)
        expected: list[str] = []
        mismatches = 0
        if not correct and book.status == "live":
            book.status = "stale"
            expected = [token]
            mismatches = 1
        return books.apply(msg), expected, mismatches
    if kind == "tick":
        _, token = op
        book = ref[token]
        if book.status == "absent":
            book.status = "empty"
        elif book.status == "live":
            book.status = "stale"
        msg = TickSizeChange(cid=cid, recv_ns=step, market=MARKET, token=token, old_tick=TICK, new_tick=1_000, venue_ts_ms=0)
        return books.apply(msg), [token], 0
    if kind == "mark_stale":
        _, stale_tokens = op
        expected = []
        for token in stale_tokens:
            if ref[token].status == "live":
                ref[token].status = "stale"
                expected.append(token)
        return books.mark_stale(stale_tokens, "reconnect", cid), expected, 0
    assert kind == "resolved"
    expected = []
    for token in (YES, NO):
        if ref[token].status == "live":
            ref[token].status = "stale"
            expected.append(token)
    msg = MarketResolved(cid=cid, recv_ns=step, market=MARKET, market_id="1", tokens=(YES, NO), winning_token=YES, winning_outcome="Yes", venue_ts_ms=0)
    return books.apply(msg), expected, 0


@settings(max_examples=300, deadline=None)
@given(st.lists(operations, max_size=40))
def test_books_match_a_reference_model_after_every_step(ops: list[tuple]) -> None:
    sink = ListSink()
    books = Books(sink)
    ref = {token: RefBook() for token in TOKENS}
    expected_mismatches = 0
    for step, op in enumerate(ops, start=1):
        states_before = {token: ref[token].expected_state() for token in TOKENS}
        rows_before = len(sink.of("book_state"))
        reported, expected_tokens, mismatches = run_operation(books, ref, op, step)
        expected_mismatches += mismatches

        assert reported == expected_tokens, op
        transitions = 0
        for token in TOKENS:
            model = ref[token]
            book = books.get(token)
            state = model.expected_state()
            if state is None:
                assert book is None
                continue
            assert book is not None and book.state is state, (op, book)
            # A new book starts EMPTY unrecorded; its first snapshot is a recorded transition.
            transitions += (states_before[token] or BookState.EMPTY) is not state
            if model.status == "empty":
                continue
            assert book.bids == model.bids and book.asks == model.asks
            assert book.best_bid == model.best_bid() and book.best_ask == model.best_ask()
            assert book.best_bid_size() == (model.bids[model.best_bid()] if model.bids else 0)
            assert book.best_ask_size() == (model.asks[model.best_ask()] if model.asks else 0)
            assert book.levels(Side.BUY) == sorted(model.bids.items(), reverse=True)
            assert book.levels(Side.SELL) == sorted(model.asks.items())
        # Every state change is one book_state row; updates that keep the state record nothing.
        assert len(sink.of("book_state")) - rows_before == transitions, op
        assert books.mismatches == expected_mismatches == len(sink.of("book_mismatch"))


# --------------------------------------------------------------------------- snapshots


def test_snapshot_sorts_venue_order_and_replaces_every_level(fixtures_dir) -> None:
    raw = json.loads((fixtures_dir / "ws-market" / "ws_book_snapshot_captured.json").read_text())
    bids = [(p(level["price"]), p(level["size"])) for level in raw["bids"]]
    asks = [(p(level["price"]), p(level["size"])) for level in raw["asks"]]
    assert bids[-1][0] == max(price for price, _ in bids)  # best last, as captured
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.95"), ONE)]))

    assert books.apply(snapshot(YES, bids, asks, tick=p(raw["tick_size"]), recv_ns=77)) == [YES]

    book = books.get(YES)
    assert book is not None
    assert book.best_bid == max(price for price, _ in bids)
    assert book.best_ask == min(price for price, _ in asks)
    assert book.bids == dict(bids) and book.asks == dict(asks)
    assert p("0.5") not in book.bids
    assert book.tick == TICK and book.updated_ns == 77
    assert book.state is BookState.SYNCED
    assert [row[2] for row in sink.of("book_state")] == [{"state": "synced", "previous": "empty", "reason": "snapshot"}]


def test_snapshot_without_tick_keeps_the_known_tick() -> None:
    books = Books(ListSink())
    books.apply(snapshot(YES, [], [], tick=1_000))
    books.apply(snapshot(YES, [], []))
    assert books.get(YES).tick == 1_000


def test_empty_book_is_synced_and_has_no_top() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [], []))
    book = books.get(YES)
    assert book.state is BookState.SYNCED
    assert (book.best_bid, book.best_ask, book.mid()) == (None, None, None)
    assert (book.best_bid_size(), book.best_ask_size()) == (0, 0)
    assert book.levels(Side.BUY) == [] and book.levels(Side.SELL, 3) == []
    assert book.size_at_or_better(Side.SELL, ONE) == 0
    # The venue writes empty sides as "0" and "1": that agrees with an empty book.
    books.apply(BestBidAsk(cid="b", recv_ns=3, market=MARKET, token=YES, best_bid=0, best_ask=ONE, venue_ts_ms=0))
    assert book.state is BookState.SYNCED and not sink.of("book_mismatch")


def test_one_sided_book() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.3"), 2 * ONE), (p("0.31"), ONE)], []))
    book = books.get(YES)
    assert (book.best_bid, book.best_ask, book.mid()) == (p("0.31"), None, None)
    assert book.best_bid_size() == ONE and book.best_ask_size() == 0
    books.apply(price_change(change(YES, Side.BUY, p("0.31"), 0, best_bid=p("0.3"), best_ask=ONE)))
    assert book.best_bid == p("0.3") and book.state is BookState.SYNCED
    # An empty ask side that the venue says is not empty is a mismatch, and vice versa.
    books.apply(price_change(change(YES, Side.BUY, p("0.29"), ONE, best_bid=p("0.3"), best_ask=p("0.7"))))
    assert book.state is BookState.STALE
    assert sink.of("book_mismatch")[0][2] == {"local_bid": p("0.3"), "local_ask": None, "venue_bid": p("0.3"), "venue_ask": p("0.7")}


def test_venue_saying_no_bids_while_we_have_some_is_a_mismatch() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.3"), ONE)], [(p("0.7"), ONE)]))
    assert books.apply(BestBidAsk(cid="b", recv_ns=3, market=MARKET, token=YES, best_bid=0, best_ask=p("0.7"), venue_ts_ms=0)) == [YES]
    assert books.get(YES).state is BookState.STALE and books.get(YES).updated_ns == 3


def test_crossed_snapshot_then_resync_counts() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.5"), ONE)]))
    assert books.get(YES).state is BookState.CROSSED
    assert books.needing_resync() == [YES]
    books.apply(snapshot(YES, [(p("0.49"), ONE)], [(p("0.5"), ONE)]))
    assert books.get(YES).state is BookState.SYNCED
    stats = books.statistics()
    assert (stats.crossings, stats.resyncs, stats.books) == (1, 1, 1)
    assert books.needing_resync() == []


def test_snapshot_duplicate_prices_last_wins_and_invalid_levels_are_skipped() -> None:
    books = Books(ListSink())
    books.apply(snapshot(YES, [(p("0.4"), ONE), (p("0.4"), 0), (p("0.3"), ONE), (p("0.3"), 3 * ONE), (0, ONE), (p("0.2"), -1)], [(ONE, ONE)]))
    book = books.get(YES)
    assert book.bids == {p("0.3"): 3 * ONE} and book.asks == {}
    assert books.statistics().invalid_levels == 3


# --------------------------------------------------------------------------- price changes and cross-checks


def test_fixture_multi_entry_message_is_checked_against_its_last_entry(fixtures_dir) -> None:
    msg = fixture_price_change(fixtures_dir)
    token = msg.changes[0].token
    assert len(msg.changes) == 3 and {c.token for c in msg.changes} == {token}
    assert {(c.best_bid, c.best_ask) for c in msg.changes} == {(p("0.6"), p("0.7"))}

    # First two entries (bids at 0.6 and 0.5) leave the top at 0.6/0.7, as every entry says.
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(token, [(p("0.4"), ONE)], [(p("0.7"), ONE), (p("0.8"), ONE)]))
    two = PriceChange(cid="two", recv_ns=4, market=msg.market, venue_ts_ms=msg.venue_ts_ms, changes=msg.changes[:2])
    assert books.apply(two) == [token]
    book = books.get(token)
    assert (book.best_bid, book.best_ask, book.state) == (p("0.6"), p("0.7"), BookState.SYNCED)
    assert book.bids == {p("0.4"): ONE, p("0.6"): 3_300 * ONE, p("0.5"): 3_400 * ONE}
    assert sink.rows[1:] == []

    # The whole message: its last entry adds a bid at 0.7 yet still reports 0.6 — our book
    # (locked at 0.7) and the venue's disagree, which is one mismatch, not one per entry.
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(token, [(p("0.4"), ONE)], [(p("0.7"), ONE), (p("0.8"), ONE)]))
    assert books.apply(msg) == [token]
    assert [row[0] for row in sink.rows] == ["book_state", "book_mismatch", "book_state"]
    kind, cid, payload, market, row_token = sink.rows[1]
    assert (cid, market, row_token) == ("fixture", MARKET, token)
    assert payload == {"local_bid": p("0.7"), "local_ask": p("0.7"), "venue_bid": p("0.6"), "venue_ask": p("0.7")}
    assert sink.rows[2][2] == {"state": "stale", "previous": "synced", "reason": "mismatch"}
    assert books.get(token).state is BookState.STALE and books.get(token).updated_ns == 5


def test_per_entry_tops_are_accepted() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.7"), ONE)]))
    books.apply(
        price_change(
            change(YES, Side.BUY, p("0.6"), ONE, best_bid=p("0.6"), best_ask=p("0.7")),
            change(YES, Side.BUY, p("0.6"), 0, best_bid=p("0.5"), best_ask=p("0.7")),
        )
    )
    assert books.get(YES).state is BookState.SYNCED and books.mismatches == 0


def test_only_the_tokens_last_entry_is_checked() -> None:
    # Entries that repeat the message-final top (or any top) before the last entry of their
    # token are not held against the partly applied book.
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.7"), ONE)]))
    books.apply(snapshot(NO, [(p("0.3"), ONE)], [(p("0.5"), ONE)]))
    reported = books.apply(
        price_change(
            change(YES, Side.BUY, p("0.55"), ONE, best_bid=p("0.6"), best_ask=p("0.7")),
            change(NO, Side.SELL, p("0.45"), ONE, best_bid=p("0.3"), best_ask=p("0.45")),
            change(YES, Side.BUY, p("0.6"), ONE, best_bid=p("0.6"), best_ask=p("0.7")),
        )
    )
    assert reported == [YES, NO]
    assert books.get(YES).state is BookState.SYNCED and books.get(NO).state is BookState.SYNCED
    # A wrong top on the last entry of a token is caught, and only that token goes stale.
    reported = books.apply(
        price_change(
            change(YES, Side.SELL, p("0.65"), ONE, best_bid=p("0.6"), best_ask=p("0.65")),
            change(NO, Side.BUY, p("0.35"), ONE, best_bid=p("0.3"), best_ask=p("0.45")),
        )
    )
    assert reported == [YES, NO]
    assert books.get(YES).state is BookState.SYNCED and books.get(NO).state is BookState.STALE
    assert [row[4] for row in sink.of("book_mismatch")] == [NO]


def test_crossing_is_recorded_once_and_uncrossing_recovers() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.6"), ONE)]))
    books.apply(price_change(change(YES, Side.BUY, p("0.6"), ONE)))
    books.apply(price_change(change(YES, Side.BUY, p("0.61"), ONE)))
    book = books.get(YES)
    assert book.state is BookState.CROSSED
    books.apply(price_change(change(YES, Side.BUY, p("0.61"), 0), change(YES, Side.BUY, p("0.6"), 0)))
    assert book.state is BookState.SYNCED
    assert [row[2]["reason"] for row in sink.of("book_state")] == ["snapshot", "crossed", "uncrossed"]
    assert books.statistics().crossings == 1


def test_a_lock_inside_one_message_is_not_a_crossing() -> None:
    # The new bid at 0.6 arrives before the removal of the ask it consumed.
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.6"), ONE), (p("0.7"), ONE)]))
    books.apply(price_change(change(YES, Side.BUY, p("0.6"), ONE), change(YES, Side.SELL, p("0.6"), 0, best_bid=p("0.6"), best_ask=p("0.7"))))
    assert books.get(YES).state is BookState.SYNCED
    assert len(sink.rows) == 1


def test_changes_for_unknown_tokens_and_invalid_levels_are_counted_and_skipped() -> None:
    books = Books(ListSink())
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.6"), ONE)]))
    reported = books.apply(
        price_change(
            change("unknown", Side.BUY, p("0.5"), ONE),
            change(YES, Side.BUY, ONE, ONE),
            change(YES, Side.SELL, p("0.7"), -5),
            change(YES, Side.SELL, p("0.7"), 2 * ONE),
        )
    )
    assert reported == [YES]
    assert books.get("unknown") is None
    assert books.get(YES).asks == {p("0.6"): ONE, p("0.7"): 2 * ONE}
    stats = books.statistics()
    assert (stats.changes_without_book, stats.invalid_levels, stats.changes_applied) == (1, 2, 1)


@pytest.mark.parametrize("one_at_a_time", [False, True], ids=["one-message", "one-entry-messages"])
def test_each_entry_is_judged_alike_alone_or_among_others(one_at_a_time) -> None:
    # A one-entry message, the venue's usual one, takes its own short way through Books: it
    # must count, skip and report exactly as the general loop does.
    books = Books(ListSink())
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.6"), ONE)]))
    books.apply(snapshot(NO, [(p("0.4"), ONE)], [(p("0.5"), ONE)]))
    books.mark_stale([NO], "reconnect", "r1")
    entries = [
        change("unknown", Side.BUY, p("0.5"), ONE),
        change(YES, Side.BUY, ONE, ONE),
        change(YES, Side.BUY, 0, ONE),
        change(YES, Side.SELL, p("0.7"), -5),
        change(NO, Side.BUY, p("0.45"), ONE),
        change(YES, Side.SELL, p("0.7"), 2 * ONE, best_bid=p("0.5"), best_ask=p("0.6")),
    ]
    if one_at_a_time:
        reported = [token for entry in entries for token in books.apply(price_change(entry, recv_ns=7))]
    else:
        reported = books.apply(price_change(*entries, recv_ns=7))
    assert reported == [YES]
    assert books.get(YES).asks == {p("0.6"): ONE, p("0.7"): 2 * ONE} and books.get(YES).updated_ns == 7
    assert books.get(NO).bids == {p("0.4"): ONE}
    stats = books.statistics()
    assert (stats.changes_without_book, stats.changes_dropped_stale, stats.invalid_levels, stats.changes_applied) == (1, 1, 3, 1)
    assert books.get(YES).state is BookState.SYNCED
    books.apply(price_change(change(YES, Side.BUY, p("0.55"), ONE, best_bid=p("0.5"))))  # the venue disagrees
    assert books.get(YES).state is BookState.STALE


def test_removing_an_absent_level_changes_nothing() -> None:
    books = Books(ListSink())
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.6"), ONE)]))
    books.apply(price_change(change(YES, Side.BUY, p("0.45"), 0), change(YES, Side.SELL, p("0.65"), 0)))
    book = books.get(YES)
    assert (book.bids, book.asks, book.best_bid, book.best_ask) == ({p("0.5"): ONE}, {p("0.6"): ONE}, p("0.5"), p("0.6"))


# --------------------------------------------------------------------------- staleness


def test_tick_size_change_makes_the_book_stale_until_the_next_snapshot(fixtures_dir) -> None:
    raw = json.loads((fixtures_dir / "ws-market" / "ws_market_tick_size_msg.json").read_text())
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.6"), ONE)], tick=p(raw["old_tick_size"])))
    tick_change = TickSizeChange(cid="tick", recv_ns=3, market=MARKET, token=YES, old_tick=p(raw["old_tick_size"]), new_tick=p(raw["new_tick_size"]), venue_ts_ms=int(raw["timestamp"]))
    assert books.apply(tick_change) == [YES]
    book = books.get(YES)
    assert (book.tick, book.state) == (p("0.01"), BookState.STALE)
    assert sink.of("book_state")[-1][2] == {"state": "stale", "previous": "synced", "reason": "tick_size_change"}

    assert books.apply(price_change(change(YES, Side.BUY, p("0.55"), ONE), recv_ns=4)) == []
    assert p("0.55") not in book.bids and book.updated_ns == 3
    assert books.apply(BestBidAsk(cid="b", recv_ns=5, market=MARKET, token=YES, best_bid=p("0.55"), best_ask=p("0.6"), venue_ts_ms=0)) == []
    assert books.statistics().changes_dropped_stale == 1 and books.mismatches == 0

    books.apply(snapshot(YES, [(p("0.55"), ONE)], [(p("0.6"), ONE)], recv_ns=6))
    assert book.state is BookState.SYNCED and book.tick == p("0.01") and books.resyncs == 1
    books.apply(price_change(change(YES, Side.BUY, p("0.56"), ONE), recv_ns=7))
    assert book.best_bid == p("0.56") and book.updated_ns == 7


def test_tick_size_change_before_any_snapshot_keeps_the_tick() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(TickSizeChange(cid="t", recv_ns=1, market=MARKET, token=YES, old_tick=TICK, new_tick=1_000, venue_ts_ms=0))
    book = books.get(YES)
    assert (book.state, book.tick) == (BookState.EMPTY, 1_000)
    books.apply(price_change(change(YES, Side.BUY, p("0.5"), ONE)))
    assert book.bids == {} and books.statistics().changes_without_book == 1
    books.apply(snapshot(YES, [], []))
    assert (book.state, book.tick) == (BookState.SYNCED, 1_000)
    assert books.resyncs == 0  # a first snapshot is a sync, not a resync
    assert not sink.of("book_mismatch")


def test_mark_stale_and_resolution() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [], []))
    books.apply(snapshot(NO, [], []))
    assert books.mark_stale([YES, "unknown"], "reconnect", "r1") == [YES]
    assert books.mark_stale([YES], "reconnect", "r2") == []
    assert sink.of("book_state")[-1][1:] == ("r1", {"state": "stale", "previous": "synced", "reason": "reconnect"}, MARKET, YES)
    resolved = MarketResolved(cid="res", recv_ns=9, market=MARKET, market_id="1", tokens=(YES, NO), winning_token=NO, winning_outcome="No", venue_ts_ms=0)
    assert books.apply(resolved) == [NO]
    assert books.get(NO).state is BookState.STALE and books.get(NO).updated_ns == 9
    assert sink.of("book_state")[-1][2]["reason"] == "resolved"
    assert books.needing_resync() == [YES, NO]


def test_trades_and_new_markets_do_not_touch_books() -> None:
    sink = ListSink()
    books = Books(sink)
    books.apply(snapshot(YES, [(p("0.5"), ONE)], [(p("0.6"), ONE)]))
    trade = LastTrade(cid="t", recv_ns=5, market=MARKET, token=YES, price=p("0.6"), size=ONE, side=Side.BUY, venue_ts_ms=0)
    listing = NewMarket(cid="n", recv_ns=5, market="0xother", market_id="2", question="?", slug="s", tokens=("a", "b"), outcomes=("Yes", "No"), tick=TICK, venue_ts_ms=0)
    assert books.apply(trade) == [] and books.apply(listing) == []
    assert books.get(YES).updated_ns == 1 and len(books) == 1 and len(sink.rows) == 1


def test_a_non_market_message_is_a_bug() -> None:
    with pytest.raises(TypeError):
        Books(ListSink()).apply("not a message")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reading a book


def make_book() -> Book:
    book = Book(YES, MARKET, TICK)
    book.replace({p("0.48"): 3 * ONE, p("0.5"): ONE, p("0.49"): 2 * ONE}, {p("0.53"): 7 * ONE, p("0.51"): 5 * ONE, p("0.52"): 6 * ONE})
    return book


def test_levels_are_best_first_and_depth_limited() -> None:
    book = make_book()
    assert book.levels(Side.BUY) == [(p("0.5"), ONE), (p("0.49"), 2 * ONE), (p("0.48"), 3 * ONE)]
    assert book.levels(Side.SELL) == [(p("0.51"), 5 * ONE), (p("0.52"), 6 * ONE), (p("0.53"), 7 * ONE)]
    assert book.levels(Side.BUY, 2) == [(p("0.5"), ONE), (p("0.49"), 2 * ONE)]
    assert book.levels(Side.SELL, 1) == [(p("0.51"), 5 * ONE)]
    assert book.levels(Side.SELL, 0) == []
    assert book.levels(Side.BUY, 10) == book.levels(Side.BUY)


def test_size_at_or_better() -> None:
    book = make_book()
    assert book.size_at_or_better(Side.SELL, p("0.50")) == 0
    assert book.size_at_or_better(Side.SELL, p("0.51")) == 5 * ONE
    assert book.size_at_or_better(Side.SELL, p("0.525")) == 11 * ONE
    assert book.size_at_or_better(Side.SELL, ONE) == 18 * ONE
    assert book.size_at_or_better(Side.BUY, p("0.51")) == 0
    assert book.size_at_or_better(Side.BUY, p("0.49")) == 3 * ONE
    assert book.size_at_or_better(Side.BUY, 0) == 6 * ONE


def test_mid_rounds_down() -> None:
    book = make_book()
    assert book.mid() == p("0.505")
    book.apply_change(Side.SELL, p("0.51"), 0)
    book.apply_change(Side.SELL, p("0.500001"), ONE)
    assert book.mid() == 500_000  # (500_000 + 500_001) // 2
