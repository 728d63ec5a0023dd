"""The start-up snapshot of a signed-trading run: what the account holds at the venue before any
strategy may act (DESIGN §3: "on every start, rebuild state from the venue").

In this order: the venue's order version is checked; every open order of the account is
cancelled (a clean slate: nothing rests on an earlier run's decisions; a dry run leaves them alone
and counts them); the account's trades are read — each of them is already in the balances read
next, so none is ever booked by this run (trades are told apart by id, never by comparing the
venue's clock with ours); then the pUSD balance, with the exchanges' allowance, and the shares of
every traded token and of every token its trades touched (shares of markets resolved before this
run stay held until redeemed), valued at the book's midpoint (the venue does not know what we
paid; a resolved market has no book: cost 0).
"""

from __future__ import annotations

import attrs

from mmbot.model import MalformedFrame, MarketInfo, UserTrade, format_micro, notional
from mmbot.ports import EventSink, Fatal
from mmbot.venues.polymarket.rest import ClobRest


@attrs.frozen(kw_only=True)
class StartupSnapshot:
    cash: int  # pUSD micro-units
    holdings: dict[str, tuple[int, int]]  # token -> (shares, cost at the midpoint)
    trades: tuple[UserTrade, ...]  # the account's trades when the run began
    canceled: int  # orders cancelled at start-up (0 in a dry run)
    left_alone: int  # open orders a dry run did not touch


def tokens_to_read(markets: list[MarketInfo], trades: tuple[UserTrade, ...]) -> list[str]:
    """The tokens whose balance the snapshot reads: every traded market's, and every token the
    account's trades touched — shares of a market that resolved (or stopped being listed) before
    this run stay held until redeemed on chain, and the ledger must hold them too."""
    wanted = dict.fromkeys(t for info in markets for t in info.tokens)
    for trade in trades:
        wanted.update(dict.fromkeys([trade.token, *(m.token for m in trade.maker_orders)]))
    return list(wanted)


async def take_snapshot(rest: ClobRest, markets: list[MarketInfo], *, signature_type: int, dry_run: bool,
                        sink: EventSink) -> StartupSnapshot:
    await rest.check_version()
    canceled = left_alone = 0
    if dry_run:
        left_alone = len(await rest.open_orders())
        sink.record("startup_dry_run", "run", {"open_orders_left_alone": left_alone})
    else:
        canceled = len((await rest.cancel_all()).canceled)
        sink.record("startup_cancel_all", "run", {"canceled": canceled})
    records = await rest.trades()
    trades = tuple(r for r in records if isinstance(r, UserTrade))
    for bad in (r for r in records if isinstance(r, MalformedFrame)):
        sink.record("frame_malformed", bad.cid, {"channel": "trades", "error": bad.error, "excerpt": bad.excerpt})
    collateral = await rest.collateral(signature_type)
    if collateral.allowance is not None and collateral.allowance < collateral.balance:
        raise Fatal(f"the exchanges may spend {format_micro(collateral.allowance)} of the account's"
                    f" {format_micro(collateral.balance)} pUSD: approve them for the whole balance first"
                    " (mmbot wallet approve, for a deposit wallet or the key's own address)")
    holdings = {}
    for token in tokens_to_read(markets, trades):
        shares = await rest.token_balance(token, signature_type)
        if shares > 0:
            mid = await rest.midpoint(token)
            holdings[token] = (shares, 0 if mid is None else notional(mid, shares))
    sink.record("startup_snapshot", "run", {"cash": collateral.balance, "tokens_held": len(holdings),
                                            "trades_before_run": len(trades)})
    return StartupSnapshot(cash=collateral.balance, holdings=holdings, trades=trades, canceled=canceled,
                           left_alone=left_alone)
