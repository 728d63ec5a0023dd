"""Money in integers (DESIGN §4): every amount is an integer in the venue's base unit, 10**-6 —
price 0.57 is 570_000, 12.5 shares is 12_500_000 — and the venue's fee formula in those units."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

ONE = 1_000_000  # 1.0 in micro-units: one pUSD, one share, price 1.0


MAX_DIGITS = 30  # no venue amount has more digits before the point than this


def parse_micro(text: str | int) -> int:
    """A venue decimal string ("0.513", "3149725.72") as integer micro-units, exactly.

    Raises ValueError for anything that is not a finite decimal with at most six places.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        return text * ONE
    if not isinstance(text, str):
        raise ValueError(f"expected a decimal string, got {type(text).__name__}")
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {text!r}")
    if value and value.adjusted() > MAX_DIGITS:  # "1E+999999" would overflow the scaling (or eat memory)
        raise ValueError(f"too large: {text[:20]!r}")
    scaled = value.scaleb(6)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"more than six decimal places: {text!r}")
    return int(scaled)


def format_micro(value: int) -> str:
    """Integer micro-units as the shortest exact decimal string: 570000 -> '0.57'."""
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), ONE)
    if frac == 0:
        return f"{sign}{whole}"
    return f"{sign}{whole}.{frac:06d}".rstrip("0")


SHARE_STEP = 10_000  # orders are sized in whole hundredths of a share (the venue's amount rounding)


def size_off_step(size: int) -> str | None:
    """Why an order of ``size`` cannot be sent as asked (the signed amounts would round it), or None."""
    if size % SHARE_STEP:
        return f"size {format_micro(size)} is finer than 0.01 share"
    return None


def notional(price: int, size: int) -> int:
    """Cost of ``size`` shares at ``price``, rounded up (what a buyer must hold)."""
    return -((-price * size) // ONE)


def notional_down(price: int, size: int) -> int:
    """Proceeds of ``size`` shares at ``price``, rounded down (what a seller may count on)."""
    return (price * size) // ONE


CENT = 10_000


def market_buy_budget(price: int, size: int) -> int:
    """The pUSD a market (FOK/FAK) BUY of ``size`` shares at worst price ``price`` spends: its cost
    rounded down to whole cents, the finest amount the venue takes for it (protocol doc §6.2)."""
    return price * size // ONE // CENT * CENT


def taker_fee(size: int, price: int, rate: int, exponent: int = 1) -> int:
    """Polymarket V2 taker fee in pUSD micro-units (protocol doc §8).

    fee = C x rate x (p x (1 - p))^exponent for C shares at price p, rounded half-up to five
    decimal places (10 micro-units); a fee below 0.00001 pUSD is zero. Makers pay nothing.
    """
    if size <= 0 or rate <= 0:
        return 0
    numerator = size * rate * (price * (ONE - price)) ** exponent
    denominator = ONE ** (1 + 2 * exponent)  # back to micro-units of pUSD
    step = denominator * 10  # one unit of the fifth decimal place
    if numerator < step:
        return 0
    return ((numerator + step // 2) // step) * 10

