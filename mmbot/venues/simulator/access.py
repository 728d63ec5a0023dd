"""Who may do what on the simulated venue: API credentials, the L1 check (a ClobAuth signature
proves an address) and the L2 check (an HMAC over the exact request), and recovering the signer
of an EIP-712 digest. Sans-IO; ``trading.SimTrading`` keeps the accounts and calls these."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Mapping

import attrs
import coincurve
from eth_hash.auto import keccak

from mmbot.config import Secret
from mmbot.venues.polymarket.auth import ApiCredentials, SigningError, clob_auth_digest
from mmbot.venues.simulator.refusals import INVALID_SIGNATURE, UNAUTHORIZED, VenueRefusal


@attrs.frozen
class Account:
    address: str
    creds: ApiCredentials


def recover_address(digest: bytes, signature: str) -> str:
    try:
        raw = bytes.fromhex(signature.removeprefix("0x"))
    except ValueError:
        raise VenueRefusal(400, INVALID_SIGNATURE) from None
    if len(raw) != 65 or raw[64] not in (27, 28):
        raise VenueRefusal(400, INVALID_SIGNATURE)
    try:
        public = coincurve.PublicKey.from_signature_and_message(raw[:64] + bytes([raw[64] - 27]), digest, hasher=None)
    except ValueError:
        raise VenueRefusal(400, INVALID_SIGNATURE) from None
    return "0x" + keccak(public.format(compressed=False)[1:])[-20:].hex()  # lower case: compared, never shown


def credentials_for(address: str, seed: int = 0) -> ApiCredentials:
    """Deterministic simulator credentials for an address (what ``/auth/derive-api-key`` returns)."""
    digest = hashlib.sha256(f"{seed}:{address.lower()}".encode()).digest()
    key = "-".join((digest[:4].hex(), digest[4:6].hex(), digest[6:8].hex(), digest[8:10].hex(), digest[10:16].hex()))
    return ApiCredentials(api_key=key, secret=Secret(value=base64.urlsafe_b64encode(digest).decode()),
                          passphrase=Secret(value=hashlib.sha256(digest).hexdigest()))


def check_credentials(accounts: Mapping[str, Account], api_key: str, secret: str, passphrase: str) -> str:
    """The user channel's first frame carries the credentials themselves; returns the api key."""
    account = accounts.get(api_key)
    if account is None or not (hmac.compare_digest(secret, account.creds.secret.reveal())
                               and hmac.compare_digest(passphrase, account.creds.passphrase.reveal())):
        raise VenueRefusal(401, UNAUTHORIZED)
    return api_key


def l1_address(headers: Mapping[str, str]) -> str:
    """The address a valid ClobAuth signature (L1 headers) proves."""
    try:
        address, timestamp = headers["poly_address"], headers["poly_timestamp"]
        digest = clob_auth_digest(address, timestamp, int(headers.get("poly_nonce", "0")))
    except (KeyError, ValueError, SigningError):
        raise VenueRefusal(401, UNAUTHORIZED) from None
    if recover_address(digest, headers.get("poly_signature", "")) != address.lower():
        raise VenueRefusal(401, UNAUTHORIZED)
    return address


def authenticate(accounts: Mapping[str, Account], headers: Mapping[str, str], method: str, path: str,
                 body: bytes) -> Account:
    """The L2 check: the account whose key, passphrase and HMAC over the exact request match."""
    account = accounts.get(headers.get("poly_api_key", ""))
    if account is None or headers.get("poly_passphrase") != account.creds.passphrase.reveal():
        raise VenueRefusal(401, UNAUTHORIZED)
    message = f"{headers.get('poly_timestamp', '')}{method}{path}".encode() + body
    expected = base64.urlsafe_b64encode(
        hmac.new(base64.urlsafe_b64decode(account.creds.secret.reveal()), message, hashlib.sha256).digest()
    ).decode()
    if not hmac.compare_digest(expected, headers.get("poly_signature", "")):
        raise VenueRefusal(401, UNAUTHORIZED)
    return account
