"""The simulator's relayer: a deposit wallet created from nothing and a batch of approvals, each
through ``STATE_NEW`` → ``EXECUTED`` → ``MINED`` → ``CONFIRMED`` with the chain's blocks; what it
refuses (wrong signer, wrong nonce, a second action in flight, a retired adapter, malformed
bodies, no key) with the relayer's own strings; an expired deadline and a revert ending
``STATE_FAILED`` with nothing changed; each relayer fault; the reads (status in both shapes,
params, nonce, deployed); forgetting. A state machine drives ``SimRelayer`` sans-IO with random
submits, blocks and faults: a wallet's nonce moves by one per batch that ran, a failed batch
changes nothing, and a wallet never has two actions in flight.

``FakeChain`` plays the chain helper's ``SimChain`` API (all-or-nothing batches of approvals,
which it records) so the relayer's rules are tested on their own."""

from __future__ import annotations

import random
from typing import Any, Sequence

import httpx
import pytest
import trio
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from starlette.applications import Starlette

from mmbot.config import Secret
from mmbot.venues.polymarket import contracts
from mmbot.venues.polymarket.auth import SigningKey
from mmbot.venues.polymarket.contracts import Call
from mmbot.venues.polymarket.deposit_wallet import beacon_address
from mmbot.venues.polymarket.wallet_batch import batch_body, create_body, sign_batch
from mmbot.venues.simulator.refusals import VenueRefusal
from mmbot.venues.simulator.relayer_state import (
    CONFIRMED, EXECUTED, FAILED, MINED, NEW, RelayerKeys, SimRelayer,
)
from mmbot.venues.simulator.routes.relayer import RelayerRoutes
from tests.test_sim_server import Sim

SECOND = 1_000_000_000
START_NS = 1_786_604_100 * SECOND
KEY_A = SigningKey(Secret(value="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
KEY_B = SigningKey(Secret(value="0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"))
WALLET_A = beacon_address(KEY_A.address)  # 0xBc0fF067…6B50, onchain doc §3.2
ADMIN = "admin-token"


class FakeChain:
    """The chain helper's ``SimChain`` as far as the relayer uses it: blocks every ``mine``,
    deployed wallets with their owner and nonce, and batches that run all or nothing — approve and
    setApprovalForAll apply; any other call, or a wallet told to (``revert_next``), reverts."""

    def __init__(self) -> None:
        self.block_number = 100
        self.block_timestamp = START_NS // SECOND
        self.wallets: dict[str, list[Any]] = {}  # wallet (lower) -> [owner, nonce]
        self.allowances: dict[tuple[str, str], int] = {}
        self.operators: dict[tuple[str, str], bool] = {}
        self.batches_run = 0
        self.revert_next = 0

    def mine(self, now_ns: int) -> None:
        self.block_number += 1
        self.block_timestamp = now_ns // SECOND

    def code(self, address: str) -> bytes:
        return b"\x60\x80" if address.lower() in self.wallets else b""

    def deploy_wallet(self, owner: str, now_ns: int) -> str:
        wallet = beacon_address(owner)
        self.wallets.setdefault(wallet.lower(), [owner, 0])
        return wallet

    def wallet_owner(self, wallet: str) -> str | None:
        found = self.wallets.get(wallet.lower())
        return None if found is None else found[0]

    def wallet_nonce(self, wallet: str) -> int:
        return self.wallets.get(wallet.lower(), [None, 0])[1]

    def run_wallet_batch(self, wallet: str, nonce: int, deadline_s: int, calls: Sequence[Call],
                         now_ns: int) -> str | None:
        state = self.wallets[wallet.lower()]
        if nonce != state[1]:
            return "InvalidNonce"
        if deadline_s < self.block_timestamp:
            return "Expired"
        if self.revert_next:
            self.revert_next -= 1
            return "BatchCallFailed: injected"
        allowances, operators = {}, {}
        for call in calls:
            try:
                function, args = contracts.decode(call.data)
            except contracts.CalldataError:
                return "BatchCallFailed: unknown call"
            if function is contracts.APPROVE:
                allowances[(wallet.lower(), str(args[0]).lower())] = int(args[1])  # type: ignore[call-overload]
            elif function is contracts.SET_APPROVAL_FOR_ALL:
                operators[(wallet.lower(), str(args[0]).lower())] = bool(args[1])
            else:
                return "BatchCallFailed: unknown call"
        self.allowances |= allowances
        self.operators |= operators
        state[1] += 1
        self.batches_run += 1
        return None

    def allowance(self, owner: str, spender: str) -> int:
        return self.allowances.get((owner.lower(), spender.lower()), 0)

    def approved(self, owner: str, operator: str) -> bool:
        return self.operators.get((owner.lower(), operator.lower()), False)


class Bench:
    """A ``SimRelayer`` on a ``FakeChain``, its routes served in process; ``block`` makes one
    block ``block_s`` seconds on and lets the relayer see it, as the server's flow task does."""

    def __init__(self, *, confirm_blocks: int = 2) -> None:
        self.chain = FakeChain()
        self.relayer = SimRelayer(self.chain, confirm_blocks=confirm_blocks, rng=random.Random(3),
                                  keys=RelayerKeys(random.Random(5)))
        self.now = START_NS
        self.app = Starlette(routes=RelayerRoutes(relayer=self.relayer, clock=self, admin_token=ADMIN).routes())

    def now_ns(self) -> int:  # the routes' clock
        return self.now

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://sim/relayer")

    def headers(self, key: SigningKey = KEY_A) -> dict[str, str]:
        api_key, address = self.relayer.relayer_key_for(key.address)
        return {"RELAYER_API_KEY": api_key, "RELAYER_API_KEY_ADDRESS": address}

    def block(self, blocks: int = 1, block_s: int = 2) -> None:
        for _ in range(blocks):
            self.now += block_s * SECOND
            self.chain.mine(self.now)
            self.relayer.advance(self.now)

    def batch(self, calls: list[Call], *, key: SigningKey = KEY_A, nonce: int | None = None,
              deadline: int | None = None, signer: SigningKey | None = None) -> dict[str, Any]:
        nonce = self.chain.wallet_nonce(WALLET_A) if nonce is None else nonce
        deadline = self.chain.block_timestamp + 240 if deadline is None else deadline
        signature = sign_batch(signer or key, wallet=beacon_address(key.address), nonce=nonce, deadline=deadline,
                               calls=calls)
        return batch_body(owner=key.address, wallet=beacon_address(key.address), nonce=nonce, deadline=deadline,
                          calls=calls, signature=signature)

    def deployed(self, key: SigningKey = KEY_A) -> None:
        self.chain.deploy_wallet(key.address, self.now)


APPROVALS = contracts.trading_approvals()


async def submit(bench: Bench, body: Any, key: SigningKey = KEY_A) -> httpx.Response:
    async with bench.client() as http:
        return await http.post("/submit", json=body, headers=bench.headers(key))


async def state_of(bench: Bench, transaction_id: str) -> dict[str, Any]:
    async with bench.client() as http:
        answer = await http.get(f"/v1/account/transactions/{transaction_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


# --------------------------------------------------------------------------- the happy paths


async def test_a_wallet_created_from_nothing_goes_through_every_state_to_confirmed_and_has_code():
    bench = Bench()
    async with bench.client() as http:
        assert (await http.get("/deployed", params={"address": WALLET_A, "type": "WALLET"})).json() == {"deployed": False}
        answer = await http.post("/submit", json=create_body(owner=KEY_A.address), headers=bench.headers())
        assert answer.status_code == 200 and answer.json()["state"] == NEW
        tid = answer.json()["transactionID"]
        seen = [(await state_of(bench, tid))["state"]]
        for _ in range(5):
            bench.block()
            seen.append((await state_of(bench, tid))["state"])
        assert seen == [NEW, EXECUTED, MINED, MINED, CONFIRMED, CONFIRMED]
        status = await state_of(bench, tid)
        assert status["transaction_id"] == tid and status["error_msg"] == ""
        assert status["transaction_hash"].startswith("0x") and len(status["transaction_hash"]) == 66
        assert bench.chain.code(WALLET_A) != b""
        assert (await http.get("/deployed", params={"address": WALLET_A, "type": "WALLET"})).json() == {"deployed": True}
        params = await http.get("/v1/account/transactions/params", params={"address": KEY_A.address, "type": "WALLET"})
        assert params.json() == {"address": WALLET_A, "nonce": "0"}
        older = (await http.get("/transaction", params={"id": tid})).json()
        assert isinstance(older, list) and older[0]["transactionID"] == tid and older[0]["state"] == CONFIRMED
        assert older[0]["type"] == "WALLET-CREATE" and older[0]["from"] == KEY_A.address
        mine = (await http.get("/transactions", headers=bench.headers())).json()
        assert [t["transactionID"] for t in mine] == [tid]


async def test_a_signed_batch_of_approvals_is_confirmed_and_applied_and_the_nonce_moves_by_one():
    bench = Bench()
    bench.deployed()
    answer = await submit(bench, bench.batch(APPROVALS))
    assert answer.status_code == 200, answer.text
    tid = answer.json()["transactionID"]
    assert bench.chain.allowances == {} and bench.relayer.in_flight(WALLET_A) is not None
    bench.block(4)
    assert (await state_of(bench, tid))["state"] == CONFIRMED
    assert bench.chain.wallet_nonce(WALLET_A) == 1 and bench.relayer.in_flight(WALLET_A) is None
    for spender in contracts.PUSD_SPENDERS:
        assert bench.chain.allowance(WALLET_A, spender) == contracts.MAX_UINT256
    for operator in contracts.CTF_OPERATORS:
        assert bench.chain.approved(WALLET_A, operator)
    async with bench.client() as http:
        assert (await http.get("/nonce", params={"address": KEY_A.address, "type": "WALLET"})).json() == {"nonce": "1"}


# --------------------------------------------------------------------------- refusals


async def test_what_the_relayer_refuses_with_its_own_strings_and_nothing_applied():
    bench = Bench()
    assert (await submit(bench, bench.batch(APPROVALS))).json() == {
        "error": f"deposit wallet {WALLET_A} is not deployed"}
    bench.deployed()
    wrong_signer = await submit(bench, bench.batch(APPROVALS, signer=KEY_B))
    assert wrong_signer.status_code == 400 and wrong_signer.json()["error"].startswith("invalid signature")
    wrong_nonce = await submit(bench, bench.batch(APPROVALS, nonce=5))
    assert (wrong_nonce.status_code, wrong_nonce.json()) == (
        400, {"error": "batch nonce 5 does not match on-chain nonce 0"})
    retired = APPROVALS[:1] + [Call(contracts.RETIRED_ADAPTERS[0], contracts.SPLIT.calldata(
        contracts.PUSD, bytes(32), b"\x11" * 32, [1, 2], 10))]
    blocked = await submit(bench, bench.batch(retired))
    assert blocked.json() == {"error": "call blocked: call[1] blocked: calls to "
                                       "0xADa100874d00e3331D00F2007a9c336a65009718 are not permitted"}
    theirs = batch_body(owner=KEY_B.address, wallet=WALLET_A, nonce=0, deadline=START_NS // SECOND + 240,
                        calls=APPROVALS, signature="0x" + "00" * 65)
    not_owner = await submit(bench, theirs, key=KEY_B)
    assert not_owner.json() == {"error": f"from {KEY_B.address} is not the owner of deposit wallet {WALLET_A}"}
    first = await submit(bench, bench.batch(APPROVALS[:1]))
    assert first.status_code == 200
    for again in (bench.batch(APPROVALS[1:]), create_body(owner=KEY_A.address)):
        busy = await submit(bench, again)
        assert (busy.status_code, busy.json()) == (400, {"error": "wallet has in-flight action"})
    bench.block(4)
    assert bench.chain.batches_run == 1 and bench.chain.wallet_nonce(WALLET_A) == 1
    stale = await submit(bench, bench.batch(APPROVALS, nonce=0))
    assert stale.json() == {"error": "batch nonce 0 does not match on-chain nonce 1"}
    assert bench.relayer.counts["refused"] == 8 and bench.relayer.counts["submitted"] == 1


@pytest.mark.parametrize("headers", [
    {},
    {"RELAYER_API_KEY": "nope", "RELAYER_API_KEY_ADDRESS": KEY_A.address},
    {"RELAYER_API_KEY": "x", "RELAYER_API_KEY_ADDRESS": "0xnot-an-address"},
    "B's key",
])
async def test_a_submit_without_a_relayer_key_of_its_from_address_is_401(headers):
    bench = Bench()
    sent = bench.headers(KEY_B) if headers == "B's key" else headers
    async with bench.client() as http:
        answer = await http.post("/submit", json=create_body(owner=KEY_A.address), headers=sent)
    assert answer.status_code == 401 and answer.json()["error"]
    assert bench.relayer.transactions_of(KEY_A.address) == []


def _malformed(bench: Bench) -> list[tuple[Any, str]]:
    good = bench.batch(APPROVALS[:1])
    params = good["depositWalletParams"]

    def with_(**changes: Any) -> dict[str, Any]:
        return {**good, **changes}

    def with_params(**changes: Any) -> dict[str, Any]:
        return with_(depositWalletParams={**params, **changes})

    return [
        ([1, 2], "invalid body"),
        ({**good, "type": "SAFE"}, "unsupported transaction type"),
        ({**good, "type": None}, "unsupported transaction type"),
        (with_(**{"from": "0x12"}), "from: expected a 0x address"),
        (with_(to=KEY_A.address), "to: expected the deposit wallet factory"),
        (with_(metadata=7), "metadata"),
        (with_(nonce="-1"), "nonce: expected a whole number"),
        (with_(nonce="1e3"), "nonce: expected a whole number"),
        (with_(nonce=str(2**256)), "nonce: expected a whole number"),
        (with_(signature=None), "signature: expected 0x-hex"),
        (with_(signature="0xzz"), "invalid signature"),
        (with_(depositWalletParams=[]), "depositWalletParams: expected an object"),
        (with_params(deadline=None), "depositWalletParams.deadline"),
        (with_params(depositWallet="nope"), "depositWalletParams.depositWallet"),
        (with_params(calls=[]), "depositWalletParams.calls"),
        (with_params(calls="0x"), "depositWalletParams.calls"),
        (with_params(calls=[params["calls"][0]] * 65), "depositWalletParams.calls"),
        (with_params(calls=[7]), "call[0]: expected"),
        (with_params(calls=[{**params["calls"][0], "data": "0x1"}]), "call[0].data"),
        (with_params(calls=[{**params["calls"][0], "data": 5}]), "call[0].data"),
        (with_params(calls=[{**params["calls"][0], "target": "x"}]), "call[0].target"),
        (with_params(calls=[{**params["calls"][0], "value": "lots"}]), "call[0].value"),
    ]


async def test_malformed_bodies_are_400_with_the_reason_never_a_crash():
    bench = Bench()
    bench.deployed()
    async with bench.client() as http:
        for raw in (b"", b"{", b"\xff", b"[" * 5_000):
            answer = await http.post("/submit", content=raw, headers=bench.headers())
            assert answer.status_code == 400, raw[:10]
        for body, reason in _malformed(bench):
            answer = await http.post("/submit", json=body, headers=bench.headers())
            assert answer.status_code == 400 and reason in answer.json()["error"], (body, answer.text)
        for path, params in (("/deployed", {"address": "nope"}), ("/nonce", {}), ("/deployed", {"type": "SAFE",
                             "address": WALLET_A}), ("/v1/account/transactions/params", {"address": "0x1"})):
            answer = await http.get(path, params=params)
            assert answer.status_code == 400 and answer.json()["error"], (path, params)
        assert (await http.get("/v1/account/transactions/nope")).status_code == 404
        assert (await http.get("/transaction", params={"id": "nope"})).json() == []
    assert bench.relayer.transactions_of(KEY_A.address) == [] and bench.chain.batches_run == 0


# --------------------------------------------------------------------------- failures


async def test_a_deadline_passed_before_the_batch_runs_fails_it_and_nothing_changes():
    bench = Bench()
    bench.deployed()
    answer = await submit(bench, bench.batch(APPROVALS, deadline=START_NS // SECOND + 1))
    assert answer.status_code == 200
    bench.block(block_s=5)
    status = await state_of(bench, answer.json()["transactionID"])
    assert (status["state"], status["error_msg"], status["transaction_hash"]) == (FAILED, "deadline expired", "")
    assert bench.chain.batches_run == 0 and bench.chain.wallet_nonce(WALLET_A) == 0
    assert bench.relayer.in_flight(WALLET_A) is None  # the wallet may act again at once
    assert (await submit(bench, bench.batch(APPROVALS))).status_code == 200


async def test_a_reverted_batch_fails_with_the_reason_and_changes_nothing():
    bench = Bench()
    bench.deployed()
    merge = contracts.merge_call("0x" + "11" * 32, 5, neg_risk=False)
    answer = await submit(bench, bench.batch(APPROVALS[:2] + [merge]))
    bench.block(4)
    status = await state_of(bench, answer.json()["transactionID"])
    assert (status["state"], status["error_msg"]) == (FAILED, "execution reverted: BatchCallFailed: unknown call")
    assert bench.chain.allowances == {} and bench.chain.wallet_nonce(WALLET_A) == 0


# --------------------------------------------------------------------------- faults


async def test_relayer_failed_ends_the_next_transactions_failed_without_running_them():
    bench = Bench()
    bench.deployed()
    assert bench.relayer.faults.inject("relayer_failed", 1) == {"relayer_failed": 1}
    first = (await submit(bench, bench.batch(APPROVALS))).json()["transactionID"]
    bench.block(4)
    status = await state_of(bench, first)
    assert status["state"] == FAILED and "relayer_failed" in status["error_msg"]
    assert bench.chain.batches_run == 0 and bench.chain.wallet_nonce(WALLET_A) == 0
    second = (await submit(bench, bench.batch(APPROVALS))).json()["transactionID"]
    bench.block(4)
    assert (await state_of(bench, second))["state"] == CONFIRMED and bench.chain.wallet_nonce(WALLET_A) == 1


async def test_relayer_lost_reply_carries_the_submit_out_and_answers_502():
    bench = Bench()
    bench.deployed()
    bench.relayer.faults.inject("relayer_lost_reply", 0)  # no count: one
    lost = await submit(bench, bench.batch(APPROVALS))
    assert lost.status_code == 502
    again = await submit(bench, bench.batch(APPROVALS))  # a blind resend meets the one in flight
    assert again.json() == {"error": "wallet has in-flight action"}
    bench.block(4)
    assert bench.chain.wallet_nonce(WALLET_A) == 1 and bench.chain.batches_run == 1  # found by the nonce
    async with bench.client() as http:
        listed = (await http.get("/transactions", headers=bench.headers())).json()
    assert [t["state"] for t in listed] == [CONFIRMED]


async def test_relayer_busy_refuses_the_next_submits_and_applies_nothing():
    bench = Bench()
    bench.deployed()
    bench.relayer.faults.inject("relayer_busy", 2)
    for _ in range(2):
        busy = await submit(bench, bench.batch(APPROVALS))
        assert (busy.status_code, busy.json()) == (400, {"error": "wallet busy: active action"})
    assert bench.relayer.in_flight(WALLET_A) is None
    assert (await submit(bench, bench.batch(APPROVALS))).status_code == 200


async def test_relayer_slow_holds_a_transaction_s_seconds_before_it_runs():
    bench = Bench()
    assert bench.relayer.faults.inject("relayer_slow", 10) == {"relayer_slow_s": 10}
    slow = (await submit(bench, create_body(owner=KEY_A.address))).json()["transactionID"]
    bench.block(4)  # 8 s
    assert (await state_of(bench, slow))["state"] == NEW and bench.chain.code(WALLET_A) == b""
    bench.block()  # 10 s
    assert (await state_of(bench, slow))["state"] == EXECUTED and bench.chain.code(WALLET_A) != b""
    bench.relayer.faults.inject("relayer_slow", 0)
    bench.block(3)
    answer = await submit(bench, bench.batch(APPROVALS))
    bench.block()
    assert (await state_of(bench, answer.json()["transactionID"]))["state"] == EXECUTED


# --------------------------------------------------------------------------- keys, memory


async def test_the_operator_gets_an_owners_relayer_key_with_the_admin_token_only():
    bench = Bench()
    async with bench.client() as http:
        refused = await http.post("/admin/relayer-key", json={"address": KEY_A.address})
        assert refused.status_code == 401
        wrong = await http.post("/admin/relayer-key", json={"address": "0x12"},
                                headers={"Authorization": f"Bearer {ADMIN}"})
        assert wrong.status_code == 400
        got = await http.post("/admin/relayer-key", json={"address": KEY_A.address.lower()},
                              headers={"Authorization": f"Bearer {ADMIN}"})
    key, address = bench.relayer.relayer_key_for(KEY_A.address)
    assert got.json() == {"key": key, "address": KEY_A.address}
    assert RelayerKeys(random.Random(5)).key_for(KEY_A.address) == (key, address)  # the same for a seed
    assert RelayerKeys(random.Random(6)).key_for(KEY_A.address)[0] != key
    assert bench.relayer.relayer_key_for(KEY_B.address)[0] != key


def test_terminal_transactions_are_forgotten_after_the_horizon_and_in_flight_ones_never():
    bench = Bench()
    bench.relayer.submit(KEY_A.address, create_body(owner=KEY_A.address), bench.now)
    bench.block(4)
    bench.relayer.submit(KEY_B.address, create_body(owner=KEY_B.address), bench.now)
    for _ in range(10):
        bench.now += 100 * SECOND
        bench.relayer.advance(bench.now, retain_s=600)  # no block: B's create stays NEW
    assert [t.owner for t in bench.relayer.transactions_of(KEY_B.address)] == [KEY_B.address]
    assert bench.relayer.transactions_of(KEY_A.address) == [] and bench.relayer.counts["forgotten"] == 1


# --------------------------------------------------------------------------- the state machine


class Relaying(RuleBasedStateMachine):
    """Random submits (good, stale or future nonces, reverting, short deadlines), blocks and
    faults on two owners' wallets."""

    def __init__(self) -> None:
        super().__init__()
        self.bench = Bench(confirm_blocks=1)
        for key in (KEY_A, KEY_B):
            self.bench.deployed(key)
        self.ran: dict[str, int] = {KEY_A.address: 0, KEY_B.address: 0}  # batches that ran, by owner

    @rule(key=st.sampled_from((KEY_A, KEY_B)), offset=st.sampled_from((0, 0, 0, -1, 1)),
          revert=st.booleans(), short=st.booleans())
    def submit(self, key, offset, revert, short) -> None:
        chain, wallet = self.bench.chain, beacon_address(key.address)
        calls = [contracts.approve_call(contracts.EXCHANGE_V2, chain.wallet_nonce(wallet) + 1)]
        if revert:
            calls.append(contracts.redeem_call("0x" + "22" * 32, neg_risk=False))
        nonce = max(chain.wallet_nonce(wallet) + offset, 0)
        deadline = chain.block_timestamp + (1 if short else 240)
        body = batch_body(owner=key.address, wallet=wallet, nonce=nonce, deadline=deadline, calls=calls,
                          signature=sign_batch(key, wallet=wallet, nonce=nonce, deadline=deadline, calls=calls))
        in_flight = self.bench.relayer.in_flight(wallet) is not None
        try:
            self.bench.relayer.submit(key.address, body, self.bench.now)
        except VenueRefusal as refusal:
            assert in_flight or nonce != chain.wallet_nonce(wallet) or refusal.error.startswith("wallet busy")
        else:
            assert not in_flight and nonce == chain.wallet_nonce(wallet)

    @rule(blocks=st.integers(1, 3), block_s=st.sampled_from((1, 2, 5)))
    def block(self, blocks, block_s) -> None:
        nonces = {k: self.bench.chain.wallet_nonce(beacon_address(k)) for k in self.ran}
        allowances = dict(self.bench.chain.allowances)
        self.bench.block(blocks, block_s)
        for owner, before in nonces.items():
            after = self.bench.chain.wallet_nonce(beacon_address(owner))
            assert after - before in (0, 1)  # at most one action in flight: at most one batch ran
            self.ran[owner] += after - before
            if after == before:  # no batch of this wallet ran: its approvals are untouched
                wallet = beacon_address(owner).lower()
                assert {k: v for k, v in self.bench.chain.allowances.items() if k[0] == wallet} == {
                    k: v for k, v in allowances.items() if k[0] == wallet}

    @rule(kind=st.sampled_from(("relayer_failed", "relayer_busy", "relayer_slow")), count=st.integers(0, 3))
    def fault(self, kind, count) -> None:
        self.bench.relayer.faults.inject(kind, count if kind != "relayer_slow" else count * 2)

    @invariant()
    def one_in_flight_per_wallet_and_nonces_are_batches_that_ran(self) -> None:
        relayer, chain = self.bench.relayer, self.bench.chain
        for owner, ran in self.ran.items():
            wallet = beacon_address(owner)
            assert chain.wallet_nonce(wallet) == ran
            mine = relayer.transactions_of(owner)
            assert sum(t.state not in (CONFIRMED, FAILED) for t in mine) <= 1
            executed = [t for t in mine if t.state in (EXECUTED, MINED, CONFIRMED)]
            assert len(executed) == ran and sorted(t.nonce for t in executed) == list(range(ran))
            assert all(t.tx_hash == "" or t.error.startswith("execution reverted") for t in mine
                       if t.state == FAILED)

    def teardown(self) -> None:
        """Once the relayer is quick again and blocks come, every batch that ran is confirmed and
        nothing is left in flight."""
        self.bench.relayer.faults.slow_s = 0
        self.block(3, 1)
        self.block(3, 1)
        for owner, ran in self.ran.items():
            states = [t.state for t in self.bench.relayer.transactions_of(owner)]
            assert states.count(CONFIRMED) == ran and set(states) <= {CONFIRMED, FAILED}


TestRelaying = Relaying.TestCase
TestRelaying.settings = settings(max_examples=60, stateful_step_count=30, deadline=None,
                                 suppress_health_check=[HealthCheck.too_slow])



# --------------------------------------------------------------------------- over loopback, a real SimServer


async def _key_headers(sim: Sim, rest: str, key: SigningKey) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=rest, headers=sim.server.admin_headers()) as admin:
        got = (await admin.post("/relayer/admin/relayer-key", json={"address": key.address})).json()
    return {"RELAYER_API_KEY": got["key"], "RELAYER_API_KEY_ADDRESS": got["address"]}


async def _until_final(http: httpx.AsyncClient, transaction_id: str) -> list[str]:
    """The states a transaction goes through, polled every half second until it ends."""
    seen: list[str] = []
    for _ in range(120):
        state = (await http.get(f"/v1/account/transactions/{transaction_id}")).json()["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in (CONFIRMED, FAILED):
            return seen
        await trio.sleep(0.5)
    raise AssertionError(f"still {seen[-1]} after a minute")


def _signed_batch(sim: Sim, calls: list[Call], key: SigningKey = KEY_A) -> dict[str, Any]:
    chain, wallet = sim.server.chain, beacon_address(key.address)
    nonce, deadline = chain.wallet_nonce(wallet), chain.block_timestamp + 240
    return batch_body(owner=key.address, wallet=wallet, nonce=nonce, deadline=deadline, calls=calls,
                      signature=sign_batch(key, wallet=wallet, nonce=nonce, deadline=deadline, calls=calls))


async def test_over_loopback_a_wallet_is_created_from_nothing_and_approves_through_batches(nursery, autojump_clock):
    sim = Sim()
    urls = await nursery.start(sim.server.run)
    assert urls.relayer == f"{urls.rest}/relayer"
    headers = await _key_headers(sim, urls.rest, KEY_A)
    async with httpx.AsyncClient(base_url=urls.relayer) as http, httpx.AsyncClient(base_url=urls.rest) as rest:
        created = await http.post("/submit", json=create_body(owner=KEY_A.address), headers=headers)
        assert created.status_code == 200 and created.json()["state"] == NEW
        assert await _until_final(http, created.json()["transactionID"]) == [NEW, EXECUTED, MINED, CONFIRMED]
        code = (await rest.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_getCode",
                                              "params": [WALLET_A, "latest"]})).json()["result"]
        assert code not in ("0x", "")
        assert (await http.get("/deployed", params={"address": WALLET_A, "type": "WALLET"})).json() == {"deployed": True}
        params = (await http.get("/v1/account/transactions/params",
                                 params={"address": KEY_A.address, "type": "WALLET"})).json()
        assert params == {"address": WALLET_A, "nonce": "0"}
        approved = await http.post("/submit", json=_signed_batch(sim, APPROVALS), headers=headers)
        assert await _until_final(http, approved.json()["transactionID"]) == [NEW, EXECUTED, MINED, CONFIRMED]
        assert (await http.get("/nonce", params={"address": KEY_A.address, "type": "WALLET"})).json() == {"nonce": "1"}
    for spender in contracts.PUSD_SPENDERS:
        assert sim.server.chain.allowance(WALLET_A, spender) == contracts.MAX_UINT256
    assert all(sim.server.chain.approved(WALLET_A, operator) for operator in contracts.CTF_OPERATORS)


async def test_over_loopback_each_relayer_fault_and_a_chain_revert(nursery, autojump_clock):
    sim = Sim()
    urls = await nursery.start(sim.server.run)
    sim.server.chain.deploy_wallet(KEY_A.address, 0)
    headers = await _key_headers(sim, urls.rest, KEY_A)
    chain = sim.server.chain
    async with httpx.AsyncClient(base_url=urls.relayer, headers=headers) as http, \
            httpx.AsyncClient(base_url=urls.rest, headers=sim.server.admin_headers()) as admin:

        async def fault(kind: str, value: str = "") -> None:
            answer = await admin.post("/admin/fault", json={"kind": kind, "value": value})
            assert answer.status_code == 200, answer.text

        for bad in ({"kind": "relayer_slow", "value": "-1"}, {"kind": "relayer_busy", "value": "lots"},
                    {"kind": "relayer_failed", "value": "1001"}):
            assert (await admin.post("/admin/fault", json=bad)).status_code == 400, bad
        await fault("relayer_busy", "1")
        busy = await http.post("/submit", json=_signed_batch(sim, APPROVALS[:1]))
        assert (busy.status_code, busy.json()) == (400, {"error": "wallet busy: active action"})

        await fault("relayer_failed")
        failed = (await http.post("/submit", json=_signed_batch(sim, APPROVALS[:1]))).json()["transactionID"]
        assert (await _until_final(http, failed))[-1] == FAILED and chain.wallet_nonce(WALLET_A) == 0

        await fault("chain_revert", "1")
        reverted = (await http.post("/submit", json=_signed_batch(sim, APPROVALS[:1]))).json()["transactionID"]
        assert (await _until_final(http, reverted))[-1] == FAILED
        status = (await http.get(f"/v1/account/transactions/{reverted}")).json()
        assert status["error_msg"].startswith("execution reverted: BatchCallFailed")
        assert chain.wallet_nonce(WALLET_A) == 0 and chain.allowance(WALLET_A, contracts.EXCHANGE_V2) == 0

        await fault("relayer_lost_reply")
        lost = await http.post("/submit", json=_signed_batch(sim, APPROVALS[:1]))
        assert lost.status_code == 502
        for _ in range(20):  # the client finds out from the chain: the wallet's nonce moves on
            await trio.sleep(1)
            if chain.wallet_nonce(WALLET_A) == 1:
                break
        assert chain.wallet_nonce(WALLET_A) == 1
        listed = (await http.get("/transactions")).json()
        assert [t["state"] for t in listed][1:] == [FAILED, FAILED]
        assert (await _until_final(http, listed[0]["transactionID"]))[-1] == CONFIRMED  # in flight till then

        await fault("relayer_slow", "10")
        slow = (await http.post("/submit", json=_signed_batch(sim, APPROVALS[1:2]))).json()["transactionID"]
        await trio.sleep(8)
        assert (await http.get(f"/v1/account/transactions/{slow}")).json()["state"] == NEW
        assert (await _until_final(http, slow))[-1] == CONFIRMED and chain.wallet_nonce(WALLET_A) == 2
        stats = (await admin.get("/admin/stats")).json()
    assert stats["faults"] == 5
