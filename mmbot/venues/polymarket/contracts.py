"""Polymarket's contracts on Polygon and the calls mmbot makes to them (onchain reference §2, §5).

Calldata is ABI-encoded by eth-abi from each function's signature, never by hand: a ``Call`` is
what one transaction (an EOA's) or one entry of a relayer ``WALLET`` batch (a deposit wallet's)
runs. Split, merge and redeem go through the *current* collateral adapters, which take pUSD and
return pUSD; the first deployments are refused by the relayer and listed here only so that a call
to them is refused before it leaves (``refuse_retired``). The adapters ignore the collateral,
parent collection and partition arguments; they are sent as the official SDKs send them (pUSD,
zero, ``[1, 2]``).

The same table decodes calldata (``decode``): the simulator plays these contracts from it.
"""

from __future__ import annotations

import attrs
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from mmbot.venues.polymarket.auth import EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, parse_address

PUSD = "0xC011a7E12a19f7B1f670d46F03B03f3342E82DFB"  # CollateralToken proxy, 6 decimals
CTF = "0x4D97DCd97eC945f40cF65F87097ACe5EA0476045"  # ConditionalTokens (ERC-1155 outcome tokens)
CTF_ADAPTER = "0xAdA100Db00Ca00073811820692005400218FcE1f"  # CtfCollateralAdapter, current
NEG_RISK_CTF_ADAPTER = "0xadA2005600Dec949baf300f4C6120000bDB6eAab"  # NegRiskCtfCollateralAdapter, current
NEG_RISK_ADAPTER = "0xd91E80cF2E7be2e162c6513ceD06f1dD0dA35296"
AUTO_REDEEMER = "0xa1200000d0002264C9a1698e001292D00E1b00af"  # never approved: we redeem ourselves
RETIRED_ADAPTERS = (  # the first deployments: the relayer refuses calls to them
    "0xADa100874d00e3331D00F2007a9c336a65009718",
    "0xAdA200001000ef00D07553cEE7006808F895c6F1",
)
MAX_UINT256 = 2**256 - 1
PARTITION = (1, 2)  # YES, NO index sets: ignored by the adapters, sent as the SDKs send them
ZERO_WORD = bytes(32)

# pUSD spenders and CTF operators a deposit wallet (or EOA) approves to trade, split, merge and
# redeem standard and neg-risk markets (py-sdk's set without the AutoRedeemer: an outside
# redeemer would move our shares and cash behind the ledger's back)
PUSD_SPENDERS = (EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, NEG_RISK_ADAPTER, CTF_ADAPTER, NEG_RISK_CTF_ADAPTER)
CTF_OPERATORS = PUSD_SPENDERS


@attrs.frozen
class Function:
    name: str
    args: tuple[str, ...]  # ABI types
    returns: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.args)})"

    @property
    def selector(self) -> bytes:
        return keccak(self.signature.encode())[:4]

    def calldata(self, *values: object) -> bytes:
        return self.selector + abi_encode(list(self.args), list(values))

    def decode_args(self, data: bytes) -> tuple[object, ...]:
        return tuple(abi_decode(list(self.args), data[4:]))

    def decode_result(self, data: bytes) -> tuple[object, ...]:
        return tuple(abi_decode(list(self.returns), data))


_CTF_ARGS = ("address", "bytes32", "bytes32", "uint256[]", "uint256")
SPLIT = Function("splitPosition", _CTF_ARGS)
MERGE = Function("mergePositions", _CTF_ARGS)
REDEEM = Function("redeemPositions", _CTF_ARGS[:4])
APPROVE = Function("approve", ("address", "uint256"), ("bool",))
SET_APPROVAL_FOR_ALL = Function("setApprovalForAll", ("address", "bool"))
BALANCE_OF = Function("balanceOf", ("address",), ("uint256",))  # ERC-20 (pUSD)
CTF_BALANCE_OF = Function("balanceOf", ("address", "uint256"), ("uint256",))  # ERC-1155 (CTF)
BALANCE_OF_BATCH = Function("balanceOfBatch", ("address[]", "uint256[]"), ("uint256[]",))
ALLOWANCE = Function("allowance", ("address", "address"), ("uint256",))
IS_APPROVED_FOR_ALL = Function("isApprovedForAll", ("address", "address"), ("bool",))
TRANSFER = Function("transfer", ("address", "uint256"), ("bool",))
WALLET_NONCE = Function("nonce", (), ("uint256",))  # a deposit wallet's batch nonce
WALLET_OWNER = Function("owner", (), ("address",))
FACTORY_BEACON = Function("BEACON", (), ("address",))

FUNCTIONS = (SPLIT, MERGE, REDEEM, APPROVE, SET_APPROVAL_FOR_ALL, BALANCE_OF, CTF_BALANCE_OF, BALANCE_OF_BATCH,
             ALLOWANCE, IS_APPROVED_FOR_ALL, TRANSFER, WALLET_NONCE, WALLET_OWNER, FACTORY_BEACON)


class CalldataError(ValueError):
    """Calldata that no known function takes, or whose arguments do not decode."""


@attrs.frozen
class Call:
    """One call a transaction or a relayer batch runs: ``target``'s function, with no POL sent."""

    target: str  # checksummed
    data: bytes
    value: int = 0

    def describe(self) -> str:
        """``name@target`` for the event log (calldata stays out of it: it is in the transaction),
        with the spender or operator for an approval: ``approve(spender)@pUSD``."""
        found = next((f for f in FUNCTIONS if f.selector == self.data[:4]), None)
        if found is None:
            return f"{self.data[:4].hex()}@{self.target}"
        whom = ""
        if found in (APPROVE, SET_APPROVAL_FOR_ALL):
            try:
                whom = f"({decode(self.data, candidates=(found,))[1][0]})"
            except CalldataError:
                whom = "(?)"
        return f"{found.name}{whom}@{self.target}"


def _condition(condition_id: str) -> bytes:
    raw = bytes.fromhex(condition_id.removeprefix("0x"))
    if len(raw) != 32:
        raise CalldataError(f"a condition id is 32 bytes of hex, got {len(raw)}")
    return raw


def adapter(neg_risk: bool) -> str:
    """The collateral adapter that splits, merges and redeems a market of this kind."""
    return NEG_RISK_CTF_ADAPTER if neg_risk else CTF_ADAPTER


def split_call(condition_id: str, amount: int, *, neg_risk: bool) -> Call:
    """Turn ``amount`` pUSD (micro) into ``amount`` YES and ``amount`` NO shares."""
    return Call(adapter(neg_risk), SPLIT.calldata(PUSD, ZERO_WORD, _condition(condition_id), PARTITION, amount))


def merge_call(condition_id: str, amount: int, *, neg_risk: bool) -> Call:
    """Turn ``amount`` complete sets (micro-shares) back into ``amount`` pUSD."""
    return Call(adapter(neg_risk), MERGE.calldata(PUSD, ZERO_WORD, _condition(condition_id), PARTITION, amount))


def redeem_call(condition_id: str, *, neg_risk: bool) -> Call:
    """Redeem the caller's *entire* holding of both outcomes of a resolved market for pUSD."""
    return Call(adapter(neg_risk), REDEEM.calldata(PUSD, ZERO_WORD, _condition(condition_id), PARTITION))


def approve_call(spender: str, amount: int = MAX_UINT256) -> Call:
    return Call(PUSD, APPROVE.calldata(spender, amount))


def operator_call(operator: str, approved: bool = True) -> Call:
    return Call(CTF, SET_APPROVAL_FOR_ALL.calldata(operator, approved))


def trading_approvals() -> list[Call]:
    """Every approval a wallet needs to trade, split, merge and redeem (pUSD spenders, CTF operators)."""
    return [approve_call(s) for s in PUSD_SPENDERS] + [operator_call(o) for o in CTF_OPERATORS]


def refuse_retired(call: Call) -> None:
    if call.target.lower() in {a.lower() for a in RETIRED_ADAPTERS}:
        raise CalldataError(f"{call.target} is a retired collateral adapter: calls to it are refused by the relayer")


def decode(data: bytes, *, candidates: tuple[Function, ...] = FUNCTIONS) -> tuple[Function, tuple[object, ...]]:
    """The function a calldata calls and its arguments (addresses checksummed); ``CalldataError``
    if none of ``candidates`` has its selector or its arguments do not decode."""
    for function in candidates:
        if data[:4] == function.selector and len(data) >= 4:
            try:
                values = function.decode_args(data)
            except Exception as exc:  # eth-abi raises several unrelated types for short or bad data
                raise CalldataError(f"{function.name}: arguments do not decode: {exc}") from None
            args = tuple(parse_address(str(v)) if t == "address" else v for t, v in zip(function.args, values))
            return function, args
    raise CalldataError(f"no known function has selector 0x{data[:4].hex()}")
