"""From raw market frames to facts on the bus.

``MarketFrames.on_frame`` is what every market feed (websocket or recording) calls for each frame
it receives. It decodes the frame, lets the book keeper and the other observers see every message
in order, and publishes the result: one ``BookUpdate`` per changed token into the latest-value
slots (lossy by design: only the newest book matters) and lifecycle facts (resolutions, new
markets) into the executor's unbounded inbox (never dropped). It never awaits.

The facts layer does not know what a book is: the decoder, the book keeper and the observers are
injected by app.py.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from mmbot.model import BookUpdate, MalformedFrame, MarketResolved, NewMarket
from mmbot.ports import EventSink

Decoder = Callable[..., list[Any]]  # (text, *, recv_ns, cid) -> messages and MalformedFrames


class MarketFrames:
    def __init__(
        self,
        *,
        decode: Decoder,
        apply_books: Callable[[Any], Iterable[str]],
        book_update: Callable[[str, str, int], BookUpdate | None],
        observers: Sequence[Callable[[Any], None]],
        slots: Any,  # facts.bus.LatestSlots
        inbox: Any,  # facts.bus.Stream
        sink: EventSink,
        mark_stale: Callable[[list[str], str, str], list[str]] | None = None,
        channel: str = "market",
    ) -> None:
        self._decode = decode
        self._apply_books = apply_books
        self._book_update = book_update
        self._observers = list(observers)
        self._slots = slots
        self._inbox = inbox
        self._sink = sink
        self._channel = channel
        self._mark_stale = mark_stale
        self.gaps = 0
        self.frames = 0
        self.messages = 0
        self.malformed = 0

    def on_frame(self, text: str | bytes, recv_ns: int) -> None:
        self.frames += 1
        cid = f"f{self.frames}"
        for msg in self._decode(text, recv_ns=recv_ns, cid=cid):
            if isinstance(msg, MalformedFrame):
                self.malformed += 1
                self._sink.record(
                    "frame_malformed",
                    msg.cid,
                    {"channel": self._channel, "error": msg.error, "excerpt": msg.excerpt},
                )
                continue
            self.inject(msg, recv_ns)

    def inject(self, msg: Any, recv_ns: int) -> None:
        """One decoded message, as if a frame had carried it (also a fact learnt another way: a
        resolution the channel missed, found on Gamma)."""
        self.messages += 1
        changed = self._apply_books(msg)
        for observe in self._observers:
            observe(msg)
        for token in changed:
            update = self._book_update(token, msg.cid, recv_ns)
            if update is not None:
                self._slots.put(token, update)
        if isinstance(msg, (MarketResolved, NewMarket)):
            self._inbox.send(msg)

    def add_observer(self, observe: Callable[[Any], None]) -> None:
        """Also show every decoded message to ``observe`` (after the ones given at start)."""
        self._observers.append(observe)

    def on_gap(self, tokens: list[str], reason: str, recv_ns: int) -> None:
        """A feed lost these tokens (disconnect, silence): distrust their books until the fresh
        snapshot a reconnect brings, and tell the decision task, so quotes come down now."""
        self.gaps += 1
        cid = f"gap{self.gaps}"
        changed = self._mark_stale(tokens, reason, cid) if self._mark_stale is not None else []
        self._sink.record("feed_gap", cid, {"channel": self._channel, "reason": reason, "tokens": len(tokens),
                                            "stale": len(changed)})
        for token in changed:
            update = self._book_update(token, cid, recv_ns)
            if update is not None:
                self._slots.put(token, update)
