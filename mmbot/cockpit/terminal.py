"""The live terminal view of ``mmbot run``: a rich ``Live`` redrawn from the Trio task every
``refresh_s`` (no rich thread), showing one ``Snapshot``: the header (mode, uptime, money, fills,
orders, and in red whatever stops quoting), the markets (busiest first, as many as fit the
console's height, then ``+N more``), the feeds per connection, the last warnings, rejections by
reason and intents by strategy. ``render`` is pure: tests render hand-made snapshots.

Every line of a frame is one terminal line (cut with … when too wide, never wrapped), so the
layout knows its height without rendering twice, and the market table is laid out here rather
than by ``rich.table``: a frame of 25 markets costs about a millisecond on the Trio thread, where
a rich Table took ~80 ms. When stdout is no terminal, or with ``--quiet``,
``terminal_plain.PlainLines`` prints log lines instead."""

from __future__ import annotations

from datetime import tzinfo
from typing import Iterable

import attrs
import trio
from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.text import Text

from mmbot.cockpit.controls import SnapshotSource
from mmbot.cockpit.snapshot import FeedRow, MarketRow, Snapshot
from mmbot.cockpit.terminal_text import (
    MISSING,
    by_activity,
    clock_text,
    counts_text,
    duration_text,
    flags,
    money,
    quote_text,
)
from mmbot.model import format_micro

NOTICES = 8  # the most warnings shown; fewer when the console is short
MIN_NOTICES = 3
BOOK_STYLES = {"synced": "green", "stale": "yellow", "crossed": "red", "empty": "yellow", "none": "dim"}
LEVEL_STYLES = {"info": "cyan", "warning": "yellow", "error": "bold red"}
# (name, right-justified); our quotes, last, take what is left of the width
COLUMNS = (("market", False), ("outcome", False), ("bid", True), ("ask", True), ("book", False),
           ("inventory", True), ("mark", True), ("realised", True), ("marked", True), ("PnL", True),
           ("our quotes", False))
NARROW = {"realised", "marked"}  # left out below WIDE columns of console
NARROWER = NARROW | {"book", "mark"}  # and these below NARROW_WIDTH
WIDE, NARROW_WIDTH = 120, 95
GAP = "   "
Cell = tuple[str, str]  # text, style


def _line(*parts: str | tuple[str, str]) -> Text:
    text = Text.assemble(*parts)
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


def _signed(value: int) -> tuple[str, str]:
    return format_micro(value), "green" if value > 0 else "red" if value < 0 else ""


def header(snap: Snapshot, tz: tzinfo | None = None) -> list[Text]:
    uptime = duration_text(snap.wall_ns - snap.started_wall_ns) if snap.started_wall_ns else MISSING
    stops = flags(snap)
    return [
        _line((f"mmbot {snap.mode}", "bold"), f"  up {uptime}  at {clock_text(snap.wall_ns, tz)}  ",
              ("  ".join(stops), "bold red") if stops else ("quoting", "green")),
        _line("PnL ", _signed(snap.pnl), " (realised ", _signed(snap.realised), ", marked ", _signed(snap.unrealised),
              f")  fees {money(snap.fees)}"),
        _line(f"cash {money(snap.cash)}  reserved {money(snap.reserved)}  fills {snap.fills} (maker"
              f" {snap.maker_fills}, taker {snap.taker_fills})  orders {counts_text(snap.orders_by_state)}"),
    ]


def _cells(row: MarketRow, tz: tzinfo | None) -> list[dict[str, Cell]]:
    ends = "resolved" if row.resolved else (f"ends {clock_text(row.end_wall_ns, tz)}" if row.end_wall_ns else "")
    out = []
    for i, token in enumerate(row.tokens):
        first = i == 0
        out.append({
            "market": (row.label, "bold") if first else (ends, "dim"),
            "outcome": (token.outcome or MISSING, ""), "bid": (money(token.best_bid), ""),
            "ask": (money(token.best_ask), ""), "book": (token.book_state, BOOK_STYLES.get(token.book_state, "")),
            "inventory": (format_micro(token.position), ""), "mark": (money(token.mark), ""),
            "realised": _signed(row.realised) if first else ("", ""),
            "marked": _signed(row.unrealised) if first else ("", ""),
            "PnL": _signed(row.pnl) if first else ("", ""),
            "our quotes": (", ".join(quote_text(q) for q in token.quotes) or MISSING, ""),
        })
    return out


def markets_table(rows: Iterable[MarketRow], tz: tzinfo | None = None, *, width: int = WIDE) -> list[Text]:
    """A heading, a rule and two lines per market, one per outcome. A narrow console leaves out
    the market's realised and marked parts (its PnL stays), a narrower one also the book state
    and the mark; the market's name is cut to 40 columns (24 when narrow)."""
    left_out = set() if width >= WIDE else NARROW if width >= NARROW_WIDTH else NARROWER
    columns = [c for c in COLUMNS if c[0] not in left_out]
    body = [cells for row in rows for cells in _cells(row, tz)]
    widths = {name: max([cell_len(name)] + [cell_len(b[name][0]) for b in body]) for name, _ in columns}
    widths["market"] = min(widths["market"], 40 if width >= WIDE else 24)

    def fit(text: str, name: str, right: bool) -> str:
        w = widths[name]
        if cell_len(text) > w:
            return set_cell_size(text, w - 1) + "…"
        return text.rjust(w) if right else (text if name == "our quotes" else set_cell_size(text, w))

    def line(cells: dict[str, Cell]) -> Text:
        parts: list[str | tuple[str, str]] = []
        for name, right in columns:
            text, style = cells[name]
            parts.extend([GAP] if parts else [])
            parts.append((fit(text, name, right), style))
        return _line(*parts)

    heads = line({name: (name, "bold") for name, _ in columns})
    rule = _line(("─" * min(width, heads.cell_len), "dim"))
    return [heads, rule, *(line(b) for b in body)]


def _feed_line(feed: FeedRow, now_wall_ns: int, tz: tzinfo | None) -> Text:
    since = clock_text(feed.since_wall_ns, tz)
    extra = f"  assets {feed.assets}" if feed.kind == "market" else ""
    if feed.up:
        state: list[str | tuple[str, str]] = [("up", "green"), f" since {since}"]
    else:
        down_for = duration_text(now_wall_ns - feed.since_wall_ns) if feed.since_wall_ns else MISSING
        state = [("DOWN", "bold red"), f" since {since} ({down_for})", (f": {feed.reason or MISSING}", "red")]
    return _line((f"{feed.name:<10}", "bold"), " ", *state, (f"  sessions {feed.sessions}{extra}", "dim"))


def feeds(snap: Snapshot, tz: tzinfo | None = None) -> list[Text]:
    rows = [_feed_line(f, snap.wall_ns, tz) for f in snap.feeds] or [_line(("no connection yet", "dim"))]
    return [_line(("feeds", "bold underline")), *rows]


def notices(snap: Snapshot, limit: int, tz: tzinfo | None = None) -> list[Text]:
    shown = snap.notices[-limit:] if limit > 0 else ()
    rows = [_line(f"{clock_text(n.wall_ns, tz)} ", (f"{n.level:<7}", LEVEL_STYLES.get(n.level, "")), f" {n.text}")
            for n in shown] or [_line(("none", "dim"))]
    return [_line(("last warnings", "bold underline")), *rows]


def tallies(snap: Snapshot) -> list[Text]:
    return [_line(("rejections ", "bold"), counts_text(snap.rejections)),
            _line(("intents ", "bold"), counts_text(snap.intents_by_strategy))]


def layout(snap: Snapshot, *, height: int, width: int, tz: tzinfo | None = None) -> list[Text]:
    """The frame's lines, at most ``height - 1`` of them (the last terminal line stays free)
    unless even one market would not fit: the market list is cut to what fits, then the
    warnings go down to MIN_NOTICES to make room for markets."""
    ordered = by_activity(snap.markets)
    top, links, rest = header(snap, tz), feeds(snap, tz), tallies(snap)
    budget = height - 1 - len(top) - len(links) - len(rest) - 3 - 2  # three blank lines, the table's heading
    shown_notices = max(MIN_NOTICES, min(NOTICES, len(snap.notices)))
    market_lines = budget - (max(1, min(shown_notices, len(snap.notices))) + 1)
    if market_lines < 2 * min(len(ordered), 3):  # short console: fewer warnings, more markets
        shown_notices = MIN_NOTICES
        market_lines = budget - (max(1, min(shown_notices, len(snap.notices))) + 1)
    fits = max(1, market_lines // 2)
    if len(ordered) > fits:
        fits = max(1, (market_lines - 1) // 2)  # room for the "+N more" line
    lines = [*top, _line()]
    if ordered:
        lines.extend(markets_table(ordered[:fits], tz, width=width))
        if len(ordered) > fits:
            more = max(snap.markets_total, len(ordered)) - fits  # the snapshot may carry fewer rows than the run has
            lines.append(_line((f"+{more} more markets", "dim")))
    else:
        lines.append(_line(("no markets yet", "dim")))
    return [*lines, _line(), *links, _line(), *notices(snap, shown_notices, tz), *rest]


@attrs.frozen
class Frame:
    """One frame of the view: laid out for the height it is given (``height``, else the
    console's) and the console's width when drawn."""

    snap: Snapshot
    height: int | None = None
    tz: tzinfo | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        height = self.height or options.height or console.height
        lines = layout(self.snap, height=height, width=options.max_width, tz=self.tz)
        yield Text("\n", no_wrap=True, overflow="ellipsis").join(lines)


def render(snap: Snapshot, *, height: int | None = None, tz: tzinfo | None = None) -> Frame:
    """What the terminal shows of ``snap``; ``height`` lines at most (the console's when None)."""
    return Frame(snap, height, tz)


class TerminalView:
    """A service of the run: ``run`` draws until cancelled, then leaves the last frame printed."""

    def __init__(self, snapshot: SnapshotSource, console: Console, refresh_s: float = 0.5,
                 tz: tzinfo | None = None) -> None:
        self._snapshot = snapshot
        self.console = console
        self.refresh_s = refresh_s
        self.tz = tz
        self.frames = 0

    def _frame(self) -> Frame:
        self.frames += 1
        return render(self._snapshot(), tz=self.tz)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        live = Live(self._frame(), console=self.console, screen=False, auto_refresh=False, transient=False,
                    redirect_stdout=False, redirect_stderr=False)
        live.start(refresh=True)
        try:
            task_status.started()
            while True:
                await trio.sleep(self.refresh_s)
                live.update(self._frame(), refresh=True)
        finally:
            try:
                live.update(self._frame())  # the last figures: stop() draws them once more, in full
            finally:
                live.stop()
