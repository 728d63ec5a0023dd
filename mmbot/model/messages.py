"""Messages of the decision path: book updates into the strategies, their intents, lifecycle and
operator messages, and the executor's requests to a venue with the venue's answers."""

from __future__ import annotations

import enum

from mmbot.model.values import HotMessage, Liquidity, Side, TimeInForce, message

class BookState(enum.Enum):
    EMPTY = "empty"  # no snapshot yet
    SYNCED = "synced"
    CROSSED = "crossed"  # best bid >= best ask: a lost update, resync
    STALE = "stale"  # reconnect, tick change or venue mismatch: wait for a fresh book


class BookUpdate(HotMessage):
    """Latest-value slot content: token ``token`` changed because of frame ``cid``."""

    cid: str
    recv_ns: int
    market: str
    token: str
    state: BookState
    best_bid: int | None
    best_ask: int | None


class PlaceOrder(HotMessage):
    """A strategy's wish to place one order. ``group`` ties legs that belong together."""

    cid: str
    cause: str  # cid of the fact that prompted it
    strategy: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    tif: TimeInForce
    post_only: bool = False
    group: str = ""
    pair_cost: int | None = None  # what a complete set costs if this order fills, fees included
    reason: str = ""
    cause_ns: int | None = None  # when the fact that prompted it was received


class CancelOrder(HotMessage):
    cid: str
    cause: str
    strategy: str
    order_id: str
    reason: str
    cause_ns: int | None = None


@message
class MergeSets:
    """Merge ``size`` complete sets of ``market`` back into pUSD."""

    cid: str
    cause: str
    strategy: str
    market: str
    size: int
    cause_ns: int | None = None


Intent = PlaceOrder | CancelOrder | MergeSets


@message
class KillSwitch:
    cid: str
    reason: str
    engaged: bool = True


@message
class OperatorPause:
    """The operator's pause (``paused``) or resume of quoting, from the cockpit or a signal: while
    paused no strategy acts and every open order is cancelled; merges and redemptions go on."""

    cid: str
    paused: bool
    reason: str


@message
class OperatorCancelAll:
    """The operator's "cancel all": every open order is cancelled now; quoting goes on (pause to stop it)."""

    cid: str
    reason: str


@message
class TradingGate:
    """The venue session's word on whether new orders may go out: closed while the user channel
    is down or not yet caught up (a fill could go unseen, so the ledger could not follow), open
    again once it is connected and the trades it may have missed are fetched."""

    cid: str
    open: bool
    reason: str


@message
class MarketClosing:
    """The market is within its no-new-orders window or has resolved: stop and cancel."""

    cid: str
    market: str
    winning_token: str | None = None  # set once resolved


# --------------------------------------------------------------------------- venue requests and responses


class SubmitRequest(HotMessage):
    cid: str
    order_id: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    tif: TimeInForce
    post_only: bool = False


class CancelRequest(HotMessage):
    cid: str
    order_id: str


@message
class MergeRequest:
    cid: str
    market: str
    tokens: tuple[str, str]
    size: int


@message
class RedeemRequest:
    """Redeem every share held of a resolved market (both outcomes) for pUSD on chain."""

    cid: str
    market: str
    tokens: tuple[str, str]
    winning_token: str


VenueRequest = SubmitRequest | CancelRequest | MergeRequest | RedeemRequest


@message
class OrderAccepted:
    """The venue took the order; it rests (possibly after immediate partial fills)."""

    cid: str
    order_id: str
    venue_order_id: str = ""


@message
class OrderRejected:
    cid: str
    order_id: str
    reason: str  # venue error string or a local reason code


@message
class OrderOutcomeUnknown:
    """Sent but no answer: keep the reservation, reconciliation decides (DESIGN §3)."""

    cid: str
    order_id: str
    detail: str


@message
class OrderDone:
    """The order can no longer fill: cancelled, expired, killed remainder of FOK/FAK."""

    cid: str
    order_id: str
    reason: str


@message
class CancelRejected:
    cid: str
    order_id: str
    reason: str


@message
class Fill:
    cid: str
    fill_id: str
    order_id: str
    market: str
    token: str
    side: Side
    price: int
    size: int
    fee: int  # pUSD micro-units paid (takers only)
    liquidity: Liquidity
    ts_ns: int


@message
class MergeDone:
    """The chain confirmed a merge: ``size`` sets became ``size`` pUSD."""

    cid: str
    market: str
    size: int
    tx_hash: str = ""


@message
class RedeemDone:
    """The chain confirmed a redemption: every share of ``market`` held went, ``payout`` pUSD came."""

    cid: str
    market: str
    payout: int
    tx_hash: str = ""


@message
class ChainActionFailed:
    """A merge or redemption that did not happen (reverted, refused, failed at the relayer, or
    proven not to have landed): nothing moved on chain, so its reservation is released."""

    cid: str
    market: str
    action: str  # "merge" | "redeem"
    reason: str


@message
class Correction:
    """Reconciliation's verdict that our optimistic view differs from the venue's."""

    cid: str
    order_id: str
    fill_id: str
    market: str
    token: str
    side: Side
    price: int
    size_delta: int  # shares to add (negative: reverse)
    fee_delta: int
    reason: str


VenueResponse = (
    OrderAccepted
    | OrderRejected
    | OrderOutcomeUnknown
    | OrderDone
    | CancelRejected
    | Fill
    | MergeDone
    | RedeemDone
    | ChainActionFailed
    | Correction
)

