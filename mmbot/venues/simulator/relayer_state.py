"""The simulator's relayer, sans-IO: the transactions a deposit wallet's owner submits
(``WALLET-CREATE``, ``WALLET`` batches), checked as Polymarket's relayer checks them, run on the
simulated chain (``RelayerChain``, the chain helper's ``SimChain``) and moved through the
relayer's states as the chain makes blocks (polymarket-onchain.md §4).

A submit is checked at once and answered ``{"transactionID", "state": "STATE_NEW"}`` or refused
with a 400 (a 401 without a relayer API key): the body's shape; calls to the retired collateral
adapters (``call blocked: call[i] blocked: calls to 0x… are not permitted``); the wallet deployed
and ``from`` its owner; one action in flight per wallet (``wallet has in-flight action``); the
batch's nonce equal to the wallet's on-chain ``nonce()`` (``batch nonce N does not match on-chain
nonce M``); the owner's EIP-712 ``Batch`` signature (``wallet_batch.batch_digest``).

``advance`` moves every transaction on with the chain's blocks: at the first block after it was
submitted it runs (``STATE_EXECUTED``: the factory deploys the wallet, or runs the batch all or
nothing — a revert, or a deadline already behind the block's time, ends it ``STATE_FAILED`` with
``error_msg`` and changes nothing); a block later it is ``STATE_MINED``; ``confirm_blocks``
blocks after that, ``STATE_CONFIRMED``. A wallet's action is in flight until its transaction is
confirmed or failed.

Faults (``RelayerFaults``, from ``POST /admin/fault``): ``relayer_failed`` — the next N
transactions end ``STATE_FAILED`` without running; ``relayer_lost_reply`` — the next N submits
are carried out but answered 502 (the client must find out from the chain); ``relayer_busy`` —
the next N submits are refused 400 ``wallet busy: active action`` (nothing is applied);
``relayer_slow`` — transactions submitted while it is set run S seconds late (0 clears it).

Access: a relayer API key (headers ``RELAYER_API_KEY`` and ``RELAYER_API_KEY_ADDRESS``) for each
owner, derived under a secret of the server run (``RelayerKeys``) and handed out by the admin
route; it submits only transactions ``from`` its own address. Terminal transactions are forgotten
``retain_s`` after they ended (``forget``).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import random
import re
import secrets
import uuid
from typing import Any, Mapping, Protocol, Sequence

import attrs
from eth_hash.auto import keccak

from mmbot.venues.polymarket.auth import CHAIN_ID, SigningError, parse_address
from mmbot.venues.polymarket.contracts import RETIRED_ADAPTERS, Call
from mmbot.venues.polymarket.deposit_wallet import FACTORY, beacon_address
from mmbot.venues.polymarket.wallet_batch import batch_digest
from mmbot.venues.simulator.access import recover_address
from mmbot.venues.simulator.refusals import VenueRefusal

NEW, EXECUTED, MINED = "STATE_NEW", "STATE_EXECUTED", "STATE_MINED"
CONFIRMED, FAILED, INVALID = "STATE_CONFIRMED", "STATE_FAILED", "STATE_INVALID"
TERMINAL = (CONFIRMED, FAILED, INVALID)
CREATE, WALLET = "WALLET-CREATE", "WALLET"
MAX_CALLS = 64  # calls in one batch: the relayer publishes no limit; a bound keeps a body cheap
UNAUTHORIZED = "invalid relayer API key"
BUSY = "wallet busy: active action"
IN_FLIGHT = "wallet has in-flight action"
DEADLINE_EXPIRED = "deadline expired"
INJECTED_FAILURE = "transaction failed (relayer_failed fault)"
SECOND = 1_000_000_000
RELAYER_FAULTS = ("relayer_failed", "relayer_lost_reply", "relayer_busy", "relayer_slow")
_WHOLE = re.compile(r"[0-9]{1,78}")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_RETIRED = {a.lower() for a in RETIRED_ADAPTERS}


class RelayerChain(Protocol):
    """What the relayer needs of the chain (``chain_state.SimChain``)."""

    @property
    def block_number(self) -> int: ...

    @property
    def block_timestamp(self) -> int: ...

    def code(self, address: str) -> bytes: ...

    def deploy_wallet(self, owner: str, now_ns: int) -> str: ...

    def wallet_owner(self, wallet: str) -> str | None: ...

    def wallet_nonce(self, wallet: str) -> int: ...

    def run_wallet_batch(self, wallet: str, nonce: int, deadline_s: int, calls: Sequence[Call],
                         now_ns: int) -> str | None: ...


class RelayerKeys:
    """One relayer API key per owner address, derived under this server run's secret (the same
    for every ask within the run; no client can compute another owner's)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        """``rng``: a seeded generator, only for tests that want the same keys every run."""
        self._secret = rng.randbytes(32) if rng is not None else secrets.token_bytes(32)

    def key_for(self, owner: str) -> tuple[str, str]:
        """(key, address) for ``owner``: what ``RELAYER_API_KEY`` and ``RELAYER_API_KEY_ADDRESS`` carry."""
        address = parse_address(owner)
        digest = hmac.new(self._secret, f"relayer:{address.lower()}".encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4)), address

    def owner_of(self, headers: Mapping[str, str]) -> str:
        """The address whose key the (lower-cased) headers carry; 401 unless the pair matches."""
        key, address = headers.get("relayer_api_key", ""), headers.get("relayer_api_key_address", "")
        try:
            expected, owner = self.key_for(address)
        except SigningError:
            raise VenueRefusal(401, UNAUTHORIZED) from None
        if not hmac.compare_digest(key.encode("utf-8", "surrogatepass"), expected.encode()):
            raise VenueRefusal(401, UNAUTHORIZED)
        return owner


@attrs.define
class RelayerFaults:
    """Faults waiting for the relayer (counts, and the delay of ``relayer_slow`` in seconds)."""

    failed: int = 0
    lost_reply: int = 0
    busy: int = 0
    slow_s: int = 0

    def take(self, name: str) -> bool:
        """Use up one of ``failed``, ``lost_reply`` or ``busy``, if any is waiting."""
        left = getattr(self, name)
        if left:
            setattr(self, name, left - 1)
        return bool(left)

    def inject(self, kind: str, count: int) -> dict[str, int]:
        """Apply one ``relayer_*`` fault (a count, at least one; for ``relayer_slow`` seconds)."""
        if kind == "relayer_slow":
            self.slow_s = count
            return {"relayer_slow_s": count}
        name = {"relayer_failed": "failed", "relayer_lost_reply": "lost_reply", "relayer_busy": "busy"}[kind]
        setattr(self, name, getattr(self, name) + max(count, 1))
        return {kind: getattr(self, name)}


@attrs.define(eq=False)
class Transaction:
    """One relayer transaction, as the relayer keeps it."""

    transaction_id: str
    kind: str  # WALLET-CREATE or WALLET
    owner: str  # ``from``, checksummed
    wallet: str  # the deposit wallet it deploys or runs, checksummed
    metadata: str
    submitted_ns: int
    submitted_block: int
    run_after_ns: int  # not run before this (``relayer_slow``)
    nonce: int = 0
    deadline: int = 0
    calls: tuple[Call, ...] = ()
    signature: str = ""
    state: str = NEW
    tx_hash: str = ""
    error: str = ""
    executed_block: int = 0
    updated_ns: int = 0

    def snake(self) -> dict[str, Any]:
        """``GET /v1/account/transactions/{id}``."""
        return {"transaction_id": self.transaction_id, "state": self.state, "transaction_hash": self.tx_hash,
                "error_msg": self.error}

    def camel(self) -> dict[str, Any]:
        """One item of ``GET /transaction?id=`` (and ``GET /transactions``)."""
        return {"transactionID": self.transaction_id, "transactionHash": self.tx_hash, "from": self.owner,
                "to": FACTORY, "proxyAddress": self.wallet, "nonce": str(self.nonce), "state": self.state,
                "type": self.kind, "metadata": self.metadata, "errorMsg": self.error,
                "createdAt": _iso(self.submitted_ns), "updatedAt": _iso(self.updated_ns or self.submitted_ns)}


class SimRelayer:
    def __init__(self, chain: RelayerChain, *, confirm_blocks: int = 2, rng: random.Random, keys: RelayerKeys,
                 chain_id: int = CHAIN_ID) -> None:
        """``rng``: a seeded generator for transaction ids; ``keys``: the relayer API keys it accepts."""
        self.chain = chain
        self.confirm_blocks = confirm_blocks
        self.keys = keys
        self.faults = RelayerFaults()
        self.counts = {"submitted": 0, "refused": 0, "confirmed": 0, "failed": 0, "forgotten": 0}
        self._rng = rng
        self._chain_id = chain_id
        self._transactions: dict[str, Transaction] = {}  # by id, in submission order
        self._active: dict[str, str] = {}  # wallet (lower case) -> id of its transaction in flight

    def relayer_key_for(self, owner: str) -> tuple[str, str]:
        """(key, address) of ``owner``'s relayer API key."""
        return self.keys.key_for(owner)

    # ------------------------------------------------------------------ submit

    def submit(self, authenticated: str, body: Any, now_ns: int) -> dict[str, str]:
        """``POST /submit`` from the holder of ``authenticated``'s key: the new transaction's id and
        ``STATE_NEW``, or a ``VenueRefusal`` (nothing applied)."""
        try:
            answer = self._submit(authenticated, body, now_ns)
        except VenueRefusal:
            self.counts["refused"] += 1
            raise
        self.counts["submitted"] += 1
        return answer

    def _submit(self, authenticated: str, body: Any, now_ns: int) -> dict[str, str]:
        if not isinstance(body, dict):
            raise VenueRefusal(400, "invalid body: expected a JSON object")
        kind = body.get("type")
        if kind not in (CREATE, WALLET):
            raise VenueRefusal(400, f"unsupported transaction type: {str(kind)[:40]!r} (expected WALLET-CREATE or WALLET)")
        owner = _address(body.get("from"), "from")
        if owner.lower() != authenticated.lower():
            raise VenueRefusal(401, f"the relayer API key is not {owner}'s")
        if _address(body.get("to"), "to").lower() != FACTORY.lower():
            raise VenueRefusal(400, f"to: expected the deposit wallet factory {FACTORY}")
        metadata = body.get("metadata", "")
        if not isinstance(metadata, str) or len(metadata) > 500:
            raise VenueRefusal(400, "metadata: expected text of at most 500 characters")
        if self.faults.take("busy"):
            raise VenueRefusal(400, BUSY)
        tx = Transaction(transaction_id=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)), kind=kind,
                         owner=owner, wallet=beacon_address(owner), metadata=metadata, submitted_ns=now_ns,
                         submitted_block=self.chain.block_number, run_after_ns=now_ns + self.faults.slow_s * SECOND)
        if kind == WALLET:
            self._check_batch(tx, body.get("depositWalletParams"), body.get("nonce"), body.get("signature"))
        if tx.wallet.lower() in self._active:
            raise VenueRefusal(400, IN_FLIGHT)
        if kind == WALLET:
            on_chain = self.chain.wallet_nonce(tx.wallet)
            if tx.nonce != on_chain:
                raise VenueRefusal(400, f"batch nonce {tx.nonce} does not match on-chain nonce {on_chain}")
            digest = batch_digest(wallet=tx.wallet, nonce=tx.nonce, deadline=tx.deadline, calls=tx.calls,
                                  chain_id=self._chain_id)
            if recover_address(digest, tx.signature) != owner.lower():
                raise VenueRefusal(400, "invalid signature: the batch is not signed by the wallet's owner")
        self._transactions[tx.transaction_id] = tx
        self._active[tx.wallet.lower()] = tx.transaction_id
        return {"transactionID": tx.transaction_id, "state": NEW}

    def _check_batch(self, tx: Transaction, params: Any, nonce: Any, signature: Any) -> None:
        """Fill ``tx`` from a ``WALLET`` body's batch, refusing what the relayer refuses."""
        if not isinstance(params, dict):
            raise VenueRefusal(400, "depositWalletParams: expected an object")
        tx.nonce = _whole(nonce, "nonce")
        tx.deadline = _whole(params.get("deadline"), "depositWalletParams.deadline")
        if not isinstance(signature, str):
            raise VenueRefusal(400, "signature: expected 0x-hex")
        tx.signature = signature
        wallet = _address(params.get("depositWallet"), "depositWalletParams.depositWallet")
        calls = params.get("calls")
        if not isinstance(calls, list) or not 0 < len(calls) <= MAX_CALLS:
            raise VenueRefusal(400, f"depositWalletParams.calls: expected 1 to {MAX_CALLS} calls")
        tx.calls = tuple(_call(i, c) for i, c in enumerate(calls))
        for i, call in enumerate(tx.calls):
            if call.target.lower() in _RETIRED:
                raise VenueRefusal(400, f"call blocked: call[{i}] blocked: calls to {call.target} are not permitted")
        owner = self.chain.wallet_owner(wallet)
        if owner is None:
            raise VenueRefusal(400, f"deposit wallet {wallet} is not deployed")
        if owner.lower() != tx.owner.lower():
            raise VenueRefusal(400, f"from {tx.owner} is not the owner of deposit wallet {wallet}")
        tx.wallet = wallet

    # ------------------------------------------------------------------ the chain's blocks

    def advance(self, now_ns: int, *, retain_s: int | None = None) -> None:
        """Move every transaction on to where the chain's blocks have brought it (call after the
        chain's own ``advance``); with ``retain_s``, forget what ended that long ago."""
        block = self.chain.block_number
        for tx in list(self._transactions.values()):
            if tx.state == NEW and block > tx.submitted_block and now_ns >= tx.run_after_ns:
                self._run(tx, block, now_ns)
            elif tx.state in (EXECUTED, MINED):
                if block >= tx.executed_block + 1 + self.confirm_blocks:
                    self._end(tx, CONFIRMED, now_ns)
                elif block > tx.executed_block and tx.state == EXECUTED:
                    tx.state, tx.updated_ns = MINED, now_ns
        if retain_s is not None:
            self.forget(now_ns - retain_s * SECOND)

    def _run(self, tx: Transaction, block: int, now_ns: int) -> None:
        if self.faults.take("failed"):
            self._end(tx, FAILED, now_ns, INJECTED_FAILURE)
            return
        if tx.kind == WALLET and self.chain.block_timestamp > tx.deadline:
            self._end(tx, FAILED, now_ns, DEADLINE_EXPIRED)
            return
        tx.tx_hash = "0x" + keccak(f"mmbot-sim/relayer/{tx.transaction_id}".encode()).hex()
        if tx.kind == CREATE:
            self.chain.deploy_wallet(tx.owner, now_ns)
        else:
            reason = self.chain.run_wallet_batch(tx.wallet, tx.nonce, tx.deadline, tx.calls, now_ns)
            if reason is not None:
                self._end(tx, FAILED, now_ns, f"execution reverted: {reason}"[:300])
                return
        tx.state, tx.executed_block, tx.updated_ns = EXECUTED, block, now_ns

    def _end(self, tx: Transaction, state: str, now_ns: int, error: str = "") -> None:
        tx.state, tx.error, tx.updated_ns = state, error, now_ns
        self._active.pop(tx.wallet.lower(), None)
        self.counts["confirmed" if state == CONFIRMED else "failed"] += 1

    def forget(self, before_ns: int) -> int:
        """Drop transactions that ended before ``before_ns`` (server clock); how many went."""
        gone = [i for i, tx in self._transactions.items() if tx.state in TERMINAL and tx.updated_ns < before_ns]
        for transaction_id in gone:
            del self._transactions[transaction_id]
        self.counts["forgotten"] += len(gone)
        return len(gone)

    # ------------------------------------------------------------------ reads

    def transaction(self, transaction_id: str) -> Transaction | None:
        return self._transactions.get(transaction_id)

    def transactions_of(self, owner: str) -> list[Transaction]:
        """``GET /transactions``: the owner's remembered transactions, newest first."""
        return [tx for tx in reversed(self._transactions.values()) if tx.owner.lower() == owner.lower()]

    def in_flight(self, wallet: str) -> Transaction | None:
        found = self._active.get(wallet.lower())
        return None if found is None else self._transactions[found]

    def wallet_params(self, owner: str) -> dict[str, str]:
        """``GET /v1/account/transactions/params?type=WALLET``: the owner's deposit wallet and its nonce."""
        wallet = beacon_address(_address(owner, "address"))
        nonce = self.chain.wallet_nonce(wallet) if self.chain.wallet_owner(wallet) is not None else 0
        return {"address": wallet, "nonce": str(nonce)}

    def deployed(self, address: str) -> bool:
        """``GET /deployed``: a deposit wallet runs at ``address``."""
        return self.chain.wallet_owner(_address(address, "address")) is not None

    def sizes(self) -> dict[str, int]:
        return {"relayer_transactions": len(self._transactions), "relayer_in_flight": len(self._active)}


def _address(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise VenueRefusal(400, f"{name}: expected a 0x address")
    try:
        return parse_address(value)
    except SigningError:
        raise VenueRefusal(400, f"{name}: expected a 0x address") from None


def _whole(value: Any, name: str) -> int:
    """A uint256 given as a decimal string (or a JSON whole number)."""
    text = str(value) if type(value) is int else value
    if not isinstance(text, str) or not _WHOLE.fullmatch(text) or int(text) >= 2**256:
        raise VenueRefusal(400, f"{name}: expected a whole number as a decimal string")
    return int(text)


def _call(i: int, value: Any) -> Call:
    if not isinstance(value, dict):
        raise VenueRefusal(400, f"call[{i}]: expected {{target, value, data}}")
    data = value.get("data")
    if not isinstance(data, str) or not _HEX.fullmatch(data):
        raise VenueRefusal(400, f"call[{i}].data: expected 0x-hex")
    return Call(_address(value.get("target"), f"call[{i}].target"), bytes.fromhex(data[2:]),
                _whole(value.get("value", "0"), f"call[{i}].value"))


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, SECOND)
    stamp = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{rest // 1_000_000:03d}Z"
