"""Who may do what on the simulated venue: API credentials (``ApiKeys``), the L1 check (a
ClobAuth signature proves an address) and the L2 check (an HMAC over the exact request, signed
within ``TIMESTAMP_WINDOW_S`` of the server's clock), and recovering the signer of an EIP-712
digest. Sans-IO: the time is passed in; ``trading.SimTrading`` keeps the accounts and calls these.

Every malformed header is the venue's 401 ``Unauthorized/Invalid api key``, never a crash: the
secrets and signatures are compared as bytes, so a header that is not ASCII compares unequal.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import random
import secrets
from typing import Mapping

import attrs
import coincurve
from eth_hash.auto import keccak

from mmbot.config import Secret
from mmbot.venues.polymarket.auth import ApiCredentials, SigningError, clob_auth_digest
from mmbot.venues.simulator.refusals import INVALID_SIGNATURE, UNAUTHORIZED, VenueRefusal

# How far POLY_TIMESTAMP may be from the server's clock, either way, in seconds: the venue's own
# window is unpublished; a minute lets honest clocks drift and a captured request expire.
TIMESTAMP_WINDOW_S = 60


@attrs.define(eq=False)
class Account:
    address: str
    creds: ApiCredentials
    revoked: bool = False  # its API key was deleted (``DELETE /auth/api-key``): it authenticates no more


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


def _credentials(digest: bytes) -> ApiCredentials:
    key = "-".join((digest[:4].hex(), digest[4:6].hex(), digest[6:8].hex(), digest[8:10].hex(), digest[10:16].hex()))
    return ApiCredentials(api_key=key, secret=Secret(value=base64.urlsafe_b64encode(digest).decode()),
                          passphrase=Secret(value=hashlib.sha256(digest).hexdigest()))


def credentials_for(address: str, seed: int = 0) -> ApiCredentials:
    """Credentials anyone can compute from an address: for tests that register an account
    themselves (``SimServer.add_account``). The server never hands these out: what
    ``/auth/derive-api-key`` answers comes from ``ApiKeys``, under a secret of its own."""
    return _credentials(hashlib.sha256(f"{seed}:{address.lower()}".encode()).digest())


class ApiKeys:
    """Which API key each address holds for each nonce, as ``/auth/api-key`` and
    ``/auth/derive-api-key`` answer: the one registered for it, else one derived from the address
    and nonce under this server run's secret (the same for every call within the run, as the venue
    derives the same key each time; no client can compute another address's). A deleted key
    is forgotten, and the next one for that address and nonce is a new key (a new account)."""

    def __init__(self, rng: random.Random | None = None) -> None:
        """``rng``: a seeded generator, only for tests that want the same keys every run."""
        self._secret = rng.randbytes(32) if rng is not None else secrets.token_bytes(32)
        self._held: dict[tuple[str, int], ApiCredentials] = {}
        self._deleted: dict[tuple[str, int], int] = {}  # how many keys of this address and nonce were deleted
        self._gone: set[str] = set()  # deleted keys: never handed out again

    def register(self, address: str, creds: ApiCredentials, nonce: int = 0) -> None:
        """Credentials given from outside (a test's account) are what the address derives, unless
        it has some (or these were deleted)."""
        if creds.api_key not in self._gone:
            self._held.setdefault((address.lower(), nonce), creds)

    def derive(self, address: str, nonce: int) -> ApiCredentials:
        slot = (address.lower(), nonce)
        if slot not in self._held:
            message = f"{slot[0]}:{nonce}:{self._deleted.get(slot, 0)}".encode()
            self._held[slot] = _credentials(hmac.new(self._secret, message, hashlib.sha256).digest())
        return self._held[slot]

    def keys_of(self, address: str) -> list[str]:
        """``GET /auth/api-keys``: the address's keys, by nonce."""
        return [creds.api_key for (held, _), creds in sorted(self._held.items()) if held == address.lower()]

    def delete(self, address: str, api_key: str) -> None:
        for slot, creds in list(self._held.items()):
            if slot[0] == address.lower() and creds.api_key == api_key:
                del self._held[slot]
                self._deleted[slot] = self._deleted.get(slot, 0) + 1
                self._gone.add(api_key)


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that any header survives (latin-1 is how HTTP headers decode)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def fresh(headers: Mapping[str, str], now_s: int) -> None:
    """POLY_TIMESTAMP is whole unix seconds within ``TIMESTAMP_WINDOW_S`` of ``now_s`` (the server's clock)."""
    stamp = headers.get("poly_timestamp", "")
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12
            and abs(int(stamp) - now_s) <= TIMESTAMP_WINDOW_S):
        raise VenueRefusal(401, UNAUTHORIZED)


def check_credentials(accounts: Mapping[str, Account], api_key: str, secret: str, passphrase: str) -> str:
    """The user channel's first frame carries the credentials themselves; returns the api key."""
    account = accounts.get(api_key)
    if account is None or account.revoked or not (_same(secret, account.creds.secret.reveal())
                                                  and _same(passphrase, account.creds.passphrase.reveal())):
        raise VenueRefusal(401, UNAUTHORIZED)
    return api_key


def l1_address(headers: Mapping[str, str], now_s: int) -> tuple[str, int]:
    """The address a valid, fresh ClobAuth signature (L1 headers) proves, and the nonce it signed."""
    fresh(headers, now_s)
    try:
        address, timestamp = headers["poly_address"], headers["poly_timestamp"]
        nonce_text = headers.get("poly_nonce", "0")
        if not (nonce_text.isascii() and nonce_text.isdigit() and len(nonce_text) <= 78):
            raise ValueError(nonce_text)
        nonce = int(nonce_text)
        digest = clob_auth_digest(address, timestamp, nonce)
        if recover_address(digest, headers.get("poly_signature", "")) != address.lower():
            raise ValueError(address)
    except (KeyError, ValueError, SigningError, VenueRefusal):
        raise VenueRefusal(401, UNAUTHORIZED) from None
    return address, nonce


def authenticate(accounts: Mapping[str, Account], headers: Mapping[str, str], method: str, path: str,
                 body: bytes, *, now_s: int) -> Account:
    """The L2 check: the account whose key, passphrase, address and HMAC over the exact request
    match, signed within the window of ``now_s``."""
    account = accounts.get(headers.get("poly_api_key", ""))
    if account is None or account.revoked or not _same(headers.get("poly_passphrase", ""),
                                                        account.creds.passphrase.reveal()):
        raise VenueRefusal(401, UNAUTHORIZED)
    if not _same(headers.get("poly_address", "").lower(), account.address.lower()):
        raise VenueRefusal(401, UNAUTHORIZED)  # a key works only for the address that made it
    fresh(headers, now_s)
    message = f"{headers['poly_timestamp']}{method}{path}".encode() + body
    try:
        key = base64.urlsafe_b64decode(account.creds.secret.reveal())
    except (ValueError, binascii.Error):  # a test's account with a secret that is not base64
        raise VenueRefusal(401, UNAUTHORIZED) from None
    expected = base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()
    if not _same(headers.get("poly_signature", ""), expected):
        raise VenueRefusal(401, UNAUTHORIZED)
    return account
