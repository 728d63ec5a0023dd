"""The recorder writes every frame it was handed, in order, even when cancelled mid-stream."""

from __future__ import annotations

import trio

from mmbot.facts.recorder import Recorder
from mmbot.facts.recording import RecordingHeader, RecordingWriter, iter_frames, read_header
from mmbot.model import MarketInfo


async def test_recorder_writes_every_frame_before_it_stops(tmp_path, autojump_clock) -> None:
    path = tmp_path / "rec.jsonl.gz"
    header = RecordingHeader(
        start_ns=1_000, markets=(MarketInfo(market="0xm", tokens=("1", "2")),), source="test", seed=None, version=1
    )
    recorder = Recorder(RecordingWriter(path), header)
    sent = [(1_000 + i, "market" if i % 3 else "user", f'{{"n": {i}}}') for i in range(250)]
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        for t, channel, text in sent[:100]:
            recorder.on_frame(channel, text, t)
        await trio.sleep(0.1)
        for t, channel, text in sent[100:]:
            recorder.on_frame(channel, text, t)
        nursery.cancel_scope.cancel()  # the last 150 frames are still pending here
    assert read_header(path).markets == header.markets
    assert list(iter_frames(path)) == sent
    assert recorder.frames_written == 250


async def test_recorder_never_lets_time_run_backwards(tmp_path) -> None:
    path = tmp_path / "rec.jsonl"
    header = RecordingHeader(start_ns=0, markets=(), source="test", seed=None, version=1)
    recorder = Recorder(RecordingWriter(path), header)
    async with trio.open_nursery() as nursery:
        await nursery.start(recorder.run)
        recorder.on_frame("market", "a", 20)
        recorder.on_frame("market", "b", 10)  # a second connection's clock reading, a hair earlier
        nursery.cancel_scope.cancel()
    assert [t for t, _, _ in iter_frames(path)] == [20, 20]
