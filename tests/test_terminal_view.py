"""The live terminal view of ``mmbot run`` and its plain-lines twin: ``render`` of hand-made
snapshots (what a person reads: names, human numbers, no ``None``, what stops quoting, the market
list cut to the console's height), the view as a Trio service (redrawn on the clock, the last frame
left printed when cancelled), and both on a paper run over loopback against the simulator while
the simulator drops the market feed."""

from __future__ import annotations

import io
import re
from datetime import timedelta, timezone

import attrs
import pytest
import trio
from rich.console import Console

from mmbot import app
from mmbot.app_cockpit import Cockpit
from mmbot.clock import TrioClock
from mmbot.cockpit.snapshot import FeedRow, MarketRow, Notice, Quote, Snapshot, TokenRow
from mmbot.cockpit.terminal import TerminalView, render
from mmbot.cockpit.terminal_plain import PlainLines
from mmbot.cockpit.terminal_text import clock_text, duration_text
from mmbot.config import Config
from mmbot.venues.simulator.server import Fault
from tests.test_paper_live import START_NS, serve

S = 1_000_000_000
T0 = 1_786_604_100 * S  # 2026-08-13 06:55:00 UTC
UTC = timezone.utc


def market(i: int, *, busy: bool = False, resolved: bool = False) -> MarketRow:
    quotes = (Quote("o1", "BUY", 450_000, 10_000_000, 2_500_000, "live", "mm", 3),
              Quote("o2", "SELL", 480_000, 5_000_000, 0, "live", "mm", 1)) if busy else ()
    return MarketRow(
        market=f"0x{i:064x}", slug=f"btc-updown-5m-{i}", question=f"Bitcoin up or down, interval {i}?",
        end_wall_ns=T0 + 600 * S, resolved=resolved, fills=2 if busy else 0,
        tokens=(TokenRow("t1", "Up", 450_000, 470_000, "synced", 12_340_000 if busy else 0, 5_553_000, 460_000, quotes),
                TokenRow("t2", "Down", None, None, "stale", 0, 0, None, ())),
        realised=-5_553_000 if busy else 0, unrealised=123_400 if busy else 0)


def snapshot(**changes) -> Snapshot:
    base = Snapshot(
        mode="paper", started_wall_ns=T0, wall_ns=T0 + 125 * S, cash=9_994_447_000, reserved=4_500_000,
        realised=-5_553_000, unrealised=123_400, fees=12_000, start_cash=10_000_000_000, fills=2, maker_fills=2,
        taker_fills=0, orders_by_state={"live": 2}, intents_by_strategy={"mm": 12, "merge": 1},
        rejections={"max_position_per_token": 3, "venue: not enough balance": 1}, paused=False, halted=False,
        gate_open=True, tripped=(), markets=(market(0), market(1, busy=True)),
        feeds=(FeedRow("market-0", "market", True, T0 + 5 * S, "", 2, 8),
               FeedRow("user", "user", False, T0 + 100 * S, "silent for 30 s", 1, 0)),
        notices=(Notice(T0 + 60 * S, "warning", "feed_down", "market feed market-0 down: closed by the venue"),
                 Notice(T0 + 61 * S, "info", "feed_up", "market feed market-0 up (8 assets) after 1.0 s down")),
        recent_fills=(), pnl_history=(), counts={})
    return attrs.evolve(base, **changes)


def text_of(renderable, *, width: int = 140, height: int = 60) -> str:
    console = Console(record=True, width=width, height=height, file=io.StringIO(), force_terminal=True)
    console.print(renderable)
    return console.export_text()


def test_times_and_durations_read_as_a_person_reads_them():
    assert clock_text(T0, UTC) == "06:55:00"
    assert clock_text(T0, timezone(timedelta(hours=2))) == "08:55:00"
    assert clock_text(None, UTC) == clock_text(0, UTC) == "-"
    assert [duration_text(n * S) for n in (0, 42, 245, 7_380, 277_200)] == ["0s", "42s", "4m05s", "2h03m", "3d05h"]
    assert duration_text(-1) == duration_text(None) == "-"


def test_a_frame_names_markets_and_outcomes_in_human_units_and_never_says_none():
    text = text_of(render(snapshot(), tz=UTC))
    assert "None" not in text and "{" not in text
    assert "mmbot paper" in text and "up 2m05s" in text and "at 06:57:05" in text and "quoting" in text
    assert "cash 9994.447" in text and "reserved 4.5" in text and "fees 0.012" in text
    assert "PnL -5.4296" in text and "realised -5.553" in text and "marked 0.1234" in text
    assert "fills 2 (maker 2, taker 0)" in text and "orders live 2" in text
    lines = text.splitlines()
    up = next(line for line in lines if line.startswith("btc-updown-5m-1"))
    # best bid/ask, book, inventory, mark, the market's PnL, our quotes (what is left of them)
    assert re.search(r"Up\s+0\.45\s+0\.47\s+synced\s+12\.34\s+0\.46\s+-5\.553\s+0\.1234\s+-5\.4296"
                     r"\s+BUY 0\.45×7\.5, SELL 0\.48×5", up), up
    down = lines[lines.index(up) + 1]
    assert re.search(r"ends 07:05:00\s+Down\s+-\s+-\s+stale\s+0\s+-\s+-\s*$", down), down
    assert lines.index(up) < next(i for i, line in enumerate(lines) if line.startswith("btc-updown-5m-0"))  # busy first
    assert re.search(r"market-0\s+up since 06:55:05\s+sessions 2\s+assets 8", text)
    assert re.search(r"user\s+DOWN since 06:56:40 \(25s\): silent for 30 s", text)
    assert "06:56:00 warning market feed market-0 down: closed by the venue" in text
    assert "06:56:01 info    market feed market-0 up (8 assets) after 1.0 s down" in text
    assert "rejections max_position_per_token 3, venue: not enough balance 1" in text
    assert "intents mm 12, merge 1" in text


@pytest.mark.parametrize(("changes", "shown"), [
    ({"paused": True}, "PAUSED"),
    ({"halted": True}, "HALTED"),
    ({"gate_open": False}, "gate closed"),
    ({"tripped": ("market-feed", "user-channel")}, "breakers tripped: market-feed, user-channel"),
])
def test_what_stops_quoting_is_shown_in_red_instead_of_quoting(changes, shown):
    console = Console(record=True, width=140, height=60, file=io.StringIO(), force_terminal=True)
    console.print(render(snapshot(**changes), tz=UTC))
    text = console.export_text(clear=False)
    assert shown in text and "quoting" not in text.splitlines()[0]
    assert f"\x1b[1;31m{shown}" in console.export_text(styles=True)


def test_an_empty_run_says_so():
    text = text_of(render(snapshot(markets=(), feeds=(), notices=(), rejections={}, intents_by_strategy={},
                                   orders_by_state={}, started_wall_ns=0), tz=UTC))
    assert "no markets yet" in text and "no connection yet" in text and "rejections none" in text
    assert "up -" in text and "orders none" in text and "None" not in text


@pytest.mark.parametrize(("width", "height"), [(140, 30), (100, 24), (80, 40), (200, 80)])
def test_the_market_list_is_cut_to_the_consoles_height_busy_markets_first(width, height):
    markets = tuple(market(i, busy=i in (17, 23)) for i in range(40))
    notices = tuple(Notice(T0 + i * S, "warning", "restart", f"service x restarted (attempt {i})") for i in range(20))
    text = text_of(render(snapshot(markets=markets, notices=notices), tz=UTC), width=width, height=height)
    lines = text.splitlines()
    assert len(lines) <= height - 1
    shown = [line.split()[0] for line in lines if line.startswith("btc-updown-5m-")]
    assert shown[:2] == ["btc-updown-5m-17", "btc-updown-5m-23"]
    more = re.search(r"\+(\d+) more markets", text)
    assert more and len(shown) + int(more.group(1)) == 40
    assert len(shown) >= (height - 25) // 2  # the space left by the other sections goes to markets
    assert "restarted (attempt 19)" in text  # the newest warnings are kept
    heading = next(line for line in lines if line.startswith("market "))
    assert ("realised" in heading) == (width >= 120) and ("book" in heading) == (width >= 95)  # narrow: fewer
    assert "PnL" in heading and "our quotes" in heading


def test_all_markets_shown_when_they_fit():
    text = text_of(render(snapshot(markets=tuple(market(i) for i in range(5))), height=80, tz=UTC))
    assert "more markets" not in text and all(f"btc-updown-5m-{i}" in text for i in range(5))


async def test_the_view_redraws_on_the_clock_and_leaves_its_last_frame_when_cancelled(autojump_clock):
    file = io.StringIO()
    console = Console(record=True, width=140, height=50, file=file, force_terminal=True)
    taken = []

    def source() -> Snapshot:
        taken.append(trio.current_time())
        return snapshot(fills=len(taken), halted=len(taken) >= 9)

    view = TerminalView(source, console, refresh_s=0.5, tz=UTC)
    async with trio.open_nursery() as nursery:
        await nursery.start(view.run)
        await trio.sleep(3.9)
        nursery.cancel_scope.cancel()
    assert taken == [0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.9]  # every refresh_s, and once more when stopped
    out = file.getvalue()
    assert out.count("fills 1 (") == 1 and "fills 8 (" in out
    last = out[out.rindex("mmbot paper"):]
    assert "fills 9 (" in last and "HALTED" in last and "\x1b[?25h" in last  # the cursor is given back


async def test_plain_lines_tell_warnings_and_fills_as_they_come_and_a_summary_on_the_clock(autojump_clock):
    out = io.StringIO()
    plain = PlainLines(out, snapshot=lambda: snapshot(wall_ns=T0 + int(trio.current_time()) * S), every_s=10,
                       describe=lambda token: ("0xm", "btc-updown-5m-1", "Up"), tz=UTC)

    def row(kind: str, payload: dict, at_s: int, token: str = "") -> None:
        plain.on_row((1, 0, T0 + at_s * S, kind, "c", "0xm", token, ""), payload)

    async with trio.open_nursery() as nursery:
        await nursery.start(plain.run)
        row("feed_down", {"connection": "market-0", "reason": "silent for 30 s"}, 3)
        row("book_update", {"token": "t1"}, 4)  # not for the operator
        row("fill", {"side": "BUY", "price": 450_000, "size": 10_000_000, "fee": 0, "liquidity": "maker"}, 5, "t1")
        row("breaker_trip", {"service": "user-channel", "crashes": 5, "error": "boom"}, 6)
        await trio.sleep(25)
        nursery.cancel_scope.cancel()
    lines = out.getvalue().splitlines()
    assert lines[:3] == [
        "06:55:03 WARNING market feed market-0 down: silent for 30 s",
        "06:55:05 FILL    btc-updown-5m-1 Up BUY 10 @ 0.45 fee 0 maker",
        "06:55:06 ERROR   breaker tripped on user-channel after 5 crashes: boom",
    ]
    summaries = lines[3:]
    assert [s[:8] for s in summaries] == ["06:55:10", "06:55:20", "06:55:25"]  # every 10 s, and at the end
    assert summaries[0] == ("06:55:10 SUMMARY pnl -5.4296 (realised -5.553, marked 0.1234, fees 0.012) cash 9994.447"
                            " reserved 4.5 fills 2 (maker 2, taker 0) open orders 2 markets 2 down: user")
    assert "None" not in out.getvalue() and plain.lines == len(lines)


def test_plain_lines_fall_silent_when_their_output_goes_away():
    out = io.StringIO()
    plain = PlainLines(out)
    out.close()  # a closed pipe: writing raises
    plain.on_row((1, 0, T0, "feed_down", "c", "", "", ""), {"connection": "market-0", "reason": "x"})
    assert plain.broken and plain.lines == 0


async def test_a_paper_run_shows_its_markets_fills_and_the_feed_going_down_and_up(nursery, autojump_clock, tmp_path):
    server, urls, markets = await serve(nursery, markets=4, seed=5)
    clock = TrioClock(anchor_ns=START_NS)
    file, plain_out = io.StringIO(), io.StringIO()
    console = Console(record=True, width=160, height=60, file=file, force_terminal=True)
    cockpits: list[Cockpit] = []

    def services(engine, live=None):
        cockpit = Cockpit(engine, mode="paper", wall=clock.now_ns)
        cockpits.append(cockpit)
        plain = PlainLines(plain_out, snapshot=cockpit.snapshot, every_s=10, describe=cockpit.describe, tz=UTC)
        engine.log.observe(plain.on_row)
        view = TerminalView(cockpit.snapshot, console, refresh_s=0.2, tz=UTC)
        return [("terminal", view.run), ("plain-lines", plain.run)]

    stop = trio.Event()
    async with trio.open_nursery() as inner:
        inner.start_soon(lambda: app.run_paper(config=Config(seed=2), markets=markets, ws_url=urls.ws,
                                               db_path=tmp_path / "paper.db", clock=clock, stop=stop,
                                               extra_services=services))
        await trio.sleep(45)
        server.inject(Fault(kind="drop"))
        await trio.sleep(15)
        stop.set()
    (cockpit,) = cockpits
    assert cockpit.snapshot().fills > 0
    shown = console.export_text()  # every frame drawn, without the terminal's control codes
    assert file.getvalue().endswith("\x1b[?25h")  # the cursor given back at the end
    assert all(m.slug in shown for m in markets) and all(o in shown for m in markets for o in m.outcomes)
    frames = shown.split("mmbot paper")[1:]
    assert len(frames) >= 60 / 0.2 - 5
    assert re.search(r"market-\d+\s+DOWN since \d\d:\d\d:\d\d \(.*\): closed by the venue", shown)  # while down
    last = frames[-1]
    assert re.search(r"market-\d+\s+up since", last) and "closed by the venue" in last  # the warning stays
    fills = int(re.search(r"fills (\d+) \(", last).group(1))
    assert fills == cockpit.snapshot().fills > 0 and "None" not in shown
    plain = plain_out.getvalue().splitlines()
    down = next(i for i, line in enumerate(plain)
                if re.match(r"\d\d:\d\d:\d\d WARNING market feed market-\d+ down", line))
    assert any(re.match(r"\d\d:\d\d:\d\d INFO +market feed market-\d+ up .* after [\d.]+ s down", line)
               for line in plain[down:])
    assert any(" FILL " in line and " @ " in line for line in plain)
    summaries = [line for line in plain if " SUMMARY " in line]
    assert len(summaries) >= 6 and f"fills {fills} (" in summaries[-1]
