"""The simulated chain's JSON-RPC node: ``POST /rpc``, JSON-RPC 2.0, one request or a batch array.

The subset a Polygon client uses: chain ID, blocks, nonces, fees, ``eth_getCode``,
``eth_getBalance`` (POL), ``eth_call`` and ``eth_estimateGas`` (a revert is error 3
``execution reverted: <reason>``), ``eth_sendRawTransaction``, and transactions and receipts by
hash (a receipt is null while its transaction is pending). Every answer is HTTP 200 with a
JSON-RPC result or error; a request that is not JSON-RPC is -32600, bad parameters -32602, an
unknown method -32601 — never a 500. The node is unauthenticated, as public RPCs are; the body
limit is the simulator's (``limits``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from eth_abi import encode as abi_encode
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mmbot.clock import TrioClock
from mmbot.venues.polymarket.contracts import Call
from mmbot.venues.simulator.chain_calls import Revert
from mmbot.venues.simulator.chain_state import PRIORITY_FEE, SimChain
from mmbot.venues.simulator.chain_tx import RpcError

MAX_BATCH = 100
ZERO_ADDRESS = "0x" + "00" * 20
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HEX = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_QUANTITY = re.compile(r"0x[0-9a-fA-F]{1,64}")
_BLOCKS = ("latest", "pending", "safe", "finalized", "earliest")
_REVERT_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)


def _invalid(text: str) -> RpcError:
    return RpcError(-32602, f"invalid params: {text}"[:200])


class RpcRoutes:
    def __init__(self, chain: SimChain, *, clock: TrioClock) -> None:
        self._chain = chain
        self._clock = clock
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            "eth_chainId": lambda p: hex(chain.chain_id), "net_version": lambda p: str(chain.chain_id),
            "eth_blockNumber": lambda p: hex(chain.block_number), "eth_getBlockByNumber": self._block,
            "eth_getTransactionCount": self._nonce, "eth_getCode": self._code, "eth_getBalance": self._balance,
            "eth_gasPrice": lambda p: hex(chain.base_fee + PRIORITY_FEE),
            "eth_maxPriorityFeePerGas": lambda p: hex(PRIORITY_FEE), "eth_feeHistory": self._fee_history,
            "eth_call": self._call, "eth_estimateGas": self._estimate, "eth_sendRawTransaction": self._send,
            "eth_getTransactionReceipt": lambda p: chain.receipt(_hash(p)),
            "eth_getTransactionByHash": lambda p: chain.transaction(_hash(p)),
        }

    def routes(self) -> list[Route]:
        return [Route("/rpc", self.rpc, methods=["POST"])]

    async def rpc(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            self._chain.counts["rpc_malformed"] += 1
            return JSONResponse(_error(None, RpcError(-32700, "parse error")))
        if isinstance(body, list):
            if not body or len(body) > MAX_BATCH:
                self._chain.counts["rpc_malformed"] += 1
                return JSONResponse(_error(None, RpcError(-32600, f"invalid request: a batch of 1 to {MAX_BATCH}")))
            return JSONResponse([self.answer(one) for one in body])
        return JSONResponse(self.answer(body))

    def answer(self, request: Any) -> dict[str, Any]:
        """One JSON-RPC request's answer."""
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
            self._chain.counts["rpc_malformed"] += 1
            return _error(request.get("id") if isinstance(request, dict) else None,
                          RpcError(-32600, "invalid request: expected {\"jsonrpc\": \"2.0\", \"method\", \"params\", \"id\"}"))
        ident = request.get("id")
        params = request.get("params", [])
        method = self._methods.get(request["method"])
        if method is None:
            return _error(ident, RpcError(-32601, f"the method {request['method'][:60]} does not exist/is not available"))
        try:
            if not isinstance(params, list):
                raise _invalid("expected a list")
            return {"jsonrpc": "2.0", "id": ident, "result": method(params)}
        except RpcError as error:
            if error.code == -32602:
                self._chain.counts["rpc_malformed"] += 1
            return _error(ident, error)
        except Revert as revert:
            data = "0x" + (_REVERT_SELECTOR + abi_encode(["string"], [revert.reason])).hex()
            return {"jsonrpc": "2.0", "id": ident,
                    "error": {"code": 3, "message": f"execution reverted: {revert.reason}", "data": data}}

    # ------------------------------------------------------------------ methods

    def _block(self, params: list[Any]) -> dict[str, Any] | None:
        """A block's header (the latest one's fee; an earlier one's time counted back a block
        time a block); null for a block not made yet."""
        if not params or not (params[0] in _BLOCKS or (isinstance(params[0], str) and _QUANTITY.fullmatch(params[0]))):
            raise _invalid("expected a block tag or number")
        chain = self._chain
        number = chain.block_number if params[0] in _BLOCKS else int(params[0], 16)
        if number > chain.block_number:
            return None
        timestamp = max(0, chain.block_timestamp - (chain.block_number - number) * chain.block_ms // 1000)
        return {"number": hex(number), "timestamp": hex(timestamp), "baseFeePerGas": hex(chain.base_fee),
                "hash": chain.block_hash(number), "gasLimit": hex(30_000_000), "transactions": []}

    def _nonce(self, params: list[Any]) -> str:
        address = _address(params, 0)
        tag = params[1] if len(params) > 1 else "latest"
        return hex(self._chain.pending_nonce(address) if tag == "pending" else self._chain.nonce(address))

    def _code(self, params: list[Any]) -> str:
        return "0x" + self._chain.code(_address(params, 0)).hex()

    def _balance(self, params: list[Any]) -> str:
        return hex(self._chain.pol(_address(params, 0)))

    def _fee_history(self, params: list[Any]) -> dict[str, Any]:
        count = min(_quantity(params[0]) if params and isinstance(params[0], str) else 1, 1024)
        base = hex(self._chain.base_fee)
        return {"oldestBlock": hex(max(0, self._chain.block_number - count + 1)), "baseFeePerGas": [base] * (count + 1),
                "gasUsedRatio": [0.5] * count, "reward": [[hex(PRIORITY_FEE)]] * count}  # float-ok: the wire's ratio

    def _call_of(self, params: list[Any]) -> tuple[str, Call]:
        if not params or not isinstance(params[0], dict):
            raise _invalid("expected a call object")
        tx = params[0]
        sender = tx.get("from") or ZERO_ADDRESS
        to = tx.get("to")
        data = tx.get("data", tx.get("input", "0x"))
        if not (isinstance(sender, str) and _ADDRESS.fullmatch(sender) and isinstance(to, str) and _ADDRESS.fullmatch(to)):
            raise _invalid("from and to are 20-byte hex addresses")
        if not isinstance(data, str) or not _HEX.fullmatch(data):
            raise _invalid("data is 0x-hex")
        value = tx.get("value", "0x0")
        return sender, Call(to, bytes.fromhex(data[2:]), _quantity(value))

    def _call(self, params: list[Any]) -> str:
        sender, call = self._call_of(params)
        return "0x" + self._chain.call(sender, call).hex()

    def _estimate(self, params: list[Any]) -> str:
        sender, call = self._call_of(params)
        return hex(self._chain.estimate_gas(sender, call))

    def _send(self, params: list[Any]) -> str:
        if not params or not isinstance(params[0], str) or not _HEX.fullmatch(params[0]):
            raise _invalid("expected the signed transaction as 0x-hex")
        return self._chain.send_raw(bytes.fromhex(params[0][2:]), self._clock.now_ns())


def _address(params: list[Any], at: int) -> str:
    if len(params) <= at or not isinstance(params[at], str) or not _ADDRESS.fullmatch(params[at]):
        raise _invalid("expected a 20-byte hex address")
    return params[at]


def _quantity(value: Any) -> int:
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise _invalid("expected a 0x-hex quantity")
    return int(value, 16)


def _hash(params: list[Any]) -> str:
    if not params or not isinstance(params[0], str) or not re.fullmatch(r"0x[0-9a-fA-F]{64}", params[0]):
        raise _invalid("expected a 32-byte hex hash")
    return params[0]


def _error(ident: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": error.code, "message": error.message}}
