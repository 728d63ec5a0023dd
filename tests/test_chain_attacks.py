"""Attacks on the chain path: runs against the simulator over loopback (MockClock) where the chain
or the relayer misbehaves at the worst moments — reverts, stuck and clashing transactions of an EOA,
a stop or a kill while a merge is out, a relayer batch of redemptions that fails, a relayer that
does not answer. After each, the ledger, the simulator's account and the chain agree to the
micro-unit (cash and every token), no redemption is booked twice, and every on-chain action the
executor asked for has its rows in the event log."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
import sqlite_utils
import trio
import trio.lowlevel

from mmbot.app import Engine
from mmbot.app_chain import ChainAccess, ChainSetupError, open_chain, wait_for_unfinished
from mmbot.app_live import run_trading
from mmbot.clock import TrioClock
from mmbot.config import CapitalConfig, Config, MergeConfig, Secret, StrategiesConfig
from mmbot.memory.log import run_outcome
from mmbot.model import ONE, MarketInfo
from mmbot.venues.polymarket.auth import EOA, POLY_1271, ApiCredentials, SigningKey
from mmbot.venues.polymarket.chain_types import ChainUnreachable
from mmbot.venues.polymarket.discovery import list_markets
from mmbot.venues.polymarket.relayer import RelayerApiKey, RelayerClient
from mmbot.venues.polymarket.rest import ClobRest
from mmbot.venues.simulator.server import Fault, SimServer, SimSettings
from mmbot.venues.simulator.venue import LiveVenue

START_NS = 1_786_604_100 * 1_000_000_000
KEY = SigningKey(Secret(value="0x" + "6d" * 32))
CONFIG = Config(seed=5, strategies=StrategiesConfig(merge=MergeConfig(enabled=True, min_sets=5 * ONE)),
                capital=CapitalConfig(sweep_interval_s=5, retry_after_s=5, retry_max_s=20))
INTERVAL_S = 60
POL = 10**18


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "",
               token: str = "") -> None:
        self.rows.append((kind, cid, payload or {}))


class Sim:
    """A simulator on loopback and what a test needs of it."""

    def __init__(self, server: SimServer, venue: LiveVenue, urls: Any) -> None:
        self.server, self.venue, self.urls = server, venue, urls

    async def markets(self) -> list[MarketInfo]:
        async with httpx.AsyncClient(base_url=self.urls.gamma) as http:
            markets, _ = await list_markets(http)
        return markets

    async def creds(self) -> ApiCredentials:
        async with httpx.AsyncClient(base_url=self.urls.rest) as http:
            return await ClobRest.create_or_derive_api_key(http, KEY, TrioClock(anchor_ns=START_NS))

    async def fund(self, address: str, amount: str) -> None:
        async with httpx.AsyncClient(base_url=self.urls.rest) as http:
            funded = await http.post("/admin/fund", json={"address": address, "amount": amount},
                                     headers=self.server.admin_headers())
            assert funded.status_code == 200, funded.text

    def relayer_env(self) -> dict[str, str]:
        key, address = self.server.relayer.relayer_key_for(KEY.address)
        return {"MMBOT_RELAYER_API_KEY": key, "MMBOT_RELAYER_API_KEY_ADDRESS": address}


async def start_sim(nursery: trio.Nursery, *, seed: int = 21, markets: int = 4) -> Sim:
    venue = LiveVenue(seed=seed, markets=markets, start_ns=START_NS, warmup_s=20, interval_s=INTERVAL_S)
    server = SimServer(venue, settings=SimSettings(seed=0, interval_s=INTERVAL_S, funding=0),
                       clock=TrioClock(anchor_ns=START_NS))
    urls = await nursery.start(server.run)
    return Sim(server, venue, urls)


async def deposit_wallet(sim: Sim, *, deploy: bool = True, approve: bool = True, fund: str = "1500") -> str:
    """The owner's deposit wallet, deployed, approved and funded as far as asked."""
    async with open_chain(rpc_url=sim.urls.rpc, relayer_url=sim.urls.relayer, key=KEY, signature_type=POLY_1271,
                          sink=Rows(), environ=sim.relayer_env(), poll_s=1.0) as access:
        if deploy:
            await access.relayer.deploy(cid="deploy")
        if approve:
            await access.adapter.execute(await access.view.missing_approvals(access.wallet), cid="approve")
        if fund:
            await sim.fund(access.wallet, fund)
        return access.wallet


async def eoa_account(sim: Sim) -> str:
    """The key's own address, given POL for gas, approved by its own transactions and funded."""
    sim.server.chain.fund_pol(KEY.address, 5 * POL)
    async with open_chain(rpc_url=sim.urls.rpc, relayer_url=None, key=KEY, signature_type=EOA, sink=Rows(),
                          poll_s=1.0) as access:
        assert access.wallet == KEY.address and access.relayer is None
        missing = await access.view.missing_approvals(access.wallet)
        assert len(missing) == 10
        await access.adapter.execute(missing, cid="approve")
        assert await access.view.missing_approvals(access.wallet) == []
    await sim.fund(KEY.address, "1500")
    return KEY.address


class Log:
    def __init__(self, db: Path) -> None:
        self.db = sqlite_utils.Database(db)

    def kinds(self, kind: str) -> list[dict[str, Any]]:
        return [dict(r, payload=json.loads(r["payload"])) for r in self.db["events"].rows_where("kind = ?", [kind])]

    def cids(self, kind: str) -> set[str]:
        return {r["cid"] for r in self.kinds(kind)}


def assert_agree(engine: Engine, sim: Sim, wallet: str) -> None:
    """The ledger equals the simulator's account and the chain: cash, and every token."""
    ledger = engine.executor.ledger
    ledger.check()
    account = sim.server.trading.account(address=KEY.address)
    assert ledger.cash == sim.server.trading.cash(account) == sim.server.chain.pusd(wallet), (
        ledger.cash, sim.server.trading.cash(account), sim.server.chain.pusd(wallet))
    positions = {t: n for t, n in ledger.snapshot()["positions"].items() if n}
    venue_positions = {t: n for t, n in sim.venue.user_feed.positions.get(account.creds.api_key, {}).items() if n}
    assert positions == venue_positions
    assert {t: sim.server.chain.shares(wallet, t) for t in positions} == positions


def assert_accounted(log: Log) -> None:
    """No redemption booked twice; every merge and redemption asked for has its chain rows, and
    every one booked was confirmed by the lane."""
    redeemed = log.kinds("redeem")
    assert len({r["cid"] for r in redeemed}) == len(redeemed)
    paid = Counter(r["market"] for r in redeemed if r["payload"]["payout"])
    assert all(n == 1 for n in paid.values()), paid
    merged = log.kinds("merge")
    assert len({r["cid"] for r in merged}) == len(merged)
    done = log.cids("chain_done")
    answered = done | log.cids("chain_failed") | log.cids("redeem_nothing_held")
    assert {r["cid"] for r in redeemed if r["payload"]["payout"]} | {r["cid"] for r in merged} <= done
    requested = log.cids("redeem_requested") | log.cids("chain_request")
    assert requested <= answered | log.cids("chain_unsettled"), requested - answered
    # every batch the lane sent reached the adapter, whose rows say what became of it
    sent = {r["payload"]["batch"] for r in log.kinds("chain_request")}
    assert sent <= log.cids("chain_submitted") | log.cids("chain_unknown") | log.cids("chain_failed"), sent
    assert not log.kinds("redeem_mismatch")
    assert not [r for r in log.kinds("error") if r["payload"].get("where") == "executor"], log.kinds("error")


async def trade(sim: Sim, *, markets: list[MarketInfo], creds: ApiCredentials, db: Path, signature_type: int,
                duration_s: int, stop: trio.Event | None = None, config: Config = CONFIG,
                task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED) -> Engine:
    """``run_trading`` against ``sim``."""
    return await run_trading(
        config=config, markets=markets, ws_url=sim.urls.ws, user_ws_url=sim.server.user_url, rest_url=sim.urls.rest,
        key=KEY, creds=creds, db_path=db, mode="sim", duration_s=duration_s, clock=TrioClock(anchor_ns=START_NS),
        signature_type=signature_type, rpc_url=sim.urls.rpc,
        relayer_url=sim.urls.relayer if signature_type == POLY_1271 else None, stop=stop, task_status=task_status)


def run_txs(sim: Sim, before: frozenset[str] | set[str] = frozenset()) -> list[Any]:
    """The owner's relayer transactions, oldest first, less those of the set-up."""
    return [t for t in reversed(sim.server.relayer.transactions_of(KEY.address)) if t.transaction_id not in before]


def merges_in(tx: Any) -> int:
    return sum(call.describe().startswith("mergePositions") for call in tx.calls)


async def merge_out_at_relayer(sim: Sim, engine: Engine) -> Any:
    """Wait until a merge of the run is submitted and still waiting at the relayer; that transaction."""
    while True:
        waiting = [t for t in run_txs(sim) if t.state == "STATE_NEW" and merges_in(t)]
        if waiting and engine.executor.capital.merges_pending:
            return waiting[0]
        await trio.sleep(0.5)


# --------------------------------------------------------------------------- 1. an EOA account


async def test_an_eoa_merges_and_redeems_through_reverts_stuck_and_clashing_transactions(
        nursery, autojump_clock, tmp_path) -> None:
    sim = await start_sim(nursery)
    address = await eoa_account(sim)
    markets, creds = await sim.markets(), await sim.creds()

    async def faults() -> None:
        # a stuck transaction is replaced after half the adapter's 300 s timeout: stuck longer
        for at_s, kind, value in ((60, "chain_revert", "1"), (80, "chain_stuck", "170"), (270, "chain_nonce_clash", "1"),
                                  (330, "chain_revert", "1"), (380, "chain_nonce_clash", "2")):
            await trio.sleep_until(start + at_s)
            sim.server.inject(Fault(kind=kind, value=value))

    start = trio.current_time()
    nursery.start_soon(faults)
    db = tmp_path / "eoa.db"
    engine = await trade(sim, markets=markets, creds=creds, db=db, signature_type=EOA, duration_s=420)
    log = Log(db)
    assert run_outcome(db) == "completed"
    assert_agree(engine, sim, address)
    assert_accounted(log)
    assert log.kinds("chain_ready")[0]["payload"]["via"] == "eoa"
    assert len(log.kinds("merge")) >= 3 and [r for r in log.kinds("redeem") if r["payload"]["payout"]]
    # each fault met a call of the run: a revert failed a merge or redemption, which was retried
    assert log.kinds("chain_nonce_clash") and log.kinds("chain_replaced")
    assert log.kinds("merge_failed") + log.kinds("redeem_failed")
    reverted = [r for r in log.kinds("chain_failed") if r["payload"].get("reason") == "reverted"]
    assert reverted
    # every transaction the key sent during the run is in the log, under a merge or redemption
    submitted = log.kinds("chain_submitted") + log.kinds("chain_replaced")
    asked = log.cids("chain_request")
    assert submitted and {r["cid"] for r in submitted} <= asked
    assert sim.server.chain.nonce(address) >= len({r["payload"]["nonce"] for r in submitted})


# --------------------------------------------------------------------------- 6. not ready


@pytest.mark.parametrize(("deploy", "reason"), [
    (False, "is not deployed: run mmbot wallet deploy"),
    (True, "approval(s) missing for"),
])
async def test_a_deposit_wallet_not_ready_is_refused_at_start_up(nursery, autojump_clock, tmp_path, monkeypatch,
                                                                  deploy, reason) -> None:
    sim = await start_sim(nursery)
    wallet = await deposit_wallet(sim, deploy=deploy, approve=False, fund="" if not deploy else "100")
    for name, value in sim.relayer_env().items():
        monkeypatch.setenv(name, value)
    markets, creds = await sim.markets(), await sim.creds()
    db = tmp_path / "refused.db"
    with pytest.raises(ChainSetupError) as refused:
        await trade(sim, markets=markets, creds=creds, db=db, signature_type=POLY_1271, duration_s=60)
    message = str(refused.value)
    assert reason in message and "\n" not in message and wallet in message
    assert run_outcome(db) == f"failed: start-up: {message}"
    log = Log(db)
    assert not log.kinds("run_start") and not log.kinds("order_sent") and not log.kinds("chain_request")
    assert sim.server.chain.wallet_nonce(wallet) == 0  # nothing was granted silently
    if deploy:
        assert "run mmbot wallet approve" in message


# --------------------------------------------------------------------------- 2. stopped mid-merge


async def deposit_wallet_run(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[MarketInfo], ApiCredentials]:
    wallet = await deposit_wallet(sim)
    for name, value in sim.relayer_env().items():
        monkeypatch.setenv(name, value)
    return wallet, await sim.markets(), await sim.creds()


async def test_a_run_stopped_while_a_merge_is_out_waits_for_it(nursery, autojump_clock, tmp_path, monkeypatch) -> None:
    sim = await start_sim(nursery)
    wallet, markets, creds = await deposit_wallet_run(sim, monkeypatch)
    setup = {t.transaction_id for t in run_txs(sim)}
    sim.server.inject(Fault(kind="relayer_slow", value="40"))
    stop, db, ended = trio.Event(), tmp_path / "stopped.db", trio.Event()
    result: dict[str, Engine] = {}

    async def go(task_status: trio.TaskStatus[Engine]) -> None:
        result["engine"] = await trade(sim, markets=markets, creds=creds, db=db, signature_type=POLY_1271,
                                       duration_s=900, stop=stop, task_status=task_status)
        ended.set()

    engine = await nursery.start(go)
    await trio.sleep(60)
    out = await merge_out_at_relayer(sim, engine)
    (market, cid), = engine.executor.capital.merges_pending.items()
    stop.set()
    await ended.wait()
    log = Log(db)
    assert run_outcome(db) == "completed"
    waiting, = log.kinds("waiting_for_chain")
    assert waiting["payload"]["pending"] >= 1 and not log.kinds("chain_unsettled")
    # the merge out when the run stopped landed after it stopped, and the ledger booked it
    assert sim.server.relayer.transaction(out.transaction_id).state == "STATE_CONFIRMED"
    booked, = [r for r in log.kinds("merge") if r["cid"] == cid]
    assert booked["market"] == market and booked["ts_ns"] > waiting["ts_ns"]
    assert not engine.executor.capital.merges_pending and not engine.executor.capital.redemptions
    assert_agree(result["engine"], sim, wallet)
    assert_accounted(log)
    confirmed = [t for t in run_txs(sim, setup) if t.state == "STATE_CONFIRMED"]
    assert sum(merges_in(t) for t in confirmed) == len(log.kinds("merge"))


# --------------------------------------------------------------------------- 3. killed mid-merge


async def test_a_run_killed_mid_merge_and_started_again_adopts_what_landed(nursery, autojump_clock, tmp_path,
                                                                          monkeypatch) -> None:
    sim = await start_sim(nursery)
    wallet, markets, creds = await deposit_wallet_run(sim, monkeypatch)
    sim.server.inject(Fault(kind="relayer_slow", value="40"))
    kill = trio.CancelScope()
    first_db = tmp_path / "killed.db"

    async def first(task_status: trio.TaskStatus[Engine]) -> None:
        with kill:
            await trade(sim, markets=markets, creds=creds, db=first_db, signature_type=POLY_1271, duration_s=900,
                        task_status=task_status)

    engine = await nursery.start(first)
    await trio.sleep(60)
    out = await merge_out_at_relayer(sim, engine)
    (market, cid), = engine.executor.capital.merges_pending.items()
    kill.cancel()  # as kill -9: no shutdown, no waiting for the chain, the log left open
    await trio.lowlevel.checkpoint()
    assert run_outcome(first_db) is None
    assert cid not in Log(first_db).cids("merge")
    sim.server.inject(Fault(kind="relayer_slow", value="0"))
    while sim.server.relayer.transaction(out.transaction_id).state != "STATE_CONFIRMED":
        await trio.sleep(1)
    info = next(m for m in markets if m.market == market)
    landed = {"cash": sim.server.chain.pusd(wallet), **{t: sim.server.chain.shares(wallet, t) for t in info.tokens}}

    db = tmp_path / "again.db"
    again = await trade(sim, markets=markets, creds=creds, db=db, signature_type=POLY_1271, duration_s=150)
    log = Log(db)
    assert run_outcome(db) == "completed"
    start, = log.kinds("run_start")
    assert start["payload"]["cash"] == landed["cash"]
    adopted = {r["token"]: r["payload"] for r in log.kinds("position_adopted") if r["market"] == market}
    assert {t: p["shares"] for t, p in adopted.items()} == {
        t: n for t, n in landed.items() if t in info.tokens and n}, adopted
    assert_agree(again, sim, wallet)
    assert_accounted(log)


# --------------------------------------------------------------------------- 4. redemptions batched


async def test_redemptions_of_markets_resolving_at_once_go_in_one_batch_which_fails_whole_and_is_retried(
        nursery, autojump_clock, tmp_path, monkeypatch) -> None:
    sim = await start_sim(nursery, markets=8)  # two Up/Down markets, ending together every minute
    wallet, markets, creds = await deposit_wallet_run(sim, monkeypatch)
    setup = {t.transaction_id for t in run_txs(sim)}
    together = [m for m in markets if "updown" in m.slug]
    assert len(together) == 2 and together[0].end_ns == together[1].end_ns
    for info in together:  # held from before the run: adopted, then redeemed together
        sim.server.trading.give(creds.api_key, shares={info.tokens[0]: 7 * ONE, info.tokens[1]: 3 * ONE})
    config = attrs.evolve(CONFIG, strategies=StrategiesConfig(merge=MergeConfig(enabled=False)))
    sim.server.inject(Fault(kind="relayer_failed", value="1"))  # the run's first batch: the two redemptions
    db = tmp_path / "batched.db"
    engine = await trade(sim, markets=markets, creds=creds, db=db, signature_type=POLY_1271, duration_s=200,
                         config=config)
    log = Log(db)
    assert run_outcome(db) == "completed"
    assert_agree(engine, sim, wallet)
    assert_accounted(log)
    batches: dict[str, set[str]] = {}
    for row in log.kinds("chain_request"):
        batches.setdefault(row["payload"]["batch"], set()).add(row["market"])
    pair = {m.market for m in together}
    failed_batch, retried_batch = [b for b, members in batches.items() if members == pair][:2]
    failures = [r for r in log.kinds("chain_failed") if r["payload"].get("batch") == failed_batch
                and r["payload"].get("action") == "redeem"]
    assert {r["market"] for r in failures} == pair == {r["market"] for r in log.kinds("redeem_failed")}
    assert {r["market"] for r in log.kinds("chain_done") if r["payload"]["batch"] == retried_batch} == pair
    requested = {r["cid"]: r["payload"]["attempt"] for r in log.kinds("redeem_requested")}
    redeemed = [r for r in log.kinds("redeem") if r["market"] in pair]
    assert sorted(requested[r["cid"]] for r in redeemed) == [2, 2]
    shares = {r["cid"]: r["payload"]["shares"] for r in log.kinds("redeem_requested")}
    winners = {r["market"]: r["payload"]["winning_token"] for r in log.kinds("resolution")}
    assert [r["payload"]["payout"] for r in redeemed] == [shares[r["cid"]].get(winners[r["market"]], 0)
                                                         for r in redeemed]
    assert sum(r["payload"]["payout"] for r in redeemed) >= 6 * ONE
    # the relayer saw one transaction per batch, each of both calls: the failed one, then the retry
    first_two = run_txs(sim, setup)[:2]
    assert [(len(t.calls), t.state) for t in first_two] == [(2, "STATE_FAILED"), (2, "STATE_CONFIRMED")]
    assert all(sim.server.chain.shares(wallet, t) == 0 for m in together for t in m.tokens)
    # later pairs resolving together with holdings of both went together too
    assert all(len(members) <= 2 for members in batches.values())


# --------------------------------------------------------------------------- 5. a relayer without answers


async def test_a_relayer_that_loses_its_replies_never_makes_a_merge_twice(nursery, autojump_clock, tmp_path,
                                                                           monkeypatch) -> None:
    sim = await start_sim(nursery)
    wallet, markets, creds = await deposit_wallet_run(sim, monkeypatch)
    setup = {t.transaction_id for t in run_txs(sim)}
    nonce_before = sim.server.chain.wallet_nonce(wallet)

    async def faults() -> None:
        await trio.sleep(60)
        sim.server.inject(Fault(kind="relayer_slow", value="25"))
        sim.server.inject(Fault(kind="relayer_lost_reply", value="4"))
        await trio.sleep(150)
        sim.server.inject(Fault(kind="relayer_lost_reply", value="3"))
        await trio.sleep(100)
        sim.server.inject(Fault(kind="relayer_slow", value="0"))

    nursery.start_soon(faults)
    db = tmp_path / "lost.db"
    engine = await trade(sim, markets=markets, creds=creds, db=db, signature_type=POLY_1271, duration_s=420)
    log = Log(db)
    assert run_outcome(db) == "completed"
    assert_agree(engine, sim, wallet)
    assert_accounted(log)
    unknown = log.kinds("chain_unknown")
    assert len(unknown) >= 4, len(unknown)
    assert [r for r in log.kinds("chain_confirmed") if r["payload"].get("by") == "nonce"]
    # every batch the wallet ran is a batch the lane answered, and every merge run was booked once
    txs = run_txs(sim, setup)
    confirmed = [t for t in txs if t.state == "STATE_CONFIRMED"]
    assert sim.server.chain.wallet_nonce(wallet) - nonce_before == len(confirmed)
    assert len(confirmed) == len({r["payload"]["batch"] for r in log.kinds("chain_done")})
    assert sum(merges_in(t) for t in confirmed) == len(log.kinds("merge"))
    assert len(log.kinds("merge")) >= 3


async def test_a_run_restarted_at_once_after_a_kill_waits_for_the_merge_still_at_the_relayer(
        nursery, autojump_clock, tmp_path, monkeypatch) -> None:
    sim = await start_sim(nursery)
    wallet, markets, creds = await deposit_wallet_run(sim, monkeypatch)
    sim.server.inject(Fault(kind="relayer_slow", value="60"))
    kill = trio.CancelScope()

    async def first(task_status: trio.TaskStatus[Engine]) -> None:
        with kill:
            await trade(sim, markets=markets, creds=creds, db=tmp_path / "killed.db", signature_type=POLY_1271,
                        duration_s=900, task_status=task_status)

    engine = await nursery.start(first)
    await trio.sleep(60)
    out = await merge_out_at_relayer(sim, engine)
    kill.cancel()
    sim.server.inject(Fault(kind="relayer_slow", value="0"))
    # started again at once (a supervisor restarting it): the merge is still waiting at the relayer
    assert sim.server.relayer.transaction(out.transaction_id).state == "STATE_NEW"
    db = tmp_path / "again.db"
    again = await trade(sim, markets=markets, creds=creds, db=db, signature_type=POLY_1271, duration_s=150)
    assert sim.server.relayer.transaction(out.transaction_id).state == "STATE_CONFIRMED"
    log = Log(db)
    assert run_outcome(db) == "completed"
    assert_agree(again, sim, wallet)
    assert_accounted(log)
    # the second run waited for it before it read the account's balances
    waited, done = log.kinds("chain_unfinished")
    assert waited["payload"]["pending"] == [out.transaction_id] and done["payload"]["pending"] == []
    start, = log.kinds("run_start")
    assert done["seq"] < start["seq"]


async def test_an_eoa_restarted_at_once_after_a_kill_waits_for_its_transaction_in_the_mempool(
        nursery, autojump_clock, tmp_path) -> None:
    sim = await start_sim(nursery)
    address = await eoa_account(sim)
    markets, creds = await sim.markets(), await sim.creds()
    kill = trio.CancelScope()

    async def first(task_status: trio.TaskStatus[Engine]) -> None:
        with kill:
            await trade(sim, markets=markets, creds=creds, db=tmp_path / "killed.db", signature_type=EOA,
                        duration_s=900, task_status=task_status)

    engine = await nursery.start(first)
    await trio.sleep(50)
    sim.server.inject(Fault(kind="chain_stuck", value="90"))
    while not (len(sim.server.chain.pool) and engine.executor.capital.merges_pending):
        await trio.sleep(0.5)
    kill.cancel()
    mined_before = sim.server.chain.nonce(address)
    db = tmp_path / "again.db"
    again = await trade(sim, markets=markets, creds=creds, db=db, signature_type=EOA, duration_s=150)
    log = Log(db)
    assert run_outcome(db) == "completed"
    assert_agree(again, sim, address)
    assert_accounted(log)
    waited = log.kinds("chain_unfinished")
    assert waited[0]["payload"]["pending"] == [f"nonce {mined_before}"] and waited[-1]["payload"]["pending"] == []


def relayer_listing(answer: Any) -> RelayerClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: answer), base_url="http://relayer")
    return RelayerClient(http, RelayerApiKey(key=Secret(value="k"), address=KEY.address), TrioClock())


@pytest.mark.parametrize("answer", [
    httpx.Response(200, content=b"not json"), httpx.Response(200, json={"a": "dict"}),
    httpx.Response(200, json=[{"state": "STATE_NEW"}]), httpx.Response(200, json=["text"]),
    httpx.Response(404), httpx.Response(502, text="bad gateway"),
])
async def test_a_relayer_list_that_cannot_be_read_is_a_warning_and_the_run_goes_on(answer) -> None:
    client = relayer_listing(answer)
    with pytest.raises(ChainUnreachable):
        await client.unfinished(KEY.address)
    access = ChainAccess(view=None, adapter=None, owner=KEY.address, wallet=KEY.address,  # type: ignore[arg-type]
                         signature_type=POLY_1271, kind=None, relayer=None, relayer_client=client)
    rows = Rows()
    await wait_for_unfinished(access, rows)
    (kind, _, payload), = rows.rows
    assert kind == "chain_unfinished" and payload["level"] == "warning" and "\n" not in payload["unknown"]


async def test_an_unfinished_batch_that_never_ends_refuses_the_start(autojump_clock) -> None:
    items = [{"transactionID": "t-1", "state": "STATE_NEW", "from": KEY.address},
             {"transactionID": "t-0", "state": "STATE_CONFIRMED", "from": KEY.address},
             {"transactionID": "t-x", "state": "STATE_NEW", "from": "0x" + "11" * 20}]
    client = relayer_listing(httpx.Response(200, json=items))
    assert [t.transaction_id for t in await client.unfinished(KEY.address)] == ["t-1"]
    access = ChainAccess(view=None, adapter=None, owner=KEY.address, wallet=KEY.address,  # type: ignore[arg-type]
                         signature_type=POLY_1271, kind=None, relayer=None, relayer_client=client)
    rows = Rows()
    with pytest.raises(ChainSetupError, match=r"1 action\(s\) .* still unfinished after 30 s \(first: t-1\)"):
        await wait_for_unfinished(access, rows, limit_s=30)
    assert [k for k, _, _ in rows.rows] == ["chain_unfinished"]
