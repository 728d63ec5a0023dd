"""Support for tests/test_official_client.py: ``mmbot sim`` on real loopback sockets in a thread of
its own (its own ``trio.run``), accounts driven by Polymarket's official client
(py-clob-client-v2), and a key-for-key, type-for-type comparison with the captured samples.

The world is quiet: no background maker, taker or dislocation ever acts, so every book holds only
what the tests rest there and every fill is against a test account's own liquidity. Venue time
runs at the wall clock's pace (speed 1) from the wall clock's now, as under ``mmbot sim``, since
the official client signs with the wall clock (L2 timestamps, GTD expirations).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio
from py_clob_client_v2 import ClobClient, OrderArgsV2, OrderType
from py_clob_client_v2.exceptions import PolyApiException

from mmbot.model import ONE, MarketInfo
from mmbot.venues.simulator.flow import FlowParams
from mmbot.venues.simulator.server import SimServer, SimSettings
from mmbot.venues.simulator.venue import LiveVenue

SAMPLES = Path(__file__).resolve().parent / "fixtures" / "polymarket"
CHAIN_ID = 137
# Hardhat's public test keys (never funded anywhere real)
KEY_A = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
KEY_B = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
KEY_C = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"
KEY_D = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"
SPLIT = 200  # shares of each token of each plain market an account starts with (a split on chain)
QUIET = FlowParams(makers_per_market=0, taker_ms=(10**9, 10**9), first_dislocation_s=(10**6, 10**6),
                   tick_dwell_s=10**6)


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def D(text: Any) -> Decimal:
    return Decimal(str(text))


class RunningSim:
    """``SimServer`` over a quiet ``LiveVenue``, served from a thread of its own until ``stop``."""

    def __init__(self, *, seed: int = 11, markets: int = 8) -> None:
        self.venue = LiveVenue(seed=seed, markets=markets, start_ns=time.time_ns(), warmup_s=1, params=QUIET)
        self.settings = SimSettings(seed=seed, markets=markets)
        self.plain: list[MarketInfo] = [spec.info for spec in self.venue.plan.plain]
        self.server: SimServer | None = None
        self.a: ClobClient | None = None  # the test's accounts, once it has made them
        self.b: ClobClient | None = None
        self._ready: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._main, name="mmbot-sim", daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            self.server = SimServer(self.venue, settings=self.settings)
            async with trio.open_nursery() as nursery:
                urls = await nursery.start(self.server.run)
                self._ready.put((urls, trio.lowlevel.current_trio_token(), nursery.cancel_scope))

        try:
            trio.run(serve)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting test
            self._ready.put(exc)

    def start(self) -> RunningSim:
        self._thread.start()
        started = self._ready.get(timeout=60)
        if isinstance(started, BaseException):
            raise started
        urls, self._token, self._scope = started
        self.rest, self.ws_market = urls.rest, urls.ws
        self.ws_user = self.server.user_url
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` on the server's thread, between its steps."""
        return trio.from_thread.run_sync(fn, trio_token=self._token)

    def stop(self) -> None:
        trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(timeout=30)
        assert not self._thread.is_alive(), "the simulator did not stop"

    def split(self, client: ClobClient, shares: int = SPLIT) -> None:
        """The account splits ``shares`` pUSD into as many of both tokens of every plain market
        (an on-chain step the venue only sees as a deposit of shares)."""
        key = client.creds.api_key
        for info in self.plain:
            self.call(lambda info=info: self.server.trading.give(
                key, cash=-shares * ONE, shares={token: shares * ONE for token in info.tokens}))


def trader(rest: str, key: str) -> ClobClient:
    """An L2 client whose API credentials the venue gave it (``create_or_derive_api_key``)."""
    client = ClobClient(rest, chain_id=CHAIN_ID, key=key)
    client.set_api_creds(client.create_or_derive_api_key())
    return client


def rest_order(client: ClobClient, token: str, side: str, price: float, size: float) -> str:
    """A resting GTC limit order; its order id."""
    answer = client.create_and_post_order(OrderArgsV2(token_id=token, price=price, size=size, side=side),
                                          order_type=OrderType.GTC)
    assert answer["success"] and answer["status"] == "live", answer
    return answer["orderID"]


def refusal(call: Callable[[], Any]) -> str:
    """The venue's reason for refusing ``call()``: a 4xx ``{"error": …}`` or a ``success: false``
    answer; anything else fails the test."""
    try:
        answer = call()
    except PolyApiException as exc:
        assert exc.status_code is not None and 400 <= exc.status_code < 500, exc
        return json.dumps(exc.error_msg)
    assert isinstance(answer, dict) and (answer.get("success") is False or answer.get("errorMsg")), answer
    return str(answer["errorMsg"])


def status_of(call: Callable[[], Any]) -> int | None:
    try:
        call()
    except PolyApiException as exc:
        return exc.status_code
    return 200


