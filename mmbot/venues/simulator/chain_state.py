"""The simulated Polygon chain, sans-IO: pUSD, conditional tokens, collateral adapters, deposit
wallets and POL for gas, blocks made on the server's clock, and the transactions of EOAs.

Time is handed in (``now_ns``, the server's clock): ``advance`` makes a block every
``block_ms`` and mines the pending transactions that can go in (``chain_tx``), in the order
they came, each sender's in nonce order. A transaction's calls run as ``chain_calls`` says; one
that fails is mined with status 0 and still pays its gas. A relayer's ``WALLET`` batch runs at once
(``run_wallet_batch``): the wallet's nonce must match, the deadline must not have passed, and it
is all-or-nothing.

**Balances.** An owner's addresses (its EOA and wallets) share its trading account's one balance;
other addresses hold their own (``chain_holdings``). Allowances, operator approvals, nonces and
POL belong to each address.

Resolutions come from the engine; a resolved market's outcome is kept after the venue forgets
the market (``keep_resolutions``), until nobody holds its tokens.

Faults (``inject``): ``chain_revert`` (the next N transactions or batches revert),
``chain_stuck`` (the next transaction stays pending S seconds unless replaced),
``chain_nonce_clash`` (a foreign transaction takes the sender's next nonce: "nonce too low").
"""

from __future__ import annotations

import random
from collections import OrderedDict
from typing import Any, Sequence

import attrs
from eth_hash.auto import keccak

from mmbot.venues.polymarket import contracts as c
from mmbot.venues.polymarket.auth import EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, parse_address
from mmbot.venues.polymarket.deposit_wallet import BEACON, FACTORY, LEGACY_IMPLEMENTATION, beacon_address
from mmbot.venues.simulator.chain_calls import Changes, MarketRef, Revert, Run, gas_of
from mmbot.venues.simulator.chain_holdings import Holdings
from mmbot.venues.simulator.chain_tx import RpcError, SentTx, TxPool, decode_raw
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.trading import SimTrading

SECOND = 1_000_000_000
GWEI = 10**9
POL = 10**18
POL_START = 10 * POL  # every EOA starts with this, to pay gas
BASE_FEE = 30 * GWEI
PRIORITY_FEE = 30 * GWEI
FIRST_BLOCK = 60_000_000
KEEP_TXS = 20_000  # mined transactions and receipts remembered
_CODE = bytes.fromhex("6080604052")  # any non-empty runtime code
_CONTRACTS = frozenset(a.lower() for a in (
    c.PUSD, c.CTF, c.CTF_ADAPTER, c.NEG_RISK_CTF_ADAPTER, *c.RETIRED_ADAPTERS, c.NEG_RISK_ADAPTER, c.AUTO_REDEEMER,
    FACTORY, BEACON, LEGACY_IMPLEMENTATION, EXCHANGE_V2, NEG_RISK_EXCHANGE_V2))
CHAIN_FAULTS = ("chain_revert", "chain_stuck", "chain_nonce_clash")


@attrs.define
class ChainFaults:
    revert: int = 0  # transactions or batches still to revert
    stuck_s: int = 0  # the next transaction stays pending this long
    clash: int = 0  # sends still to meet a foreign transaction on their nonce


@attrs.define
class _Wallet:
    owner: str
    nonce: int = 0


class SimChain:
    """The chain the simulator plays (module docstring). ``rng`` (seeded) moves the base fee."""

    def __init__(self, *, trading: SimTrading, engine: Engine, chain_id: int = 137, block_ms: int = 2_000,
                 rng: random.Random, pol_start: int = POL_START) -> None:
        """``block_ms``: a block every this many ms of the server's clock (Polygon's ~2 s; less
        keeps the chain's pace with a world run faster than real time)."""
        self.trading = trading
        self.pol_start = pol_start
        self.engine = engine
        self.chain_id = chain_id
        if block_ms < 1:
            raise ValueError(f"block_ms must be at least 1, got {block_ms}")
        self.block_ms = block_ms
        self._block_ns = block_ms * 1_000_000
        self._rng = rng
        self.block_number = FIRST_BLOCK
        self.block_timestamp = 0
        self.base_fee = BASE_FEE
        self._next_block_ns: int | None = None
        self.holdings = Holdings(trading, engine)
        self._pol: dict[str, int] = {}
        self._nonces: dict[str, int] = {}
        self._wallets: dict[str, _Wallet] = {}
        self._resolved: dict[str, MarketRef] = {}
        self.pool = TxPool()
        self._txs: OrderedDict[str, SentTx] = OrderedDict()
        self._receipts: dict[str, dict[str, Any]] = {}
        self.faults = ChainFaults()
        self.counts = {"blocks": 0, "txs_sent": 0, "txs_mined": 0, "txs_reverted": 0, "txs_replaced": 0,
                       "batches": 0, "batches_failed": 0, "foreign_txs": 0, "rpc_malformed": 0}
        trading.account_listeners.append(self.holdings.account_made)

    # ------------------------------------------------------------------ holders (``chain_holdings``)

    def holder(self, address: str) -> str:
        return self.holdings.holder(address)

    def held_pusd(self, holder: str, *, free: bool) -> int:
        return self.holdings.held_pusd(holder, free=free)

    def held_shares(self, holder: str, token: str, *, free: bool) -> int:
        return self.holdings.held_shares(holder, token, free=free)

    def allowance(self, owner: str, spender: str) -> int:
        return self.holdings.allowance(owner, spender)

    def approved(self, owner: str, operator: str) -> bool:
        return self.holdings.approved(owner, operator)

    def wallet(self, address: str) -> tuple[str, int] | None:
        found = self._wallets.get(address.lower())
        return (found.owner, found.nonce) if found else None

    # ------------------------------------------------------------------ reading

    def pusd(self, address: str) -> int:
        return self.held_pusd(self.holder(address), free=False)

    def shares(self, address: str, token: str) -> int:
        return self.held_shares(self.holder(address), token, free=False)

    def pol(self, address: str) -> int:
        """POL (wei): what an EOA started with, less gas, plus what it was given."""
        key = address.lower()
        return self._pol.get(key, 0 if self.code(address) else self.pol_start)

    def nonce(self, address: str) -> int:
        return self._nonces.get(address.lower(), 0)

    def code(self, address: str) -> bytes:
        key = address.lower()
        return _CODE if key in self._wallets or key in _CONTRACTS else b""

    def wallet_owner(self, wallet: str) -> str | None:
        found = self._wallets.get(wallet.lower())
        return found.owner if found else None

    def wallet_nonce(self, wallet: str) -> int:
        found = self._wallets.get(wallet.lower())
        return found.nonce if found else 0

    def market(self, condition_id: str) -> MarketRef | None:
        condition = condition_id.lower()
        try:
            info = self.engine.market_of_id(condition)
            winner = self.engine.winner(condition)
        except KeyError:
            return self._resolved.get(condition)
        return MarketRef(tokens=info.tokens, neg_risk=info.neg_risk, winner=winner)

    def resolution(self, condition_id: str) -> str | None:
        """The winning token of a resolved market; None while it is open (or never was)."""
        market = self.market(condition_id)
        return market.winner if market else None

    def keep_resolutions(self, market_ids: Sequence[str]) -> None:
        """Remember these resolved markets' outcomes: the venue is about to forget them."""
        for market_id in market_ids:
            found = self.market(market_id)
            if found is not None and found.winner is not None:
                self._resolved[market_id.lower()] = found

    def _drop_unheld_resolutions(self) -> None:
        if not self._resolved:
            return
        held = {t for tokens in self.holdings.tokens_of_addresses().values() for t in tokens}
        held.update(t for tokens in self.trading.feed.positions.values() for t in tokens)
        for condition, market in list(self._resolved.items()):
            if not held.intersection(market.tokens) and not self.engine.has_token(market.tokens[0]):
                del self._resolved[condition]

    def sizes(self) -> dict[str, int]:
        return {"pending_txs": len(self.pool), "txs_kept": len(self._txs), "wallets": len(self._wallets),
                "resolutions_kept": len(self._resolved), "addresses_holding": self.holdings.sizes()}

    # ------------------------------------------------------------------ funding, wallets, batches

    def mint_pusd(self, address: str, amount: int) -> None:
        """pUSD from outside (a deposit): to the address, or its account's balance."""
        if amount < 0:
            raise ValueError("a deposit is not negative")
        self.holdings.apply(Changes(pusd={self.holder(parse_address(address)): amount}))

    def fund_pol(self, address: str, wei: int) -> None:
        if wei < 0:
            raise ValueError("a deposit is not negative")
        key = parse_address(address).lower()
        self._pol[key] = self.pol(key) + wei

    def deploy_wallet(self, owner: str, now_ns: int) -> str:
        """The factory deploys ``owner``'s deposit wallet (a beacon clone); again changes nothing."""
        owner = parse_address(owner)
        wallet = beacon_address(owner)
        self._wallets.setdefault(wallet.lower(), _Wallet(owner=owner))
        return wallet

    def run_wallet_batch(self, wallet: str, nonce: int, deadline_s: int, calls: Sequence[c.Call],
                         now_ns: int) -> str | None:
        """The factory runs the wallet's ``execute(Batch)``: every call as the wallet, all or
        nothing. None when it ran (the nonce goes up), else why it reverted."""
        found = self._wallets.get(wallet.lower())
        self.counts["batches"] += 1
        reason = self._batch_refusal(found, nonce, deadline_s, now_ns)
        if reason is None and found is not None:
            run = Run(self)
            for number, call in enumerate(calls):
                try:
                    run.execute(parse_address(wallet), call)
                except Revert as revert:
                    reason = f"BatchCallFailed: call {number}: {revert.reason}"
                    break
            else:
                self.holdings.apply(run.changes)
                found.nonce += 1
                return None
        self.counts["batches_failed"] += 1
        return reason

    def _batch_refusal(self, found: _Wallet | None, nonce: int, deadline_s: int, now_ns: int) -> str | None:
        if found is None:
            return "no deposit wallet is deployed there"
        if nonce != found.nonce:
            return f"InvalidNonce: batch nonce {nonce}, wallet nonce {found.nonce}"
        if deadline_s < max(self.block_timestamp, now_ns // SECOND):
            return "ExpiredDeadline: the batch's deadline has passed"
        if self.faults.revert:
            self.faults.revert -= 1
            return "BatchCallFailed: call 0: reverted (injected fault)"
        return None

    # ------------------------------------------------------------------ calls and transactions

    def call(self, sender: str, call: c.Call) -> bytes:
        """``eth_call``: the result of running ``call`` now, changing nothing; ``Revert`` if it fails."""
        return Run(self).execute(sender, call)

    def estimate_gas(self, sender: str, call: c.Call) -> int:
        Run(self).execute(sender, call)
        return gas_of(call.data)

    def send_raw(self, raw: bytes, now_ns: int) -> str:
        """``eth_sendRawTransaction``: the transaction's hash once it is queued; ``RpcError`` if refused."""
        tx = decode_raw(raw, chain_id=self.chain_id)
        key = tx.sender.lower()
        if self.faults.clash and tx.nonce == self.nonce(key):
            self.faults.clash -= 1
            self._nonces[key] = tx.nonce + 1  # a transaction sent elsewhere took this nonce
            self.counts["foreign_txs"] += 1
        if self.pol(key) < tx.gas * tx.max_fee + tx.value:
            raise RpcError(-32000, "insufficient funds for gas * price + value")
        replaced = self.pool.add(tx, account_nonce=self.nonce(key))
        if replaced is not None:
            self._txs.pop(replaced.hash, None)
            self.counts["txs_replaced"] += 1
        elif self.faults.stuck_s:
            tx.hold_until_ns = now_ns + self.faults.stuck_s * SECOND
            self.faults.stuck_s = 0
        self._txs[tx.hash] = tx
        self.counts["txs_sent"] += 1
        return tx.hash

    def pending_nonce(self, address: str) -> int:
        return self.pool.pending_nonce(address, self.nonce(address))

    def transaction(self, tx_hash: str) -> dict[str, Any] | None:
        tx = self._txs.get(tx_hash.lower())
        return None if tx is None else tx.view(self.block_hash(tx.block) if tx.block is not None else None)

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """The receipt of a mined transaction; None while it is pending (or unknown)."""
        return self._receipts.get(tx_hash.lower())

    # ------------------------------------------------------------------ blocks

    def advance(self, now_ns: int) -> int:
        """Make the blocks due by ``now_ns``; how many were made."""
        if self._next_block_ns is None:
            self.block_timestamp = now_ns // SECOND
            self._next_block_ns = now_ns + self._block_ns
            return 0
        made = 0
        while self._next_block_ns <= now_ns:
            self._mine(self._next_block_ns)
            made += 1
            self._next_block_ns += self._block_ns
            if made >= 100:  # far behind (a paused clock jumped): the next block comes a block from now
                self._next_block_ns = now_ns + self._block_ns
        return made

    def block_hash(self, number: int) -> str:
        return "0x" + keccak(f"mmbot-sim/block/{self.chain_id}/{number}".encode()).hex()

    def _mine(self, at_ns: int) -> None:
        self.block_number += 1
        self.block_timestamp = at_ns // SECOND
        self.counts["blocks"] += 1
        # the base fee wanders a little, as EIP-1559's does with demand
        self.base_fee = max(BASE_FEE // 2, min(BASE_FEE * 4, self.base_fee * self._rng.randint(95, 105) // 100))
        for stale in self.pool.drop_stale(self._nonces):
            self._txs.pop(stale.hash, None)
        index = 0
        while (tx := self.pool.ready(self._nonces, self.base_fee, at_ns)) is not None and index < 1_000:
            self.pool.take(tx)
            self._run_tx(tx, index)
            index += 1
        self._drop_unheld_resolutions()
        while len(self._txs) > KEEP_TXS and next(iter(self._txs.values())).block is not None:
            old, _ = self._txs.popitem(last=False)
            self._receipts.pop(old, None)

    def _run_tx(self, tx: SentTx, index: int) -> None:
        key = tx.sender.lower()
        price = tx.effective_price(self.base_fee)
        needed = gas_of(tx.data)
        gas_used = min(needed, tx.gas)
        self._pol[key] = max(0, self.pol(key) - gas_used * price)
        self._nonces[key] = tx.nonce + 1
        tx.block, tx.index = self.block_number, index
        status, reason = 1, ""
        if self.faults.revert:
            self.faults.revert -= 1
            status, reason = 0, "reverted (injected fault)"
        elif needed > tx.gas:
            status, reason = 0, "out of gas"
        else:
            run = Run(self)
            try:
                run.execute(tx.sender, c.Call(tx.to, tx.data, tx.value))
                self.holdings.apply(run.changes)
            except Revert as revert:
                status, reason = 0, revert.reason
        self.counts["txs_mined"] += 1
        self.counts["txs_reverted"] += 1 - status
        self._receipts[tx.hash] = {
            "transactionHash": tx.hash, "transactionIndex": hex(index), "blockNumber": hex(self.block_number),
            "blockHash": self.block_hash(self.block_number), "from": tx.sender, "to": tx.to,
            "status": hex(status), "gasUsed": hex(gas_used), "cumulativeGasUsed": hex(gas_used),
            "effectiveGasPrice": hex(price), "type": hex(tx.type), "contractAddress": None, "logs": [],
            "logsBloom": "0x" + "00" * 256, **({"revertReason": reason} if reason else {}),
        }

    # ------------------------------------------------------------------ faults

    def inject(self, kind: str, count: int) -> dict[str, int]:
        """A chain fault (``CHAIN_FAULTS``) now; returns what is pending of it."""
        if kind == "chain_revert":
            self.faults.revert += count or 1
            return {"chain_revert": self.faults.revert}
        if kind == "chain_stuck":
            self.faults.stuck_s = count or 60
            return {"chain_stuck_s": self.faults.stuck_s}
        if kind == "chain_nonce_clash":
            self.faults.clash += count or 1
            return {"chain_nonce_clash": self.faults.clash}
        raise ValueError(f"not a chain fault: {kind!r}"[:200])
