"""`mmbot decode FILE...` on captures, JSON Lines and recordings: printed lines, counts, exit codes."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

from mmbot.venues.polymarket.decode_cmd import run_decode

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "polymarket"
WS_MARKET = FIXTURES / "ws-market"
WS_USER = FIXTURES / "ws-user"


def compact(path: Path) -> str:
    return json.dumps(json.loads(path.read_text()))


def run(*paths: Path | str) -> tuple[int, list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_decode([str(p) for p in paths], out, err)
    return code, out.getvalue().splitlines(), err.getvalue()


def parsed(line: str) -> tuple[str, dict]:
    name, _, body = line.partition(" ")
    return name, json.loads(body)


def test_pretty_printed_object() -> None:
    code, lines, err = run(WS_MARKET / "last_trade_price.json")
    assert (code, err) == (0, "")
    assert len(lines) == 2
    name, fields = parsed(lines[0])
    assert name == "LastTrade"
    assert fields["cid"] == "0:0" and fields["recv_ns"] == 0
    assert (fields["price"], fields["size"], fields["side"]) == (491000, 85360000, "SELL")
    assert lines[-1] == "frames: 1, messages: 1, malformed: 0"


def test_nested_values_print_as_plain_json() -> None:
    code, lines, _ = run(WS_MARKET / "price_change_v2.json", WS_MARKET / "ws_book_snapshot_captured.json")
    assert code == 0
    name, change = parsed(lines[0])
    assert name == "PriceChange" and change["cid"] == "0:0"
    assert change["changes"][0] == {
        "token": "52114319501245915516055106046884209969926127482827954674443846427813813222426",
        "side": "BUY",
        "price": 600000,
        "size": 3300000000,
        "best_bid": 600000,
        "best_ask": 700000,
        "hash": "bf32b3746fff40c76c98021b7f3f07261169dd26",
    }
    name, book = parsed(lines[1])
    assert name == "BookSnapshot" and book["cid"] == "1:0"
    assert book["bids"][-1] == [70000, 182528550000]
    assert lines[-1] == "frames: 2, messages: 2, malformed: 0"


def test_json_lines_with_a_malformed_line(tmp_path: Path) -> None:
    trade_record = compact(WS_USER / "trades.json")
    order_record = compact(WS_USER / "ws_user_order_update.json")
    array = f"[{compact(WS_MARKET / 'last_trade_price.json')}, {compact(WS_MARKET / 'ws_market_tick_size_msg.json')}]"
    lines_in = [
        compact(WS_MARKET / "price_change_v2.json"),
        '{"event_type": "book", "market": "0x1", "asset_',  # cut off mid-frame
        "PONG",
        array,
        compact(WS_USER / "user_trade2.json"),
        trade_record,
        order_record,
        '{"taker_order_id": "0x1", "id": "t"}',  # a trade record missing most fields
    ]
    path = tmp_path / "frames.jsonl"
    path.write_text("\n".join(lines_in) + "\n\n")
    code, lines, err = run(path)
    assert (code, err) == (0, "")
    names = [parsed(line)[0] for line in lines[:-1]]
    assert names == [
        "PriceChange",
        "MalformedFrame",
        "LastTrade",
        "TickSizeChange",
        "UserTrade",
        "UserTrade",
        "UserOrder",
        "MalformedFrame",
    ]
    cids = [parsed(line)[1]["cid"] for line in lines[:-1]]
    assert cids == ["0:0", "0:1", "0:3.0", "0:3.1", "0:4", "0:5", "0:6", "0:7"]
    _, malformed = parsed(lines[1])
    assert malformed["channel"] == "market" and malformed["excerpt"] == lines_in[1]
    _, bad_record = parsed(lines[-2])
    assert bad_record["channel"] == "user" and "trade record" in bad_record["error"]
    _, order = parsed(lines[6])
    assert order["event"] == "UPDATE" and order["associate_trades"] == ["trade-0xabcdef1234"]
    assert lines[-1] == "frames: 8, messages: 8, malformed: 2"


def recording_lines() -> list[str]:
    return [
        json.dumps({"format": "mmbot-recording", "version": 1, "markets": []}),
        json.dumps({"t": 1_700_000_000_000_000_001, "ch": "market", "frame": (WS_MARKET / "last_trade_price.json").read_text()}),
        json.dumps({"t": 1_700_000_000_000_000_002, "ch": "underlying", "frame": '{"price": "1"}'}),
        json.dumps({"t": 1_700_000_000_000_000_003, "ch": "user", "frame": compact(WS_USER / "order_placement.json")}),
        json.dumps({"t": 1_700_000_000_000_000_004, "ch": "market", "frame": "PONG"}),
    ]


def test_recording_uses_recorded_channel_and_time(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write("\n".join(recording_lines()) + "\n")
    code, lines, _ = run(path)
    assert code == 0
    (trade_name, trade), (order_name, order) = parsed(lines[0]), parsed(lines[1])
    assert (trade_name, trade["recv_ns"], trade["cid"]) == ("LastTrade", 1_700_000_000_000_000_001, "0:0")
    assert (order_name, order["recv_ns"], order["cid"]) == ("UserOrder", 1_700_000_000_000_000_003, "0:1")
    # the header and the underlying-price line are not venue frames; PONG is a frame with no message
    assert lines[-1] == "frames: 3, messages: 2, malformed: 0"


def test_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    code, lines, err = run(WS_MARKET / "last_trade_price.json", missing)
    assert code == 2 and lines == []
    assert err.count("\n") == 1 and str(missing) in err


def test_unreadable_gzip_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl.gz"
    path.write_bytes(b"not gzip at all")
    code, lines, err = run(path)
    assert code == 2 and lines == [] and "broken.jsonl.gz" in err


def test_broken_single_document_is_one_malformed_frame(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text((WS_MARKET / "book.json").read_text()[:500])
    code, lines, _ = run(path)
    assert code == 0
    assert parsed(lines[0])[0] == "MalformedFrame"
    assert lines[-1] == "frames: 1, messages: 1, malformed: 1"
