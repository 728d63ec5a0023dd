"""What an account holds and has allowed on chain, read through a JSON-RPC node: pUSD, outcome
shares, allowances, operator approvals, a deposit wallet's batch nonce and owner, code, the
factory's beacon and the chain's own clock (polymarket-onchain.md §2, §3, §5.4).

Every read is an ``eth_call`` whose calldata and result are ABI-encoded by ``contracts.Function``
(eth-abi), at the latest block. A result that does not decode as the function promises is counted
in the RPC client's ``malformed`` and raised as ``ChainUnreachable`` (the node's answer cannot be
used; ask again later); a revert where one is not expected is the node's ``RpcError``.

``ChainView`` is the ``deposit_wallet.ChainReader`` that decides a wallet's kind, and the chain
the relayer adapter reads a wallet's nonce, code, owner and the chain time from.
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi.exceptions import DecodingError

from mmbot.venues.polymarket.auth import SigningError, parse_address
from mmbot.venues.polymarket.contracts import (
    ALLOWANCE, APPROVE, BALANCE_OF, BALANCE_OF_BATCH, CTF, FACTORY_BEACON, IS_APPROVED_FOR_ALL, PUSD,
    SET_APPROVAL_FOR_ALL, WALLET_NONCE, WALLET_OWNER, Call, Function, decode, trading_approvals,
)
from mmbot.venues.polymarket.rpc import RpcClient, RpcError

_UNDECODABLE = (DecodingError, ValueError, TypeError, OverflowError)  # what eth-abi raises for bad data
ENOUGH_ALLOWANCE = 2**255  # an allowance at or above this counts as the unlimited one granted
_ZERO_ADDRESS = "0x" + "00" * 20


class ChainView:
    """Typed contract reads through ``rpc`` (kept public: callers also read POL balances)."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def _read(self, target: str, function: Function, *args: object) -> tuple[object, ...]:
        result = await self.rpc.eth_call(target, function.calldata(*args))
        try:
            return function.decode_result(result)
        except _UNDECODABLE:
            raise self.rpc.malformed_answer("eth_call", f"{function.name}@{target} returned 0x{result[:64].hex()}") from None

    async def _uint(self, target: str, function: Function, *args: object) -> int:
        value = (await self._read(target, function, *args))[0]
        assert isinstance(value, int)  # eth-abi decodes a uint256 to an int
        return value

    async def pusd(self, address: str) -> int:
        """pUSD held by ``address``, micro-units."""
        return await self._uint(PUSD, BALANCE_OF, address)

    async def shares(self, address: str, tokens: Sequence[str]) -> list[int]:
        """Micro-shares of each outcome token (decimal token ids) ``address`` holds, in order."""
        if not tokens:
            return []
        ids = [int(t) for t in tokens]
        values = (await self._read(CTF, BALANCE_OF_BATCH, [address] * len(ids), ids))[0]
        if not isinstance(values, (tuple, list)) or len(values) != len(ids):
            raise self.rpc.malformed_answer("eth_call", f"balanceOfBatch gave {values!r} for {len(ids)} tokens")
        return [int(v) for v in values]

    async def allowance(self, owner: str, spender: str) -> int:
        """pUSD ``spender`` may take from ``owner``, micro-units."""
        return await self._uint(PUSD, ALLOWANCE, owner, spender)

    async def approved(self, owner: str, operator: str) -> bool:
        """Whether ``operator`` may move all of ``owner``'s outcome tokens (CTF isApprovedForAll)."""
        return bool((await self._read(CTF, IS_APPROVED_FOR_ALL, owner, operator))[0])

    async def wallet_nonce(self, wallet: str) -> int:
        """A deposit wallet's batch nonce: the next ``WALLET`` batch must carry it."""
        return await self._uint(wallet, WALLET_NONCE)

    async def wallet_owner(self, wallet: str) -> str | None:
        """A deposit wallet's owner, checksummed; None when nothing is deployed at ``wallet``."""
        if not await self.rpc.code(wallet):
            return None
        return self._address((await self._read(wallet, WALLET_OWNER))[0])

    async def code(self, address: str) -> bytes:
        """The code at ``address``; empty when nothing is deployed."""
        return await self.rpc.code(address)

    async def factory_beacon(self, factory: str) -> str | None:
        """The factory's ``BEACON()``; None when the call reverts, returns nothing or the zero
        address (a factory without beacon wallets)."""
        try:
            result = await self.rpc.eth_call(factory, FACTORY_BEACON.calldata())
        except RpcError as exc:
            if exc.reverted:
                return None
            raise
        if not result:
            return None
        try:
            value = FACTORY_BEACON.decode_result(result)[0]
        except _UNDECODABLE:
            raise self.rpc.malformed_answer("eth_call", f"BEACON@{factory} returned 0x{result[:64].hex()}") from None
        beacon = self._address(value)
        return None if beacon == _ZERO_ADDRESS else beacon

    async def now_s(self) -> int:
        """The chain's time: the latest block's timestamp, Unix seconds."""
        return await self.rpc.block_timestamp()

    async def missing_approvals(self, address: str) -> list[Call]:
        """The calls of ``contracts.trading_approvals()`` whose approval is not in place for
        ``address``: a pUSD allowance below 2**255, or a CTF operator not approved."""
        missing = []
        for call in trading_approvals():
            function, args = decode(call.data, candidates=(APPROVE, SET_APPROVAL_FOR_ALL))
            spender = str(args[0])
            if function is APPROVE:
                granted = await self.allowance(address, spender) >= ENOUGH_ALLOWANCE
            else:
                granted = await self.approved(address, spender)
            if not granted:
                missing.append(call)
        return missing

    def _address(self, value: object) -> str:
        try:
            return parse_address(str(value))
        except SigningError:
            raise self.rpc.malformed_answer("eth_call", f"not an address: {value!r}") from None
