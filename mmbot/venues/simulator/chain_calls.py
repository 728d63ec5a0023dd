"""What the simulated chain's contracts do with a call, sans-IO: pUSD (ERC-20), the conditional
tokens (ERC-1155), the two current collateral adapters, the deposit-wallet factory and the deposit
wallets' views (polymarket-onchain.md §2, §3.1, §5).

A ``Run`` is one transaction (or one relayer batch) in progress: it reads the chain's state
(``ChainView``) and keeps its own changes beside it, so that a call that fails leaves nothing
behind — the chain applies a run's ``Changes`` only when every call in it succeeded. A failing
call raises ``Revert`` with the contract's reason.

The adapters as deployed: split pulls pUSD (an allowance to the adapter is needed) and gives the
same number of both outcomes; merge pulls both outcomes (``setApprovalForAll(adapter)`` needed)
and gives back pUSD; redeem, only once the market is resolved, pulls the caller's whole balance
of both outcomes and pays 1 pUSD for each winning share. A market's adapter follows its kind
(neg-risk or standard); the first deployments, and split, merge or redeem on the raw CTF with
pUSD as collateral, revert. Gas is a fixed amount a function (``gas_of``).
"""

from __future__ import annotations

from typing import Protocol

import attrs
from eth_abi import encode as abi_encode

from mmbot.venues.polymarket import contracts as c
from mmbot.venues.polymarket.deposit_wallet import BEACON, FACTORY

BASE_GAS = 21_000  # every transaction's intrinsic gas
_GAS = {"approve": 46_000, "transfer": 52_000, "setApprovalForAll": 46_000, "splitPosition": 180_000,
        "mergePositions": 160_000, "redeemPositions": 140_000}
_VIEW_GAS = 30_000
_ADAPTERS = {c.CTF_ADAPTER.lower(): False, c.NEG_RISK_CTF_ADAPTER.lower(): True}  # adapter -> neg-risk
_RETIRED = {a.lower() for a in c.RETIRED_ADAPTERS}
INSUFFICIENT_BALANCE = "ERC20: transfer amount exceeds balance"
INSUFFICIENT_ALLOWANCE = "ERC20: insufficient allowance"
NOT_APPROVED = "ERC1155: caller is not owner nor approved"
INSUFFICIENT_SHARES = "ERC1155: insufficient balance for transfer"
UNKNOWN_CALL = "unknown call"


class Revert(Exception):
    """A call the contract refused; nothing of its run takes effect."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@attrs.frozen
class MarketRef:
    """What the adapters need of a market: its two tokens, its kind, its winner once resolved."""

    tokens: tuple[str, str]
    neg_risk: bool
    winner: str | None


class ChainView(Protocol):
    """The chain's state as a run reads it. A *holder* is who owns a balance: a trading account
    (shared by its owner's addresses) or a plain address."""

    def holder(self, address: str) -> str: ...
    def held_pusd(self, holder: str, *, free: bool) -> int: ...
    def held_shares(self, holder: str, token: str, *, free: bool) -> int: ...
    def allowance(self, owner: str, spender: str) -> int: ...
    def approved(self, owner: str, operator: str) -> bool: ...
    def market(self, condition_id: str) -> MarketRef | None: ...
    def wallet(self, address: str) -> tuple[str, int] | None: ...


@attrs.define
class Changes:
    """A run's changes: balance deltas by holder, allowances and approvals set by address (lower case)."""

    pusd: dict[str, int] = attrs.Factory(dict)
    shares: dict[tuple[str, str], int] = attrs.Factory(dict)
    allowances: dict[tuple[str, str], int] = attrs.Factory(dict)
    operators: dict[tuple[str, str], bool] = attrs.Factory(dict)


def gas_of(data: bytes) -> int:
    """The gas a transaction with this calldata uses (the simulator's fixed table)."""
    try:
        function, _ = c.decode(data)
    except c.CalldataError:
        return BASE_GAS
    return BASE_GAS + _GAS.get(function.name, _VIEW_GAS)


class Run:
    """One transaction's or batch's calls against ``view``, its changes kept in ``changes``."""

    def __init__(self, view: ChainView) -> None:
        self._view = view
        self.changes = Changes()

    # ------------------------------------------------------------------ balances seen by the run

    def pusd(self, holder: str, *, free: bool = False) -> int:
        return self._view.held_pusd(holder, free=free) + self.changes.pusd.get(holder, 0)

    def shares(self, holder: str, token: str, *, free: bool = False) -> int:
        return self._view.held_shares(holder, token, free=free) + self.changes.shares.get((holder, token), 0)

    def allowance(self, owner: str, spender: str) -> int:
        key = (owner.lower(), spender.lower())
        return self.changes.allowances.get(key, self._view.allowance(*key))

    def approved(self, owner: str, operator: str) -> bool:
        key = (owner.lower(), operator.lower())
        return self.changes.operators.get(key, self._view.approved(*key))

    def _move_pusd(self, holder: str, amount: int) -> None:
        if amount < 0 and self.pusd(holder, free=True) < -amount:
            raise Revert(INSUFFICIENT_BALANCE)
        self.changes.pusd[holder] = self.changes.pusd.get(holder, 0) + amount

    def _move_shares(self, holder: str, token: str, amount: int) -> None:
        if amount < 0 and self.shares(holder, token, free=True) < -amount:
            raise Revert(INSUFFICIENT_SHARES)
        self.changes.shares[(holder, token)] = self.changes.shares.get((holder, token), 0) + amount

    # ------------------------------------------------------------------ calls

    def execute(self, sender: str, call: c.Call) -> bytes:
        """Run ``call`` with ``msg.sender`` = ``sender``; its ABI-encoded result, or ``Revert``."""
        target = call.target.lower()
        if target in _RETIRED:
            raise Revert("retired collateral adapter: calls to it are not permitted")
        try:
            function, args = c.decode(call.data)
        except c.CalldataError:
            raise Revert(UNKNOWN_CALL) from None
        if call.value:
            raise Revert("no POL is accepted")
        if target == c.PUSD.lower():
            return self._pusd_call(sender, function, args)
        if target == c.CTF.lower():
            return self._ctf_call(sender, function, args)
        if target in _ADAPTERS:
            return self._adapter_call(sender, _ADAPTERS[target], call.target, function, args)
        if target == FACTORY.lower() and function is c.FACTORY_BEACON:
            return _result(function, BEACON)
        wallet = self._view.wallet(call.target)
        if wallet is not None and function in (c.WALLET_NONCE, c.WALLET_OWNER):
            owner, nonce = wallet
            return _result(function, nonce if function is c.WALLET_NONCE else owner)
        raise Revert(UNKNOWN_CALL)

    def _pusd_call(self, sender: str, function: c.Function, args: tuple[object, ...]) -> bytes:
        view = self._view
        if function is c.APPROVE:
            spender, amount = str(args[0]), int(args[1])  # type: ignore[call-overload]
            self.changes.allowances[(sender.lower(), spender.lower())] = amount
            return _result(function, True)
        if function is c.TRANSFER:
            to, amount = str(args[0]), int(args[1])  # type: ignore[call-overload]
            self._move_pusd(view.holder(sender), -amount)
            self._move_pusd(view.holder(to), amount)
            return _result(function, True)
        if function is c.BALANCE_OF:
            return _result(function, self.pusd(view.holder(str(args[0]))))
        if function is c.ALLOWANCE:
            return _result(function, self.allowance(str(args[0]), str(args[1])))
        raise Revert(UNKNOWN_CALL)

    def _ctf_call(self, sender: str, function: c.Function, args: tuple[object, ...]) -> bytes:
        view = self._view
        if function is c.SET_APPROVAL_FOR_ALL:
            self.changes.operators[(sender.lower(), str(args[0]).lower())] = bool(args[1])
            return b""
        if function is c.IS_APPROVED_FOR_ALL:
            return _result(function, self.approved(str(args[0]), str(args[1])))
        if function is c.CTF_BALANCE_OF:
            return _result(function, self.shares(view.holder(str(args[0])), str(args[1])))
        if function is c.BALANCE_OF_BATCH:
            owners, ids = list(args[0]), list(args[1])  # type: ignore[call-overload]
            if len(owners) != len(ids):
                raise Revert("ERC1155: accounts and ids length mismatch")
            return _result(function, [self.shares(view.holder(str(o)), str(i)) for o, i in zip(owners, ids)])
        if function in (c.SPLIT, c.MERGE, c.REDEEM):
            raise Revert("raw CTF with pUSD as collateral: no position (use the collateral adapters)")
        raise Revert(UNKNOWN_CALL)

    def _adapter_call(self, sender: str, neg_risk: bool, adapter: str, function: c.Function,
                      args: tuple[object, ...]) -> bytes:
        if function not in (c.SPLIT, c.MERGE, c.REDEEM):
            raise Revert(UNKNOWN_CALL)
        condition = "0x" + bytes(args[2]).hex()  # type: ignore[call-overload]
        market = self._view.market(condition)
        if market is None:
            raise Revert("condition not prepared")
        if market.neg_risk != neg_risk:
            raise Revert("wrong collateral adapter for this market's kind")
        holder = self._view.holder(sender)
        yes, no = market.tokens
        if function is c.SPLIT:
            amount = int(args[4])  # type: ignore[call-overload]
            allowed = self.allowance(sender, adapter)
            if allowed < amount:
                raise Revert(INSUFFICIENT_ALLOWANCE)
            if allowed != c.MAX_UINT256:
                self.changes.allowances[(sender.lower(), adapter.lower())] = allowed - amount
            self._move_pusd(holder, -amount)
            self._move_shares(holder, yes, amount)
            self._move_shares(holder, no, amount)
            return b""
        if not self.approved(sender, adapter):
            raise Revert(NOT_APPROVED)
        if function is c.MERGE:
            amount = int(args[4])  # type: ignore[call-overload]
            self._move_shares(holder, yes, -amount)
            self._move_shares(holder, no, -amount)
            self._move_pusd(holder, amount)
            return b""
        if market.winner is None:
            raise Revert("result for condition not received yet")
        payout = 0
        for token in market.tokens:
            held = self.shares(holder, token)
            self._move_shares(holder, token, -held)
            payout += held if token == market.winner else 0
        self._move_pusd(holder, payout)
        return b""


def _result(function: c.Function, value: object) -> bytes:
    return abi_encode(list(function.returns), [value])
