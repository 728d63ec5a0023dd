"""What the chain lane works on: a batch of merges and redemptions that go on chain as one
``execute``, each member's call, where the batch has got to (which decides what a restarted lane
does with it), and the checks of a request and of what its balances say landed."""

from __future__ import annotations

from enum import Enum

import attrs

from mmbot.model import MarketInfo, MergeRequest, RedeemRequest
from mmbot.venues.polymarket.chain_types import ChainReceipt
from mmbot.venues.polymarket.contracts import Call, merge_call, redeem_call

ChainRequest = MergeRequest | RedeemRequest


class Phase(Enum):
    READING = "reading"  # nothing sent yet: a restart reads the balances again
    SENDING = "sending"  # calls may be out: a restart lets the balances decide
    CONFIRMED = "confirmed"  # the chain confirmed: a restart reads the balances after and answers


@attrs.define
class Member:
    request: ChainRequest
    neg_risk: bool
    answered: bool = False

    @property
    def action(self) -> str:
        return "merge" if isinstance(self.request, MergeRequest) else "redeem"

    def call(self) -> Call:
        req = self.request
        if isinstance(req, MergeRequest):
            return merge_call(req.market, req.size, neg_risk=self.neg_risk)
        return redeem_call(req.market, neg_risk=self.neg_risk)


@attrs.define
class Batch:
    """Requests that go on chain as one ``execute`` (its cid: the leading request's)."""

    cid: str
    members: list[Member]
    phase: Phase = Phase.READING
    before: dict[str, int] = attrs.field(factory=dict)
    receipt: ChainReceipt | None = None

    def pending(self) -> list[Member]:
        return [m for m in self.members if not m.answered]


def malformed_request(member: Member, info: MarketInfo | None) -> str | None:
    """Why a request cannot go on chain as it stands, or None."""
    req = member.request
    if info is None:
        return f"no market known for {req.market}"
    if len(req.tokens) != 2 or req.tokens[0] == req.tokens[1]:
        return f"a market has two distinct tokens, got {req.tokens}"
    if isinstance(req, RedeemRequest) and req.winning_token not in req.tokens:
        return f"winning token {req.winning_token} is not one of {req.tokens}"
    if isinstance(req, MergeRequest) and req.size <= 0:
        return f"a merge of {req.size} sets"
    try:
        member.call()
    except ValueError as exc:  # a market id that is no condition id
        return str(exc)
    return None


def landed(member: Member, before: dict[str, int], now: dict[str, int]) -> bool:
    req = member.request
    if isinstance(req, RedeemRequest):
        return any(before[t] for t in req.tokens) and not any(now[t] for t in req.tokens)
    return all(before[t] - now[t] == req.size for t in req.tokens)


def amount_ok(value: object) -> bool:
    """A balance as the chain gives it: a whole number, at least 0."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
