"""The simulated chain: split, merge and redeem through the collateral adapters, approvals,
all-or-nothing deposit-wallet batches and their nonces and deadlines, the binding of an owner's
addresses to its trading account's one balance, and resolutions kept past the venue's forgetting
(sans-IO, on ``SimChain`` over a bare engine); then the JSON-RPC node of a real ``SimServer`` over
loopback — every method, a raw EIP-1559 transaction signed by eth-account mined with a receipt and
confirmations, the revert, stuck and nonce-clash faults, funding, malformed requests; and a
state machine holding pUSD and complete sets conserved with no balance ever negative."""

from __future__ import annotations

import random

import attrs
import httpx
import pytest
import trio
from eth_abi import decode as abi_decode
from eth_account import Account
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from mmbot.clock import TrioClock
from mmbot.config import Secret
from mmbot.model import ONE, MarketInfo, Side, TimeInForce
from mmbot.venues.polymarket import contracts as c
from mmbot.venues.polymarket.auth import EXCHANGE_V2, SigningKey
from mmbot.venues.polymarket.deposit_wallet import BEACON, FACTORY, beacon_address
from mmbot.venues.simulator.chain_calls import Revert, Run
from mmbot.venues.simulator.chain_state import POL_START, SimChain
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.server import SimServer, SimSettings
from mmbot.venues.simulator.trading import SimTrading, credentials_for
from mmbot.venues.simulator.user_frames import UserFeed
from mmbot.venues.simulator.venue import LiveVenue
from tests.test_sim_server import START_NS, signed

SECOND = 1_000_000_000
NOW = START_NS
HEX_A = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
HEX_B = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
HEX_C = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
KEY_A, KEY_B, KEY_C = (SigningKey(Secret(value=h)) for h in (HEX_A, HEX_B, HEX_C))
YES, NO = "1001", "1002"
NR_YES, NR_NO = "2001", "2002"
COND = "0x" + "11" * 32
NR_COND = "0x" + "22" * 32
FUNDING = 1_000 * ONE


class Chain:
    """A ``SimChain`` over a bare engine with a standard and a neg-risk market and accounts A and
    B (C is an owner with no account); every engine event reaches the accounts at once."""

    def __init__(self, *, funding: int = FUNDING) -> None:
        self.engine = Engine()
        self.engine.add_market(MarketInfo(market=COND, tokens=(YES, NO)), 0)
        self.engine.add_market(MarketInfo(market=NR_COND, tokens=(NR_YES, NR_NO), neg_risk=True), 0)
        self.feed = UserFeed()
        self.trading = SimTrading(self.engine, self.feed, settle=self.settle, funding=funding)
        self.chain = SimChain(trading=self.trading, engine=self.engine, rng=random.Random(1))
        for key in (KEY_A, KEY_B):
            self.trading.add_account(key.address, credentials_for(key.address))
        self.chain.advance(NOW)

    def settle(self) -> None:
        self.feed.on_events(self.engine.take_events())

    def account(self, key: SigningKey):
        return self.trading.account(address=key.address)

    def cash(self, key: SigningKey) -> int:
        return self.trading.cash(self.account(key))

    def shares(self, key: SigningKey, token: str) -> int:
        return self.trading.shares(self.account(key), token)

    def wallet(self, key: SigningKey) -> str:
        return self.chain.deploy_wallet(key.address, NOW)

    def batch(self, key: SigningKey, calls: list[c.Call], *, nonce: int | None = None, deadline_s: int | None = None) -> str | None:
        wallet = self.wallet(key)
        return self.chain.run_wallet_batch(wallet, self.chain.wallet_nonce(wallet) if nonce is None else nonce,
                                           NOW // SECOND + 240 if deadline_s is None else deadline_s, calls, NOW)


def approvals(neg_risk: bool = False) -> list[c.Call]:
    return [c.approve_call(c.adapter(neg_risk)), c.operator_call(c.adapter(neg_risk))]


# --------------------------------------------------------------------------- adapters


def test_split_merge_and_redeem_through_a_deposit_wallet_move_the_accounts_balance():
    w = Chain()
    assert w.batch(KEY_A, [*approvals(), c.split_call(COND, 10 * ONE, neg_risk=False)]) is None
    assert (w.cash(KEY_A), w.shares(KEY_A, YES), w.shares(KEY_A, NO)) == (FUNDING - 10 * ONE, 10 * ONE, 10 * ONE)
    assert w.batch(KEY_A, [c.merge_call(COND, 4 * ONE, neg_risk=False)]) is None
    assert (w.cash(KEY_A), w.shares(KEY_A, YES), w.shares(KEY_A, NO)) == (FUNDING - 6 * ONE, 6 * ONE, 6 * ONE)
    w.trading.give(w.account(KEY_A).creds.api_key, shares={YES: -2 * ONE})  # sold 2 YES for nothing, say
    assert w.batch(KEY_A, [c.redeem_call(COND, neg_risk=False)]).endswith("result for condition not received yet")
    w.engine.resolve(COND, YES, NOW)
    assert w.chain.resolution(COND) == YES
    assert w.batch(KEY_A, [c.redeem_call(COND, neg_risk=False)]) is None
    # the whole balance of both outcomes is pulled; each winning share pays 1 pUSD, losers nothing
    assert (w.shares(KEY_A, YES), w.shares(KEY_A, NO)) == (0, 0)
    assert w.cash(KEY_A) == FUNDING - 6 * ONE + 4 * ONE
    assert w.chain.wallet_nonce(w.wallet(KEY_A)) == 3  # the reverted batch did not count


def test_a_losing_side_redeems_for_nothing_and_the_neg_risk_market_needs_its_own_adapter():
    w = Chain()
    assert w.batch(KEY_A, [*approvals(True), c.split_call(NR_COND, 3 * ONE, neg_risk=True)]) is None
    refused = w.batch(KEY_A, [*approvals(False), c.split_call(NR_COND, ONE, neg_risk=False)])
    assert refused == "BatchCallFailed: call 2: wrong collateral adapter for this market's kind"
    w.trading.give(w.account(KEY_A).creds.api_key, shares={NR_YES: -3 * ONE})
    w.engine.resolve(NR_COND, NR_YES, NOW)
    before = w.cash(KEY_A)
    assert w.batch(KEY_A, [c.redeem_call(NR_COND, neg_risk=True)]) is None
    assert w.cash(KEY_A) == before and w.shares(KEY_A, NR_NO) == 0


def test_missing_approvals_revert_and_leave_everything_as_it_was():
    w = Chain()
    wallet = w.wallet(KEY_A)
    assert w.batch(KEY_A, [c.split_call(COND, ONE, neg_risk=False)]) == "BatchCallFailed: call 0: ERC20: insufficient allowance"
    assert w.batch(KEY_A, [c.approve_call(c.CTF_ADAPTER, 2 * ONE), c.split_call(COND, 2 * ONE, neg_risk=False)]) is None
    assert w.chain.allowance(wallet, c.CTF_ADAPTER) == 0  # a limited allowance is spent
    assert w.batch(KEY_A, [c.merge_call(COND, ONE, neg_risk=False)]).endswith(
        "ERC1155: caller is not owner nor approved")
    assert (w.cash(KEY_A), w.shares(KEY_A, YES), w.chain.wallet_nonce(wallet)) == (FUNDING - 2 * ONE, 2 * ONE, 1)


def test_a_batch_is_all_or_nothing():
    w = Chain()
    wallet = w.wallet(KEY_A)
    calls = [*approvals(), c.split_call(COND, 5 * ONE, neg_risk=False), c.merge_call(COND, 6 * ONE, neg_risk=False)]
    assert w.batch(KEY_A, calls) == "BatchCallFailed: call 3: ERC1155: insufficient balance for transfer"
    assert w.chain.allowance(wallet, c.CTF_ADAPTER) == 0 and not w.chain.approved(wallet, c.CTF_ADAPTER)
    assert (w.cash(KEY_A), w.shares(KEY_A, YES), w.chain.wallet_nonce(wallet)) == (FUNDING, 0, 0)
    assert w.batch(KEY_A, calls[:-1]) is None and w.chain.wallet_nonce(wallet) == 1


def test_a_batch_needs_the_wallets_nonce_an_open_deadline_and_a_deployed_wallet():
    w = Chain()
    wallet = w.wallet(KEY_A)
    assert w.batch(KEY_A, approvals(), nonce=1) == "InvalidNonce: batch nonce 1, wallet nonce 0"
    assert w.batch(KEY_A, approvals(), deadline_s=NOW // SECOND - 1).startswith("ExpiredDeadline")
    assert w.chain.run_wallet_batch(beacon_address(KEY_C.address), 0, NOW // SECOND + 60, approvals(), NOW) == (
        "no deposit wallet is deployed there")
    assert w.batch(KEY_A, approvals(), deadline_s=NOW // SECOND) is None
    assert w.chain.deploy_wallet(KEY_A.address, NOW) == wallet and w.chain.wallet_nonce(wallet) == 1  # idempotent
    assert w.chain.wallet_owner(wallet) == KEY_A.address and w.chain.code(wallet)
    assert w.chain.counts["batches_failed"] == 3


def test_retired_adapters_raw_ctf_and_unknown_calls_revert():
    w = Chain()
    retired = attrs.evolve(c.split_call(COND, ONE, neg_risk=False), target=c.RETIRED_ADAPTERS[0])
    assert "retired collateral adapter" in w.batch(KEY_A, [c.approve_call(retired.target), retired])
    raw_ctf = attrs.evolve(c.split_call(COND, ONE, neg_risk=False), target=c.CTF)
    assert "raw CTF" in w.batch(KEY_A, [raw_ctf])
    assert w.batch(KEY_A, [c.Call(c.PUSD, b"\x12\x34\x56\x78")]).endswith("unknown call")
    assert w.batch(KEY_A, [c.Call(EXCHANGE_V2, c.APPROVE.calldata(c.CTF, 1))]).endswith("unknown call")
    assert w.batch(KEY_A, [c.split_call("0x" + "33" * 32, ONE, neg_risk=False)]).endswith("condition not prepared")
    assert w.cash(KEY_A) == FUNDING


def test_views_answer_what_the_state_holds():
    w = Chain()
    wallet = w.wallet(KEY_A)
    assert w.batch(KEY_A, [*approvals(), c.split_call(COND, 2 * ONE, neg_risk=False)]) is None

    def view(function: c.Function, target: str, *args: object) -> object:
        return function.decode_result(w.chain.call(KEY_B.address, c.Call(target, function.calldata(*args))))[0]

    assert view(c.BALANCE_OF, c.PUSD, wallet) == view(c.BALANCE_OF, c.PUSD, KEY_A.address) == FUNDING - 2 * ONE
    assert view(c.ALLOWANCE, c.PUSD, wallet, c.CTF_ADAPTER) == c.MAX_UINT256
    assert view(c.IS_APPROVED_FOR_ALL, c.CTF, wallet, c.CTF_ADAPTER) is True
    assert view(c.CTF_BALANCE_OF, c.CTF, wallet, int(YES)) == 2 * ONE
    assert view(c.BALANCE_OF_BATCH, c.CTF, [wallet, KEY_B.address], [int(NO), int(NO)]) == (2 * ONE, 0)
    assert view(c.WALLET_NONCE, wallet) == 1 and view(c.WALLET_OWNER, wallet) == KEY_A.address.lower()
    assert view(c.FACTORY_BEACON, FACTORY) == BEACON.lower()
    with pytest.raises(Revert):
        w.chain.call(KEY_B.address, c.Call(KEY_C.address, c.WALLET_NONCE.calldata()))


# --------------------------------------------------------------------------- the binding


def test_an_owners_addresses_share_the_accounts_balance_and_resting_orders_hold_theirs():
    w = Chain()
    wallet = w.wallet(KEY_A)
    w.chain.mint_pusd(wallet, 5 * ONE)
    assert w.cash(KEY_A) == FUNDING + 5 * ONE == w.chain.pusd(KEY_A.address) == w.chain.pusd(wallet)
    balance = w.trading.balance_allowance(w.account(KEY_A), "COLLATERAL", "")
    assert balance["balance"] == str(FUNDING + 5 * ONE)
    # a resting BUY holds 50 pUSD of it: the chain moves only the rest
    key = w.account(KEY_A).creds.api_key
    assert w.engine.submit(key, YES, Side.BUY, 500_000, 100 * ONE, TimeInForce.GTC, True, NOW).status == "live"
    free = FUNDING + 5 * ONE - 50 * ONE
    assert w.batch(KEY_A, [c.Call(c.PUSD, c.TRANSFER.calldata(KEY_C.address, free + 1))]).endswith(
        "ERC20: transfer amount exceeds balance")
    assert w.batch(KEY_A, [c.Call(c.PUSD, c.TRANSFER.calldata(KEY_C.address, free))]) is None
    assert w.chain.pusd(KEY_C.address) == free and w.cash(KEY_A) == 50 * ONE


def test_what_an_address_got_before_its_account_existed_moves_into_the_account():
    w = Chain()
    wallet = w.chain.deploy_wallet(KEY_C.address, NOW)
    w.chain.mint_pusd(wallet, 7 * ONE)
    w.chain.mint_pusd(KEY_C.address, 3 * ONE)
    assert w.batch(KEY_C, [*approvals(), c.split_call(COND, 2 * ONE, neg_risk=False)]) is None
    assert w.chain.pusd(wallet) == 5 * ONE and w.chain.pusd(KEY_C.address) == 3 * ONE
    w.trading.add_account(KEY_C.address, credentials_for(KEY_C.address), cash=0)
    assert w.cash(KEY_C) == 8 * ONE == w.chain.pusd(wallet) == w.chain.pusd(KEY_C.address)
    assert w.shares(KEY_C, YES) == 2 * ONE == w.chain.shares(wallet, YES)
    assert w.chain.sizes()["addresses_holding"] == 0


def test_a_resolution_outlives_the_forgotten_market_while_anyone_holds_its_tokens():
    w = Chain()
    assert w.batch(KEY_A, [*approvals(), c.split_call(COND, ONE, neg_risk=False)]) is None
    w.engine.resolve(COND, NO, NOW)
    w.chain.keep_resolutions([COND])
    w.engine.forget_market(COND)
    w.chain.advance(NOW + 10 * SECOND)
    assert w.chain.resolution(COND) == NO  # A still holds its tokens
    assert w.batch(KEY_A, [c.redeem_call(COND, neg_risk=False)]) is None
    assert w.cash(KEY_A) == FUNDING
    w.chain.advance(NOW + 20 * SECOND)
    assert w.chain.resolution(COND) is None and w.chain.sizes()["resolutions_kept"] == 0


def test_a_reverted_batch_by_fault_changes_nothing_and_counts():
    w = Chain()
    w.chain.inject("chain_revert", 1)
    assert "injected fault" in w.batch(KEY_A, approvals())
    assert w.batch(KEY_A, approvals()) is None and w.chain.wallet_nonce(w.wallet(KEY_A)) == 1


# --------------------------------------------------------------------------- the node over loopback


async def start(nursery) -> tuple[SimServer, httpx.AsyncClient]:
    venue = LiveVenue(seed=4, markets=4, start_ns=START_NS, warmup_s=10, interval_s=60)
    server = SimServer(venue, settings=SimSettings(), clock=TrioClock(anchor_ns=START_NS))
    server.add_account(KEY_A.address, credentials_for(KEY_A.address))
    urls = await nursery.start(server.run)
    assert urls.rpc == urls.rest + "/rpc" and urls.relayer == urls.rest + "/relayer"
    return server, httpx.AsyncClient(base_url=urls.rest, headers=server.admin_headers())


class Node:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.ids = 0

    async def ask(self, method: str, *params: object) -> dict:
        self.ids += 1
        answer = await self.http.post("/rpc", json={"jsonrpc": "2.0", "id": self.ids, "method": method, "params": list(params)})
        assert answer.status_code == 200
        body = answer.json()
        assert body["id"] == self.ids
        return body

    async def result(self, method: str, *params: object):
        body = await self.ask(method, *params)
        assert "error" not in body, body
        return body["result"]

    async def send(self, hex_key: str, call: c.Call, *, nonce: int, gas: int = 300_000, fee: int = 200 * 10**9,
                   tip: int = 30 * 10**9, chain_id: int = 137) -> dict:
        raw = Account.sign_transaction({"type": 2, "chainId": chain_id, "nonce": nonce, "maxFeePerGas": fee,
                                        "maxPriorityFeePerGas": tip, "gas": gas, "to": call.target, "value": 0,
                                        "data": call.data}, hex_key).raw_transaction
        return await self.ask("eth_sendRawTransaction", "0x" + raw.hex())


async def test_every_json_rpc_method_answers_as_a_node_does(nursery, autojump_clock):
    server, http = await start(nursery)
    node = Node(http)
    assert await node.result("eth_chainId") == "0x89"
    first = int(await node.result("eth_blockNumber"), 16)
    await trio.sleep(4.5)
    assert int(await node.result("eth_blockNumber"), 16) == first + 2
    block = await node.result("eth_getBlockByNumber", "latest", False)
    assert int(block["number"], 16) == first + 2 and int(block["timestamp"], 16) == START_NS // SECOND + 4
    assert int(block["baseFeePerGas"], 16) > 0
    earlier = await node.result("eth_getBlockByNumber", hex(first + 1), False)
    assert int(earlier["timestamp"], 16) == START_NS // SECOND + 2 and earlier["hash"] != block["hash"]
    assert await node.result("eth_getBlockByNumber", hex(first + 3), False) is None
    assert await node.result("eth_getTransactionCount", KEY_A.address, "latest") == "0x0"
    assert await node.result("eth_getTransactionCount", KEY_A.address, "pending") == "0x0"
    assert await node.result("eth_getCode", KEY_A.address, "latest") == "0x"
    assert await node.result("eth_getCode", c.CTF_ADAPTER, "latest") != "0x"
    wallet = server.chain.deploy_wallet(KEY_A.address, START_NS)
    assert await node.result("eth_getCode", wallet, "latest") != "0x"
    assert int(await node.result("eth_getBalance", KEY_A.address, "latest"), 16) == POL_START
    assert int(await node.result("eth_gasPrice"), 16) > int(await node.result("eth_maxPriorityFeePerGas"), 16) > 0
    history = await node.result("eth_feeHistory", "0x4", "latest", [50])
    assert len(history["baseFeePerGas"]) == 5 and len(history["reward"]) == 4
    balance = await node.result("eth_call", {"to": c.PUSD, "data": "0x" + c.BALANCE_OF.calldata(wallet).hex()}, "latest")
    assert abi_decode(["uint256"], bytes.fromhex(balance[2:]))[0] == server.trading.funding
    nonce = await node.result("eth_call", {"to": wallet, "data": "0x" + c.WALLET_NONCE.calldata().hex()}, "latest")
    assert int(nonce, 16) == 0
    split = c.split_call(server.venue.markets()[0].market, ONE, neg_risk=False)
    call = {"from": KEY_A.address, "to": split.target, "data": "0x" + split.data.hex()}
    reverted = await node.ask("eth_estimateGas", call)
    assert reverted["error"]["code"] == 3 and reverted["error"]["message"] == "execution reverted: ERC20: insufficient allowance"
    approve = c.approve_call(c.CTF_ADAPTER)
    gas = await node.result("eth_estimateGas", {"from": KEY_A.address, "to": approve.target, "data": "0x" + approve.data.hex()})
    assert int(gas, 16) > 21_000
    unknown = "0x" + "ab" * 32
    assert await node.result("eth_getTransactionReceipt", unknown) is None
    assert await node.result("eth_getTransactionByHash", unknown) is None


async def test_a_raw_eip1559_transaction_is_mined_with_a_receipt_and_confirmations(nursery, autojump_clock):
    server, http = await start(nursery)
    node = Node(http)
    market = server.venue.markets()[0]
    api_key = credentials_for(KEY_A.address).api_key
    cash = server.trading.cash(server.trading.account(api_key=api_key))
    sent = await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER), nonce=0)
    assert "result" in sent, sent
    approve_hash = sent["result"]
    split = await node.send(HEX_A, c.split_call(market.market, 3 * ONE, neg_risk=market.neg_risk), nonce=1)
    assert await node.result("eth_getTransactionCount", KEY_A.address, "pending") == "0x2"
    assert await node.result("eth_getTransactionReceipt", split["result"]) is None  # pending
    assert (await node.result("eth_getTransactionByHash", split["result"]))["blockNumber"] is None
    await trio.sleep(2.5)
    receipt = await node.result("eth_getTransactionReceipt", split["result"])
    assert receipt["status"] == "0x1" and receipt["from"] == KEY_A.address
    assert (await node.result("eth_getTransactionReceipt", approve_hash))["blockNumber"] == receipt["blockNumber"]
    await trio.sleep(4)
    confirmations = int(await node.result("eth_blockNumber"), 16) - int(receipt["blockNumber"], 16) + 1
    assert confirmations == 3
    account = server.trading.account(api_key=api_key)
    assert server.trading.cash(account) == cash - 3 * ONE
    assert server.trading.shares(account, market.tokens[1]) == 3 * ONE
    paid = sum(int(r["gasUsed"], 16) * int(r["effectiveGasPrice"], 16)
               for r in [receipt, await node.result("eth_getTransactionReceipt", approve_hash)])
    assert int(await node.result("eth_getBalance", KEY_A.address, "latest"), 16) == POL_START - paid
    assert (await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER), nonce=0))["error"]["message"] == "nonce too low"
    assert (await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER), nonce=2, chain_id=1))["error"]["message"].startswith(
        "invalid chain id")
    broke = await node.send(HEX_B, c.approve_call(c.CTF_ADAPTER), nonce=0, fee=10**14)
    assert broke["error"]["message"] == "insufficient funds for gas * price + value"


async def test_revert_stuck_and_nonce_clash_faults(nursery, autojump_clock):
    server, http = await start(nursery)
    node = Node(http)
    assert (await http.post("/admin/fault", json={"kind": "chain_revert", "value": "1"})).json() == {"chain_revert": 1}
    reverted = (await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER), nonce=0))["result"]
    await trio.sleep(2.5)
    receipt = await node.result("eth_getTransactionReceipt", reverted)
    assert receipt["status"] == "0x0" and await node.result("eth_getTransactionCount", KEY_A.address, "latest") == "0x1"
    assert server.chain.allowance(KEY_A.address, c.CTF_ADAPTER) == 0

    assert (await http.post("/admin/fault", json={"kind": "chain_stuck", "value": 60})).status_code == 200
    stuck = await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER), nonce=1)
    again = await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER), nonce=1)
    assert again["error"]["message"] == "already known"
    await trio.sleep(10)
    assert await node.result("eth_getTransactionReceipt", stuck["result"]) is None
    cheap = await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER, 5), nonce=1, fee=215 * 10**9, tip=32 * 10**9)
    assert cheap["error"]["message"] == "replacement transaction underpriced"
    bumped = await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER, 5), nonce=1, fee=220 * 10**9, tip=33 * 10**9)
    await trio.sleep(2.5)
    assert (await node.result("eth_getTransactionReceipt", bumped["result"]))["status"] == "0x1"
    assert await node.result("eth_getTransactionByHash", stuck["result"]) is None  # replaced
    assert server.chain.allowance(KEY_A.address, c.CTF_ADAPTER) == 5

    assert (await http.post("/admin/fault", json={"kind": "chain_nonce_clash"})).status_code == 200
    clashed = await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER), nonce=2)
    assert clashed["error"] == {"code": -32000, "message": "nonce too low"}
    assert await node.result("eth_getTransactionCount", KEY_A.address, "pending") == "0x3"
    assert "result" in await node.send(HEX_A, c.approve_call(c.CTF_ADAPTER), nonce=3)
    bad = await http.post("/admin/fault", json={"kind": "chain_stuck", "value": "forever"})
    assert bad.status_code == 400


async def test_funding_reaches_an_accounts_balance_allowance_now_or_once_it_exists(nursery, autojump_clock):
    server, http = await start(nursery)
    wallet = server.chain.deploy_wallet(KEY_A.address, START_NS)
    funded = await http.post("/admin/fund", json={"address": wallet, "amount": "12.5", "pol": "0.5"})
    assert funded.status_code == 200 and funded.json()["pusd"] == str(server.trading.funding + 12_500_000)
    answer = await signed(http, KEY_A, "GET", "/balance-allowance",
                          params={"asset_type": "COLLATERAL", "signature_type": "3"})
    assert answer.json()["balance"] == str(server.trading.funding + 12_500_000)
    assert server.chain.pol(wallet) == 5 * 10**17  # a contract starts with no POL
    later = await http.post("/admin/fund", json={"address": KEY_B.address, "amount": "3"})
    assert later.json()["pol_wei"] == str(POL_START)
    server.add_account(KEY_B.address, credentials_for(KEY_B.address), cash=0)
    answer = await signed(http, KEY_B, "GET", "/balance-allowance", params={"asset_type": "COLLATERAL"})
    assert answer.json()["balance"] == str(3 * ONE)
    for bad in ({"address": wallet, "amount": "-1"}, {"address": "0x12", "amount": "1"}, {"amount": "1"},
                {"address": wallet, "amount": 1}, {"address": wallet, "amount": "1.0000001"}):
        assert (await http.post("/admin/fund", json=bad)).status_code == 400, bad
    assert (await http.post("/admin/fund", json={"address": wallet, "amount": "1"}, headers={"Authorization": ""})).status_code == 401


async def test_malformed_requests_are_json_rpc_errors_never_500(nursery, autojump_clock):
    server, http = await start(nursery)
    node = Node(http)

    async def error_of(content: bytes) -> object:
        answer = await http.post("/rpc", content=content, headers={"content-type": "application/json"})
        assert answer.status_code == 200
        body = answer.json()
        return [b["error"]["code"] for b in body] if isinstance(body, list) else body["error"]["code"]

    assert await error_of(b"{not json") == -32700
    assert await error_of(b'{"method": "eth_chainId"}') == -32600
    assert await error_of(b"[]") == -32600
    assert await error_of(b'"eth_chainId"') == -32600
    assert await error_of(b'{"jsonrpc": "2.0", "id": 1, "method": "eth_mine"}') == -32601
    assert await error_of(b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": {}}') == -32602
    assert await error_of(b'[{"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": ["0x12"]}, 7]') == [-32602, -32600]
    for method, params in (("eth_getBalance", [7]), ("eth_call", ["x"]), ("eth_call", [{"to": c.PUSD, "data": "0xzz"}]),
                           ("eth_getTransactionReceipt", ["0x12"]), ("eth_sendRawTransaction", ["0x123"]),
                           ("eth_feeHistory", ["4"]), ("eth_getBlockByNumber", [])):
        assert (await node.ask(method, *params))["error"]["code"] == -32602, method
    garbage = await node.ask("eth_sendRawTransaction", "0x02" + "ff" * 40)
    assert garbage["error"] == {"code": -32000, "message": "rlp: could not decode the transaction"}
    batch = await http.post("/rpc", json=[{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
                                          {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"}])
    assert [b["id"] for b in batch.json()] == [1, 2]
    assert (await http.post("/rpc", content=b"[" + b"1," * 200_000 + b"1]")).status_code == 413
    assert server.chain.counts["rpc_malformed"] >= 10


# --------------------------------------------------------------------------- conservation


HOLDERS = (KEY_A, KEY_B, KEY_C)
amounts = st.integers(0, 40).map(lambda n: n * ONE // 4)


@settings(max_examples=60, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
class Conservation(RuleBasedStateMachine):
    """Deposits, approvals, splits, merges, transfers, trade-like moves between accounts,
    resolutions and redemptions, as EOA calls and as wallet batches: pUSD plus the complete sets
    (winning shares once resolved) stay what was deposited, and nothing goes negative."""

    def __init__(self) -> None:
        super().__init__()
        self.w = Chain(funding=20 * ONE)
        self.deposited = 2 * 20 * ONE
        self.markets = {COND: (YES, NO, False), NR_COND: (NR_YES, NR_NO, True)}
        for key in HOLDERS:
            self.w.wallet(key)
            for via in (False, True):
                self._run(key, via, approvals(False) + approvals(True))

    def _address(self, key: SigningKey, via_wallet: bool) -> str:
        return beacon_address(key.address) if via_wallet else key.address

    def _run(self, key: SigningKey, via_wallet: bool, calls: list[c.Call]) -> None:
        if via_wallet:
            self.w.batch(key, calls)
            return
        for call in calls:  # one EOA transaction a call; a reverted one changes nothing
            try:
                run = Run(self.w.chain)
                run.execute(key.address, call)
                self.w.chain.holdings.apply(run.changes)
            except Revert:
                pass

    @rule(key=st.sampled_from(HOLDERS), via=st.booleans(), amount=amounts)
    def deposit(self, key, via, amount) -> None:
        self.w.chain.mint_pusd(self._address(key, via), amount)
        self.deposited += amount

    @rule(key=st.sampled_from(HOLDERS), via=st.booleans(), cond=st.sampled_from((COND, NR_COND)),
          amount=amounts | st.just(c.MAX_UINT256), operator=st.booleans())
    def approve(self, key, via, cond, amount, operator) -> None:
        neg_risk = self.markets[cond][2]
        self._run(key, via, [c.approve_call(c.adapter(neg_risk), amount), c.operator_call(c.adapter(neg_risk), operator)])

    @rule(key=st.sampled_from(HOLDERS), via=st.booleans(), cond=st.sampled_from((COND, NR_COND)),
          action=st.sampled_from(("split", "merge", "redeem")), amount=amounts,
          wrong=st.sampled_from((False, False, False, True)), every_set=st.booleans())
    def adapter(self, key, via, cond, action, amount, wrong, every_set) -> None:
        neg_risk = self.markets[cond][2] != wrong
        yes, no, _ = self.markets[cond]
        if action == "merge" and every_set:  # merge every complete set the address holds
            address = self._address(key, via)
            amount = min(self.w.chain.shares(address, yes), self.w.chain.shares(address, no))
        call = {"split": lambda: c.split_call(cond, amount, neg_risk=neg_risk),
                "merge": lambda: c.merge_call(cond, amount, neg_risk=neg_risk),
                "redeem": lambda: c.redeem_call(cond, neg_risk=neg_risk)}[action]()
        self._run(key, via, [call])

    @rule(key=st.sampled_from(HOLDERS), via=st.booleans(), to=st.sampled_from(HOLDERS), to_via=st.booleans(),
          amount=amounts)
    def transfer(self, key, via, to, to_via, amount) -> None:
        self._run(key, via, [c.Call(c.PUSD, c.TRANSFER.calldata(self._address(to, to_via), amount))])

    @rule(seller=st.sampled_from((KEY_A, KEY_B)), token=st.sampled_from((YES, NO, NR_YES, NR_NO)),
          size=amounts, price=st.integers(1, 99))
    def trade(self, seller, token, size, price) -> None:
        buyer = KEY_B if seller is KEY_A else KEY_A
        cost = size * price // 100
        if self.w.shares(seller, token) >= size and self.w.cash(buyer) >= cost:
            self.w.trading.give(self.w.account(seller).creds.api_key, cash=cost, shares={token: -size})
            self.w.trading.give(self.w.account(buyer).creds.api_key, cash=-cost, shares={token: size})

    @precondition(lambda self: any(self.w.chain.resolution(m) is None for m in self.markets))
    @rule(cond=st.sampled_from((COND, NR_COND)), first=st.booleans())
    def resolve(self, cond, first) -> None:
        if self.w.chain.resolution(cond) is None:
            self.w.engine.resolve(cond, self.markets[cond][0 if first else 1], NOW)

    def _totals(self) -> tuple[int, dict[str, int]]:
        chain = self.w.chain
        pusd = sum(self.w.cash(k) for k in (KEY_A, KEY_B)) + chain.holdings.pusd_of_addresses()
        shares: dict[str, int] = {}
        for held in [*self.w.feed.positions.values(), *chain.holdings.tokens_of_addresses().values()]:
            for token, n in held.items():
                shares[token] = shares.get(token, 0) + n
        return pusd, shares

    @invariant()
    def nothing_negative(self) -> None:
        chain = self.w.chain
        for key in HOLDERS:
            for address in (key.address, beacon_address(key.address)):
                assert chain.pusd(address) >= 0
                assert all(chain.shares(address, t) >= 0 for t in (YES, NO, NR_YES, NR_NO))

    @invariant()
    def pusd_and_sets_are_conserved(self) -> None:
        pusd, shares = self._totals()
        value = pusd
        for cond, (yes, no, _) in self.markets.items():
            winner = self.w.chain.resolution(cond)
            if winner is None:
                assert shares.get(yes, 0) == shares.get(no, 0)
                value += shares.get(yes, 0)
            else:
                value += shares.get(winner, 0)
        assert value == self.deposited


TestConservation = Conservation.TestCase
