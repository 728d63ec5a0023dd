"""The JSON-RPC client and the typed chain reads against a fake node (httpx.MockTransport): each
request's method and hex-encoded params, each answer's parsing, errors into RpcError or
ChainUnreachable, malformed answers counted; ChainView's calldata checked by contracts.decode and
its results encoded by eth-abi as a contract would."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from eth_abi import encode as abi_encode

from mmbot.venues.polymarket import contracts
from mmbot.venues.polymarket.auth import parse_address
from mmbot.venues.polymarket.chain_types import ChainUnreachable
from mmbot.venues.polymarket.chain_view import ChainView
from mmbot.venues.polymarket.deposit_wallet import FACTORY, WalletKind, kind_on_chain, legacy_address
from mmbot.venues.polymarket.rpc import RpcClient, RpcError

OWNER = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
WALLET = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"
HASH = "0x" + "ab" * 32

Answer = Callable[[list[Any]], Any]


class Node:
    """Answers ``method`` with ``results[method]`` (a value, or a function of the params); each
    request is kept. ``raw`` replaces the next answer with an httpx.Response or an exception."""

    def __init__(self, results: dict[str, Any] | None = None) -> None:
        self.results: dict[str, Any] = dict(results or {})
        self.requests: list[dict[str, Any]] = []
        self.raw: list[Any] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        assert request.method == "POST" and request.headers["content-type"] == "application/json"
        assert body["jsonrpc"] == "2.0" and isinstance(body["id"], int)
        if self.raw:
            planned = self.raw.pop(0)
            if isinstance(planned, Exception):
                raise planned
            return planned
        result = self.results[body["method"]]
        if callable(result):
            result = result(body["params"])
        if isinstance(result, RpcError):
            return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"],
                                             "error": {"code": result.code, "message": result.message,
                                                       "data": result.data}})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": body["id"], "result": result})

    def last(self) -> tuple[str, list[Any]]:
        return self.requests[-1]["method"], self.requests[-1]["params"]


def client(node: Node) -> RpcClient:
    return RpcClient(httpx.AsyncClient(transport=httpx.MockTransport(node), base_url="http://node"), "/rpc")


async def test_each_helper_asks_its_method_with_hex_params_and_parses_the_answer() -> None:
    node = Node({
        "eth_chainId": "0x89", "eth_blockNumber": "0x4b7", "eth_getTransactionCount": "0x1f",
        "eth_getCode": "0x6080", "eth_getBalance": "0xde0b6b3a7640000", "eth_call": "0x" + "00" * 31 + "07",
        "eth_estimateGas": "0x186a0", "eth_gasPrice": "0x6fc23ac00", "eth_maxPriorityFeePerGas": "0x6fc23ac00",
        "eth_getBlockByNumber": {"number": "0x4b7", "timestamp": "0x6a4e1c40", "baseFeePerGas": "0x3b9aca00"},
        "eth_sendRawTransaction": HASH, "eth_getTransactionReceipt": None, "eth_getTransactionByHash": None,
    })
    rpc = client(node)
    assert await rpc.chain_id() == 137 and node.last() == ("eth_chainId", [])
    assert await rpc.block_number() == 1207 and node.last() == ("eth_blockNumber", [])
    assert await rpc.block_timestamp() == 0x6A4E1C40 and node.last() == ("eth_getBlockByNumber", ["latest", False])
    assert await rpc.base_fee() == 10**9
    assert await rpc.nonce(OWNER) == 31 and node.last() == ("eth_getTransactionCount", [OWNER, "pending"])
    assert await rpc.nonce(OWNER, "latest") == 31 and node.last()[1] == [OWNER, "latest"]
    assert await rpc.code(WALLET) == b"\x60\x80" and node.last() == ("eth_getCode", [WALLET, "latest"])
    assert await rpc.balance(OWNER) == 10**18 and node.last() == ("eth_getBalance", [OWNER, "latest"])
    assert await rpc.eth_call(WALLET, b"\xaf\xfe\xd0\xe0") == bytes(31) + b"\x07"
    assert node.last() == ("eth_call", [{"to": WALLET, "data": "0xaffed0e0"}, "latest"])
    assert await rpc.estimate_gas({"from": OWNER, "to": WALLET, "data": b"\x01\x02", "value": 0}) == 100_000
    assert node.last() == ("eth_estimateGas", [{"from": OWNER, "to": WALLET, "data": "0x0102", "value": "0x0"}])
    assert await rpc.gas_price() == 30 * 10**9 and node.last() == ("eth_gasPrice", [])
    assert await rpc.max_priority_fee() == 30 * 10**9 and node.last() == ("eth_maxPriorityFeePerGas", [])
    assert await rpc.send_raw(b"\x02\xf8\x01") == HASH and node.last() == ("eth_sendRawTransaction", ["0x02f801"])
    assert await rpc.receipt(HASH) is None and node.last() == ("eth_getTransactionReceipt", [HASH])
    assert await rpc.transaction(HASH) is None and node.last() == ("eth_getTransactionByHash", [HASH])
    node.results["eth_getTransactionReceipt"] = {"status": "0x1", "blockNumber": "0x4b7", "gasUsed": "0x5208"}
    assert (await rpc.receipt(HASH))["status"] == "0x1"
    assert [r["id"] for r in node.requests] == list(range(1, len(node.requests) + 1))  # ids from a counter
    assert rpc.malformed == 0


@pytest.mark.parametrize(("base", "url", "posted"), [
    ("http://node/v2/KEY", "", "http://node/v2/KEY"),  # a provider URL ending in its key: no slash added
    ("http://127.0.0.1:8080/rpc", "", "http://127.0.0.1:8080/rpc"),
    ("http://node", "", "http://node/"),
    ("http://node", "/rpc", "http://node/rpc"),
])
async def test_the_request_goes_to_the_url_as_given(base: str, url: str, posted: str) -> None:
    seen: list[str] = []

    def node(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": 1, "result": "0x89"})

    rpc = RpcClient(httpx.AsyncClient(transport=httpx.MockTransport(node), base_url=base), url)
    assert await rpc.chain_id() == 137 and seen == [posted]


async def test_a_json_rpc_error_object_is_an_rpc_error_of_one_line_with_its_data() -> None:
    node = Node({"eth_estimateGas": RpcError(3, "execution reverted:\nnot enough\nshares", "0x08c379a0")})
    rpc = client(node)
    with pytest.raises(RpcError) as caught:
        await rpc.estimate_gas({"to": WALLET, "data": b""})
    assert caught.value.code == 3 and caught.value.data == "0x08c379a0" and caught.value.reverted
    assert str(caught.value) == "RPC error 3: execution reverted: not enough shares"
    node.results["eth_sendRawTransaction"] = RpcError(-32000, "nonce too low")
    with pytest.raises(RpcError, match="nonce too low") as caught:
        await rpc.send_raw(b"\x02")
    assert not caught.value.reverted and rpc.malformed == 0


@pytest.mark.parametrize("failure", [
    httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.Response(502, text="bad gateway"),
    httpx.Response(503), httpx.Response(429, text="slow down"),
])
async def test_no_answer_is_chain_unreachable_and_not_malformed(failure: Any) -> None:
    node = Node({"eth_blockNumber": "0x1"})
    node.raw.append(failure)
    rpc = client(node)
    with pytest.raises(ChainUnreachable, match="eth_blockNumber"):
        await rpc.block_number()
    assert rpc.malformed == 0
    assert await rpc.block_number() == 1  # the next request is answered as usual


def _reply(body: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, content=body if isinstance(body, bytes) else json.dumps(body).encode())


@pytest.mark.parametrize("answer", [
    _reply(b"<html>not json</html>"),
    _reply([1, 2]),
    _reply({"jsonrpc": "2.0", "id": 1}),  # no result
    _reply({"jsonrpc": "2.0", "id": 99, "result": "0x1"}),  # another request's id
    _reply({"jsonrpc": "2.0", "id": 1, "result": "12"}),  # not a hex quantity
    _reply({"jsonrpc": "2.0", "id": 1, "result": "0x"}),
    _reply({"jsonrpc": "2.0", "id": 1, "result": None}),
    _reply({"jsonrpc": "2.0", "id": 1, "error": "boom"}),  # an error that is not an error object
    _reply({"jsonrpc": "2.0", "id": 1, "result": "0x1"}, status=404),
])
async def test_a_malformed_answer_is_counted_and_raised_as_chain_unreachable(answer: httpx.Response) -> None:
    node = Node()
    node.raw.append(answer)
    rpc = client(node)
    with pytest.raises(ChainUnreachable, match="malformed answer"):
        await rpc.block_number()
    assert rpc.malformed == 1


@pytest.mark.parametrize(("method", "call", "result"), [
    ("eth_getCode", lambda rpc: rpc.code(WALLET), "0xzz"),
    ("eth_getCode", lambda rpc: rpc.code(WALLET), 7),
    ("eth_sendRawTransaction", lambda rpc: rpc.send_raw(b"\x02"), "0x1234"),  # not 32 bytes
    ("eth_getTransactionReceipt", lambda rpc: rpc.receipt(HASH), {"status": "0x1"}),  # no block, no gas
    ("eth_getTransactionReceipt", lambda rpc: rpc.receipt(HASH), ["0x1"]),
    ("eth_getTransactionByHash", lambda rpc: rpc.transaction(HASH), "0xab"),
    ("eth_getBlockByNumber", lambda rpc: rpc.base_fee(), {"number": "0x1"}),  # no baseFeePerGas
    ("eth_getBlockByNumber", lambda rpc: rpc.block_timestamp(), None),
])
async def test_a_result_of_the_wrong_shape_is_malformed(method: str, call: Any, result: Any) -> None:
    rpc = client(Node({method: result}))
    with pytest.raises(ChainUnreachable, match="malformed"):
        await call(rpc)
    assert rpc.malformed == 1


# --------------------------------------------------------------------------- ChainView


class Contracts:
    """eth_call answered as Polymarket's contracts would: the calldata decoded by contracts.decode
    (so a wrong selector or argument fails the test), the result encoded by eth-abi."""

    def __init__(self) -> None:
        self.pusd = {WALLET: 12_500_000}
        self.shares = {(WALLET, 101): 3 * 10**6, (WALLET, 102): 0}
        self.allowances: dict[tuple[str, str], int] = {}
        self.operators: set[tuple[str, str]] = set()
        self.code = {WALLET: b"\x60\x80"}
        self.beacon: Any = "0x7A18EDfe055488A3128f01F563e5B479D92ffc3a"
        self.calls: list[tuple[str, str]] = []

    def eth_call(self, params: list[Any]) -> Any:
        target, data = params[0]["to"], bytes.fromhex(params[0]["data"][2:])
        assert params[1] == "latest"
        function, args = contracts.decode(data)
        self.calls.append((function.name, target))
        if target == FACTORY:
            if isinstance(self.beacon, RpcError):
                return self.beacon
            return "0x" + (abi_encode(["address"], [self.beacon]).hex() if self.beacon else "")
        if function is contracts.BALANCE_OF:
            assert target == contracts.PUSD
            return _words(["uint256"], [self.pusd.get(args[0], 0)])
        if function is contracts.BALANCE_OF_BATCH:
            assert target == contracts.CTF
            owners, ids = args
            return _words(["uint256[]"], [[self.shares.get((parse_address(o), t), 0) for o, t in zip(owners, ids)]])
        if function is contracts.ALLOWANCE:
            assert target == contracts.PUSD
            return _words(["uint256"], [self.allowances.get(args, 0)])
        if function is contracts.IS_APPROVED_FOR_ALL:
            assert target == contracts.CTF
            return _words(["bool"], [args in self.operators])
        if function is contracts.WALLET_NONCE:
            return _words(["uint256"], [5])
        if function is contracts.WALLET_OWNER:
            return _words(["address"], [OWNER])
        raise AssertionError(function)

    def node(self) -> Node:
        return Node({"eth_call": self.eth_call, "eth_getCode": lambda p: "0x" + self.code.get(p[0], b"").hex(),
                     "eth_getBlockByNumber": {"timestamp": "0x6a4e1c40", "baseFeePerGas": "0x1"}})


def _words(types: list[str], values: list[Any]) -> str:
    return "0x" + abi_encode(types, values).hex()


async def test_chain_view_reads_balances_shares_allowances_approvals_and_the_wallet() -> None:
    chain = Contracts()
    chain.allowances[(WALLET, contracts.CTF_ADAPTER)] = contracts.MAX_UINT256
    chain.operators.add((WALLET, contracts.CTF_ADAPTER))
    view = ChainView(client(chain.node()))
    assert await view.pusd(WALLET) == 12_500_000 and await view.pusd(OWNER) == 0
    assert await view.shares(WALLET, ["101", "102", "103"]) == [3 * 10**6, 0, 0]
    assert await view.shares(WALLET, []) == [] and chain.calls[-1][0] == "balanceOfBatch"  # no call for none
    assert await view.allowance(WALLET, contracts.CTF_ADAPTER) == contracts.MAX_UINT256
    assert await view.allowance(WALLET, contracts.CTF) == 0
    assert await view.approved(WALLET, contracts.CTF_ADAPTER) and not await view.approved(WALLET, OWNER)
    assert await view.wallet_nonce(WALLET) == 5 and chain.calls[-1] == ("nonce", WALLET)
    assert await view.wallet_owner(WALLET) == OWNER
    assert await view.wallet_owner(OWNER) is None and chain.calls[-1] != ("owner", OWNER)  # no code: not asked
    assert await view.code(WALLET) == b"\x60\x80" and await view.code(OWNER) == b""
    assert await view.now_s() == 0x6A4E1C40
    assert view.rpc.malformed == 0


async def test_missing_approvals_are_the_trading_approvals_not_in_place() -> None:
    chain = Contracts()
    view = ChainView(client(chain.node()))
    assert await view.missing_approvals(WALLET) == contracts.trading_approvals()  # nothing granted yet
    for spender in contracts.PUSD_SPENDERS:
        chain.allowances[(WALLET, spender)] = contracts.MAX_UINT256
    for operator in contracts.CTF_OPERATORS:
        chain.operators.add((WALLET, operator))
    chain.allowances[(WALLET, contracts.EXCHANGE_V2)] = 2**255 - 1  # spent down below "unlimited"
    chain.operators.discard((WALLET, contracts.NEG_RISK_CTF_ADAPTER))
    assert await view.missing_approvals(WALLET) == [
        contracts.approve_call(contracts.EXCHANGE_V2), contracts.operator_call(contracts.NEG_RISK_CTF_ADAPTER)]
    chain.allowances[(WALLET, contracts.EXCHANGE_V2)] = 2**255
    chain.operators.add((WALLET, contracts.NEG_RISK_CTF_ADAPTER))
    assert await view.missing_approvals(WALLET) == []


async def test_factory_beacon_is_none_on_revert_empty_or_zero_and_decides_the_wallet_kind() -> None:
    chain = Contracts()
    view = ChainView(client(chain.node()))
    assert await view.factory_beacon(FACTORY) == "0x7A18EDfe055488A3128f01F563e5B479D92ffc3a"
    assert await kind_on_chain(view, OWNER) is WalletKind.BEACON
    chain.code[legacy_address(OWNER)] = b"\x60"
    assert await kind_on_chain(view, OWNER) is WalletKind.LEGACY  # code at the legacy address wins
    del chain.code[legacy_address(OWNER)]
    for no_beacon in (RpcError(3, "execution reverted"), "0x" + "00" * 20, ""):
        chain.beacon = no_beacon
        assert await view.factory_beacon(FACTORY) is None
        assert await kind_on_chain(view, OWNER) is WalletKind.LEGACY
    chain.beacon = RpcError(-32005, "rate limited")  # not a revert: the node's error stands
    with pytest.raises(RpcError):
        await view.factory_beacon(FACTORY)
    assert view.rpc.malformed == 0


@pytest.mark.parametrize("result", ["0x1234", "0x" + "ff" * 32 + "01"])
async def test_a_result_that_does_not_decode_is_malformed(result: str) -> None:
    node = Node({"eth_call": result, "eth_getCode": "0x60"})
    view = ChainView(client(node))
    with pytest.raises(ChainUnreachable, match="malformed"):
        await view.shares(WALLET, ["1"])
    with pytest.raises(ChainUnreachable, match="malformed"):
        await view.wallet_owner(WALLET)
    assert view.rpc.malformed == 2


async def test_shares_of_the_wrong_length_are_malformed() -> None:
    view = ChainView(client(Node({"eth_call": _words(["uint256[]"], [[1]])})))
    with pytest.raises(ChainUnreachable, match="malformed"):
        await view.shares(WALLET, ["1", "2"])
    assert view.rpc.malformed == 1
