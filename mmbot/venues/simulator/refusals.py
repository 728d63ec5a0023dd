"""The venue's refusals: ``VenueRefusal`` (an HTTP status, the venue's error string and any other
fields of its answer) and the error strings the simulator's checks answer with."""

from __future__ import annotations

from typing import Any

UNAUTHORIZED = "Unauthorized/Invalid api key"
INVALID_SIGNATURE = "invalid signature"
INVALID_ORDER = "INVALID_ORDER_ERROR"
MIN_TICK = "INVALID_ORDER_MIN_TICK_SIZE"
NOT_ENOUGH_BALANCE = "not enough balance / allowance"
# a POLY_1271 order whose wallet is not (yet) a deployed wallet of the API key's address
SIGNER_NOT_API_KEY = "the order signer address has to be the address of the API KEY"


class VenueRefusal(Exception):
    """The venue's answer to a bad request: ``status``, its error string, and any other fields."""

    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.body: dict[str, Any] = {}
