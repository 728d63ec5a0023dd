"""The bus: latest-value slots drop (and count) unread updates; streams never drop or reorder."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from mmbot.facts.bus import Doorbell, LatestSlots, Stream


def test_a_replaced_unread_update_counts_as_a_drop() -> None:
    slots: LatestSlots[int] = LatestSlots()
    slots.put("a", 1)
    slots.put("b", 2)
    slots.put("a", 3)
    assert slots.take_all() == [3, 2]  # latest per key, in the order keys became pending
    assert slots.take_all() == []
    stats = slots.statistics()
    assert (stats.updates, stats.delivered, stats.dropped, stats.pending, stats.peak_pending) == (3, 2, 1, 0, 2)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.tuples(st.sampled_from("abcd"), st.integers()), st.none()), max_size=60))
def test_slots_keep_the_latest_value_and_account_for_every_update(ops) -> None:
    slots: LatestSlots[int] = LatestSlots()
    latest: dict[str, int] = {}
    taken = 0
    for op in ops:
        if op is None:
            got = slots.take_all()
            assert sorted(got) == sorted(latest.values())
            taken += len(got)
            latest.clear()
        else:
            key, value = op
            slots.put(key, value)
            latest[key] = value
    stats = slots.statistics()
    assert stats.updates == stats.delivered + stats.dropped + stats.pending
    assert stats.delivered == taken


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.integers(), st.none()), max_size=80))
def test_streams_never_drop_or_reorder(ops) -> None:
    stream: Stream[int] = Stream()
    sent: list[int] = []
    received: list[int] = []
    peak = 0
    for op in ops:
        if op is None:
            received.extend(stream.drain())
        else:
            stream.send(op)
            sent.append(op)
            peak = max(peak, len(sent) - len(received))
    received.extend(stream.drain())
    assert received == sent
    stats = stream.statistics()
    assert (stats.sent, stats.received, stats.backlog, stats.peak_backlog) == (len(sent), len(sent), 0, peak)


async def test_one_doorbell_wakes_a_consumer_of_slots_and_streams() -> None:
    bell = Doorbell()
    slots: LatestSlots[str] = LatestSlots(bell)
    stream: Stream[str] = Stream(bell)
    seen: list[str] = []

    async def consumer() -> None:
        while len(seen) < 3:
            await bell.wait()
            seen.extend(stream.drain())
            seen.extend(slots.take_all())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        stream.send("fill")
        await trio.testing.wait_all_tasks_blocked()
        slots.put("token", "book")
        stream.send("ack")
    assert seen == ["fill", "ack", "book"]


async def test_receive_batch_returns_everything_pending(autojump_clock) -> None:
    stream: Stream[int] = Stream()
    for i in range(5):
        stream.send(i)
    assert await stream.receive_batch() == [0, 1, 2, 3, 4]
    with trio.move_on_after(1) as scope:
        await stream.receive_batch()
    assert scope.cancelled_caught
