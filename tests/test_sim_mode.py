"""End to end with signed orders against the simulator over loopback (``--mode sim``): the live
gateway, the user channel and reconciliation, with faults injected — and afterwards the ledger
equals the simulator's account, token by token and in cash, exactly."""

from __future__ import annotations

import json
from typing import Any

import httpx
import sqlite_utils
import trio

from mmbot.app_live import run_trading
from mmbot.clock import TrioClock
from mmbot.config import Config, MergeConfig, Secret, StrategiesConfig
from mmbot.model import ONE
from mmbot.venues.polymarket.auth import SigningKey
from mmbot.venues.polymarket.discovery import list_markets
from mmbot.venues.simulator.server import Fault, SimServer, SimSettings
from mmbot.venues.simulator.trading import credentials_for
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
KEY = SigningKey(Secret(value="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))


async def start_sim(nursery: trio.Nursery, *, interval_s: int) -> tuple[SimServer, Any, list[Any]]:
    """The simulator on loopback at START_NS (four markets, Up/Down windows of ``interval_s``), KEY's
    account on it with 2,000 pUSD; returns the server, its URLs and the markets it lists."""
    venue = LiveVenue(seed=12, markets=4, start_ns=START_NS, warmup_s=20, interval_s=interval_s)
    server = SimServer(venue, settings=SimSettings(seed=0, interval_s=interval_s), clock=TrioClock(anchor_ns=START_NS))
    urls = await nursery.start(server.run)
    async with httpx.AsyncClient(base_url=urls.gamma) as http:
        markets, _ = await list_markets(http)
    server.add_account(KEY.address, credentials_for(KEY.address), cash=2_000 * ONE)
    return server, urls, markets
# merges are an on-chain call the live gateway does not make yet: off for this run
CONFIG = Config(seed=2, strategies=StrategiesConfig(merge=MergeConfig(enabled=False)))


async def test_sim_mode_ledger_equals_the_simulators_account_under_faults(nursery, autojump_clock, tmp_path) -> None:
    # one-minute Up/Down windows: markets resolve, and new ones are listed, during the run
    server, urls, markets = await start_sim(nursery, interval_s=60)
    api_key = credentials_for(KEY.address).api_key
    soonest = min((m for m in markets if m.end_ns), key=lambda m: m.end_ns)  # resolves during the run
    others = [m for m in markets if m is not soonest]
    held = {soonest.tokens[0]: 30 * ONE, others[0].tokens[1]: 12_500_000}  # from before this run
    server.trading.give(api_key, shares=held)

    async def faults() -> None:
        await trio.sleep(20)
        server.inject(Fault(kind="throttle", value="2"))
        await trio.sleep(20)
        server.inject(Fault(kind="fail", value=api_key))
        server.inject(Fault(kind="shuffle", value=api_key))
        await trio.sleep(20)
        server.inject(Fault(kind="lose", value="1"))
        server.inject(Fault(kind="restart", value="3"))
        await trio.sleep(10)
        server.inject(Fault(kind="stall", value="40"))  # both channels go silent through a resolution

    nursery.start_soon(faults)
    engine = await run_trading(
        config=CONFIG, markets=markets, ws_url=urls.ws, user_ws_url=server.user_url, rest_url=urls.rest, key=KEY,
        creds=None, db_path=tmp_path / "sim.db", mode="sim", duration_s=150, clock=TrioClock(anchor_ns=START_NS),
    )
    ledger = engine.executor.ledger
    truth = server.venue.user_feed.positions.get(api_key, {})
    counts = engine.executor.counts
    assert counts["orders"] > 5 and counts["fills"] > 0, counts
    assert {t: n for t, n in truth.items() if n} == {t: n for t, n in ledger.snapshot()["positions"].items() if n}
    account = server.trading._accounts[api_key]
    assert ledger.cash == server.trading.cash(account) == 2_000 * ONE + server.venue.user_feed.cash_moved[api_key]
    ledger.check()
    rows = sqlite_utils.Database(tmp_path / "sim.db")
    adopted = {r["token"]: json.loads(r["payload"])["shares"] for r in rows["events"].rows_where("kind = 'position_adopted'")}
    assert adopted == held
    catch_ups = [json.loads(r["payload"]) for r in rows["events"].rows_where("kind = 'user_catch_up'")]
    # one when the user channel first connected; during the stall, while it was down, the trades it
    # missed were found; and one more once it was back, before quoting resumed
    assert catch_ups[0]["connected"] and len(catch_ups) >= 3, catch_ups
    assert sum(c["new_legs"] for c in catch_ups[1:] if not c["connected"]) > 0, catch_ups
    assert catch_ups[-1]["connected"], catch_ups
    # listed markets were traded with their fees from the listing; resolved ones wait to be redeemed
    listed = {r["market"] for r in rows["events"].rows_where("kind = 'market_listed'")}
    traded = {r["market"] for r in rows["events"].rows_where("kind = 'fill'")}
    assert listed & traded, (listed, traded)
    resolutions = [json.loads(r["payload"]) for r in rows["events"].rows_where("kind = 'resolution'")]
    assert resolutions and all(r["payout"] == 0 for r in resolutions), resolutions
    assert any(r["redeemable"] or r["worthless"] for r in resolutions), resolutions  # shares held through one
    # the stalled channel missed the first market's resolution: Gamma told it instead
    assert [r["market"] for r in rows["events"].rows_where("kind = 'resolution_found'")] == [soonest.market]


async def test_secrets_appear_nowhere(nursery, autojump_clock, tmp_path, capsys) -> None:
    """Known fake secrets through a whole signed session: not in the event log, not on stdout or
    stderr, not in the reprs of the objects that hold them."""
    from mmbot.venues.polymarket.auth import ApiCredentials

    venue = LiveVenue(seed=13, markets=4, start_ns=START_NS, warmup_s=10)
    server = SimServer(venue, settings=SimSettings(seed=0), clock=TrioClock(anchor_ns=START_NS))
    urls = await nursery.start(server.run)
    creds = ApiCredentials(api_key="fake-key-0001", secret=Secret(value="ZmFrZS1zZWNyZXQtZmFrZS1zZWNyZXQtZmFrZS1zZWM="),
                           passphrase=Secret(value="fake-passphrase-0001"))
    server.add_account(KEY.address, creds)
    async with httpx.AsyncClient(base_url=urls.gamma) as http:
        markets, _ = await list_markets(http)
    engine = await run_trading(
        config=CONFIG, markets=markets, ws_url=urls.ws, user_ws_url=server.user_url, rest_url=urls.rest, key=KEY,
        creds=creds, db_path=tmp_path / "s.db", mode="sim", duration_s=40, clock=TrioClock(anchor_ns=START_NS),
    )
    assert engine.executor.counts["orders"] > 0
    secrets = ["ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80", creds.secret.reveal(),
               "fake-passphrase-0001"]
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    out = capsys.readouterr()
    holders = repr(KEY) + repr(creds) + repr(engine.executor._gateway) + repr(engine.config)
    for secret in secrets:
        assert secret.encode() not in stored and secret not in out.out + out.err and secret not in holders


async def test_an_account_whose_exchanges_may_not_spend_its_balance_is_refused_at_start_up(
    nursery, autojump_clock, tmp_path
) -> None:
    import pytest

    from mmbot.ports import Fatal

    venue = LiveVenue(seed=3, markets=4, start_ns=START_NS, warmup_s=10)
    server = SimServer(venue, settings=SimSettings(seed=0), clock=TrioClock(anchor_ns=START_NS))
    urls = await nursery.start(server.run)
    creds = credentials_for(KEY.address)
    server.add_account(KEY.address, creds)
    server.trading.allowances[creds.api_key] = 50 * ONE  # approved for 50 of the 10,000 pUSD
    async with httpx.AsyncClient(base_url=urls.gamma) as http:
        markets, _ = await list_markets(http)
    with pytest.raises(Fatal, match="may spend 50 of the account's 10000 pUSD: approve them"):
        await run_trading(config=CONFIG, markets=markets, ws_url=urls.ws, user_ws_url=server.user_url,
                          rest_url=urls.rest, key=KEY, creds=creds, db_path=tmp_path / "a.db", mode="sim",
                          duration_s=10, clock=TrioClock(anchor_ns=START_NS))
