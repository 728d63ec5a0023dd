"""The order lifecycle: one transition table (DESIGN §3).

The executor turns every venue response and every decision about an order into an
``OrderEvent`` and asks ``Orders`` (``decisions/orders.py``) to apply it. A pair the table does
not list raises ``IllegalTransition`` and changes nothing, so a confused venue answer or an
executor bug is seen at once instead of corrupting the order's state. The choices worth knowing
are in ``orders``' docstring.
"""

from __future__ import annotations

import enum


class OrderStatus(enum.Enum):
    PENDING_SUBMIT = "pending_submit"
    LIVE = "live"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


class OrderEvent(enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    PARTIAL_FILL = "partial_fill"
    FILLED = "filled"
    CANCEL_REQUESTED = "cancel_requested"
    CANCEL_CONFIRMED = "cancel_confirmed"
    CANCEL_REJECTED = "cancel_rejected"
    DONE = "done"
    OUTCOME_UNKNOWN = "outcome_unknown"


S, E = OrderStatus, OrderEvent

TRANSITIONS: dict[tuple[OrderStatus, OrderEvent], OrderStatus] = {
    # sent, no answer yet
    (S.PENDING_SUBMIT, E.ACCEPTED): S.LIVE,
    (S.PENDING_SUBMIT, E.REJECTED): S.REJECTED,
    (S.PENDING_SUBMIT, E.PARTIAL_FILL): S.PARTIALLY_FILLED,  # the fill beat the acknowledgement
    (S.PENDING_SUBMIT, E.FILLED): S.FILLED,
    (S.PENDING_SUBMIT, E.DONE): S.EXPIRED,  # FAK/FOK that found nothing to match
    (S.PENDING_SUBMIT, E.OUTCOME_UNKNOWN): S.UNKNOWN,
    (S.PENDING_SUBMIT, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    # resting at the venue
    (S.LIVE, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.LIVE, E.FILLED): S.FILLED,
    (S.LIVE, E.DONE): S.EXPIRED,
    (S.LIVE, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.PARTIALLY_FILLED, E.ACCEPTED): S.PARTIALLY_FILLED,  # the late acknowledgement
    (S.PARTIALLY_FILLED, E.OUTCOME_UNKNOWN): S.PARTIALLY_FILLED,  # a fill proved it exists
    (S.PARTIALLY_FILLED, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.PARTIALLY_FILLED, E.FILLED): S.FILLED,
    (S.PARTIALLY_FILLED, E.DONE): S.EXPIRED,
    (S.PARTIALLY_FILLED, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    # cancel sent, no answer yet; see CANCEL_REJECTED below for the way back
    (S.PENDING_CANCEL, E.CANCEL_CONFIRMED): S.CANCELED,
    (S.PENDING_CANCEL, E.DONE): S.CANCELED,
    (S.PENDING_CANCEL, E.FILLED): S.FILLED,  # the fill won the race
    (S.PENDING_CANCEL, E.PARTIAL_FILL): S.PENDING_CANCEL,
    (S.PENDING_CANCEL, E.ACCEPTED): S.PENDING_CANCEL,  # cancelled before the acknowledgement
    (S.PENDING_CANCEL, E.REJECTED): S.REJECTED,  # the submit itself was refused
    (S.PENDING_CANCEL, E.CANCEL_REQUESTED): S.PENDING_CANCEL,  # asked again (kill switch)
    (S.PENDING_CANCEL, E.OUTCOME_UNKNOWN): S.UNKNOWN,  # the submit or the cancel was lost
    # submit or cancel outcome unknown: reconciliation tells us what the venue holds
    (S.UNKNOWN, E.ACCEPTED): S.LIVE,
    (S.UNKNOWN, E.REJECTED): S.REJECTED,
    (S.UNKNOWN, E.PARTIAL_FILL): S.PARTIALLY_FILLED,
    (S.UNKNOWN, E.FILLED): S.FILLED,
    (S.UNKNOWN, E.DONE): S.EXPIRED,
    (S.UNKNOWN, E.CANCEL_CONFIRMED): S.CANCELED,
    (S.UNKNOWN, E.CANCEL_REQUESTED): S.PENDING_CANCEL,
    (S.UNKNOWN, E.OUTCOME_UNKNOWN): S.UNKNOWN,
}

# Legal pairs whose target is not fixed: the status the order would have had without the cancel.
RETURNS_TO_PREVIOUS: frozenset[tuple[OrderStatus, OrderEvent]] = frozenset(
    {(S.PENDING_CANCEL, E.CANCEL_REJECTED)}
)

TERMINAL: frozenset[OrderStatus] = frozenset({S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED})
# The same statuses for the hot paths' membership tests: a tuple compares by identity in C, while
# a set hashes each member, which an Enum does in Python code.
ENDED = (S.FILLED, S.CANCELED, S.REJECTED, S.EXPIRED)


def is_legal(status: OrderStatus, event: OrderEvent) -> bool:
    return (status, event) in TRANSITIONS or (status, event) in RETURNS_TO_PREVIOUS


class IllegalTransition(Exception):
    """The event makes no sense for the order's status; the order was left unchanged."""


class Overfill(IllegalTransition):
    """A fill would take the order past its size; the order was left unchanged."""
