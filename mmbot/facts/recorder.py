"""The recorder: every frame a feed receives, written to a recording (DESIGN §10), off the hot path.

Feeds call ``on_frame`` (synchronous, never blocks: the frame goes into an unbounded stream); the
recorder's own task writes what is pending in batches of at most ``BATCH`` frames to a buffered
file, yielding to the loop between batches, so a websocket reader never waits behind the disk.
(A worker thread was tried and rejected for the event log: handing the GIL back and forth per
write starves it; see docs/event-log.md.) On cancellation it writes everything still pending,
then closes the file — a recording ends at the last frame received, not at the last batch.
"""

from __future__ import annotations

import trio

from mmbot.facts.bus import Stream
from mmbot.facts.recording import RecordingHeader, RecordingWriter

BATCH = 1_000


class Recorder:
    def __init__(self, writer: RecordingWriter, header: RecordingHeader) -> None:
        self._writer = writer
        self._header = header
        self._pending: Stream[tuple[int, str, str]] = Stream()
        self._last_t = 0

    def on_frame(self, channel: str, text: str, recv_ns: int) -> None:
        # frames from several connections may share an instant; never let time run backwards
        self._last_t = max(self._last_t, recv_ns)
        self._pending.send((self._last_t, channel, text))

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written

    def _write(self, frames: list[tuple[int, str, str]]) -> None:
        for t_ns, channel, text in frames:
            self._writer.write_frame(t_ns, channel, text)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._writer.write_header(self._header)
        task_status.started()
        unwritten: list[tuple[int, str, str]] = []
        try:
            while True:
                unwritten = await self._pending.receive_batch()
                while unwritten:
                    self._write(unwritten[:BATCH])
                    unwritten = unwritten[BATCH:]
                    await trio.lowlevel.checkpoint()  # a cancellation here leaves `unwritten` for below
        finally:
            self._write(unwritten + self._pending.drain())
            self._writer.close()
