"""End to end: a new account trades through its deposit wallet against the simulator over
loopback, from nothing. The owner key deploys its wallet through the relayer, approves the
exchanges and adapters in one WALLET batch, is funded, and trades signed POLY_1271 orders through
several Up/Down resolutions with merges and redemptions on — while the chain reverts, the relayer
fails and loses its replies. Afterwards the simulator's account equals the ledger to the micro-unit,
no market resolved in time holds shares, complete sets were merged, and every on-chain action is
in the event log under its correlation id."""

from __future__ import annotations

import json
from typing import Any

import httpx
import sqlite_utils
import trio

from mmbot.app_chain import check_ready, open_chain
from mmbot.app_live import run_trading
from mmbot.clock import TrioClock
from mmbot.config import CapitalConfig, Config, MergeConfig, Secret, StrategiesConfig
from mmbot.memory.query import explain
from mmbot.model import ONE
from mmbot.venues.polymarket.auth import POLY_1271, SigningKey
from mmbot.venues.polymarket.discovery import list_markets
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.simulator.server import Fault, SimServer, SimSettings
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
KEY = SigningKey(Secret(value="0x" + "5c" * 32))
CONFIG = Config(seed=3, strategies=StrategiesConfig(merge=MergeConfig(enabled=True, min_sets=5 * ONE)),
                capital=CapitalConfig(sweep_interval_s=5, retry_after_s=5, retry_max_s=20))
INTERVAL_S = 60
DURATION_S = 420


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "",
               token: str = "") -> None:
        self.rows.append((kind, cid, payload or {}))


async def _set_up_from_nothing(server: SimServer, urls: Any) -> tuple[str, set[str]]:
    """Deploy, approve and fund, as `mmbot wallet deploy/approve` and `mmbot sim-admin fund` do."""
    key, address = server.relayer.relayer_key_for(KEY.address)
    env = {"MMBOT_RELAYER_API_KEY": key, "MMBOT_RELAYER_API_KEY_ADDRESS": address}
    setup = Rows()
    async with open_chain(rpc_url=urls.rpc, relayer_url=urls.relayer, key=KEY, signature_type=POLY_1271,
                          sink=setup, environ=env, poll_s=1.0) as access:
        assert not await access.view.code(access.wallet)
        await access.relayer.deploy(cid="deploy")
        missing = await access.view.missing_approvals(access.wallet)
        assert len(missing) == 10
        await access.adapter.execute(missing, cid="approve")
        assert await access.view.missing_approvals(access.wallet) == []
        async with httpx.AsyncClient(base_url=urls.rest) as http:
            funded = await http.post("/admin/fund", json={"address": access.wallet, "amount": "1500"},
                                     headers=server.admin_headers())
            assert funded.status_code == 200, funded.text
        await check_ready(access)
        wallet = access.wallet
    assert [k for k, _, _ in setup.rows if k == "chain_confirmed"] == ["chain_confirmed", "chain_confirmed"]
    return wallet, {p["transaction_id"] for k, _, p in setup.rows if k == "chain_submitted"}


async def test_a_new_deposit_wallet_trades_merges_and_redeems_unattended(nursery, autojump_clock, tmp_path,
                                                                         monkeypatch) -> None:
    venue = LiveVenue(seed=21, markets=4, start_ns=START_NS, warmup_s=20, interval_s=INTERVAL_S)
    # retain_s: the relayer's transactions are counted against the log below, none may be forgotten
    server = SimServer(venue, settings=SimSettings(seed=0, interval_s=INTERVAL_S, funding=0, retain_s=86_400),
                       clock=TrioClock(anchor_ns=START_NS))
    urls = await nursery.start(server.run)
    wallet, setup_ids = await _set_up_from_nothing(server, urls)
    relayer_key, relayer_address = server.relayer.relayer_key_for(KEY.address)
    monkeypatch.setenv("MMBOT_RELAYER_API_KEY", relayer_key)
    monkeypatch.setenv("MMBOT_RELAYER_API_KEY_ADDRESS", relayer_address)
    async with httpx.AsyncClient(base_url=urls.gamma) as http:
        markets, _ = await list_markets(http)
    async with httpx.AsyncClient(base_url=urls.rest) as http:
        creds = await ClobRest.create_or_derive_api_key(http, KEY, TrioClock(anchor_ns=START_NS))
    # shares held from before the run, in the market that resolves first: adopted at start-up,
    # then redeemed (whichever side wins pays)
    adopted = min((m for m in markets if m.end_ns), key=lambda m: m.end_ns)
    server.trading.give(creds.api_key, shares={adopted.tokens[0]: 30 * ONE, adopted.tokens[1]: 4 * ONE})

    async def faults() -> None:
        for kind, value in (("relayer_failed", "1"), ("chain_revert", "1"), ("relayer_lost_reply", "1"),
                            ("relayer_busy", "2"), ("relayer_slow", "8"), ("relayer_failed", "1")):
            await trio.sleep(55)
            server.inject(Fault(kind=kind, value=value))

    nursery.start_soon(faults)
    db = tmp_path / "wallet.db"
    engine = await run_trading(
        config=CONFIG, markets=markets, ws_url=urls.ws, user_ws_url=server.user_url, rest_url=urls.rest, key=KEY,
        creds=creds, db_path=db, mode="sim", duration_s=DURATION_S, clock=TrioClock(anchor_ns=START_NS),
        signature_type=POLY_1271, rpc_url=urls.rpc, relayer_url=urls.relayer,
    )
    ledger = engine.executor.ledger
    ledger.check()
    account = server.trading.account(address=KEY.address)
    api_key = account.creds.api_key
    # the chain's pUSD at the wallet is the account's: equal to the ledger's cash, exactly
    assert ledger.cash == server.trading.cash(account) == server.chain.pusd(wallet)
    positions = {t: n for t, n in ledger.snapshot()["positions"].items() if n}
    assert positions == {t: n for t, n in venue.user_feed.positions.get(api_key, {}).items() if n}
    assert all(server.chain.shares(wallet, t) == n for t, n in positions.items())

    rows = sqlite_utils.Database(db)

    def kinds(kind: str) -> list[dict[str, Any]]:
        return [dict(r, payload=json.loads(r["payload"])) for r in rows["events"].rows_where("kind = ?", [kind])]

    counts = engine.executor.counts
    assert counts["fills"] > 0 and counts["orders"] > 5, counts
    # five markets or more resolved during the run; every one resolved while the run still
    # traded was redeemed (the holdings adopted at start-up among them: a winner paid out), and
    # neither the wallet nor the ledger holds any of their shares
    resolutions = kinds("resolution")
    assert len(resolutions) >= 5, len(resolutions)
    stopped_ns = kinds("waiting_for_chain")[0]["ts_ns"] if kinds("waiting_for_chain") else kinds("run_end")[0]["ts_ns"]
    settled = [r for r in resolutions if stopped_ns - r["ts_ns"] > 30 * 1_000_000_000]
    tokens_of: dict[str, set[str]] = {}  # every token of ours in a market: what it filled, adopted, won
    for row in kinds("fill") + kinds("position_adopted"):
        tokens_of.setdefault(row["market"], set()).add(row["token"])
    for resolution in settled:
        for token in tokens_of.get(resolution["market"], set()) | {resolution["payload"]["winning_token"]}:
            assert server.chain.shares(wallet, token) == 0 and ledger.position(token) == 0, resolution["market"]
    redeemed = kinds("redeem")
    assert {r["market"] for r in redeemed} >= {r["market"] for r in settled if r["payload"]["worthless"]
                                               or r["payload"]["redeemable"]}
    assert adopted.market in {r["market"] for r in redeemed}
    assert sum(r["payload"]["payout"] for r in redeemed) >= 4 * ONE
    assert not kinds("redeem_mismatch") and not kinds("chain_unsettled")
    # complete sets were merged; none above the threshold is left in a market still trading
    assert len(kinds("merge")) >= 3
    for info in markets:
        if info.market not in {r["market"] for r in resolutions}:
            assert min(ledger.position(t) for t in info.tokens) < 2 * CONFIG.strategies.merge.min_sets, info.market
    # the faults reached merges and redemptions, which were released and retried, never doubled
    assert kinds("merge_failed") + kinds("redeem_failed"), "no chain fault reached a merge or redemption"
    # every relayer transaction of the run is in the event log, and explain follows a redemption
    run_txs = [t for t in server.relayer.transactions_of(KEY.address) if t.transaction_id not in setup_ids]
    logged = {r["payload"].get("transaction_id") for r in kinds("chain_submitted")}
    assert len({t.transaction_id for t in run_txs} - logged) <= len(kinds("chain_unknown"))
    confirmed = [t for t in run_txs if t.state == "STATE_CONFIRMED"]
    assert len(confirmed) == len(kinds("chain_confirmed")), (len(confirmed), len(kinds("chain_confirmed")))
    story = [r.kind for r in explain(db, redeemed[0]["cid"])]
    assert {"redeem_requested", "chain_request", "chain_submitted", "chain_confirmed", "redeem"} <= set(story), story
