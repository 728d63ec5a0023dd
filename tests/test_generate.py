"""The synthetic recording generator: deterministic, decodable, and holding what replay needs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from mmbot.facts.recording import iter_frames, read_header
from mmbot.model import ONE, MarketInfo, Side, TimeInForce, parse_micro
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.flow import FlowParams
from mmbot.venues.simulator.frames import FrameRenderer
from mmbot.venues.simulator.prices import SECOND, normal_cdf
from mmbot.venues.simulator.generate import Simulation, generate_recording, main, write_recording
from mmbot.venues.simulator.survey import FrameBooks, find_mispricings

ROOT = Path(__file__).resolve().parent.parent
BUNDLED = ROOT / "recordings" / "sim-7.jsonl.gz"
MARKET_EVENTS = {"book", "price_change", "last_trade_price", "tick_size_change", "market_resolved", "new_market"}
# Short and busy: 30 s Up/Down windows, dislocations from the first seconds on.
SHORT = dict(duration_s=80, markets=4, interval_s=30)
BUSY = FlowParams(first_dislocation_s=(3, 8), dislocation_gap_s=(10, 20), dislocation_s=(10, 15))
SEED = 11


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    simulation = Simulation(seed=SEED, warmup_s=20, params=BUSY, **SHORT)
    path = tmp_path_factory.mktemp("gen") / "short.jsonl"
    write_recording(simulation, path)
    return simulation, path


def _short_bytes(tmp_path: Path, seed: int, name: str) -> bytes:
    path = tmp_path / name
    generate_recording(path, seed=seed, duration_s=40, interval_s=30, warmup_s=10)
    return path.read_bytes()


def test_the_same_seed_gives_identical_bytes_and_another_seed_does_not(tmp_path):
    first = _short_bytes(tmp_path, 5, "a.jsonl.gz")
    assert first == _short_bytes(tmp_path, 5, "b.jsonl.gz")
    assert first != _short_bytes(tmp_path, 6, "c.jsonl.gz")


def test_every_frame_decodes_and_market_frames_have_known_event_types(short_run):
    simulation, path = short_run
    header = read_header(path)
    assert header == simulation.header
    frames = list(iter_frames(path))
    t0, channel, snapshot = frames[0]
    assert (t0, channel) == (header.start_ns, "market")
    books = json.loads(snapshot)
    assert isinstance(books, list) and {b["event_type"] for b in books} == {"book"}
    plan = simulation.plan
    listed_first = [p.info for p in plan.plain] + [w.info for w in plan.windows if w.list_ns <= header.start_ns]
    assert {b["asset_id"] for b in books} == {t for m in listed_first for t in m.tokens}
    assert all(b["bids"] and b["asks"] for b in books)  # the warm-up filled them
    for t, channel, frame in frames[1:]:
        decoded = json.loads(frame)
        if channel == "underlying":
            assert int(decoded["timestamp"]) * 1_000_000 <= t
            continue
        assert channel == "market"
        for msg in decoded if isinstance(decoded, list) else [decoded]:
            assert msg["event_type"] in MARKET_EVENTS
            assert int(msg["timestamp"]) * 1_000_000 <= t  # sent before it was received


def test_frames_rebuild_the_engines_books_exactly(short_run):
    simulation, path = short_run
    books = FrameBooks(simulation.header)
    for _, channel, frame in iter_frames(path):
        if channel == "market":
            books.apply(frame)
    for info in simulation.header.markets:
        for token in info.tokens:
            assert books.snapshot(token) == simulation.engine.book_snapshot(token), info.slug


def test_interval_markets_resolve_by_the_underlying_they_publish(short_run):
    simulation, path = short_run
    prices: dict[int, int] = {}
    resolved: dict[str, str] = {}
    for _, channel, frame in iter_frames(path):
        if channel == "underlying":
            payload = json.loads(frame, parse_float=Decimal)["payload"]
            prices[payload["timestamp"] * 1_000_000] = parse_micro(str(payload["value"]))
        elif '"market_resolved"' in frame:
            msg = json.loads(frame)
            resolved[msg["market"]] = msg["winning_outcome"]
    over = [w for w in simulation.plan.windows if w.resolve_ns <= simulation.end_ns]
    assert len(over) >= 2
    assert set(resolved) == {w.info.market for w in over}
    for window in over:
        expected = "Up" if prices[window.end_ns] >= prices[window.start_ns] else "Down"
        assert resolved[window.info.market] == expected, window.info.slug


def test_the_short_recording_offers_an_ask_sum_below_one(short_run):
    _, path = short_run
    windows = find_mispricings(path)
    asks = [w for w in windows if w.kind == "ask"]
    assert asks, windows
    assert all(0 < w.widest < ONE for w in windows)


def test_the_bundled_recording_keeps_its_promises():
    header = read_header(BUNDLED)
    assert header.seed == 7
    plain = [m for m in header.markets if m.outcomes == ("Yes", "No")]
    interval = [m for m in header.markets if m.outcomes == ("Up", "Down")]
    assert len(plain) >= 3 and interval
    last_t = header.start_ns
    kinds = set()
    for t, _, frame in iter_frames(BUNDLED):
        last_t = t
        if '"event_type":"market_resolved"' in frame or '"event_type":"tick_size_change"' in frame:
            kinds.add(json.loads(frame)["event_type"])
    assert last_t - header.start_ns >= 12 * 60 * SECOND
    assert kinds == {"market_resolved", "tick_size_change"}
    assert {w.kind for w in find_mispricings(BUNDLED)} == {"ask", "bid"}
    assert BUNDLED.stat().st_size < 3_000_000


def test_the_command_line_writes_a_recording_and_refuses_bad_arguments(tmp_path, capsys):
    out = tmp_path / "cli.jsonl"
    assert main(["--seed", "3", "--out", str(out), "--duration", "20", "--interval", "30"]) == 0
    assert read_header(out).seed == 3
    assert "frames" in capsys.readouterr().out
    assert main(["--seed", "3", "--out", str(out), "--duration", "0"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(out)])
    assert exit_info.value.code == 2


def test_the_integer_normal_cdf_is_symmetric_monotone_and_bounded():
    values = [normal_cdf(z) for z in range(-5_000, 5_001, 37)]
    assert values == sorted(values) and 0 < values[0] < values[-1] < ONE
    assert normal_cdf(0) == ONE // 2
    assert normal_cdf(1_960) == pytest.approx(975_002, abs=500)  # Phi(1.96), linear interpolation
    assert all(normal_cdf(z) + normal_cdf(-z) == ONE for z in range(0, 5_000, 13))


def _capture(fixtures_dir: Path, name: str) -> dict:
    return json.loads((fixtures_dir / "ws-market" / name).read_text())


def test_frames_have_the_captured_shapes_best_levels_last_and_a_book_after_trades(fixtures_dir):
    engine, renderer = Engine(), FrameRenderer()
    engine.add_market(MarketInfo(market="0xm", tokens=("Y", "N"), outcomes=("Up", "Down")), now_ns=SECOND)
    new_market, *listing_books = (json.loads(f) for f in renderer.render(engine.take_events()))
    assert list(new_market) == list(_capture(fixtures_dir, "ws_market_new_market_msg.json"))
    assert [b["asset_id"] for b in listing_books] == ["Y", "N"]

    for side, price in ((Side.BUY, 400_000), (Side.BUY, 410_000), (Side.SELL, 600_000)):
        engine.submit("m", "Y", side, price, 10 * ONE, TimeInForce.GTC, False, 2 * SECOND)
    changes = [json.loads(f) for f in renderer.render(engine.take_events())]  # one level change a message
    captured_change = _capture(fixtures_dir, "price_change_v2.json")
    assert all(set(change) == set(captured_change) for change in changes)
    assert [[list(e) for e in change["price_changes"]] for change in changes] == [
        [["asset_id", "price", "size", "side", "hash", "best_bid", "best_ask"]]
    ] * 3
    change = changes[0]
    first = change["price_changes"][0]
    assert (first["price"], first["size"], first["side"], first["best_bid"], first["best_ask"]) == (
        "0.4", "10", "BUY", "0.4", "1"  # an empty ask side reads "1"
    )
    assert change["timestamp"] == "2000" and len(first["hash"]) == 40

    engine.submit("t", "Y", Side.SELL, 410_000, 6 * ONE, TimeInForce.FAK, False, 3 * SECOND)
    update, trade, book = (json.loads(f) for f in renderer.render(engine.take_events()))
    assert update["price_changes"][0]["size"] == "4"
    assert set(trade) == set(_capture(fixtures_dir, "last_trade_price.json")) | {"transaction_hash"}
    assert (trade["price"], trade["size"], trade["side"], trade["asset_id"]) == ("0.41", "6", "SELL", "Y")
    assert book["event_type"] == "book" and "tick_size" not in book
    assert book["bids"] == [{"price": "0.4", "size": "10"}, {"price": "0.41", "size": "4"}]  # best last

    engine.set_tick("0xm", 1_000, 4 * SECOND)
    frames = [json.loads(f) for f in renderer.render(engine.take_events())]
    assert [(f["event_type"], f["asset_id"]) for f in frames] == [
        ("tick_size_change", "Y"), ("tick_size_change", "N"), ("book", "Y"), ("book", "N")
    ]
    assert set(frames[0]) == set(_capture(fixtures_dir, "ws_market_tick_size_msg.json"))

    engine.resolve("0xm", "N", 5 * SECOND)
    *cancels, resolved = (json.loads(f) for f in renderer.render(engine.take_events()))
    assert len(cancels) == 3 and {e["size"] for c in cancels for e in c["price_changes"]} == {"0"}
    assert list(resolved) == list(_capture(fixtures_dir, "ws_market_resolved_msg.json"))
    assert (resolved["winning_asset_id"], resolved["winning_outcome"]) == ("N", "Down")

    engine.add_market(MarketInfo(market="0xn", tokens=("A", "B")), now_ns=6 * SECOND)
    renderer.render(engine.take_events())
    engine.submit("m", "A", Side.SELL, 700_000, 5 * ONE, TimeInForce.GTC, False, 6 * SECOND)
    engine.submit("m", "A", Side.SELL, 650_000, 5 * ONE, TimeInForce.GTC, False, 6 * SECOND)
    renderer.render(engine.take_events())
    snapshot = json.loads(renderer.snapshot(7 * SECOND, ["A"]))
    assert list(snapshot[0]) == list(_capture(fixtures_dir, "ws_book_snapshot_captured.json"))
    assert [lv["price"] for lv in snapshot[0]["asks"]] == ["0.7", "0.65"]  # best last
