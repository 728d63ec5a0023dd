"""Domain values and bus messages, by concept (DESIGN §4, §5).

Every amount is an integer in the venue's base unit, 10**-6 (``money``). Every message that
travels on the bus is a frozen, slotted, keyword-only attrs class carrying ``cid``, its
correlation id, so the event log can join a fill back to the book update that caused it:
market facts (``markets``), account facts (``user``), and the decision path's messages
(``messages``). This package imports nothing of ours outside itself (tests/test_layers.py).
"""

from __future__ import annotations

from mmbot.model.values import (  # noqa: F401
    message,
    Side,
    TimeInForce,
    Liquidity,
    Ids,
)
from mmbot.model.money import (  # noqa: F401
    ONE,
    parse_micro,
    format_micro,
    SHARE_STEP,
    size_off_step,
    notional,
    notional_down,
    taker_fee,
)
from mmbot.model.markets import (  # noqa: F401
    MarketInfo,
    BookSnapshot,
    LevelChange,
    PriceChange,
    LastTrade,
    TickSizeChange,
    BestBidAsk,
    NewMarket,
    MarketResolved,
    MarketMessage,
    MalformedFrame,
)
from mmbot.model.user import (  # noqa: F401
    MakerFill,
    UserOrder,
    UserTrade,
    UserMessage,
    MATCHED,
    MINED,
    CONFIRMED,
    RETRYING,
    FAILED,
    TRADE_STATUS_RANK,
    FINAL_STATUSES,
    VenueLeg,
)
from mmbot.model.messages import (  # noqa: F401
    BookState,
    BookUpdate,
    PlaceOrder,
    CancelOrder,
    MergeSets,
    Intent,
    KillSwitch,
    OperatorPause,
    OperatorCancelAll,
    TradingGate,
    MarketClosing,
    SubmitRequest,
    CancelRequest,
    MergeRequest,
    RedeemRequest,
    VenueRequest,
    OrderAccepted,
    OrderRejected,
    OrderOutcomeUnknown,
    OrderDone,
    CancelRejected,
    Fill,
    MergeDone,
    RedeemDone,
    ChainActionFailed,
    Correction,
    VenueResponse,
)
