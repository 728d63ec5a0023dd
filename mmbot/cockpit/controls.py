"""What the operator may do to a running engine, from the dashboard or a signal. Each call is an
operator message to the decision task (the executor stays the single writer) and an
``operator_command`` row naming where it came from."""

from __future__ import annotations

from typing import Callable, Protocol

from mmbot.cockpit.snapshot import Snapshot


class Controls(Protocol):
    def pause(self, source: str, reason: str = "") -> None: ...

    def resume(self, source: str, reason: str = "") -> None: ...

    def cancel_all(self, source: str, reason: str = "") -> None: ...


SnapshotSource = Callable[[], Snapshot]
