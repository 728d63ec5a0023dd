"""Replay decides inline (``DecisionLoop.step_inline``, ``TrioClock.advance_to``): the same event log
as waiting for every task to block after each frame, crashes and the breaker included."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from mmbot import app
from mmbot.clock import ReplayClock, TrioClock
from mmbot.config import Config
from mmbot.decisions.strategy import Strategies
from mmbot.decisions.tasks import DecisionLoop
from mmbot.memory.query import select_rows

ROOT = Path(__file__).resolve().parent.parent
RECORDING = ROOT / "recordings" / "sim-7.jsonl.gz"
# The bundled recording's digest since issue 10's decisions; a change here is a changed decision,
# to be named and justified (issue 14).
BUNDLED_DIGEST = "f4552e5a256ecc8ef66ce3a9cf0719d464cefbdc94a639faf937969d6bed8274"


def replay(db: Path) -> str:
    config = Config()
    return trio.run(
        lambda: app.replay(config=config, recording=RECORDING, db_path=db, seed=config.seed),
        clock=trio.testing.MockClock(autojump_threshold=0),
    )


def never_inline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay of before issue 14: every frame waits for every task to block."""
    monkeypatch.setattr(DecisionLoop, "step_inline", lambda self: False)


def crash_on(monkeypatch: pytest.MonkeyPatch, calls: set[int]) -> None:
    """The strategies raise on these book updates (counted from 1)."""
    on_book = Strategies.on_book
    seen = [0]

    def crashing(self: Strategies, update: Any, view: Any) -> Any:
        seen[0] += 1
        if seen[0] in calls:
            raise RuntimeError(f"strategy bug at update {seen[0]}")
        return on_book(self, update, view)

    monkeypatch.setattr(Strategies, "on_book", crashing)


def test_inline_replay_gives_the_published_digest_and_the_same_as_waiting(tmp_path, monkeypatch) -> None:
    assert replay(tmp_path / "inline.db") == BUNDLED_DIGEST
    never_inline(monkeypatch)
    assert replay(tmp_path / "waiting.db") == BUNDLED_DIGEST


@pytest.mark.parametrize("calls", [{400}, {400, 401, 402}], ids=["one-restart", "breaker"])
def test_a_crash_in_an_inline_step_is_the_supervisors_as_before(tmp_path, monkeypatch, calls) -> None:
    crash_on(monkeypatch, calls)
    inline = replay(tmp_path / "inline.db")
    kinds = [row.kind for row in select_rows(str(tmp_path / "inline.db"))]
    assert kinds.count("restart") == min(len(calls), 2)
    assert kinds.count("breaker_trip") == (1 if len(calls) == 3 else 0)
    never_inline(monkeypatch)
    crash_on(monkeypatch, calls)
    assert replay(tmp_path / "waiting.db") == inline


def test_the_replay_clock_reads_as_trios_clock_and_needs_the_mock_clock() -> None:
    async def readings() -> list[tuple[int, int]]:
        plain, direct = TrioClock(anchor_ns=1_000), ReplayClock(anchor_ns=1_000)
        seen = [(plain.now_ns(), direct.now_ns())]
        for seconds in (0.25, 3, 1e-9, 86_400):
            await trio.sleep(seconds)
            direct.advance_to(direct.now_ns() + 7)
            seen.append((plain.now_ns(), direct.now_ns()))
        return seen

    seen = trio.run(readings, clock=trio.testing.MockClock(autojump_threshold=0))
    assert all(plain == direct for plain, direct in seen) and seen[-1][0] > seen[0][0] + 86_400 * 10**9

    async def on_the_real_clock() -> None:
        ReplayClock(anchor_ns=0)

    with pytest.raises(RuntimeError, match="MockClock"):
        trio.run(on_the_real_clock)
