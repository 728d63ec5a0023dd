"""Fault injection: what can go wrong on the venue, on demand (``POST /admin/fault``) or on a
schedule (``SimSettings.faults``).

Channel faults act on the websocket connections (``drop``, ``stall``, ``outage``, ``delay``, ``malformed``);
``tick`` changes a market's tick size; ``fail`` and ``shuffle`` act on one account's user channel;
``throttle``, ``lose`` and ``restart`` on the trading routes, through ``TradingFaults``. A fault is
checked when it is made (``Fault``: its kind, a value of the kind's type within its range) and
against the venue when it is applied (an unknown market or account is a ``ValueError``), so a bad
one is refused and never half-applied.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from mmbot.clock import TrioClock
from mmbot.model import parse_micro
from mmbot.venues.simulator.channels import Channels
from mmbot.venues.simulator.trading import SimTrading, VenueRefusal
from mmbot.venues.simulator.venue import LiveVenue

MALFORMED_FRAME = '{"event_type": "price_change", "market": "0xbad", "price_changes": [{"asset_id": 7'
FAULT_KINDS = ("drop", "stall", "outage", "delay", "tick", "malformed", "fail", "throttle", "restart", "lose", "shuffle",
               "chain_revert", "chain_stuck", "chain_nonce_clash",
               "relayer_failed", "relayer_lost_reply", "relayer_busy", "relayer_slow")
FOREVER = 1 << 63  # a stall with no end
# value: a whole number up to this (or nothing): stall and restart seconds, delay ms, post counts
_COUNTED = {"stall": 86_400, "outage": 86_400, "delay": 60_000, "throttle": 1_000_000, "restart": 86_400, "lose": 1_000_000,
            "chain_revert": 1_000, "chain_stuck": 86_400, "chain_nonce_clash": 1_000,
            "relayer_failed": 1_000, "relayer_lost_reply": 1_000, "relayer_busy": 1_000, "relayer_slow": 86_400}
_BARE = ("drop", "malformed")  # no value
MAX_AT_S = 366 * 86_400  # a schedule within a year of the start
TICKS = ("0.1", "0.01", "0.001", "0.0001")  # the venue's tick sizes
_WHOLE = re.compile(r"[0-9]{1,12}")
_NAME = re.compile(r"[^\s]{1,200}")


@attrs.frozen(kw_only=True)
class Fault:
    """One injected fault. ``value``: stall seconds (0 = until the connection is dropped), outage
    seconds (every websocket connection dropped and new ones refused for that long; 0: 60), delay
    ms (0 clears it), for ``tick`` "<condition id>:<new tick>", for ``fail`` and ``shuffle`` an
    API key (its next trade fails on chain / its next user messages come twice and reversed), for
    ``throttle`` and ``lose`` a count of order posts (429 / accepted but answered 502), for
    ``restart`` seconds of 425; on the simulated chain (``chain_state``), ``chain_revert`` a count of
    transactions or relayer batches that revert, ``chain_stuck`` seconds the next transaction stays
    pending, ``chain_nonce_clash`` a count of sends whose nonce a foreign transaction takes; on the
    relayer (``relayer_state``), ``relayer_failed`` / ``relayer_lost_reply`` / ``relayer_busy`` a
    count of transactions or submits, ``relayer_slow`` seconds (0 clears it)."""

    kind: str
    value: str = ""
    at_s: int = 0  # for a scheduled fault: seconds after the server started

    def __attrs_post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind: expected one of {', '.join(FAULT_KINDS)}, got {self.kind!r}"[:200])
        if type(self.at_s) is not int or not 0 <= self.at_s <= MAX_AT_S:
            raise ValueError(f"fault time: expected whole seconds from 0 to {MAX_AT_S}")
        if type(self.value) is not str:
            raise ValueError("fault value: expected text")
        if self.kind in _COUNTED and self.value and not (
                _WHOLE.fullmatch(self.value) and int(self.value) <= _COUNTED[self.kind]):
            raise ValueError(f"{self.kind}: expected a whole number from 0 to {_COUNTED[self.kind]}, "
                             f"got {self.value!r}"[:200])
        if self.kind in _BARE and self.value:
            raise ValueError(f"{self.kind}: expected no value, got {self.value!r}"[:200])
        if self.kind in ("fail", "shuffle") and not _NAME.fullmatch(self.value):
            raise ValueError(f"{self.kind}: expected an API key")
        if self.kind == "tick":
            market, _, tick = self.value.partition(":")
            if not _NAME.fullmatch(market) or not self.tick_of(tick):
                raise ValueError(f"tick: expected <condition id>:<tick> with a tick of {', '.join(TICKS)}, "
                                 f"got {self.value!r}"[:200])

    @staticmethod
    def tick_of(text: str) -> int:
        """One of the venue's tick sizes, in micro-units; 0 if ``text`` is none."""
        return parse_micro(text) if text in TICKS else 0

    @property
    def count(self) -> int:
        return int(self.value or 0)


@attrs.define
class TradingFaults:
    """Faults waiting for the trading routes: order posts still to be throttled (429) or whose
    answer is to be lost (502), and the end of a matching engine restart (425, server clock)."""

    throttle: int = 0
    lose: int = 0
    restart_until_ns: int = 0

    def take_throttle(self) -> bool:
        if self.throttle:
            self.throttle -= 1
            return True
        return False

    def take_lose(self) -> bool:
        if self.lose:
            self.lose -= 1
            return True
        return False


class FaultInjector:
    def __init__(self, *, venue: LiveVenue, trading: SimTrading, channels: Channels, trading_faults: TradingFaults,
                 clock: TrioClock) -> None:
        self._venue = venue
        self._trading = trading
        self._channels = channels
        self._trading_faults = trading_faults
        self._clock = clock

    def inject(self, fault: Fault) -> dict[str, Any]:
        """Apply ``fault`` now; returns what it touched (the admin endpoint's answer). A fault naming
        a market or account the venue does not know is a ``ValueError``, and nothing changes."""
        channels = self._channels
        conns = channels.everyone()
        if fault.kind == "drop":
            for conn in conns:
                conn.scope.cancel()
            return {"dropped": len(conns)}
        if fault.kind == "stall":
            until = FOREVER if fault.count == 0 else self._clock.now_ns() + fault.count * 1_000_000_000
            for conn in conns:
                conn.stalled_until_ns = until
            return {"stalled": len(conns), "seconds": fault.count or None}
        if fault.kind == "outage":  # the network between us: nothing connects until it is over
            seconds = fault.count or 60
            channels.refuse_until_ns = self._clock.now_ns() + seconds * 1_000_000_000
            for conn in conns:
                conn.scope.cancel()
            return {"dropped": len(conns), "refused_for_s": seconds}
        if fault.kind == "delay":
            channels.delay_s = fault.count / 1000  # float-ok: a trio sleep
            for conn in conns:
                conn.delay_s = channels.delay_s
            return {"delayed": len(conns), "ms": fault.count}
        if fault.kind in ("fail", "shuffle"):
            try:
                self._trading.account(api_key=fault.value)
            except VenueRefusal:
                raise ValueError(f"{fault.kind}: no account has that API key") from None
            feed = self._venue.user_feed
            if fault.kind == "fail":  # the account's next trade goes MATCHED -> RETRYING -> FAILED
                feed.fail_next.add(fault.value)
                return {"fail_next_trade_of": fault.value}
            feed.shuffle_next.add(fault.value)
            return {"shuffle_next_messages_of": fault.value}
        if fault.kind == "throttle":
            self._trading_faults.throttle += fault.count or 1
            return {"throttle": self._trading_faults.throttle}
        if fault.kind == "lose":
            self._trading_faults.lose += fault.count or 1
            return {"lose": self._trading_faults.lose}
        if fault.kind == "restart":
            seconds = fault.count or 90
            self._trading_faults.restart_until_ns = self._clock.now_ns() + seconds * 1_000_000_000
            return {"restart_s": seconds}
        if fault.kind == "tick":
            market, _, tick = fault.value.partition(":")
            if market not in {m.market for m in self._venue.markets()}:
                raise ValueError(f"tick: no market {market!r}"[:200])
            frames = self._venue.set_tick(market, Fault.tick_of(tick))
            channels.publish(frames)
            return {"market": market, "tick": tick, "frames": len(frames)}
        for conn in channels.market.values():  # malformed: on the market channel
            channels.enqueue(conn, MALFORMED_FRAME)
        return {"malformed_to": len(channels.market)}
