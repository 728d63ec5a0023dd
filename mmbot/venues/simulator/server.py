"""The venue simulator on loopback: Polymarket's market and user channels over trio-websocket, its
public and signed REST and a Gamma-like listing over hypercorn + Starlette, and fault injection —
around the sans-IO ``LiveVenue``.

One flow task steps the venue every ``step_ms``, hands each frame to the connections concerned
(``channels``), expires lapsed heartbeats, and lets the venue forget what ended ``retain_s`` ago
on the server's clock (``retention``). The HTTP routes are grouped by concern in ``routes/``.
The simulated chain (``chain_state.SimChain``, ``server.chain``) makes its blocks on the server's
clock from the same flow task and answers JSON-RPC at ``POST /rpc``. Faults (``faults``) come from
the admin endpoint (``POST /admin/fault``) or from a schedule in the settings.

Access: API keys come from ``access.ApiKeys``, under a secret made when the server is; the admin
endpoints answer loopback clients holding ``admin_token`` (random unless given); no request body
is read past ``limits.MAX_BODY_BYTES``.
"""

from __future__ import annotations

import functools
import random
import secrets
from typing import Any, Callable

import attrs
import trio
import trio_websocket
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.middleware import Middleware

from mmbot.clock import TrioClock
from mmbot.venues.polymarket.auth import ApiCredentials
from mmbot.venues.simulator.access import ApiKeys
from mmbot.venues.simulator.chain_state import CHAIN_FAULTS, SimChain
from mmbot.venues.simulator.channels import Channels
from mmbot.venues.simulator.faults import FAULT_KINDS, Fault, FaultInjector, TradingFaults
from mmbot.venues.simulator.limits import BodyLimit
from mmbot.venues.simulator.relayer_state import RELAYER_FAULTS, RelayerKeys, SimRelayer
from mmbot.venues.simulator.retention import Horizon
from mmbot.venues.simulator.routes.admin import AdminRoutes
from mmbot.venues.simulator.routes.inbox import AlertInbox
from mmbot.venues.simulator.routes.auth import AuthRoutes
from mmbot.venues.simulator.routes.gamma import GammaListing
from mmbot.venues.simulator.routes.market import MarketData
from mmbot.venues.simulator.routes.relayer import RelayerRoutes
from mmbot.venues.simulator.routes.rpc import RpcRoutes
from mmbot.venues.simulator.routes.trading import TradingRoutes
from mmbot.venues.simulator.trading import DEFAULT_FUNDING, SimTrading
from mmbot.venues.simulator.venue import LiveVenue, OutFrame

__all__ = ["FAULT_KINDS", "Fault", "SimServer", "SimSettings", "SimUrls"]


@attrs.frozen(kw_only=True)
class SimSettings:
    seed: int = 0
    markets: int = 4  # markets at a time; one Up/Down series per four
    interval_s: int = 300
    step_ms: int = 100  # how often the world moves (and frames go out)
    speed: int = 1  # simulated seconds per real second
    rate: int = 0  # if set: market frames per second, the world's clock running as fast as that needs
    queue_frames: int = 10_000  # per connection; a client this far behind is disconnected
    funding: int = DEFAULT_FUNDING  # pUSD (micro) each trading account starts with
    faults: tuple[Fault, ...] = ()
    # resolved markets, ended orders' ids and trade records of forgotten markets: kept this long
    # on the server's clock after they ended (also ``POST /admin/settings``)
    retain_s: int = 600
    # price_change as one message per market and step (the older shape) instead of the venue's
    # one or two entries a message
    batched_price_changes: bool = False
    block_ms: int = 2_000  # the simulated chain's block time, on the server's clock


@attrs.frozen
class SimUrls:
    ws: str  # the market channel
    rest: str  # CLOB REST
    # the Gamma-like listing's base URL (``/markets``, ``/events`` under it), on the REST origin
    gamma: str = attrs.field(default=attrs.Factory(lambda self: f"{self.rest}/gamma", takes_self=True))
    # the simulated chain's JSON-RPC node and the relayer, on the REST origin
    rpc: str = attrs.field(default=attrs.Factory(lambda self: f"{self.rest}/rpc", takes_self=True))
    relayer: str = attrs.field(default=attrs.Factory(lambda self: f"{self.rest}/relayer", takes_self=True))

    def lines(self) -> list[str]:
        return [f"market channel  {self.ws}", f"REST            {self.rest}", f"Gamma listing   {self.gamma}",
                f"chain JSON-RPC  {self.rpc}", f"relayer         {self.relayer}",
                f"fault injection POST {self.rest}/admin/fault", f"funding         POST {self.rest}/admin/fund"]


class SimServer:
    def __init__(self, venue: LiveVenue, *, settings: SimSettings, clock: TrioClock | None = None,
                 admin_token: str = "", secrets_from: random.Random | None = None,
                 on_alert: Callable[[str], None] = lambda line: None) -> None:
        """``clock``: the server's wall clock (signed timestamps must be near it). ``admin_token``:
        what the admin endpoints require (random if not given); ``secrets_from``: a seeded
        generator for the token and the API keys' secret, only for tests that want them the same
        every run."""
        self.venue = venue
        self.admin_token = admin_token or (
            secrets.token_urlsafe(24) if secrets_from is None else secrets_from.randbytes(24).hex())
        self.keys = ApiKeys(secrets_from)
        self.inbox = AlertInbox(on_alert)  # a webhook receiver for trying mmbot's alerts (``routes/inbox.py``)
        venue.batch_price_changes(settings.batched_price_changes)
        self.trading = SimTrading(venue.engine, venue.user_feed, funding=settings.funding, seed=settings.seed,
                                  settle=venue.settle)
        self._clock = clock or TrioClock()
        self._settings = settings
        self.chain = SimChain(trading=self.trading, engine=venue.engine, block_ms=settings.block_ms,
                              rng=random.Random(f"{settings.seed}/chain"))
        self.trading.chain = self.chain  # deposit wallets (POLY_1271 orders) live on it
        self.relayer = SimRelayer(self.chain, rng=random.Random(f"{settings.seed}/relayer"),
                                  keys=RelayerKeys(secrets_from))
        self.counts = {"frames_sent": 0, "frames_dropped_stalled": 0, "slow_disconnects": 0, "pings": 0,
                       "bad_client_messages": 0, "faults": 0, "faults_refused": 0, "heartbeat_cancels": 0}
        self.channels = Channels(venue=venue, trading=self.trading, clock=self._clock,
                                 queue_frames=settings.queue_frames, counts=self.counts)
        self._trading_faults = TradingFaults()
        self._faults = FaultInjector(venue=venue, trading=self.trading, channels=self.channels,
                                     trading_faults=self._trading_faults, clock=self._clock)
        self.horizon = Horizon(settings.retain_s)
        self._started_ns = 0
        self._venue_start_ns = venue.now_ns
        self._paused = False
        self._produced = 0  # frames made in rate mode

    # ------------------------------------------------------------------ running

    async def run(self, *, host: str = "127.0.0.1", http_port: int = 0, ws_port: int = 0,
                  task_status: trio.TaskStatus[SimUrls] = trio.TASK_STATUS_IGNORED) -> None:
        self._started_ns = self._clock.now_ns()
        self.chain.advance(self._started_ns)
        async with trio.open_nursery() as nursery:
            ws_server = await nursery.start(
                functools.partial(trio_websocket.serve_websocket, self.channels.on_connection, host, ws_port, None,
                                  handler_nursery=nursery, max_message_size=1 << 20)
            )
            config = HypercornConfig()
            config.bind = [f"{host}:{http_port}"]
            config.accesslog = None
            config.errorlog = None
            # hypercorn's 5 s default closes an idle connection just as a client's 5 s heartbeat
            # reuses it (a request lost in flight); the venue's front end keeps them far longer
            config.keep_alive_timeout = 75
            binds = await nursery.start(functools.partial(hypercorn_serve, self.http_app(), config))
            nursery.start_soon(self._flow)
            for fault in self._settings.faults:
                nursery.start_soon(self._scheduled, fault)
            self.user_url = f"ws://{host}:{ws_server.port}/ws/user"
            task_status.started(SimUrls(ws=f"ws://{host}:{ws_server.port}/ws/market", rest=binds[0]))

    def venue_ns(self) -> int:
        """Venue time: the warm-up's end plus ``speed`` times the real time since start."""
        return self._venue_start_ns + (self._clock.now_ns() - self._started_ns) * self._settings.speed

    async def _flow(self) -> None:
        step_ns = self._settings.step_ms * 1_000_000
        deadline = self._clock.now_ns()
        while True:
            deadline += step_ns
            await self._clock.sleep_until(deadline)
            self.chain.advance(self._clock.now_ns())  # blocks go on while the world is paused
            self.relayer.advance(self._clock.now_ns(), retain_s=self.horizon.retain_s)
            if self._paused:
                continue
            self.counts["heartbeat_cancels"] += self.trading.expire_heartbeats(self._clock.now_ns(), self.venue.now_ns)
            if not self._settings.rate:
                self.publish(self.venue.step(self.venue_ns()))
                self.publish_user()
            else:
                # Rate mode: move the world on in small steps until it has made this second's share.
                due = (self._clock.now_ns() - self._started_ns) * self._settings.rate // 1_000_000_000
                for _ in range(10_000):  # a quiet world cannot hold the loop for ever
                    if self._produced >= due:
                        break
                    frames = self.venue.step(self.venue.now_ns + 20_000_000)
                    self._produced += len(frames)
                    self.publish(frames)
                    self.publish_user()
            self._forget()

    def _forget(self) -> None:
        before_ns = self.horizon.mark(self._clock.now_ns(), self.venue.now_ns)
        if before_ns is not None:
            self.chain.keep_resolutions(self.venue.engine.resolved_before(before_ns))
            self.channels.forget_assets(self.venue.forget(before_ns))

    def pause(self) -> None:
        """Hold the world still (frames already queued still go out); ``resume`` lets it go on."""
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def publish(self, frames: list[OutFrame]) -> None:
        """Hand every frame to the connections it concerns; never waits for any of them."""
        self.channels.publish(frames)

    def publish_user(self) -> None:
        self.channels.publish_user()

    def add_account(self, address: str, creds: ApiCredentials, *, cash: int | None = None) -> None:
        """An account that may trade and listen on the user channel, funded with ``cash`` pUSD
        (the settings' ``funding`` if not given). Its address derives these credentials (nonce 0)
        unless it has some already."""
        self.trading.add_account(address, creds, cash=cash)
        self.keys.register(address, creds)

    # ------------------------------------------------------------------ faults

    def inject(self, fault: Fault) -> dict[str, Any]:
        """Apply ``fault`` now; returns what it touched (the admin endpoint's answer). A fault the
        venue cannot apply (an unknown market or account) is a ``ValueError``."""
        if fault.kind in CHAIN_FAULTS:
            injected = self.chain.inject(fault.kind, fault.count)
        elif fault.kind in RELAYER_FAULTS:
            injected = self.relayer.faults.inject(fault.kind, fault.count)
        else:
            injected = self._faults.inject(fault)
        self.counts["faults"] += 1
        return injected

    def admin_headers(self) -> dict[str, str]:
        """What an admin request must carry (for in-process callers)."""
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def _scheduled(self, fault: Fault) -> None:
        await self._clock.sleep_until(self._started_ns + fault.at_s * 1_000_000_000)
        try:
            self.inject(fault)
        except Exception:  # noqa: BLE001 - a scheduled fault that cannot apply is counted, never fatal
            self.counts["faults_refused"] += 1

    def statistics(self) -> dict[str, Any]:
        return {**self.counts, "connections": len(self.channels.market), "opened": self.channels.opened,
                "venue_ns": self.venue.now_ns, "frames_rendered": self.venue.frames_rendered,
                "retain_s": self.horizon.retain_s, "forgotten": dict(self.venue.forgotten),
                "chain": {**self.chain.counts, "block": self.chain.block_number, **self.chain.sizes()},
                "sizes": {**self.venue.sizes(), "user_connections": sum(len(c) for c in self.channels.user.values()),
                          "subscribed_assets": sum(len(c.assets) for c in self.channels.market.values())}}

    # ------------------------------------------------------------------ HTTP

    def http_app(self) -> Starlette:
        """Every route, by concern: market data, the listing, API keys, trading, admin."""
        return Starlette(middleware=[Middleware(BodyLimit)], routes=[
            *MarketData(self.venue).routes(),
            *GammaListing(self.venue).routes(),
            *AuthRoutes(self.trading, keys=self.keys, clock=self._clock).routes(),
            *TradingRoutes(trading=self.trading, faults=self._trading_faults, venue=self.venue,
                           clock=self._clock).routes(),
            *AdminRoutes(inject=self.inject, statistics=self.statistics, trading=self.trading,
                         horizon=self.horizon, token=self.admin_token, chain=self.chain).routes(),
            *RpcRoutes(self.chain, clock=self._clock).routes(),
            *self.inbox.routes(),
            *RelayerRoutes(relayer=self.relayer, clock=self._clock, admin_token=self.admin_token).routes(),
        ])
