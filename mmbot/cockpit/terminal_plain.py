"""Plain log lines for ``mmbot run --quiet`` and for a stdout that is no terminal (a file, a pipe,
a service manager's journal): one line per warning as it is recorded (``HH:MM:SS LEVEL text``),
one per fill, and every ``every_s`` seconds a summary (``pnl ... cash ... fills ... open
orders ...``). Each line is flushed at once. A stdout that went away (a closed pipe) silences the
lines; it never stops the run."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any, Callable, TextIO

import trio
from rich.console import Console

from mmbot.cockpit.controls import SnapshotSource
from mmbot.cockpit.terminal_text import clock_text, notice_of, summary_line
from mmbot.model import format_micro

Describe = Callable[[str], tuple[str, str, str]]  # token -> (market, label, outcome name), as Cockpit.describe
Row = tuple[int, int, int, str, str, str, str, str]


class PlainLines:
    """Register ``on_row`` with ``EventLog.observe``; supervise ``run`` for the periodic summary."""

    def __init__(self, out: Console | TextIO, *, snapshot: SnapshotSource | None = None, every_s: float = 30,
                 describe: Describe | None = None, fills: bool = True, tz: tzinfo | None = None) -> None:
        self._file: TextIO = out.file if isinstance(out, Console) else out
        self._snapshot = snapshot
        self.every_s = every_s
        self._describe = describe
        self._fills = fills
        self.tz = tz
        self.lines = 0
        self.broken = False  # the output went away: nothing more is written

    def write(self, line: str) -> None:
        if self.broken:
            return
        try:
            self._file.write(line + "\n")
            self._file.flush()
        except (OSError, ValueError):  # a closed pipe or file: the run goes on without its log lines
            self.broken = True
            return
        self.lines += 1

    def on_row(self, row: Row, payload: dict[str, Any] | None) -> None:
        _, _, wall_ns, kind, _, market, token, _ = row
        if kind == "fill" and self._fills:
            self.write(self._fill_line(wall_ns, market, token, payload or {}))
            return
        told = notice_of(kind, payload)
        if told is not None:
            level, text = told
            self.write(f"{clock_text(wall_ns, self.tz)} {level.upper():<7} {text}")

    def _fill_line(self, wall_ns: int, market: str, token: str, p: dict[str, Any]) -> str:
        label, outcome = market[:12], ""
        if self._describe is not None and token:
            _, label, outcome = self._describe(token)
        liquidity = str(p.get("liquidity", "")).lower() or "-"
        return (f"{clock_text(wall_ns, self.tz)} FILL    {label} {outcome or token[:12]} {p.get('side', '?')}"
                f" {format_micro(int(p.get('size', 0)))} @ {format_micro(int(p.get('price', 0)))}"
                f" fee {format_micro(int(p.get('fee', 0)))} {liquidity}")

    def summary(self) -> None:
        if self._snapshot is not None:
            self.write(summary_line(self._snapshot(), self.tz))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """A summary line every ``every_s`` seconds, and a last one when cancelled (the run ends)."""
        task_status.started()
        try:
            while True:
                await trio.sleep(self.every_s)
                self.summary()
        finally:
            self.summary()
