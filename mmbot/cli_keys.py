"""The owner's signing key, as every command that signs reads it: from ``MMBOT_PRIVATE_KEY`` only,
never shown; missing or malformed is one line naming the variable (exit code 2). Also the names of
the API credentials' variables and of the signature types, as every command reads them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mmbot.cli_errors import UsageError

if TYPE_CHECKING:
    from mmbot.venues.polymarket.auth import SigningKey

PRIVATE_KEY_ENV = "MMBOT_PRIVATE_KEY"
API_ENV = ("MMBOT_API_KEY", "MMBOT_API_SECRET", "MMBOT_API_PASSPHRASE")  # the L2 credentials, all three or none
# --signature-type's names of auth.EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271, in that order
SIGNATURE_TYPES = ("eoa", "poly-proxy", "gnosis-safe", "deposit-wallet")


def signing_key(who: str) -> SigningKey:
    from mmbot.config import secret_from_env
    from mmbot.venues.polymarket.auth import SigningError, SigningKey

    secret = secret_from_env(PRIVATE_KEY_ENV)
    if secret is None:
        raise UsageError(f"{who}: {PRIVATE_KEY_ENV} is not set: expected the owner key's 32 bytes of hex")
    try:
        return SigningKey(secret)  # refuses anything but 32 bytes of hex, never echoing it
    except SigningError as exc:
        raise UsageError(f"{who}: {PRIVATE_KEY_ENV}: {exc}") from None
