"""Up/Down rollover end to end: a paper run on the simulator over loopback (autojump clock) with a
``[select]`` for one series, one market at a time. Windows end and new ones list; the run takes on
each new window as it lists, trades it, retires the ended one — all told by the event log.

The run is ``app_tree.run_paper`` with ``select``: the selection service (``app_select``) in place of
trading every listing (``follow_listings``/``listing_details``).
"""

from __future__ import annotations

import json

import attrs
import httpx
import sqlite_utils

from mmbot import app
from mmbot.app_select import check_overrides, initial_selection
from mmbot.clock import TrioClock
from mmbot.config import Config, parse_config
from mmbot.venues.simulator.server import SimServer, SimSettings
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
S = 1_000_000_000
INTERVAL_S = 30


async def paper_with_selection(*, config: Config, ws_url: str, gamma_url: str, db_path, duration_s: int,
                               clock: TrioClock):
    """A paper run as ``mmbot run`` without ``--markets`` makes one: the start-up selection, then
    ``app.run_paper`` with the ``[select]`` rules keeping the traded set current."""
    async with httpx.AsyncClient(base_url=gamma_url, timeout=10) as gamma:
        markets = await initial_selection(gamma, config.select, clock.now_ns())
    check_overrides(config, markets)
    engine = await app.run_paper(config=config, markets=markets, ws_url=ws_url, db_path=db_path, duration_s=duration_s,
                                 clock=clock, gamma_url=gamma_url, select=config.select)
    return engine, markets


@attrs.frozen
class Window:
    slug: str
    end_ns: int
    tokens: tuple[str, ...]


def rows(db, kind: str) -> list[tuple[int, str, dict]]:
    found = sqlite_utils.Database(db).execute(
        "SELECT ts_ns, market, payload FROM events WHERE kind = ? ORDER BY seq", [kind]).fetchall()
    return [(ts, market, json.loads(payload)) for ts, market, payload in found]


async def test_up_down_windows_are_taken_on_as_they_list_and_retired_as_they_end(nursery, autojump_clock, tmp_path):
    venue = LiveVenue(seed=21, markets=4, start_ns=START_NS, interval_s=INTERVAL_S, warmup_s=20)
    server = SimServer(venue, settings=SimSettings(seed=21, interval_s=INTERVAL_S))
    urls = await nursery.start(server.run)
    config = parse_config({"seed": 5, "risk": {"end_buffer_s": 5}, "strategies": {"maker": {"end_buffer_s": 5}},
                           "select": {"series": ["btc-up-or-down-30s"], "max_markets": 1, "refresh_s": 600}})
    db = tmp_path / "rollover.db"
    listed_at_start = {info.market: info for info in venue.markets()}  # the venue forgets ended windows later
    engine, first = await paper_with_selection(
        config=config, ws_url=urls.ws, gamma_url=urls.gamma, db_path=db, duration_s=4 * INTERVAL_S,
        clock=TrioClock(anchor_ns=START_NS))

    # at start-up: one market, the current btc window (the plain markets and the other series left out)
    assert [m.slug for m in first] == [min((w for w in listed_at_start.values() if w.end_ns > START_NS
                                            and w.slug.startswith("btc-updown-30s-")), key=lambda w: w.end_ns).slug]
    selected = rows(db, "market_selected")
    retired = rows(db, "market_retired")
    # each window as the run took it on (the venue forgets ended ones: the log keeps them)
    windows = {market: Window(slug=p["slug"], end_ns=p["end_ns"], tokens=tuple(p["tokens"])) for _, market, p in selected}
    slugs = [payload["slug"] for _, _, payload in selected]
    assert len(slugs) >= 4 and len(set(slugs)) == len(slugs)
    assert all(slug.startswith("btc-updown-30s-") for slug in slugs)
    starts = [int(slug.rsplit("-", 1)[1]) for slug in slugs]
    assert starts == sorted(starts) and all(b - a == INTERVAL_S for a, b in zip(starts, starts[1:]))  # no gap
    assert selected[0][2]["reason"].startswith("start-up: series btc-up-or-down-30s")
    assert all(payload["reason"] == "series btc-up-or-down-30s" for _, _, payload in selected[1:])

    # every window but the last was retired as ended, at most a couple of seconds after its end, and
    # the next one was taken on at that same read: never two traded at once (max_markets = 1)
    assert [market for _, market, _ in retired] == [market for _, market, _ in selected[:-1]]
    for (t_retired, market, payload), (t_next, _, _) in zip(retired, selected[1:]):
        assert payload["reason"] == "ended"
        end = windows[market].end_ns
        assert end <= t_retired <= end + 3 * S and t_retired <= t_next <= t_retired + S

    # each window taken on was subscribed and traded: its books came, and the strategies acted on them
    traded_tokens = {token for (token,) in sqlite_utils.Database(db).execute(
        "SELECT DISTINCT token FROM events WHERE kind = 'intent' AND token != ''").fetchall()}
    for _, market, _ in selected[:-1]:
        assert set(windows[market].tokens) & traded_tokens, f"no intent on {windows[market].slug}"
    # ended windows' tokens were let go once resolved; the current one's are subscribed
    subscribed = {asset for conn in engine.channel.connections for asset in conn.assets}
    assert set(windows[selected[-1][1]].tokens) <= subscribed
    resolved = set(engine.markets.resolved)
    let_go = [market for _, market, _ in retired if market in resolved]
    assert len(let_go) >= 2  # the windows resolve some seconds after their end
    for market in let_go:
        assert not set(windows[market].tokens) & subscribed
    assert not set(engine.markets.resolved) & {m for _, m, _ in selected[-1:]}  # the last one still trades
    # nothing was traded outside the selection
    chosen_tokens = {t for _, market, _ in selected for t in windows[market].tokens}
    assert traded_tokens <= chosen_tokens
