"""Capital on chain: merges and redemptions in flight, the shares they hold, and the redemption sweeper.

Part of the executor (its single writer calls it), sans-IO. Requests leave through the executor's
gateway; the chain lane answers in the inbox with ``MergeDone``, ``RedeemDone`` or
``ChainActionFailed``, each naming the correlation id of its request. Cash and positions change
only when the chain confirms; until then the shares are *held* (ledger share reservations, as for
an open sell), so nothing can sell them twice.

**Merges.** The merge strategy's ``MergeSets`` passes the intent path (its rows) and comes here:
both legs' shares are held and a ``MergeRequest`` leaves. ``MergeDone`` releases the holds and
books the merge (cash + size, both legs − size); ``ChainActionFailed`` releases them, records
``merge_failed`` and backs the market's merges off (``retry_after_s``, doubling up to
``retry_max_s``), so that a failing merge is not sent again on every fill. Merges only reduce
risk, so the kill switch does not stop them; there is one at a time per market, none while a
redemption of it is in flight, and none once its resolution is known (redeeming takes it all).

**Redemptions.** With signed orders a resolved market's shares stay held, marked at 1 and 0,
until redeemed on chain. The executor tells ``resolved``; every ``sweep`` sends a
``RedeemRequest`` for each resolved market that is due — shares held, no order of ours open in it,
no merge or redemption of it in flight, not backing off — holding both legs' entire positions.
All markets due are sent in the same sweep, one after the other, so the chain lane can batch
them. ``RedeemDone`` releases the holds and books the chain's payout: winners pay 1 a share,
losers 0, and if the chain paid otherwise its figure wins, with a ``redeem_mismatch`` row, so the
ledger keeps equal to the chain. ``ChainActionFailed`` releases, records ``redeem_failed`` and
leaves the market to a later sweep after the backoff; after ``max_attempts`` failures a
``redeem_abandoned`` row (level error) says so, and the retries go on every ``retry_max_s``.

An answer whose correlation id is not the one in flight for its market (repeated, late after a
failure and a retry, or never ours) is an ``error`` row and changes nothing: nothing is applied
twice. What is kept per market goes when the market is forgotten (``forget``), which
``decisions/forgetting.py`` never does while a merge or redemption of it is in flight.
"""

from __future__ import annotations

from typing import Callable, Iterable

import attrs

from mmbot.config import CapitalConfig
from mmbot.decisions.ledger import InsufficientFunds, Ledger
from mmbot.decisions.markets import Markets
from mmbot.decisions.orders import Orders
from mmbot.model import ChainActionFailed, Ids, MarketInfo, MergeDone, MergeRequest, RedeemDone, RedeemRequest
from mmbot.ports import Clock, EventSink, OrderGateway

MERGE_BACKOFF = "merge_backoff"  # a merge refused while the market's merges back off after a failure
MARKET_RESOLVED = "market_resolved"  # a merge refused once the market's resolution is known
_NS_PER_S = 1_000_000_000
HoldId = Callable[[str, int], str]  # (cid, leg) -> the reservation id holding that leg


def merge_hold(cid: str, leg: int) -> str:
    """The reservation id that holds one leg's shares while a merge is in flight."""
    return f"merge:{cid}:{leg}"


def redeem_hold(cid: str, leg: int) -> str:
    """The reservation id that holds one leg's shares while a redemption is in flight."""
    return f"redeem:{cid}:{leg}"


@attrs.define
class _Backoff:
    failures: int = 0  # since the last success
    not_before_ns: int = 0


@attrs.frozen
class Redemption:
    """A redemption in flight: the shares it holds, by leg, and the winning token."""

    cid: str
    market: str
    winning_token: str
    shares: tuple[tuple[str, int], ...]  # (token, shares held) for each leg with shares, in the market's order

    @property
    def expected(self) -> int:
        """What the ledger expects the chain to pay: 1 pUSD per winning share (micro for micro)."""
        return sum(n for token, n in self.shares if token == self.winning_token)


class Capital:
    def __init__(
        self, *, ledger: Ledger, orders: Orders, markets: Markets, gateway: OrderGateway, sink: EventSink,
        clock: Clock, ids: Ids, config: CapitalConfig,
    ) -> None:
        self._ledger = ledger
        self._orders = orders
        self._markets = markets
        self._gateway = gateway
        self._sink = sink
        self._clock = clock
        self._ids = ids
        self._config = config
        self.merges_pending: dict[str, str] = {}  # market -> the merge in flight's cid
        self._merge_sizes: dict[str, int] = {}  # merge cid in flight -> sets asked for
        self.redemptions: dict[str, Redemption] = {}  # market -> the redemption in flight
        self._resolved: dict[str, str] = {}  # market -> winning token, in the order resolutions came
        self._merge_backoff: dict[str, _Backoff] = {}
        self._redeem_backoff: dict[str, _Backoff] = {}

    # ------------------------------------------------------------------ what others ask

    def busy(self, market: str, strategy: str) -> bool:
        """Whether ``strategy`` should leave ``market`` alone: a redemption in flight, for every
        strategy; for the merge strategy also a merge in flight, merges backing off, or a
        resolution known."""
        if market in self.redemptions:
            return True
        if strategy != "merge":
            return False
        return market in self.merges_pending or self.merge_refusal(market) is not None

    def in_flight(self, market: str) -> bool:
        """A merge or redemption of ``market`` awaits the chain's answer."""
        return market in self.merges_pending or market in self.redemptions

    def merge_refusal(self, market: str) -> str | None:
        """Why a merge of ``market`` may not go now (None: it may)."""
        if market in self._resolved:
            return MARKET_RESOLVED
        backoff = self._merge_backoff.get(market)
        if backoff is not None and self._clock.now_ns() < backoff.not_before_ns:
            return MERGE_BACKOFF
        return None

    def remembered(self) -> int:
        """Entries kept per market: resolutions awaiting redemption and backoffs."""
        return len(self._resolved) + len(self._merge_backoff) + len(self._redeem_backoff)

    # ------------------------------------------------------------------ merges

    def merge(self, cid: str, info: MarketInfo, size: int) -> None:
        """Hold ``size`` of both legs and send the merge. Raises ``InsufficientFunds`` with nothing
        changed if either leg has fewer shares available. The caller checked ``in_flight`` and
        ``merge_refusal``."""
        self._hold(merge_hold, cid, ((info.tokens[0], size), (info.tokens[1], size)))
        self.merges_pending[info.market] = cid
        self._merge_sizes[cid] = size
        self._gateway.send(MergeRequest(cid=cid, market=info.market, tokens=info.tokens, size=size))

    def merged(self, msg: MergeDone) -> None:
        info = self._markets.get(msg.market)
        if info is None or self.merges_pending.get(msg.market) != msg.cid:
            self._error(msg.cid, "merge answer for no merge of ours", msg.market)
            return
        del self.merges_pending[msg.market]
        asked = self._merge_sizes.pop(msg.cid)
        self._release(merge_hold, msg.cid)
        self._merge_backoff.pop(msg.market, None)
        yes, no = info.tokens
        if not 0 < msg.size <= min(self._ledger.available_shares(yes), self._ledger.available_shares(no)):
            self._error(msg.cid, f"merge answer of {msg.size} sets, {asked} were asked: not booked", msg.market)
            return
        self._ledger.merge(yes, no, msg.size)
        payload: dict[str, object] = {"size": msg.size, "cash": self._ledger.cash}
        if msg.size != asked:
            payload["asked"] = asked
        if msg.tx_hash:  # the paper venue's merges have none: their rows stay as they were
            payload["tx_hash"] = msg.tx_hash
        self._sink.record("merge", msg.cid, payload, market=msg.market)

    # ------------------------------------------------------------------ redemptions

    def resolved(self, market: str, winning_token: str) -> None:
        """``market`` resolved (signed trading: its shares wait to be redeemed on chain). The first
        resolution told counts; the sweeper redeems what is held of it from now on."""
        self._resolved.setdefault(market, winning_token)

    def sweep(self, cause: str) -> int:
        """Send a redemption for every resolved market due now (see the module's docstring), one
        after the other; returns how many. Records only what it sends."""
        if not self._config.redeem:
            return 0
        now = self._clock.now_ns()
        sent = 0
        for market, winning in list(self._resolved.items()):
            info = self._markets.get(market)
            if info is None:  # forgotten another way: nothing left to redeem here
                self._forget(market)
                continue
            shares = tuple((t, n) for t in info.tokens if (n := self._ledger.position(t)))
            if not shares or self.in_flight(market):
                continue
            backoff = self._redeem_backoff.get(market)
            if backoff is not None and now < backoff.not_before_ns:
                continue
            if any(self._ledger.available_shares(t) != n for t, n in shares) or self._orders.open_orders(market=market):
                continue  # an open order still holds some: its end (the resolution cancelled it) frees them
            self._redeem(cause, info, winning, shares, backoff.failures + 1 if backoff else 1)
            sent += 1
        return sent

    def _redeem(self, cause: str, info: MarketInfo, winning: str, shares: tuple[tuple[str, int], ...],
                attempt: int) -> None:
        cid = self._ids.next("redeem")
        self._hold(redeem_hold, cid, shares)
        self.redemptions[info.market] = Redemption(cid=cid, market=info.market, winning_token=winning, shares=shares)
        self._gateway.send(RedeemRequest(cid=cid, market=info.market, tokens=info.tokens, winning_token=winning))
        self._sink.record("redeem_requested", cid, {
            "market": info.market, "winning_token": winning, "shares": dict(shares), "attempt": attempt,
            "sweep": cause,
        }, market=info.market)

    def redeemed(self, msg: RedeemDone) -> None:
        pending = self.redemptions.get(msg.market)
        if pending is None or pending.cid != msg.cid:
            self._error(msg.cid, "redemption answer for no redemption of ours", msg.market)
            return
        if msg.payout < 0:
            self._error(msg.cid, f"redemption answer with a payout of {msg.payout}: not booked", msg.market)
            return
        del self.redemptions[msg.market]
        self._release(redeem_hold, msg.cid)
        self._redeem_backoff.pop(msg.market, None)
        # the chain took the wallet's whole holding: what the ledger holds now goes (a correction may
        # have taken some of the held shares back meanwhile)
        now = {t: n for t, _ in pending.shares if (n := self._ledger.position(t)) > 0}
        self._ledger.redeem(now, msg.payout)
        if msg.payout != pending.expected:  # the chain's figure is booked: the ledger equals the chain
            self._sink.record("redeem_mismatch", msg.cid, {"expected": pending.expected, "payout": msg.payout},
                              market=msg.market)
        self._sink.record("redeem", msg.cid, {"payout": msg.payout, "cash": self._ledger.cash,
                                               "tx_hash": msg.tx_hash}, market=msg.market)

    # ------------------------------------------------------------------ failures

    def failed(self, msg: ChainActionFailed) -> None:
        """A merge or redemption that did not happen: its holds go, the market backs off."""
        if msg.action == "merge" and self.merges_pending.get(msg.market) == msg.cid:
            del self.merges_pending[msg.market]
            self._merge_sizes.pop(msg.cid)
            self._release(merge_hold, msg.cid)
            backoff = self._fail(self._merge_backoff, msg.market)
            self._failure_row("merge_failed", msg, backoff)
        elif msg.action == "redeem" and (pending := self.redemptions.get(msg.market)) is not None \
                and pending.cid == msg.cid:
            del self.redemptions[msg.market]
            self._release(redeem_hold, msg.cid)
            backoff = self._fail(self._redeem_backoff, msg.market)
            self._failure_row("redeem_failed", msg, backoff)
            if backoff.failures == self._config.max_attempts:
                self._sink.record("redeem_abandoned", msg.cid, {
                    "level": "error", "attempts": backoff.failures, "reason": msg.reason,
                    "then": f"retried every {self._config.retry_max_s} s",
                }, market=msg.market)
        else:
            self._error(msg.cid, f"{msg.action!r} failure for no such action of ours", msg.market)

    def _fail(self, backoffs: dict[str, _Backoff], market: str) -> _Backoff:
        backoff = backoffs.setdefault(market, _Backoff())
        backoff.failures += 1
        cfg = self._config
        delay_s = cfg.retry_max_s
        if backoff.failures < cfg.max_attempts:
            delay_s = min(cfg.retry_max_s, cfg.retry_after_s << min(backoff.failures - 1, 32))
        backoff.not_before_ns = self._clock.now_ns() + delay_s * _NS_PER_S
        return backoff

    def _failure_row(self, kind: str, msg: ChainActionFailed, backoff: _Backoff) -> None:
        retry_in_s = (backoff.not_before_ns - self._clock.now_ns()) // _NS_PER_S
        self._sink.record(kind, msg.cid, {"reason": msg.reason, "attempts": backoff.failures,
                                          "retry_in_s": retry_in_s}, market=msg.market)

    # ------------------------------------------------------------------ bounded memory

    def forget(self, markets: Iterable[str]) -> None:
        """Forget what is kept of these markets (they were forgotten: nothing of ours is in flight)."""
        for market in markets:
            self._forget(market)

    def _forget(self, market: str) -> None:
        self._resolved.pop(market, None)
        self._merge_backoff.pop(market, None)
        self._redeem_backoff.pop(market, None)

    # ------------------------------------------------------------------ internals

    def _hold(self, hold_id: HoldId, cid: str, shares: Iterable[tuple[str, int]]) -> None:
        """Reserve each leg's shares, all or none (``InsufficientFunds`` with nothing held)."""
        held: list[str] = []
        try:
            for leg, (token, n) in enumerate(shares):
                self._ledger.reserve_sell(hold_id(cid, leg), token, n)
                held.append(hold_id(cid, leg))
        except InsufficientFunds:
            for reservation in held:
                self._ledger.release(reservation)
            raise

    def _release(self, hold_id: HoldId, cid: str) -> None:
        for leg in (0, 1):
            self._ledger.release(hold_id(cid, leg))

    def _error(self, cid: str, error: str, subject: str) -> None:
        self._sink.record("error", cid, {"where": "executor", "error": error, "subject": subject})

