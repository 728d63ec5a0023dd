"""At exit a run waits for its merges and redemptions in flight — but not for a chain lane that can
no longer answer: when the lane's breaker has tripped, the exit goes on at once and says what was
left unanswered (``chain_unsettled``), instead of sitting out the whole settle time."""

from __future__ import annotations

import json

import httpx
import sqlite_utils
import trio

from mmbot.app_chain import open_chain
from mmbot.app_live import run_trading
from mmbot.clock import TrioClock
from mmbot.config import CapitalConfig, Config, MergeConfig, Secret, StrategiesConfig
from mmbot.model import ONE
from mmbot.venues.polymarket.auth import POLY_1271, SigningKey
from mmbot.venues.polymarket.chain import ChainLane
from mmbot.venues.polymarket.discovery import list_markets
from mmbot.venues.simulator.server import SimServer, SimSettings
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
KEY = SigningKey(Secret(value="0x" + "4e" * 32))
CONFIG = Config(seed=4, strategies=StrategiesConfig(merge=MergeConfig(min_sets=5 * ONE)),
                capital=CapitalConfig(sweep_interval_s=5))
DURATION_S = 150


class _Quiet:
    def record(self, kind: str, cid: str, payload: object = None, *, market: str = "", token: str = "") -> None:
        return None


async def test_a_tripped_chain_lane_does_not_hold_up_the_exit(nursery, autojump_clock, tmp_path,
                                                              monkeypatch) -> None:
    venue = LiveVenue(seed=21, markets=4, start_ns=START_NS, warmup_s=20, interval_s=300)
    server = SimServer(venue, settings=SimSettings(seed=0, funding=0), clock=TrioClock(anchor_ns=START_NS))
    urls = await nursery.start(server.run)
    key, address = server.relayer.relayer_key_for(KEY.address)
    monkeypatch.setenv("MMBOT_RELAYER_API_KEY", key)
    monkeypatch.setenv("MMBOT_RELAYER_API_KEY_ADDRESS", address)
    async with open_chain(rpc_url=urls.rpc, relayer_url=urls.relayer, key=KEY, signature_type=POLY_1271,
                          sink=_Quiet(), poll_s=1.0) as access:
        assert access.relayer is not None and access.adapter is not None
        await access.relayer.deploy(cid="deploy")
        await access.adapter.execute(await access.view.missing_approvals(access.wallet), cid="approve")
        server.chain.mint_pusd(access.wallet, 1_000 * ONE)
    async with httpx.AsyncClient(base_url=urls.gamma) as http:
        markets, _ = await list_markets(http)

    asked = trio.Event()
    send = ChainLane.send

    def sending(self: ChainLane, request: object) -> None:
        send(self, request)  # type: ignore[arg-type]
        asked.set()

    async def broken(self: ChainLane, *, task_status: object = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # type: ignore[attr-defined]
        await asked.wait()  # a request came: from now on the lane crashes at every start
        raise RuntimeError("the chain lane is broken")

    monkeypatch.setattr(ChainLane, "send", sending)
    monkeypatch.setattr(ChainLane, "run", broken)
    db = tmp_path / "exit.db"
    await run_trading(config=CONFIG, markets=markets, ws_url=urls.ws, user_ws_url=server.user_url,
                      rest_url=urls.rest, key=KEY, creds=None, db_path=db, mode="sim", duration_s=DURATION_S,
                      clock=TrioClock(anchor_ns=START_NS), signature_type=POLY_1271, rpc_url=urls.rpc,
                      relayer_url=urls.relayer)
    rows = sqlite_utils.Database(db)["events"]
    trips = [json.loads(r["payload"]) for r in rows.rows_where("kind = 'breaker_trip'")]
    assert any(t["service"] == "chain" for t in trips), trips
    assert asked.is_set(), "no merge or redemption was asked for: the test proves nothing"
    [waiting] = list(rows.rows_where("kind = 'waiting_for_chain'"))
    [unsettled] = list(rows.rows_where("kind = 'chain_unsettled'"))
    assert json.loads(unsettled["payload"])["pending"] >= 1
    # the exit stops waiting as soon as both the wait has begun and the lane is known dead (its
    # breaker may trip before the run ends, or during the wait): never the whole settle time
    tripped_ns = min(r["ts_ns"] for r in rows.rows_where("kind = 'breaker_trip'")
                     if json.loads(r["payload"])["service"] == "chain")
    gave_up_after_s = (unsettled["ts_ns"] - max(waiting["ts_ns"], tripped_ns)) / 1e9
    assert gave_up_after_s < 5, gave_up_after_s
