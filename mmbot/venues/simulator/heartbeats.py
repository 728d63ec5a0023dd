"""Cancel-on-disconnect, sans-IO: each API key's heartbeat chain, and the cancels when it stops.

``POST /v1/heartbeats`` (what every official client sends) and the older ``POST /heartbeats``
with a body both chain: the client echoes the latest id (``""`` the first time) and gets the
next; a stale or unknown id is refused with the current one. ``POST /heartbeats`` without a
body is the legacy form: no id, and the chain starts again from ``""`` (polymarket-onchain.md
§6). Either keeps the account's orders alive; ``HEARTBEAT_LIMIT_NS`` after an account's last
heartbeat every one of its orders is cancelled. Heartbeats are timed on the clock the clients
keep (real time, even when the world runs faster); the cancels happen at the world's time.
"""

from __future__ import annotations

from mmbot.venues.simulator.engine import Engine

HEARTBEAT_LIMIT_NS = 15_000_000_000  # 10 s without a heartbeat, plus the venue's grace


class StaleHeartbeat(Exception):
    def __init__(self, current: str) -> None:
        super().__init__("Invalid Heartbeat ID")
        self.current = current


class Heartbeats:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._beats: dict[str, tuple[str, int]] = {}  # api key -> (latest heartbeat id, when)
        self._seq = 0

    def beat(self, api_key: str, heartbeat_id: str, now_ns: int) -> str:
        """The next id for ``api_key``, who echoed ``heartbeat_id``; raises ``StaleHeartbeat``."""
        current = self._beats.get(api_key, ("", 0))[0]
        if heartbeat_id != current:
            raise StaleHeartbeat(current)
        self._seq += 1
        fresh = f"hb-{self._seq}"
        self._beats[api_key] = (fresh, now_ns)
        return fresh

    def legacy(self, api_key: str, now_ns: int) -> None:
        """A heartbeat without an id: keeps the orders alive, and the chain starts again."""
        self._beats[api_key] = ("", now_ns)

    def expire(self, now_ns: int, venue_ns: int) -> int:
        """Cancel every order of each account whose heartbeats stopped ``HEARTBEAT_LIMIT_NS`` ago
        (after its first one); returns how many orders that ended."""
        ended = 0
        for key, (_, last_ns) in list(self._beats.items()):
            if now_ns - last_ns > HEARTBEAT_LIMIT_NS:
                ended += len(self._engine.cancel_all(key, venue_ns).canceled)
                del self._beats[key]
        return ended
