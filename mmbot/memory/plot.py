"""The run as a picture: PnL, inventory and fills over virtual time (``mmbot report --plot``).

Drawn with matplotlib's Agg canvas directly (no pyplot, no global backend state). Floats are
fine here: the picture is for eyes, the figures in the log stay integers.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mmbot.memory.query import Database, open_database, select_rows

_NS_PER_S = 1e9  # float-ok: plot axis
_MICRO = 1e6  # float-ok: plot axis


def _short(token: str) -> str:
    """Token ids are 70-odd digits; the tail is enough to tell two apart on a legend."""
    return token if len(token) <= 12 else "…" + token[-8:]


def plot(db: Database, out_png: str | Path) -> None:
    """Write a PNG with three panels sharing the time axis (seconds since the first event)."""
    database = open_database(db)
    first = database.execute("SELECT MIN(ts_ns) FROM events").fetchone()[0] or 0
    pnl_rows = select_rows(database, "kind = 'pnl'")
    fill_rows = select_rows(database, "kind = 'fill'")

    def seconds(ts_ns: int) -> float:  # float-ok: plot axis
        return (ts_ns - first) / _NS_PER_S  # float-ok: plot axis

    figure = Figure(figsize=(11, 9), layout="constrained")
    FigureCanvasAgg(figure)
    pnl_axes, inventory_axes, fill_axes = figure.subplots(3, 1, sharex=True)

    times = [seconds(row.ts_ns) for row in pnl_rows]
    realised = [row.payload.get("realised", 0) / _MICRO for row in pnl_rows]  # float-ok: plot axis
    unrealised = [row.payload.get("unrealised", 0) / _MICRO for row in pnl_rows]  # float-ok: plot axis
    pnl_axes.plot(times, realised, label="realised")
    pnl_axes.plot(times, unrealised, label="unrealised")
    pnl_axes.plot(times, [r + u for r, u in zip(realised, unrealised)], label="total", linewidth=2)
    pnl_axes.set_ylabel("PnL (pUSD)")
    pnl_axes.set_title("PnL")

    tokens = sorted({token for row in pnl_rows for token in row.payload.get("positions", {})})
    for token in tokens:
        shares = [row.payload.get("positions", {}).get(token, 0) / _MICRO for row in pnl_rows]  # float-ok: plot axis
        inventory_axes.step(times, shares, where="post", label=_short(token))
    inventory_axes.set_ylabel("shares")
    inventory_axes.set_title("Inventory per token")

    for side, marker, colour in (("BUY", "^", "tab:green"), ("SELL", "v", "tab:red")):
        fills = [row for row in fill_rows if row.payload.get("side") == side]
        fill_axes.scatter(
            [seconds(row.ts_ns) for row in fills],
            [row.payload["price"] / _MICRO for row in fills],  # float-ok: plot axis
            marker=marker,
            color=colour,
            label=f"{side.lower()}s ({len(fills)})",
        )
    fill_axes.set_ylabel("price")
    fill_axes.set_xlabel("virtual time since the first event (s)")
    fill_axes.set_title("Fills")

    for axes in (pnl_axes, inventory_axes, fill_axes):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best", fontsize="small")
        else:
            axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center", color="grey")
    figure.savefig(out_png, format="png", dpi=100)
