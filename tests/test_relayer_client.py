"""The relayer client and the deposit wallet's chain adapter against a fake relayer and a fake chain
(httpx.MockTransport; no network): credentials, every answer's meaning, and batches that confirm,
fail, wait behind a busy wallet, or lose their answer and are settled from the chain, never resent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import attrs
import httpx
import pytest
import trio
import trio.testing
from eth_account import Account
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mmbot.clock import TrioClock
from mmbot.config import Secret
from mmbot.model import ONE
from mmbot.venues.polymarket import contracts
from mmbot.venues.polymarket.auth import SigningKey
from mmbot.venues.polymarket.chain_types import ChainFailed, ChainReceipt, ChainUnreachable
from mmbot.venues.polymarket.deposit_wallet import FACTORY, beacon_address
from mmbot.venues.polymarket.relayer import (
    FINAL_STATES, STATE_CONFIRMED, STATE_EXECUTED, STATE_FAILED, STATE_INVALID, STATE_MINED, STATE_NEW, BuilderKey,
    RelayerApiKey, RelayerBusy, RelayerClient, RelayerTransaction, SubmitUnknown, relayer_auth_from_env,
)
from mmbot.venues.polymarket.relayer_adapter import EXPIRED, NOT_DEPLOYED, RelayerAdapter
from mmbot.venues.polymarket.wallet_batch import batch_digest

HARDHAT_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY = SigningKey(Secret(value=HARDHAT_KEY))
OWNER = KEY.address
WALLET = beacon_address(OWNER)
T0_S = 1_786_604_100
CODE = bytes.fromhex("363d3d373d3d")
RELAYER_KEY = "relayer-key-0123456789"
BUILDER_SECRET = base64.urlsafe_b64encode(b"builder secret, 32 bytes long!!!").decode()
BUILDER_PASS = "builder-passphrase-xyz"
API_AUTH = RelayerApiKey(key=Secret(value=RELAYER_KEY), address=OWNER)
BUILDER_AUTH = BuilderKey(key=Secret(value="builder-key-1"), secret=Secret(value=BUILDER_SECRET),
                          passphrase=Secret(value=BUILDER_PASS))
SECRETS = (RELAYER_KEY, BUILDER_SECRET, BUILDER_PASS, HARDHAT_KEY[2:])
CALLS = [contracts.merge_call("0x" + "22" * 32, 5 * ONE, neg_risk=False)]
UNKNOWN = {"lost_sent", "lost_unsent", "500_sent", "500_unsent", "garbage_sent"}  # the client cannot tell


def chain_time(t: float | None = None) -> int:  # float-ok: trio time
    return T0_S + int(trio.current_time() if t is None else t)


@attrs.define
class Tx:
    id: str
    kind: str
    execute: int
    nonce: int
    deadline: int
    schedule: list[tuple[float, str]]  # float-ok: trio time
    state: str = STATE_NEW
    ran: bool = False

    @property
    def tx_hash(self) -> str:
        return "0x" + hashlib.sha256(self.id.encode()).hexdigest() if self.ran else ""


DEFAULT_PATH = ("confirm", [1, 2, 3])


class World:
    """The chain and the relayer in one: a relayer transaction lands on the chain when its
    scheduled ``STATE_MINED`` comes due (if the wallet's nonce still matches and the block is not
    past its deadline; otherwise it ends FAILED). Due states are applied whenever either is asked."""

    def __init__(self, *, deployed: bool = True, owner: str = OWNER, nonce: int = 0) -> None:
        self.nonce = nonce
        self.codes = {WALLET: CODE} if deployed else {}
        self.owner = owner
        self.txs: list[Tx] = []
        self.execute = 0  # which execute the test is running (labels submissions)
        self.submit_plan: list[str] = []
        self.path_plan: list[tuple[str, list[int]]] = []
        self.poll_plan: list[str] = []
        self.blind = False  # every status poll answers 500
        self.chain_faults: list[bool] = []  # per chain read: True = the node is unreachable
        self.requests: list[httpx.Request] = []
        self.submits: list[tuple[int, str, str]] = []  # (execute, fault, "refused" | "accepted" | "unknown")
        self.chain_reads = 0

    # ------------------------------------------------------------------ time passes

    def advance(self) -> None:
        now = trio.current_time()
        while True:
            due = [(tx.schedule[0][0], i) for i, tx in enumerate(self.txs) if tx.schedule and tx.schedule[0][0] <= now]
            if not due:
                return
            _, i = min(due)
            tx = self.txs[i]
            t, state = tx.schedule.pop(0)
            if state == STATE_MINED:
                if tx.kind == "WALLET-CREATE":
                    self.codes[WALLET] = CODE
                elif self.nonce == tx.nonce and chain_time(t) <= tx.deadline:
                    self.nonce += 1
                else:  # the wallet's execute reverts: nothing moved
                    tx.state, tx.schedule = STATE_FAILED, []
                    continue
                tx.ran = True
            tx.state = state
            if state in FINAL_STATES:
                tx.schedule = []

    # ------------------------------------------------------------------ the chain (WalletChain)

    def _read(self) -> None:
        self.chain_reads += 1
        if self.chain_faults and self.chain_faults.pop(0):
            raise ChainUnreachable("the node did not answer")
        self.advance()

    async def now_s(self) -> int:
        self._read()
        return chain_time()

    async def wallet_nonce(self, wallet: str) -> int:
        self._read()
        assert wallet == WALLET
        return self.nonce

    async def code(self, address: str) -> bytes:
        self._read()
        return self.codes.get(address, b"")

    async def wallet_owner(self, wallet: str) -> str | None:
        self._read()
        return self.owner if wallet in self.codes else None

    # ------------------------------------------------------------------ the relayer

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.advance()
        self.requests.append(request)
        path = request.url.path
        if request.method == "POST" and path == "/submit":
            return self._submit(request)
        if path == "/deployed":
            return httpx.Response(200, json={"deployed": request.url.params["address"] in self.codes})
        if path == "/v1/account/transactions/params":
            return httpx.Response(200, json={"address": request.url.params["address"], "nonce": str(self.nonce)})
        if path.startswith("/v1/account/transactions/"):
            return self._poll(request, path.rsplit("/", 1)[1])
        return httpx.Response(404, json={"error": "not found"})

    def _submit(self, request: httpx.Request) -> httpx.Response:
        fault = self.submit_plan.pop(0) if self.submit_plan else "ok"
        seen = "unknown" if fault in UNKNOWN else "refused"
        try:
            if fault == "connect":
                raise httpx.ConnectError("connection refused", request=request)
            if fault == "lost_unsent":
                raise httpx.ReadTimeout("timed out", request=request)
            if fault == "500_unsent":
                return httpx.Response(503, text="upstream unavailable")
            if fault == "busy":
                return httpx.Response(400, json={"error": "wallet busy: wallet has an active action"})
            if fault == "429":
                return httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "too many requests"})
            if fault == "reject":
                return httpx.Response(400, json={"error": f"call blocked: call[0] blocked: calls to {WALLET} are not "
                                                          "permitted"})
            if fault == "bump":  # a batch nobody here sent lands first
                self.nonce += 1
            body = json.loads(request.content)
            refusal = self._check(body)
            if refusal:
                return httpx.Response(400, json={"error": refusal})
            tx = self._accept(body)
            seen = "accepted"
            if fault == "lost_sent":
                raise httpx.ReadTimeout("timed out", request=request)
            if fault == "500_sent":
                return httpx.Response(502, text="bad gateway")
            if fault == "garbage_sent":
                return httpx.Response(200, content=b"<html>gateway</html>")
            return httpx.Response(200, json={"transactionID": tx.id, "state": STATE_NEW})
        finally:
            self.submits.append((self.execute, fault, seen))

    def _check(self, body: dict[str, Any]) -> str:
        """The relayer's refusals: a bad body or signature, a stale nonce, a batch in flight."""
        if body["from"] != OWNER or body["to"] != FACTORY:
            return "invalid from/to"
        if body["type"] == "WALLET-CREATE":
            return ""
        params = body["depositWalletParams"]
        calls = [contracts.Call(c["target"], bytes.fromhex(c["data"][2:]), int(c["value"])) for c in params["calls"]]
        for call in calls:
            contracts.decode(call.data)
        nonce, deadline = int(body["nonce"]), int(params["deadline"])
        digest = batch_digest(wallet=params["depositWallet"], nonce=nonce, deadline=deadline, calls=calls)
        if params["depositWallet"] != WALLET or Account._recover_hash(digest, signature=body["signature"]) != OWNER:
            return "invalid signature"
        if nonce != self.nonce:
            return f"batch nonce {nonce} does not match on-chain nonce {self.nonce}"
        if any(tx.kind == "WALLET" and tx.state not in FINAL_STATES and not tx.ran and chain_time() <= tx.deadline
               for tx in self.txs):
            return "wallet has in-flight action"
        return ""

    def _accept(self, body: dict[str, Any]) -> Tx:
        kind, delays = self.path_plan.pop(0) if self.path_plan else DEFAULT_PATH
        states = {"confirm": [STATE_EXECUTED, STATE_MINED, STATE_CONFIRMED], "fail": [STATE_FAILED],
                  "invalid": [STATE_INVALID], "stuck": [], "mined_only": [STATE_MINED]}[kind]
        t, schedule = trio.current_time(), []
        for state, delay in zip(states, delays):
            t += delay
            schedule.append((t, state))
        wallet = body.get("depositWalletParams", {})
        tx = Tx(id=f"tx-{len(self.txs)}", kind=body["type"], execute=self.execute, nonce=int(body.get("nonce", -1)),
                deadline=int(wallet.get("deadline", 2**63)), schedule=schedule)
        self.txs.append(tx)
        return tx

    def _poll(self, request: httpx.Request, transaction_id: str) -> httpx.Response:
        fault = "500" if self.blind else self.poll_plan.pop(0) if self.poll_plan else ""
        if fault == "500":
            return httpx.Response(500, text="internal error")
        if fault == "lost":
            raise httpx.ReadTimeout("timed out", request=request)
        if fault == "garbage":
            return httpx.Response(200, content=b'{"state": ')
        tx = next((tx for tx in self.txs if tx.id == transaction_id), None)
        if fault == "404" or tx is None:
            return httpx.Response(404, json={"error": "transaction not found"})
        return httpx.Response(200, json={"transaction_id": tx.id, "state": tx.state,
                                         "transaction_hash": tx.tx_hash or None, "error_msg": ""})


class ListSink:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict[str, Any]]] = []

    def record(self, kind: str, cid: str, payload: dict[str, Any] | None = None, *, market: str = "",
               token: str = "") -> None:
        json.dumps(payload)  # every row must be storable
        self.rows.append((kind, cid, payload or {}))

    def kinds(self, cid: str | None = None) -> list[str]:
        return [kind for kind, c, _ in self.rows if cid is None or c == cid]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [payload for k, _, payload in self.rows if k == kind]


def rig(world: World, auth: RelayerApiKey | BuilderKey = API_AUTH,
        **options: Any) -> tuple[RelayerAdapter, RelayerClient, ListSink]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(world.handler), base_url="http://relayer")
    client = RelayerClient(http, auth, TrioClock(anchor_ns=T0_S * 1_000_000_000))
    sink = ListSink()
    return RelayerAdapter(relayer=client, chain=world, key=KEY, wallet=WALLET, sink=sink, **options), client, sink


def submitted_bodies(world: World) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in world.requests if r.url.path == "/submit"]


# --------------------------------------------------------------------------- credentials


async def test_a_relayer_api_key_sends_its_two_static_headers(autojump_clock) -> None:
    world = World()
    adapter, _, _ = rig(world)
    await adapter.execute(CALLS, cid="m1")
    for request in world.requests:
        assert request.headers["RELAYER_API_KEY"] == RELAYER_KEY and request.headers["RELAYER_API_KEY_ADDRESS"] == OWNER
        assert "POLY_BUILDER_SIGNATURE" not in request.headers


async def test_a_builder_key_signs_each_request_over_the_exact_bytes_sent(autojump_clock) -> None:
    world = World()
    adapter, client, _ = rig(world, BUILDER_AUTH)
    await trio.sleep(5)
    await adapter.execute(CALLS, cid="m1")
    assert await client.deployed(WALLET) is True
    assert {r.url.path for r in world.requests} >= {"/submit", "/deployed", "/v1/account/transactions/tx-0"}
    for request in world.requests:
        timestamp = request.headers["POLY_BUILDER_TIMESTAMP"]
        message = f"{timestamp}{request.method}{request.url.path}".encode() + request.content
        expected = base64.urlsafe_b64encode(hmac.new(base64.urlsafe_b64decode(BUILDER_SECRET), message,
                                                     hashlib.sha256).digest()).decode()
        assert request.headers["POLY_BUILDER_SIGNATURE"] == expected
        assert request.headers["POLY_BUILDER_API_KEY"] == "builder-key-1"
        assert request.headers["POLY_BUILDER_PASSPHRASE"] == BUILDER_PASS
        assert T0_S + 5 <= int(timestamp) < T0_S + 60


def test_credentials_come_from_the_environment_and_never_print() -> None:
    env = {"MMBOT_RELAYER_API_KEY": RELAYER_KEY, "MMBOT_RELAYER_API_KEY_ADDRESS": OWNER.lower()}
    assert relayer_auth_from_env(env) == RelayerApiKey(key=Secret(value=RELAYER_KEY), address=OWNER)
    builder = {"MMBOT_BUILDER_API_KEY": "builder-key-1", "MMBOT_BUILDER_SECRET": BUILDER_SECRET,
               "MMBOT_BUILDER_PASSPHRASE": BUILDER_PASS}
    assert relayer_auth_from_env(builder) == BUILDER_AUTH
    assert relayer_auth_from_env({**builder, **env}) == relayer_auth_from_env(env)  # the API key wins
    assert relayer_auth_from_env({}) is None and relayer_auth_from_env({"MMBOT_RELAYER_API_KEY": ""}) is None
    for auth in (API_AUTH, BUILDER_AUTH, relayer_auth_from_env(env), relayer_auth_from_env(builder)):
        assert not any(secret in repr(auth) + str(auth) for secret in SECRETS)
    with pytest.raises(ValueError, match="^MMBOT_RELAYER_API_KEY_ADDRESS not set") as caught:
        relayer_auth_from_env({"MMBOT_RELAYER_API_KEY": RELAYER_KEY})
    assert RELAYER_KEY not in str(caught.value)
    with pytest.raises(ValueError, match="^MMBOT_BUILDER_SECRET and MMBOT_BUILDER_PASSPHRASE not set"):
        relayer_auth_from_env({"MMBOT_BUILDER_API_KEY": "k"})
    with pytest.raises(ValueError, match="not base64") as caught:
        relayer_auth_from_env({**builder, "MMBOT_BUILDER_SECRET": "not*base64!"})
    assert "not*base64" not in str(caught.value)
    with pytest.raises(ValueError, match="ADDRESS is not a 0x-prefixed"):
        relayer_auth_from_env({**env, "MMBOT_RELAYER_API_KEY_ADDRESS": "0x12"})


# --------------------------------------------------------------------------- the client's answers


def client_with(answer: Any) -> RelayerClient:
    def handler(request: httpx.Request) -> httpx.Response:
        result = answer(request) if callable(answer) else answer
        if isinstance(result, Exception):
            raise result
        return result

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://relayer")
    return RelayerClient(http, API_AUTH, TrioClock(anchor_ns=T0_S * 1_000_000_000))


BODY = {"type": "WALLET-CREATE", "from": OWNER, "to": FACTORY, "metadata": ""}
REQUEST = httpx.Request("POST", "http://relayer/submit")


@pytest.mark.parametrize("answer, error, retryable", [
    (httpx.Response(429, headers={"Retry-After": "7"}), RelayerBusy, None),
    (httpx.Response(400, json={"error": "wallet busy: active action in progress"}), RelayerBusy, None),
    (httpx.Response(400, json={"error": "wallet has in-flight action"}), RelayerBusy, None),
    (httpx.Response(400, json={"error": "batch nonce 3 does not match on-chain nonce 4"}), RelayerBusy, None),
    (httpx.Response(400, json={"error": "call blocked: calls to 0xab are not permitted"}), ChainFailed, False),
    (httpx.Response(401, json={"error": "invalid api key"}), ChainFailed, False),
    (httpx.Response(500, text="oops"), SubmitUnknown, None),
    (httpx.Response(200, content=b"not json"), SubmitUnknown, None),
    (httpx.Response(200, json=["a list"]), SubmitUnknown, None),
    (httpx.Response(200, json={"state": STATE_NEW}), SubmitUnknown, None),
    (httpx.ReadTimeout("timed out", request=REQUEST), SubmitUnknown, None),
    (httpx.RemoteProtocolError("reset", request=REQUEST), SubmitUnknown, None),
    (httpx.ConnectError("refused", request=REQUEST), ChainUnreachable, None),
])
async def test_every_submit_answer_has_one_meaning(answer, error, retryable, autojump_clock) -> None:
    client = client_with(answer)
    with pytest.raises(error) as caught:
        await client.submit(BODY)
    if retryable is not None:
        assert caught.value.retryable is retryable
    assert "\n" not in str(caught.value)
    assert client.malformed == (1 if isinstance(answer, httpx.Response) and answer.status_code == 200 else 0)
    if isinstance(answer, httpx.Response) and answer.status_code == 429:
        assert caught.value.retry_after_s == 7
    if "call blocked" in str(caught.value):
        assert caught.value.reason == "the relayer refused the transaction: 400 call blocked: calls to 0xab are not permitted"


async def test_an_accepted_submit_and_the_status_reads(autojump_clock) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/submit":
            return httpx.Response(200, json={"transactionID": "abc-1", "state": STATE_NEW, "transactionHash": "0x01"})
        if path == "/v1/account/transactions/abc-1":
            return httpx.Response(200, json={"transaction_id": "abc-1", "state": STATE_MINED,
                                             "transaction_hash": "0xfeed", "error_msg": None})
        if path == "/v1/account/transactions/params":
            assert dict(request.url.params) == {"address": OWNER, "type": "WALLET"}
            return httpx.Response(200, json={"address": OWNER, "nonce": "12"})
        if path == "/deployed":
            assert dict(request.url.params) == {"address": WALLET, "type": "WALLET"}
            return httpx.Response(200, json={"deployed": False})
        return httpx.Response(404, json={"error": "not found"})

    client = client_with(answer)
    assert await client.submit(BODY) == RelayerTransaction("abc-1", STATE_NEW, tx_hash="0x01")
    assert await client.transaction("abc-1") == RelayerTransaction("abc-1", STATE_MINED, tx_hash="0xfeed")
    assert await client.transaction("nobody") is None
    assert await client.wallet_nonce(OWNER) == 12
    assert await client.deployed(WALLET) is False
    assert client.malformed == 0 and "relayer-key" not in repr(client)


@pytest.mark.parametrize("answer", [
    httpx.Response(200, content=b"{"), httpx.Response(200, json={"state": 5}), httpx.Response(200, json=[1]),
    httpx.Response(200, json={"nonce": "-1", "deployed": "yes"}), httpx.Response(200, json={"nonce": True}),
])
async def test_malformed_reads_are_counted_and_never_crash(answer, autojump_clock) -> None:
    client = client_with(answer)
    assert await client.transaction("t1") is None  # no answer yet
    with pytest.raises(ChainUnreachable, match="unreadable answer"):
        await client.deployed(WALLET)
    with pytest.raises(ChainUnreachable, match="unreadable answer"):
        await client.wallet_nonce(OWNER)
    assert client.malformed == 3


@pytest.mark.parametrize("answer", [httpx.Response(503, text="down"), httpx.Response(429),
                                    httpx.ReadTimeout("slow", request=REQUEST), httpx.ConnectError("no", request=REQUEST)])
async def test_a_read_that_gets_no_answer_is_unreachable(answer, autojump_clock) -> None:
    client = client_with(answer)
    for read in (client.transaction("t1"), client.deployed(WALLET), client.wallet_nonce(OWNER)):
        with pytest.raises(ChainUnreachable):
            await read


# --------------------------------------------------------------------------- batches


async def test_a_batch_is_verified_signed_submitted_and_followed_to_confirmed(autojump_clock) -> None:
    world = World(nonce=7)
    adapter, _, sink = rig(world)
    await trio.sleep(10)
    receipt = await adapter.execute(CALLS, cid="m1")
    assert receipt == ChainReceipt(tx_hash=world.txs[0].tx_hash, block=0, reference="tx-0") and receipt.tx_hash
    assert adapter.address == WALLET and adapter.atomic
    [body] = submitted_bodies(world)
    assert body["nonce"] == "7" and body["depositWalletParams"]["deadline"] == str(T0_S + 10 + 240)
    assert world.nonce == 8 and world.txs[0].ran
    assert sink.kinds() == ["chain_submitted"] + ["chain_state"] * 4 + ["chain_confirmed"]
    assert {cid for _, cid, _ in sink.rows} == {"m1"}
    assert sink.of("chain_submitted") == [{"via": "relayer", "calls": [CALLS[0].describe()], "nonce": 7,
                                           "deadline": T0_S + 250, "transaction_id": "tx-0"}]
    assert [row["state"] for row in sink.of("chain_state")] == [STATE_NEW, STATE_EXECUTED, STATE_MINED, STATE_CONFIRMED]
    assert sink.of("chain_confirmed") == [{"via": "relayer", "transaction_id": "tx-0", "tx_hash": receipt.tx_hash,
                                           "states": [STATE_NEW, STATE_EXECUTED, STATE_MINED, STATE_CONFIRMED]}]
    assert not any(secret in json.dumps(sink.rows) + repr(adapter) for secret in SECRETS)


async def test_mined_is_not_enough(autojump_clock) -> None:
    world = World()
    world.path_plan = [("confirm", [1, 1, 40])]
    adapter, _, _ = rig(world, poll_s=1.0)
    await adapter.execute(CALLS, cid="m1")
    assert trio.current_time() >= 42  # it waited the 40 s between MINED and CONFIRMED


@pytest.mark.parametrize("ending, retryable", [("fail", True), ("invalid", False)])
async def test_a_failed_or_invalid_batch_is_chain_failed_and_nothing_is_sent_again(ending, retryable,
                                                                                   autojump_clock) -> None:
    world = World()
    world.path_plan = [(ending, [4])]
    adapter, _, sink = rig(world)
    with pytest.raises(ChainFailed) as caught:
        await adapter.execute(CALLS, cid="m1")
    assert caught.value.retryable is retryable and caught.value.reason.startswith("the relayer's transaction ended")
    assert len(submitted_bodies(world)) == 1 and world.nonce == 0
    assert sink.kinds()[-1] == "chain_failed" and sink.of("chain_failed")[0]["retryable"] is retryable
    await trio.sleep(600)
    assert len(submitted_bodies(world)) == 1


async def test_a_busy_relayer_is_asked_again_with_the_nonce_read_afresh(autojump_clock) -> None:
    world = World(nonce=3)
    world.submit_plan = ["bump", "busy"]  # a stale nonce (someone's batch landed), then a busy wallet
    adapter, _, sink = rig(world, poll_s=2.0)
    receipt = await adapter.execute(CALLS, cid="m1")
    bodies = submitted_bodies(world)
    assert [b["nonce"] for b in bodies] == ["3", "4", "4"] and world.nonce == 5
    assert len({b["signature"] for b in bodies}) == 3 and len({b["depositWalletParams"]["deadline"] for b in bodies}) == 3
    assert receipt.reference == "tx-0" and len(world.txs) == 1
    busy = sink.of("chain_busy")
    assert [row["attempt"] for row in busy] == [1, 2] and "does not match on-chain nonce 4" in busy[0]["reason"]


async def test_429_waits_as_advised_and_a_busy_relayer_is_given_up_on_after_the_retries(autojump_clock) -> None:
    world = World()
    world.submit_plan = ["429"] * 3
    adapter, _, sink = rig(world, busy_retries=2, poll_s=0.5)
    with pytest.raises(ChainFailed, match="stayed busy after 3 tries") as caught:
        await adapter.execute(CALLS, cid="m1")
    assert caught.value.retryable and len(submitted_bodies(world)) == 3 and world.txs == []
    assert [row["wait_ms"] for row in sink.of("chain_busy")] == [3000, 3000, 3000]
    assert trio.current_time() == pytest.approx(6)


async def test_a_lost_answer_for_a_batch_that_ran_is_confirmed_by_the_nonce(autojump_clock) -> None:
    world = World()
    world.submit_plan = ["lost_sent"]
    world.path_plan = [("confirm", [30, 30, 30])]
    adapter, _, sink = rig(world)
    receipt = await adapter.execute(CALLS, cid="m1")
    assert receipt == ChainReceipt(tx_hash="", block=0, reference="")
    assert len(submitted_bodies(world)) == 1 and world.txs[0].ran and world.nonce == 1
    assert sink.kinds() == ["chain_unknown", "chain_confirmed"]
    assert sink.of("chain_confirmed") == [{"via": "relayer", "by": "nonce", "nonce": 0, "wallet_nonce": 1}]
    assert "ReadTimeout" in sink.of("chain_unknown")[0]["why"]


async def test_a_lost_answer_for_a_batch_that_never_ran_fails_once_the_deadline_passes(autojump_clock) -> None:
    world = World()
    world.submit_plan = ["lost_unsent"]
    adapter, _, sink = rig(world)
    with pytest.raises(ChainFailed) as caught:
        await adapter.execute(CALLS, cid="m1")
    assert caught.value.reason == EXPIRED and caught.value.retryable
    assert len(submitted_bodies(world)) == 1 and world.txs == [] and world.nonce == 0
    failed = sink.of("chain_failed")[0]
    assert failed["chain_time"] > failed["deadline"] == T0_S + 240 and trio.current_time() < 250


async def test_a_relayer_silent_past_the_timeout_hands_the_question_to_the_chain(autojump_clock) -> None:
    world = World()
    world.blind = True
    world.path_plan = [("confirm", [5, 5, 5])]
    adapter, _, sink = rig(world)
    receipt = await adapter.execute(CALLS, cid="m1")
    assert receipt.reference == "" and world.txs[0].ran and len(submitted_bodies(world)) == 1
    assert sink.kinds() == ["chain_submitted", "chain_state", "chain_unknown", "chain_confirmed"]
    assert trio.current_time() == pytest.approx(300, abs=3)


async def test_malformed_answers_are_counted_and_the_batch_still_settles(autojump_clock) -> None:
    world = World()
    world.poll_plan = ["garbage", "404", "lost", "garbage"]
    adapter, client, _ = rig(world, poll_s=0.5)
    assert (await adapter.execute(CALLS, cid="m1")).reference == "tx-0"
    assert client.malformed == 2
    world.submit_plan = ["garbage_sent"]
    assert (await adapter.execute(CALLS, cid="m2")).reference == ""  # settled by the nonce
    assert client.malformed == 3 and world.nonce == 2 and len(submitted_bodies(world)) == 2


async def test_a_retired_adapter_is_refused_before_anything_is_asked(autojump_clock) -> None:
    world = World()
    adapter, _, sink = rig(world)
    retired = contracts.Call(contracts.RETIRED_ADAPTERS[0], CALLS[0].data)
    with pytest.raises(ChainFailed, match="retired collateral adapter") as caught:
        await adapter.execute([CALLS[0], retired], cid="m1")
    assert not caught.value.retryable and world.requests == [] and world.chain_reads == 0
    assert sink.kinds() == ["chain_failed"]


@pytest.mark.parametrize("world, reason", [(World(deployed=False), NOT_DEPLOYED),
                                           (World(owner="0x" + "ab" * 20), "is owned by 0xabab")])
async def test_a_wallet_that_is_not_ours_on_chain_is_refused_before_signing(world, reason, autojump_clock) -> None:
    adapter, _, sink = rig(world)
    with pytest.raises(ChainFailed, match=reason) as caught:
        await adapter.execute(CALLS, cid="m1")
    assert not caught.value.retryable and world.requests == [] and sink.kinds() == ["chain_failed"]


async def test_an_unreachable_chain_before_sending_is_unreachable(autojump_clock) -> None:
    world = World()
    world.chain_faults = [False, False, True]
    adapter, _, sink = rig(world)
    with pytest.raises(ChainUnreachable):
        await adapter.execute(CALLS, cid="m1")
    assert world.requests == [] and sink.rows == []


# --------------------------------------------------------------------------- deployment


async def test_deploy_creates_the_wallet_once_and_is_idempotent(autojump_clock) -> None:
    world = World(deployed=False)
    adapter, _, sink = rig(world)
    receipt = await adapter.deploy(cid="d1")
    assert receipt.reference == "tx-0" and world.codes[WALLET] == CODE
    assert submitted_bodies(world) == [{"type": "WALLET-CREATE", "from": OWNER, "to": FACTORY, "metadata": ""}]
    assert sink.kinds("d1") == ["chain_submitted"] + ["chain_state"] * 4 + ["chain_confirmed"]
    assert all(row["action"] == "deploy" for _, _, row in sink.rows)
    again = await adapter.deploy(cid="d2")
    assert again == ChainReceipt(tx_hash="", block=0, reference="") and len(submitted_bodies(world)) == 1
    assert sink.of("chain_confirmed")[-1] == {"via": "relayer", "action": "deploy", "already": True}
    assert (await adapter.execute(CALLS, cid="m1")).reference == "tx-1"


async def test_a_deploy_whose_answer_is_lost_is_confirmed_by_the_code(autojump_clock) -> None:
    world = World(deployed=False)
    world.submit_plan = ["500_sent"]
    adapter, _, sink = rig(world)
    await adapter.deploy(cid="d1")
    assert sink.kinds() == ["chain_unknown", "chain_confirmed"] and len(submitted_bodies(world)) == 1
    world = World(deployed=False)
    world.submit_plan = ["500_unsent"]
    adapter, _, sink = rig(world)
    with pytest.raises(ChainFailed, match="no code at") as caught:
        await adapter.deploy(cid="d1")
    assert caught.value.retryable and len(submitted_bodies(world)) == 1


# --------------------------------------------------------------------------- any script


PATHS = st.tuples(st.sampled_from(["confirm", "confirm", "fail", "invalid", "stuck", "mined_only"]),
                  st.lists(st.sampled_from([0, 1, 3, 30, 100, 250]), min_size=3, max_size=3))
SCRIPT = st.tuples(
    st.lists(st.sampled_from(["ok", "ok", "busy", "429", "bump", "reject", "connect", *sorted(UNKNOWN)]), max_size=4),
    st.lists(PATHS, max_size=2),
    st.lists(st.sampled_from(["", "", "404", "garbage", "500", "lost"]), max_size=12),
    st.booleans(),  # the relayer's status reads all fail
    st.lists(st.sampled_from([False] * 6 + [True]), max_size=8),  # chain reads that fail
    st.sampled_from([0, 5, 400]),  # pause before this execute
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts=st.lists(SCRIPT, min_size=1, max_size=3))
def test_any_script_of_states_and_faults_runs_each_batch_at_most_once(scripts) -> None:
    """Whatever the relayer and the chain do: every submission but an execute's last was refused
    outright (nothing resent after an unknown outcome), an execute ends in a receipt exactly when
    its batch ran and in ChainFailed exactly when it did not (and never will), ChainUnreachable
    only if nothing was taken, and each execute's batch ran at most once."""
    world = World()
    outcomes: list[object] = []

    async def scenario() -> ListSink:
        adapter, _, sink = rig(world, busy_retries=3)
        for i, (submits, paths, polls, blind, chain_faults, pause) in enumerate(scripts):
            await trio.sleep(pause)
            world.execute, world.submit_plan, world.path_plan = i, list(submits), list(paths)
            world.poll_plan, world.blind, world.chain_faults = list(polls), blind, list(chain_faults)
            try:
                outcome: object = await adapter.execute(CALLS, cid=f"x{i}")
            except (ChainFailed, ChainUnreachable) as exc:
                outcome = exc
            outcomes.append(outcome)
            event(f"ended {type(outcome).__name__}" + (f" ({outcome.reason[:24]})" if isinstance(outcome, ChainFailed)
                                                       else ""))
            mine = [tx for tx in world.txs if tx.execute == i]
            assert len(mine) <= 1, mine
            ran = [tx for tx in mine if tx.ran]
            if isinstance(outcome, ChainReceipt):
                assert len(ran) == 1
            elif isinstance(outcome, ChainFailed):
                assert ran == []
            else:
                assert mine == []
            tries = [seen for e, _, seen in world.submits if e == i]
            assert all(seen == "refused" for seen in tries[:-1]), tries
            endings = [k for k in sink.kinds(f"x{i}") if k in ("chain_confirmed", "chain_failed")]
            assert endings == ([] if isinstance(outcome, ChainUnreachable) else
                               ["chain_confirmed" if isinstance(outcome, ChainReceipt) else "chain_failed"])
        world.chain_faults = []
        await trio.sleep(3_000)
        world.advance()
        return sink

    trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    for i, outcome in enumerate(outcomes):
        ran = [tx for tx in world.txs if tx.execute == i and tx.ran]
        assert len(ran) == (1 if isinstance(outcome, ChainReceipt) else 0), (i, outcome, world.txs)
