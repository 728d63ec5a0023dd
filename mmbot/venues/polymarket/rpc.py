"""A Polygon JSON-RPC client: JSON-RPC 2.0 over POST on an injected ``httpx.AsyncClient``, and
the typed reads and the one write the chain port needs (polymarket-onchain.md §5.3).

Outcomes of every call:

* the node's ``result`` → the typed value (quantities are ``0x`` hex integers, data ``0x`` hex
  bytes);
* a JSON-RPC ``error`` object → ``RpcError(code, message)`` — the node answered and said no (a
  revert, ``nonce too low``, ``already known``); its ``data`` (a revert's bytes) is kept;
* no answer (connect error, timeout, HTTP 429 or 5xx) → ``ChainUnreachable``: what the node did
  with the request is unknown to this client, and the caller decides what that means;
* an answer that is not what JSON-RPC promises (not JSON, no ``result``, another request's ``id``,
  a result of the wrong shape) → counted in ``malformed`` and raised as ``ChainUnreachable``:
  never a crash, never a guess.

Nothing here retries. Request ids come from a counter, so a run's requests are reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NoReturn

import httpx

from mmbot.venues.polymarket.chain_types import ChainUnreachable

_MAX_TEXT = 200  # an error message is one line of at most this many characters


def _one_line(text: object) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_TEXT else flat[: _MAX_TEXT - 1] + "…"


class RpcError(Exception):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, code: int, message: str, data: str = "") -> None:
        self.code = code
        self.message = _one_line(message)
        self.data = data  # the revert's 0x-hex bytes when the node gives them, else ""
        super().__init__(f"RPC error {code}: {self.message}")

    @property
    def reverted(self) -> bool:
        """The call or transaction would revert (geth's code 3, or ``execution reverted``)."""
        return self.code == 3 or "revert" in self.message.lower()


def to_hex(value: int) -> str:
    """A JSON-RPC quantity: ``0x`` and the shortest hex (``0x0`` for zero)."""
    if value < 0:
        raise ValueError(f"a quantity is not negative: {value}")
    return hex(value)


def _quantity(value: object) -> int | None:
    if not isinstance(value, str) or not value.startswith("0x") or len(value) < 3:
        return None
    try:
        return int(value, 16)
    except ValueError:
        return None


def _data(value: object) -> bytes | None:
    if not isinstance(value, str) or not value.startswith("0x"):
        return None
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        return None


def _tx_param(tx: Mapping[str, object]) -> dict[str, object]:
    """A call/transaction object in JSON-RPC form: ints as quantities, bytes as data."""
    out: dict[str, object] = {}
    for key, value in tx.items():
        if isinstance(value, bool):
            raise TypeError(f"{key}: a transaction field is not a bool")
        if isinstance(value, int):
            out[key] = to_hex(value)
        elif isinstance(value, (bytes, bytearray)):
            out[key] = "0x" + bytes(value).hex()
        else:
            out[key] = value
    return out


class RpcClient:
    """JSON-RPC 2.0 to one node. ``url`` "" posts to the client's ``base_url`` itself, without the
    trailing slash httpx adds to it (a provider URL ending in its key, a route like ``/rpc``)."""

    def __init__(self, http: httpx.AsyncClient, url: str = "") -> None:
        self._http = http
        base = http.base_url
        if not url and base.host and base.path not in ("", "/"):
            url = str(base.copy_with(path=base.path.rstrip("/")))
        self._url = url
        self._next_id = 0
        self.malformed = 0  # answers that were not JSON-RPC, or not the shape asked for

    def malformed_answer(self, method: str, detail: str) -> ChainUnreachable:
        """Count a malformed answer and give the error to raise for it (ChainView uses it too)."""
        self.malformed += 1
        return ChainUnreachable(f"{method}: malformed answer from the RPC node: {_one_line(detail)}")

    async def call(self, method: str, params: list[object]) -> object:
        """The ``result`` of ``method(params)``; RpcError or ChainUnreachable as the module says."""
        self._next_id += 1
        request_id = self._next_id
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        try:
            response = await self._http.post(self._url, content=json.dumps(body),
                                             headers={"content-type": "application/json"})
        except httpx.HTTPError as exc:  # connect error, timeout, dropped connection
            raise ChainUnreachable(f"{method}: RPC node unreachable ({type(exc).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise ChainUnreachable(f"{method}: RPC node answered HTTP {response.status_code}")
        try:
            answer = json.loads(response.content)
        except ValueError:
            raise self.malformed_answer(method, f"HTTP {response.status_code}, not JSON") from None
        if not isinstance(answer, dict):
            raise self.malformed_answer(method, "not a JSON-RPC object")
        error = answer.get("error")
        if error is not None:
            self._raise_error(method, error)
        if not 200 <= response.status_code < 300:
            raise self.malformed_answer(method, f"HTTP {response.status_code} without a JSON-RPC error")
        if answer.get("id") != request_id:
            raise self.malformed_answer(method, f"id {answer.get('id')!r}, asked {request_id}")
        if "result" not in answer:
            raise self.malformed_answer(method, "no result")
        return answer["result"]

    def _raise_error(self, method: str, error: object) -> NoReturn:
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):
            raise self.malformed_answer(method, f"error object {error!r}")
        data = error.get("data")
        raise RpcError(error["code"], str(error.get("message", "")), data if isinstance(data, str) else "")

    async def _quantity_of(self, method: str, params: list[object]) -> int:
        result = await self.call(method, params)
        value = _quantity(result)
        if value is None:
            raise self.malformed_answer(method, f"not a quantity: {result!r}")
        return value

    async def _data_of(self, method: str, params: list[object]) -> bytes:
        result = await self.call(method, params)
        value = _data(result)
        if value is None:
            raise self.malformed_answer(method, f"not hex data: {result!r}")
        return value

    async def _latest_block_field(self, field: str) -> int:
        block = await self.call("eth_getBlockByNumber", ["latest", False])
        value = _quantity(block.get(field)) if isinstance(block, dict) else None
        if value is None:
            raise self.malformed_answer("eth_getBlockByNumber", f"no {field} in the latest block")
        return value

    # ----------------------------------------------------------------------- typed reads

    async def chain_id(self) -> int:
        return await self._quantity_of("eth_chainId", [])

    async def block_number(self) -> int:
        return await self._quantity_of("eth_blockNumber", [])

    async def block_timestamp(self) -> int:
        """The latest block's timestamp, Unix seconds: the chain's own now."""
        return await self._latest_block_field("timestamp")

    async def base_fee(self) -> int:
        """The latest block's ``baseFeePerGas`` (wei)."""
        return await self._latest_block_field("baseFeePerGas")

    async def nonce(self, address: str, block: str = "pending") -> int:
        """``eth_getTransactionCount``: ``pending`` counts the node's mempool, ``latest`` only mined."""
        return await self._quantity_of("eth_getTransactionCount", [address, block])

    async def code(self, address: str) -> bytes:
        """The contract code at ``address``; empty when nothing is deployed there."""
        return await self._data_of("eth_getCode", [address, "latest"])

    async def balance(self, address: str) -> int:
        """POL held, in wei."""
        return await self._quantity_of("eth_getBalance", [address, "latest"])

    async def eth_call(self, to: str, data: bytes) -> bytes:
        """What ``to`` returns for ``data`` at the latest block; a revert is ``RpcError``."""
        return await self._data_of("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])

    async def estimate_gas(self, tx: Mapping[str, object]) -> int:
        """Gas ``tx`` would use (ints and bytes in ``tx`` are encoded); a revert is ``RpcError``."""
        return await self._quantity_of("eth_estimateGas", [_tx_param(tx)])

    async def gas_price(self) -> int:
        return await self._quantity_of("eth_gasPrice", [])

    async def max_priority_fee(self) -> int:
        """The node's suggested ``maxPriorityFeePerGas`` (wei)."""
        return await self._quantity_of("eth_maxPriorityFeePerGas", [])

    async def receipt(self, tx_hash: str) -> dict[str, object] | None:
        """The transaction's receipt, or None while it is not mined; one without a readable
        ``status``, ``blockNumber`` or ``gasUsed`` is malformed."""
        result = await self.call("eth_getTransactionReceipt", [tx_hash])
        if result is None:
            return None
        if not isinstance(result, dict) or any(_quantity(result.get(f)) is None
                                               for f in ("status", "blockNumber", "gasUsed")):
            raise self.malformed_answer("eth_getTransactionReceipt", f"not a receipt: {result!r}")
        return result

    async def transaction(self, tx_hash: str) -> dict[str, object] | None:
        """The transaction as the node knows it (pending or mined), or None."""
        result = await self.call("eth_getTransactionByHash", [tx_hash])
        if result is not None and not isinstance(result, dict):
            raise self.malformed_answer("eth_getTransactionByHash", f"not a transaction: {result!r}")
        return result

    # ----------------------------------------------------------------------- the write

    async def send_raw(self, raw: bytes) -> str:
        """Broadcast a signed transaction; the node's answer is its hash (0x, 32 bytes)."""
        result = await self.call("eth_sendRawTransaction", ["0x" + raw.hex()])
        value = _data(result)
        if value is None or len(value) != 32:
            raise self.malformed_answer("eth_sendRawTransaction", f"not a transaction hash: {result!r}")
        return str(result).lower()
