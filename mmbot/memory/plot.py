"""The run as a picture (``mmbot report --plot``): five panels sharing the time axis — PnL
(realised, marked, total), inventory per token, fills (price, buys ▲ sells ▼), cumulative fees
and drawdown — readable for a one-minute run as well as a day: the axis is in seconds from the
run's start (minutes past five minutes, hours past three), every point has a marker and the
legends name tokens by market slug and outcome.

Drawn with matplotlib's Agg canvas directly (no pyplot, no global backend state). Floats are
fine here: the picture is for eyes, the figures in the log stay integers.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mmbot.memory.names import read_names
from mmbot.memory.performance import drawdown, pnl_series
from mmbot.memory.query import Database, open_database, select_rows

_NS_PER_S = 1e9  # float-ok: plot axis
_MICRO = 1e6  # float-ok: plot axis
_MAX_TOKENS = 12  # inventory lines named in the legend; the rest are drawn unnamed
_UNITS = ((3 * 3600, 3600.0, "h"), (300, 60.0, "min"), (0, 1.0, "s"))  # float-ok: plot axis


def build_figure(db: Database) -> Figure:
    """The figure ``plot`` saves (tests look at its axes)."""
    database = open_database(db)
    first, last = database.execute("SELECT MIN(ts_ns), MAX(ts_ns) FROM events").fetchone()
    first, last = first or 0, last or 0
    span_s = (last - first) / _NS_PER_S  # float-ok: plot axis
    scale, unit = next((s, u) for above, s, u in _UNITS if span_s > above or above == 0)
    names = read_names(database)
    series = pnl_series(database)
    fill_rows = select_rows(database, "kind = 'fill'")

    def at(ts_ns: int) -> float:  # float-ok: plot axis
        return (ts_ns - first) / _NS_PER_S / scale  # float-ok: plot axis

    def units(micro: int) -> float:  # float-ok: plot axis
        return micro / _MICRO  # float-ok: plot axis

    figure = Figure(figsize=(12, 14), layout="constrained")
    FigureCanvasAgg(figure)
    pnl_axes, inventory_axes, fill_axes, fee_axes, drawdown_axes = figure.subplots(5, 1, sharex=True)
    times = [at(point.ts_ns) for point in series]
    dot = {"marker": "o", "markersize": 3}

    pnl_axes.plot(times, [units(p.realised) for p in series], label="realised", **dot)
    pnl_axes.plot(times, [units(p.unrealised) for p in series], label="marked", **dot)
    pnl_axes.plot(times, [units(p.total) for p in series], label="total", linewidth=2, **dot)
    pnl_axes.axhline(0, color="grey", linewidth=0.5)
    pnl_axes.set_ylabel("PnL (pUSD)")
    pnl_axes.set_title("PnL")

    tokens = sorted({t for p in series for t, n in p.positions.items() if n}, key=names.token_label)
    for i, token in enumerate(tokens):
        inventory_axes.step(times, [units(p.positions.get(token, 0)) for p in series], where="post",
                            label=names.token_label(token) if i < _MAX_TOKENS else None, **dot)
    inventory_axes.set_ylabel("shares")
    inventory_axes.set_title("Inventory per token" + (f" ({len(tokens)}, {_MAX_TOKENS} named)"
                                                      if len(tokens) > _MAX_TOKENS else ""))

    for side, marker, colour in (("BUY", "^", "tab:green"), ("SELL", "v", "tab:red")):
        fills = [row for row in fill_rows if row.payload.get("side") == side]
        fill_axes.scatter([at(row.ts_ns) for row in fills], [units(row.payload.get("price", 0)) for row in fills],
                          marker=marker, color=colour, s=18, label=f"{side.lower()}s ({len(fills)})")
    fill_axes.set_ylabel("price")
    fill_axes.set_title("Fills")

    cumulative, fee_times, paid = 0, [0.0], [0.0]  # float-ok: plot axis
    for row in fill_rows:
        cumulative += row.payload.get("fee") or 0
        fee_times.append(at(row.ts_ns))
        paid.append(units(cumulative))
    if fill_rows:
        fee_times.append(at(last))
        paid.append(units(cumulative))
    fee_axes.step(fee_times, paid, where="post", label=f"fees paid ({units(cumulative):.4f} pUSD)", **dot)
    fee_axes.set_ylabel("pUSD")
    fee_axes.set_title("Fees (cumulative)")

    worst, down = drawdown([p.total for p in series])
    drawdown_axes.fill_between(times, [-units(d) for d in down], 0, step="post", color="tab:red", alpha=0.3)
    drawdown_axes.step(times, [-units(d) for d in down], where="post", color="tab:red",
                       label=f"below the peak (max {units(worst):.4f} pUSD)", **dot)
    drawdown_axes.set_ylabel("pUSD")
    drawdown_axes.set_title("Drawdown of total PnL")
    drawdown_axes.set_xlabel(f"time since the run's start ({unit})")
    drawdown_axes.set_xlim(left=0, right=max(at(last), 1e-9))  # float-ok: plot axis

    has_data = {pnl_axes: bool(series), inventory_axes: bool(tokens), fill_axes: bool(fill_rows),
                fee_axes: bool(fill_rows), drawdown_axes: bool(series)}
    for axes, shown in has_data.items():
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
        if not shown:
            axes.text(0.5, 0.5, "no data in the log", transform=axes.transAxes, ha="center", va="center",
                      color="grey")
    return figure


def plot(db: Database, out_png: str | Path) -> None:
    """Write the PNG."""
    build_figure(db).savefig(out_png, format="png", dpi=90)
