"""Cash, capital reservations and positions, in integer micro-units (DESIGN §3, §4).

The executor is the only writer. It reserves capital *before* any request leaves the process
(``reserve_buy``/``reserve_sell``), applies fills as they are learned (``apply_fill``), frees
what an ended order did not use (``release``) and applies reconciliation's corrections
(``adjust``). Every method either completes or raises with the state unchanged.

Accounting identity, checked by ``check()``: ``cash + Σ cost basis == contributed + realised``,
where ``contributed`` is the starting cash plus the cost basis of positions adopted at start.
It holds because every operation moves value between cash, cost basis and realised PnL and
nowhere else, so a rounding slip anywhere shows up as a broken invariant rather than as a
slowly drifting balance.

Positions use the average-cost method: the cost basis of shares leaving a position is the
position's basis × sold / held, rounded down, so the rounding remainder stays with the shares
still held and leaves with the last of them.
"""

from __future__ import annotations

from typing import AbstractSet, Any, Mapping

from mmbot.decisions.holdings import (  # noqa: F401  (re-exported: the ledger's vocabulary)
    INSUFFICIENT_CASH, INSUFFICIENT_SHARES, InsufficientFunds, LedgerInvariantError, Position,
)
from mmbot.model import Side, notional, notional_down

_FLAT = Position(shares=0, cost=0)
_NOTHING_MOVED: AbstractSet[str] = frozenset()  # take_moved runs after every decision step: no new set each time


class Ledger:
    def __init__(self, cash: int) -> None:
        if cash < 0:
            raise ValueError(f"starting cash must not be negative, got {cash}")
        self.cash = cash  # pUSD held, including what is reserved
        self.reserved_cash = 0  # sum of open buy reservations
        self.realised = 0
        self.fees_paid = 0
        self._contributed = cash
        self._cash_reservations: dict[str, int] = {}
        self._share_reservations: dict[str, tuple[str, int]] = {}  # order id -> (token, shares)
        self._reserved_shares: dict[str, int] = {}  # token -> Σ share reservations
        self._positions: dict[str, Position] = {}
        self._cost_basis = 0  # Σ position cost, kept as positions change (risk reads it per order)
        self._moved: set[str] = set()  # tokens whose position changed since take_moved()

    # ----------------------------------------------------------------- reading

    def available_cash(self) -> int:
        return self.cash - self.reserved_cash

    def position(self, token: str) -> int:
        return self._positions.get(token, _FLAT).shares

    def holding(self, token: str) -> Position:
        return self._positions.get(token, _FLAT)

    def positions(self) -> dict[str, Position]:
        return dict(self._positions)

    def available_shares(self, token: str) -> int:
        return self.position(token) - self._reserved_shares.get(token, 0)

    def reservation(self, order_id: str) -> int:
        """What is left of an order's reservation: pUSD for a buy, shares for a sell, else 0."""
        if order_id in self._cash_reservations:
            return self._cash_reservations[order_id]
        if order_id in self._share_reservations:
            return self._share_reservations[order_id][1]
        return 0

    def tokens(self) -> list[str]:
        """Tokens with a position, sorted so callers iterate deterministically."""
        return sorted(self._positions)

    def cost_basis(self) -> int:
        """Σ cost basis of every position: the position half of gross exposure."""
        return self._cost_basis

    def take_moved(self) -> AbstractSet[str]:
        """Tokens whose position changed since the last call, then forgotten (for the view's equity)."""
        moved = self._moved
        if moved:
            self._moved = set()
        return moved or _NOTHING_MOVED

    def unrealised(self, marks: Mapping[str, int]) -> int:
        """Σ shares × mark − cost basis over the positions that have a mark."""
        total = 0
        for token, pos in self._positions.items():
            if token in marks:
                # marked value rounds DOWN: what a holder could count on selling at the mark
                total += notional_down(marks[token], pos.shares) - pos.cost
        return total

    def snapshot(self) -> dict[str, Any]:
        tokens = sorted(self._positions)
        return {
            "cash": self.cash,
            "reserved_cash": self.reserved_cash,
            "positions": {t: self._positions[t].shares for t in tokens},
            "cost_basis": {t: self._positions[t].cost for t in tokens},
            "reserved_shares": {t: self._reserved_shares[t] for t in sorted(self._reserved_shares)},
            "realised": self.realised,
            "fees": self.fees_paid,
        }

    # ----------------------------------------------------------------- reservations

    def reserve_buy(self, order_id: str, amount: int) -> None:
        self._require_new_order_id(order_id)
        if amount <= 0:
            raise ValueError(f"a buy reservation must be positive, got {amount}")
        if amount > self.available_cash():
            raise InsufficientFunds(
                INSUFFICIENT_CASH, f"order {order_id} needs {amount}, {self.available_cash()} available"
            )
        self._cash_reservations[order_id] = amount
        self.reserved_cash += amount

    def reserve_sell(self, order_id: str, token: str, shares: int) -> None:
        self._require_new_order_id(order_id)
        if shares <= 0:
            raise ValueError(f"a sell reservation must be positive, got {shares}")
        if shares > self.available_shares(token):
            raise InsufficientFunds(
                INSUFFICIENT_SHARES,
                f"order {order_id} needs {shares} of {token}, {self.available_shares(token)} available",
            )
        self._share_reservations[order_id] = (token, shares)
        self._reserved_shares[token] = self._reserved_shares.get(token, 0) + shares

    def _shrink_holds(self, token: str, shares: int) -> None:
        """The venue took back reserved ``shares`` (held for a sell, merge or redemption): the latest holds shrink."""
        for order_id in reversed([o for o, (t, _) in self._share_reservations.items() if t == token]):
            if shares <= 0:
                return
            taken = min(shares, self._share_reservations[order_id][1])
            self._share_reservations[order_id] = (token, self._share_reservations[order_id][1] - taken)
            self._unreserve_shares(token, taken)
            shares -= taken

    def release(self, order_id: str) -> int:
        """Free what is left of an ended order's reservation; 0 if none is left (idempotent).

        Returns pUSD for a buy and shares for a sell.
        """
        if order_id in self._cash_reservations:
            amount = self._cash_reservations.pop(order_id)
            self.reserved_cash -= amount
            return amount
        if order_id in self._share_reservations:
            token, shares = self._share_reservations.pop(order_id)
            self._unreserve_shares(token, shares)
            return shares
        return 0

    # ----------------------------------------------------------------- fills

    def apply_fill(
        self, order_id: str, *, token: str, side: Side, price: int, size: int, fee: int
    ) -> None:
        """Book one fill of ``order_id``, consuming that order's reservation first.

        A fill beyond what is left of the reservation (or for an order that reserved nothing,
        such as one adopted by reconciliation) draws on available cash or shares; if those are
        short too the executor under-reserved, which is a bug: LedgerInvariantError.
        """
        _require_positive(price=price, size=size)
        if fee < 0:
            raise ValueError(f"a fee must not be negative, got {fee}")
        if side is Side.BUY:
            self._fill_buy(order_id, token, price, size, fee)
        else:
            self._fill_sell(order_id, token, price, size, fee)

    def _fill_buy(self, order_id: str, token: str, price: int, size: int, fee: int) -> None:
        if order_id in self._share_reservations:
            raise LedgerInvariantError(f"order {order_id} reserved shares but filled as a BUY")
        spend = notional(price, size) + fee  # a buyer's cost rounds UP
        reserved = self._cash_reservations.get(order_id, 0)
        from_reservation = min(reserved, spend)
        if spend - from_reservation > self.available_cash():
            raise LedgerInvariantError(
                f"BUY fill of {order_id} costs {spend}: reservation {reserved} plus available "
                f"{self.available_cash()} is short"
            )
        if order_id in self._cash_reservations:
            self._cash_reservations[order_id] = reserved - from_reservation
        self.reserved_cash -= from_reservation
        held = self.holding(token)
        self._settle(token, held.shares + size, held.cost + spend, cash_delta=-spend, fee=fee)

    def _fill_sell(self, order_id: str, token: str, price: int, size: int, fee: int) -> None:
        if order_id in self._cash_reservations:
            raise LedgerInvariantError(f"order {order_id} reserved cash but filled as a SELL")
        reserved_token, reserved = self._share_reservations.get(order_id, (token, 0))
        if reserved_token != token:
            raise LedgerInvariantError(f"order {order_id} reserved {reserved_token}, filled {token}")
        from_reservation = min(reserved, size)
        if size - from_reservation > self.available_shares(token):
            raise LedgerInvariantError(
                f"SELL fill of {order_id} for {size} of {token}: reservation {reserved} plus "
                f"available {self.available_shares(token)} is short"
            )
        proceeds = notional_down(price, size)  # a seller's proceeds round DOWN
        self._require_cash_after(proceeds - fee, f"SELL fill of {order_id}")
        if order_id in self._share_reservations:
            self._share_reservations[order_id] = (token, reserved - from_reservation)
            self._unreserve_shares(token, from_reservation)
        held = self.holding(token)
        self._settle(
            token, held.shares - size, held.cost - held.cost_of(size), cash_delta=proceeds - fee, fee=fee
        )

    def adjust(self, *, token: str, side: Side, price: int, size_delta: int, fee_delta: int) -> None:
        """Apply reconciliation's correction to a fill already booked (or never booked).

        A positive ``size_delta`` books the missing part like a fill with no reservation. A
        negative one reverses part of a fill at its price, with the rounding of the original
        booking (a buy's refund rounds up, a sell's clawback rounds down). Reversing a buy takes
        the refund out of the cost basis (any excess over the basis, or basis left when the
        position empties, is realised). Reversing a sell puts the shares back at the price they
        were sold at, since the cost they left with is not known any more: total PnL stays
        exact, only its split between realised and unrealised is approximate. ``fee_delta`` is
        an extra fee paid (negative: refunded); on sells it is realised at once. Reserved shares
        it takes come out of their reservations.
        """
        if price <= 0:
            raise ValueError(f"a correction price must be positive, got {price}")
        held = self.holding(token)
        shares_out = size_delta if side is Side.SELL else -size_delta  # shares leaving the position
        if shares_out > held.shares:
            raise LedgerInvariantError(f"correction takes {shares_out} of {token}: only {held.shares} held")
        self._shrink_holds(token, shares_out - self.available_shares(token))
        if side is Side.BUY:
            traded = _signed(notional, price, size_delta)  # refund mirrors the rounded-UP charge
            cash_delta = -traded - fee_delta
            new_shares = held.shares + size_delta
            new_cost = held.cost + traded + fee_delta if new_shares else 0
        else:
            traded = _signed(notional_down, price, size_delta)  # clawback mirrors the rounded-DOWN credit
            cash_delta = traded - fee_delta
            new_shares = held.shares - size_delta
            if size_delta >= 0:
                new_cost = held.cost - held.cost_of(size_delta)
            else:
                new_cost = held.cost - traded  # the shares come back at the price they were sold at
        self._require_cash_after(cash_delta, f"correction of {token}")
        self._settle(token, new_shares, max(new_cost, 0), cash_delta=cash_delta, fee=fee_delta)

    # ----------------------------------------------------------------- complete sets

    def merge(self, yes: str, no: str, size: int) -> None:
        """Burn ``size`` complete sets into ``size`` pUSD (1 pUSD per set).

        The shares must be available: an executor that reserved them while the merge was in
        flight releases those reservations first, then calls this.
        """
        self._require_pair(yes, no, size)
        for token in (yes, no):
            if size > self.available_shares(token):
                raise InsufficientFunds(
                    INSUFFICIENT_SHARES, f"merge of {size} needs {token}, {self.available_shares(token)} available"
                )
        yes_held, no_held = self.holding(yes), self.holding(no)
        self._settle(yes, yes_held.shares - size, yes_held.cost - yes_held.cost_of(size), cash_delta=size, fee=0)
        self._settle(no, no_held.shares - size, no_held.cost - no_held.cost_of(size), cash_delta=0, fee=0)

    def split(self, yes: str, no: str, size: int) -> None:
        """Turn ``size`` pUSD into ``size`` of each token; the cost is shared equally between them."""
        self._require_pair(yes, no, size)
        if size > self.available_cash():
            raise InsufficientFunds(INSUFFICIENT_CASH, f"split of {size} needs cash, {self.available_cash()} available")
        yes_held, no_held = self.holding(yes), self.holding(no)
        half = size // 2
        self._settle(yes, yes_held.shares + size, yes_held.cost + size - half, cash_delta=-size, fee=0)
        self._settle(no, no_held.shares + size, no_held.cost + half, cash_delta=0, fee=0)

    def resolve(self, winning: str, losing: str) -> int:
        """Settle a resolved market: 1 pUSD per winning share, nothing for losing ones.

        Orders on a resolved market can never fill, so whatever shares open sells on either
        token still reserve are released here (a later ``release`` of those orders returns 0).
        """
        if winning == losing:
            raise ValueError(f"a market has two different tokens, got {winning} twice")
        for order_id, (token, _) in list(self._share_reservations.items()):
            if token in (winning, losing):
                self.release(order_id)
        payout = self.position(winning)  # one micro-pUSD per micro-share
        self._settle(winning, 0, 0, cash_delta=payout, fee=0)
        self._settle(losing, 0, 0, cash_delta=0, fee=0)
        return payout

    def redeem(self, shares: Mapping[str, int], payout: int) -> None:
        """Burn shares of a resolved market redeemed on chain, {token: shares}, for ``payout`` pUSD:
        the chain's figure, whatever the shares were expected to pay. The shares must be available
        (the executor releases what held them first); realised PnL takes payout minus their cost."""
        if payout < 0 or any(n <= 0 or n > self.available_shares(t) for t, n in shares.items()):
            raise LedgerInvariantError(f"cannot redeem {dict(shares)} for {payout}")
        for token, n in shares.items():
            held = self.holding(token)
            self._settle(token, held.shares - n, held.cost - held.cost_of(n), cash_delta=0, fee=0)
        self.cash += payout
        self.realised += payout

    def adopt_position(self, token: str, shares: int, cost: int) -> None:
        """Take in a position found at the venue on a cold start, at the cost basis given."""
        if token in self._positions or shares <= 0 or cost < 0:
            raise ValueError(f"cannot adopt {shares} of {token} at cost {cost}")
        self._positions[token] = Position(shares=shares, cost=cost)
        self._cost_basis += cost
        self._moved.add(token)
        self._contributed += cost

    # ----------------------------------------------------------------- invariants

    def check(self) -> None:
        problems: list[str] = []
        if any(amount < 0 for amount in self._cash_reservations.values()):
            problems.append("negative cash reservation")
        if any(shares < 0 for _, shares in self._share_reservations.values()):
            problems.append("negative share reservation")
        if self.reserved_cash != sum(self._cash_reservations.values()):
            problems.append("reserved_cash differs from the sum of reservations")
        if self.reserved_cash > self.cash:
            problems.append("more cash reserved than held")
        if self.cash < 0:
            problems.append("negative cash")
        per_token: dict[str, int] = {}
        for token, shares in self._share_reservations.values():
            per_token[token] = per_token.get(token, 0) + shares
        if {t: n for t, n in per_token.items() if n} != self._reserved_shares:
            problems.append("reserved shares differ from the sum of reservations")
        for token, pos in self._positions.items():
            if pos.shares <= 0 or pos.cost < 0:
                problems.append(f"{token}: bad position {pos}")
            if self._reserved_shares.get(token, 0) > pos.shares:
                problems.append(f"{token}: more shares reserved than held")
        problems += [f"{token}: shares reserved but none held" for token in self._reserved_shares
                     if token not in self._positions]
        if self._cost_basis != sum(p.cost for p in self._positions.values()):
            problems.append("running cost basis differs from the positions' sum")
        if self.cash + self.cost_basis() != self._contributed + self.realised:
            problems.append("cash + cost basis != contributed + realised")
        if problems:
            raise LedgerInvariantError("; ".join(problems))

    # ----------------------------------------------------------------- internals

    def _settle(self, token: str, shares: int, cost: int, *, cash_delta: int, fee: int) -> None:
        """Set a token's position and move cash; realised PnL takes whatever value moved."""
        if shares < 0 or cost < 0:
            raise LedgerInvariantError(f"{token}: position would become {shares} shares at cost {cost}")
        old_cost = self.holding(token).cost
        if shares:
            self._positions[token] = Position(shares=shares, cost=cost)
        else:
            self._positions.pop(token, None)
            cost = 0
        self._cost_basis += cost - old_cost
        self._moved.add(token)
        self.cash += cash_delta
        self.fees_paid += fee
        self.realised += cash_delta + (cost - old_cost)

    def _require_cash_after(self, cash_delta: int, what: str) -> None:
        if self.cash + cash_delta < self.reserved_cash:
            raise LedgerInvariantError(f"{what} would leave cash below the reserved amount")

    def _unreserve_shares(self, token: str, shares: int) -> None:
        if left := self._reserved_shares.get(token, 0) - shares:
            self._reserved_shares[token] = left
        else:
            self._reserved_shares.pop(token, None)

    def _require_new_order_id(self, order_id: str) -> None:
        if order_id in self._cash_reservations or order_id in self._share_reservations:
            raise LedgerInvariantError(f"order {order_id} already holds a reservation")

    @staticmethod
    def _require_pair(yes: str, no: str, size: int) -> None:
        if yes == no:
            raise ValueError(f"a complete set needs two different tokens, got {yes} twice")
        if size <= 0:
            raise ValueError(f"a set count must be positive, got {size}")


def _require_positive(**values: int) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


def _signed(amount_of: Any, price: int, size: int) -> int:
    """``amount_of(price, |size|)`` carrying the sign of ``size``."""
    value = amount_of(price, abs(size))
    return value if size >= 0 else -value
