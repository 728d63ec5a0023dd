"""When new orders may go out with signed trading, sans-IO.

A fill is only ever learnt from the user channel (or a REST catch-up of its trades). So an order
may be placed only while the user channel is connected *and* the trades it may have missed
before that connection came up have been fetched: otherwise a quote could fill unseen and the
ledger part from the venue. ``TradingGateState`` follows the channel's connections (numbered
1, 2, ... as they come up) and the catch-ups (each tagged with the connection that was up when it
began); the gate is open exactly when the current connection is up, a catch-up that began
while it was up has finished, and the heartbeats are getting through (two missed in a row and the
venue cancels every resting order of ours: quoting then only feeds its dead-man switch).
"""

from __future__ import annotations


class TradingGateState:
    def __init__(self) -> None:
        self.connected = False
        self.connection = 0  # the latest connection's number (0: never connected)
        self._caught_up = 0  # the latest connection a finished catch-up began under
        self.heartbeats_ok = True

    def on_up(self, connection: int) -> None:
        if connection <= self.connection:
            raise ValueError(f"connection {connection} after {self.connection}: numbers only grow")
        self.connected = True
        self.connection = connection

    def on_down(self) -> None:
        self.connected = False

    def on_caught_up(self, began_under: int) -> None:
        """A catch-up finished that began while connection ``began_under`` was up (0: while down)."""
        self._caught_up = max(self._caught_up, began_under)

    def on_heartbeats(self, ok: bool) -> None:
        self.heartbeats_ok = ok

    @property
    def open(self) -> bool:
        return self.connected and self.connection > 0 and self._caught_up == self.connection and self.heartbeats_ok

    def why_closed(self) -> str:
        if self.connection == 0:
            return "the user channel has not connected yet"
        if not self.connected:
            return "the user channel is down"
        if self._caught_up != self.connection:
            return "catching up with the trades the user channel may have missed"
        if not self.heartbeats_ok:
            return "heartbeats are failing: the venue cancels our orders"
        return ""
