"""The mirrored simulator (issue 14): the engine keeps a market's two books one, as the venue
does, and the renderer shows each token's book with its complement's mirrored in, so every level
change is a price_change of two entries - what a client builds from the frames is that book."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.cli import main as cli_main
from mmbot.decisions.book import Books
from mmbot.facts.recording import iter_frames, read_header
from mmbot.model import ONE, BookState, MarketInfo, PriceChange, Side, TimeInForce, parse_micro
from mmbot.venues.polymarket.wire import decode_market_frame
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.events import MatchKind, Trade
from mmbot.venues.simulator.frames import FrameRenderer
from mmbot.venues.simulator.generate import Simulation
from tests.test_book import ListSink

TICK = 10_000
INFO = MarketInfo(market="0xm", tokens=("Y", "N"), tick=TICK, min_size=ONE)


def shown(engine: Engine, token: str, other: str) -> tuple[dict[int, int], dict[int, int]]:
    """What the venue shows of ``token``: its own levels plus ``other``'s through 1 - p."""
    own_bids, own_asks = engine.book_snapshot(token)
    other_bids, other_asks = engine.book_snapshot(other)
    bids: dict[int, int] = dict(own_bids)
    asks: dict[int, int] = dict(own_asks)
    for price, size in other_asks:
        bids[ONE - price] = bids.get(ONE - price, 0) + size
    for price, size in other_bids:
        asks[ONE - price] = asks.get(ONE - price, 0) + size
    return bids, asks


def crossed(bids: dict[int, int], asks: dict[int, int]) -> bool:
    return bool(bids) and bool(asks) and max(bids) >= min(asks)


def test_an_order_that_would_mint_with_the_complement_trades_on_a_mirrored_engine_and_rests_on_the_other():
    for mirrored in (False, True):
        engine = Engine(mirrored=mirrored)
        engine.add_market(INFO, now_ns=1)
        engine.submit("a", "Y", Side.BUY, 550_000, 10 * ONE, TimeInForce.GTC, False, 2)
        result = engine.submit("b", "N", Side.BUY, 500_000, 4 * ONE, TimeInForce.GTC, False, 3)
        refused = engine.submit("c", "N", Side.BUY, 460_000, ONE, TimeInForce.GTC, True, 4)  # post-only
        trades = [e for e in engine.take_events() if isinstance(e, Trade)]
        if mirrored:  # 0.55 + 0.50 >= 1: one complete set minted per share, the YES bid's price to it
            assert result.status == "matched" and [(t.kind, t.size, t.taker_price) for t in trades] == [
                (MatchKind.MINT, 4 * ONE, 450_000)]
            assert refused.status == "rejected" and refused.error == "INVALID_POST_ONLY_ORDER"
            assert not crossed(*shown(engine, "Y", "N"))
        else:  # the simulator's default: two books, the complete-set mispricing rests
            assert result.status == "live" and not trades and refused.status == "live"
            assert crossed(*shown(engine, "Y", "N"))


def test_a_level_and_its_mirror_resting_together_show_as_one_level_of_their_sum():
    engine, renderer = Engine(mirrored=True), FrameRenderer(mirrored=True)
    engine.add_market(INFO, now_ns=1)
    renderer.render(engine.take_events())
    engine.submit("a", "Y", Side.BUY, 400_000, 10 * ONE, TimeInForce.GTC, False, 2)  # YES bid 0.40
    engine.submit("b", "N", Side.SELL, 600_000, 5 * ONE, TimeInForce.GTC, False, 3)  # NO ask 0.60: also a YES bid 0.40
    first, second = (json.loads(f)["price_changes"] for f in renderer.render(engine.take_events()))
    assert [(e["asset_id"], e["side"], e["price"], e["size"]) for e in first + second] == [
        ("Y", "BUY", "0.4", "10"), ("N", "SELL", "0.6", "10"), ("N", "SELL", "0.6", "15"), ("Y", "BUY", "0.4", "15")]
    assert [book["bids"] for book in json.loads(renderer.snapshot(4, ["Y"]))] == [[{"price": "0.4", "size": "15"}]]


orders = st.tuples(
    st.sampled_from(["Y", "N"]),
    st.sampled_from([Side.BUY, Side.SELL]),
    st.integers(min_value=45, max_value=55).map(lambda ticks: ticks * TICK),  # near 0.5: levels meet their mirrors
    st.integers(min_value=1, max_value=30).map(lambda shares: shares * ONE),
    st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.FAK]),
    st.booleans(),
)
steps = st.one_of(orders, st.integers(min_value=0, max_value=50))  # an integer: cancel a resting order


@settings(max_examples=150, deadline=None)
@given(st.lists(steps, max_size=60))
def test_the_frames_of_a_mirrored_engine_build_the_venues_one_book_never_crossed(ops):
    engine, renderer = Engine(mirrored=True), FrameRenderer(mirrored=True)
    books = Books(ListSink())

    def deliver(frames: list[str], now: int) -> None:
        for text in frames:
            for msg in decode_market_frame(text, recv_ns=now, cid="f"):
                if isinstance(msg, PriceChange):
                    first, second = msg.changes  # the token's entry and its mirror, always both
                    assert (second.token, second.side, second.price, second.size) == (
                        "N" if first.token == "Y" else "Y", first.side.opposite, ONE - first.price, first.size)
                books.apply(msg)

    engine.add_market(INFO, now_ns=1)
    deliver(renderer.render(engine.take_events()), 1)
    for now, op in enumerate(ops, start=2):
        if isinstance(op, int):
            resting = engine.open_orders()
            if resting:
                engine.cancel(resting[op % len(resting)].order_id, now)
        else:
            token, side, price, size, tif, post_only = op
            engine.submit("u", token, side, price, size, tif, post_only and tif is TimeInForce.GTC, now)
        deliver(renderer.render(engine.take_events()), now)
        for token, other in (("Y", "N"), ("N", "Y")):
            bids, asks = shown(engine, token, other)
            assert not crossed(bids, asks)
            book = books.get(token)
            assert book.state is BookState.SYNCED  # every entry's best_bid/best_ask agreed
            assert (dict(book.bids), dict(book.asks)) == (bids, asks)
    snapshot = json.loads(renderer.snapshot(len(ops) + 2))
    for message in snapshot:
        token = message["asset_id"]
        bids, _ = shown(engine, token, "N" if token == "Y" else "Y")
        assert {parse_micro(level["price"]): parse_micro(level["size"]) for level in message["bids"]} == bids


def test_a_mirrored_recording_shows_two_entries_per_change_and_no_complete_set_mispricing():
    sim = Simulation(seed=5, duration_s=60, markets=2, interval_s=30, warmup_s=10, mirrored=True)
    books = Books(ListSink())
    entries, messages = 0, 0
    for t, channel, text in sim.frames():
        if channel != "market":
            continue
        for msg in decode_market_frame(text, recv_ns=t, cid="f"):
            if isinstance(msg, PriceChange):
                messages += 1
                entries += len(msg.changes)
            for token in books.apply(msg):
                info = next(i for i in sim.header.markets if token in i.tokens)
                yes, no = (books.get(tok) for tok in info.tokens)
                if yes is None or no is None or yes.state is not BookState.SYNCED or no.state is not BookState.SYNCED:
                    continue  # the complement's first book is still to come
                if yes.best_ask is not None and no.best_ask is not None:
                    assert yes.best_ask + no.best_ask >= ONE  # a set never costs less than it pays
    assert messages > 500 and entries == 2 * messages
    assert books.statistics().mismatches == 0


def test_mmbot_generate_writes_a_mirrored_recording_on_request(tmp_path, capsys):
    plain, mirrored = tmp_path / "plain.jsonl", tmp_path / "mirrored.jsonl"
    assert cli_main(["generate", "--seed", "3", "--duration", "20", "--markets", "1", "--out", str(plain)]) == 0
    assert cli_main(["generate", "--seed", "3", "--duration", "20", "--markets", "1", "--mirrored",
                     "--out", str(mirrored)]) == 0

    def entries(path):
        return [len(json.loads(text)["price_changes"]) for _, channel, text in iter_frames(path)
                if channel == "market" and '"price_change"' in text]

    assert set(entries(mirrored)) == {2} and 1 in set(entries(plain))
    assert read_header(plain) == read_header(mirrored)  # the same markets; only their books differ
