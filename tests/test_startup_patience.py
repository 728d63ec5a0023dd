"""A signed run started while the venue answers "try again" (the weekly engine restart's 425) waits
it out at start-up instead of exiting: found by the deposit-wallet soak, where a run restarted
after a kill -9 met the restart window while it took its snapshot."""

from __future__ import annotations

import httpx
import sqlite_utils

from mmbot.app_live import STARTUP_PATIENCE_S, run_trading
from mmbot.clock import TrioClock
from mmbot.config import Config, Secret
from mmbot.memory.log import run_outcome
from mmbot.model import ONE
from mmbot.venues.polymarket.auth import SigningKey
from mmbot.venues.polymarket.discovery import list_markets
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.simulator.server import Fault, SimServer, SimSettings
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
KEY = SigningKey(Secret(value="0x" + "6d" * 32))


async def _server(nursery):  # noqa: ANN001, ANN202
    venue = LiveVenue(seed=5, markets=4, start_ns=START_NS, warmup_s=20, interval_s=300)
    server = SimServer(venue, settings=SimSettings(seed=0), clock=TrioClock(anchor_ns=START_NS))
    urls = await nursery.start(server.run)
    async with httpx.AsyncClient(base_url=urls.gamma) as http:
        markets, _ = await list_markets(http)
    async with httpx.AsyncClient(base_url=urls.rest) as http:
        creds = await ClobRest.create_or_derive_api_key(http, KEY, TrioClock(anchor_ns=START_NS))
    server.add_account(KEY.address, creds, cash=500 * ONE)
    return server, urls, markets, creds


async def test_a_run_started_during_an_engine_restart_waits_it_out(nursery, autojump_clock, tmp_path) -> None:
    server, urls, markets, creds = await _server(nursery)
    server.inject(Fault(kind="restart", value="40"))
    db = tmp_path / "patient.db"
    await run_trading(config=Config(seed=1), markets=markets, ws_url=urls.ws, user_ws_url=server.user_url,
                      rest_url=urls.rest, key=KEY, creds=creds, db_path=db, mode="sim", duration_s=20,
                      clock=TrioClock(anchor_ns=START_NS))
    rows = list(sqlite_utils.Database(db)["events"].rows_where("kind in ('startup_retry', 'startup_snapshot')"))
    kinds = [r["kind"] for r in rows]
    assert kinds.count("startup_retry") >= 2 and kinds[-1] == "startup_snapshot", kinds
    assert run_outcome(db) == "completed"


async def test_a_venue_that_stays_down_past_the_patience_still_ends_the_start(nursery, autojump_clock,
                                                                              tmp_path) -> None:
    server, urls, markets, creds = await _server(nursery)
    server.inject(Fault(kind="restart", value=str(STARTUP_PATIENCE_S + 120)))
    db = tmp_path / "impatient.db"
    try:
        await run_trading(config=Config(seed=1), markets=markets, ws_url=urls.ws, user_ws_url=server.user_url,
                          rest_url=urls.rest, key=KEY, creds=creds, db_path=db, mode="sim", duration_s=20,
                          clock=TrioClock(anchor_ns=START_NS))
    except Exception as exc:  # noqa: BLE001 - the Retryable it gave up on
        assert "restarting" in str(exc)
    else:
        raise AssertionError("the run started although the venue never answered")
    assert (run_outcome(db) or "").startswith("failed: start-up:")
