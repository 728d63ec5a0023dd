"""Polymarket's relayer (onchain reference §4): the only way a deposit wallet's batches and its
deployment reach the chain, since the wallet factory runs them for its operators alone.

``RelayerClient`` speaks five endpoints over an injected ``httpx.AsyncClient`` (whose base URL is
the relayer's): ``POST /submit``, ``GET /v1/account/transactions/{id}``, ``GET /transactions``,
``GET /deployed`` and ``GET /v1/account/transactions/params``. Every request carries one of two kinds of credentials
(``RelayerApiKey`` or ``BuilderKey``), read from the environment by ``relayer_auth_from_env``.

What an answer means for a submission:

* accepted → ``RelayerTransaction`` (its ``transactionID`` and first state);
* refused for now (429; 400 ``wallet busy``, ``in-flight action``, ``batch nonce N does not match
  on-chain nonce M``) → ``RelayerBusy``: nothing was taken, sign again with a fresh nonce later;
* refused (any other 4xx) → ``ChainFailed`` with the relayer's text, not retryable;
* no connection made → ``ChainUnreachable``: nothing left;
* sent and then nothing usable (timeout, dropped connection, 5xx, an answer that does not decode)
  → ``SubmitUnknown``: the batch may run. The caller must find out from the chain; it never
  sends the same batch again blindly.

A read that cannot be made or answered is ``ChainUnreachable`` (nothing changed by asking). Answers
that do not decode are counted in ``malformed``; for a transaction's status one counts as "no
answer yet" (``None``). Nothing here retries or waits: ``relayer_adapter`` does.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from mmbot.config import Secret, secret_from_env
from mmbot.ports import Clock
from mmbot.venues.polymarket.auth import hmac_signature, parse_address
from mmbot.venues.polymarket.chain_types import ChainFailed, ChainUnreachable
from mmbot.venues.polymarket.rest import parse_retry_after

STATE_NEW = "STATE_NEW"
STATE_EXECUTED = "STATE_EXECUTED"
STATE_MINED = "STATE_MINED"  # in a block, not yet final: not enough to rely on
STATE_CONFIRMED = "STATE_CONFIRMED"
STATE_FAILED = "STATE_FAILED"  # the batch reverted (or was dropped): nothing moved
STATE_INVALID = "STATE_INVALID"  # refused as malformed: nothing moved, and the same batch never will
FINAL_STATES = frozenset({STATE_CONFIRMED, STATE_FAILED, STATE_INVALID})

_BUSY = ("wallet busy", "in-flight action", "active action")
_DIGITS = re.compile(r"[0-9]{1,78}")
_NONCE_CLASH = re.compile(r"batch nonce \d+ does not match on-chain nonce \d+")


# --------------------------------------------------------------------------- credentials


@attrs.frozen
class RelayerApiKey:
    """A Relayer API key (polymarket.com → Settings → API Keys) and the signer address shown with
    it: two static headers."""

    key: Secret
    address: str

    def headers(self, method: str, path: str, body: bytes, now_s: int) -> dict[str, str]:
        return {"RELAYER_API_KEY": self.key.reveal(), "RELAYER_API_KEY_ADDRESS": self.address}


@attrs.frozen
class BuilderKey:
    """A Builder API key: each request signed by HMAC-SHA256 over ``timestamp + METHOD + path +
    body`` with the base64 secret, the CLOB's L2 recipe."""

    key: Secret
    secret: Secret
    passphrase: Secret

    def headers(self, method: str, path: str, body: bytes, now_s: int) -> dict[str, str]:
        return {
            "POLY_BUILDER_API_KEY": self.key.reveal(),
            "POLY_BUILDER_PASSPHRASE": self.passphrase.reveal(),
            "POLY_BUILDER_TIMESTAMP": str(now_s),
            "POLY_BUILDER_SIGNATURE": hmac_signature(self.secret, now_s, method, path, body.decode()),
        }


RelayerAuth = RelayerApiKey | BuilderKey

_API_KEY_VARS = ("MMBOT_RELAYER_API_KEY", "MMBOT_RELAYER_API_KEY_ADDRESS")
_BUILDER_VARS = ("MMBOT_BUILDER_API_KEY", "MMBOT_BUILDER_SECRET", "MMBOT_BUILDER_PASSPHRASE")


def relayer_auth_from_env(environ: Mapping[str, str]) -> RelayerAuth | None:
    """The relayer credentials the environment holds: the Relayer API key if its pair is set
    (preferred: builder-signed merges were reported to fail where the API key worked), else the
    Builder key if its three are set, else None. A kind set only in part is a ``ValueError``
    naming what is missing; a value is never echoed."""
    api = {name: secret_from_env(name, environ) for name in _API_KEY_VARS}
    builder = {name: secret_from_env(name, environ) for name in _BUILDER_VARS}
    for found in (api, builder):
        missing = [name for name, value in found.items() if value is None]
        if missing and len(missing) < len(found):
            present = [name for name, value in found.items() if value is not None]
            raise ValueError(f"{' and '.join(missing)} not set (needed with {' and '.join(present)})")
    key, address = api[_API_KEY_VARS[0]], api[_API_KEY_VARS[1]]
    if key is not None and address is not None:
        try:
            return RelayerApiKey(key=key, address=parse_address(address.reveal()))
        except ValueError:
            raise ValueError("MMBOT_RELAYER_API_KEY_ADDRESS is not a 0x-prefixed 20-byte hex address") from None
    builder_key, secret, passphrase = (builder[name] for name in _BUILDER_VARS)
    if builder_key is None or secret is None or passphrase is None:
        return None
    try:
        base64.urlsafe_b64decode(secret.reveal())
    except (binascii.Error, ValueError):
        raise ValueError("MMBOT_BUILDER_SECRET is not base64") from None
    return BuilderKey(key=builder_key, secret=secret, passphrase=passphrase)


# --------------------------------------------------------------------------- answers and errors


@attrs.frozen
class RelayerTransaction:
    """What the relayer says of one of its transactions."""

    transaction_id: str
    state: str
    tx_hash: str = ""
    error: str = ""


class SubmitUnknown(Exception):
    """A ``/submit`` left and no usable answer came back: the batch may or may not run."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RelayerBusy(Exception):
    """The relayer took nothing and asks to be tried again (429, or a busy wallet, or a nonce it
    sees differently): after ``retry_after_s`` if it said, with a freshly read nonce."""

    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:  # float-ok: a delay
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s


def _error_text(response: httpx.Response) -> str:
    """The relayer's error message on one line (at most 200 characters)."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if isinstance(body, dict):
        body = body.get("error") or body.get("error_msg") or body.get("errorMsg") or body.get("message") or body
    text = " ".join(str(body).split())[:200]
    return text or f"HTTP {response.status_code}"


def is_busy(text: str) -> bool:
    """True for the 400s the relayer gives when it cannot take a batch *now* (onchain §4)."""
    lowered = text.lower()
    return any(marker in lowered for marker in _BUSY) or _NONCE_CLASH.search(lowered) is not None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


class _Malformed(Exception):
    pass


class _NoAnswer(Exception):
    pass


# --------------------------------------------------------------------------- the client


class RelayerClient:
    """The relayer's endpoints, with every outcome mapped as the module says."""

    def __init__(self, http: httpx.AsyncClient, auth: RelayerAuth, clock: Clock) -> None:
        self._http = http
        self._auth = auth
        self._clock = clock
        self.malformed = 0  # answers that did not decode

    def __repr__(self) -> str:
        return f"RelayerClient(base_url={str(self._http.base_url)!r}, auth={type(self._auth).__name__})"

    async def submit(self, body: dict[str, Any]) -> RelayerTransaction:
        """``POST /submit``: a ``WALLET`` or ``WALLET-CREATE`` body (``wallet_batch``)."""
        content = json.dumps(body, separators=(",", ":")).encode()
        try:
            response = await self._send("POST", "/submit", content=content)
        except _NoAnswer as exc:
            raise SubmitUnknown(f"POST /submit: no answer: {exc}") from None
        status = response.status_code
        if status == 429:
            raise RelayerBusy("POST /submit: rate limited",
                              parse_retry_after(response.headers.get("Retry-After"), self._clock.now_ns()))
        if status >= 500:
            raise SubmitUnknown(f"POST /submit: {status} {_error_text(response)}")
        if status >= 400:
            text = _error_text(response)
            if status == 400 and is_busy(text):
                raise RelayerBusy(f"POST /submit: {text}",
                                  parse_retry_after(response.headers.get("Retry-After"), self._clock.now_ns()))
            raise ChainFailed(f"the relayer refused the transaction: {status} {text}", retryable=False)
        try:
            answer = _json_object(response)
            transaction_id = answer.get("transactionID")
            state = answer.get("state", STATE_NEW)
            if not isinstance(transaction_id, str) or not transaction_id or not isinstance(state, str):
                raise _Malformed("no transactionID or state")
        except _Malformed as exc:
            self.malformed += 1
            raise SubmitUnknown(f"POST /submit: unreadable answer: {exc}") from None
        return RelayerTransaction(transaction_id=transaction_id, state=state,
                                  tx_hash=_str(answer.get("transactionHash")))

    async def transaction(self, transaction_id: str) -> RelayerTransaction | None:
        """The transaction's current state; None if the relayer does not know it (404) or answered
        something unreadable (counted): either way, no answer yet."""
        response = await self._get(f"/v1/account/transactions/{urllib.parse.quote(transaction_id, safe='')}")
        if response is None:
            return None
        try:
            answer = _json_object(response)
            state = answer.get("state")
            if not isinstance(state, str) or not state:
                raise _Malformed("no state")
        except _Malformed:
            self.malformed += 1
            return None
        return RelayerTransaction(transaction_id=_str(answer.get("transaction_id")) or transaction_id, state=state,
                                  tx_hash=_str(answer.get("transaction_hash")),
                                  error=" ".join(_str(answer.get("error_msg")).split())[:200])

    async def deployed(self, address: str) -> bool:
        """Whether the relayer thinks the deposit wallet exists (it can lag the chain: the chain's
        code is the truth)."""
        try:
            value = _json_object(await self._read("/deployed", {"address": address, "type": "WALLET"})).get("deployed")
            if not isinstance(value, bool):
                raise _Malformed("no deployed flag")
        except _Malformed as exc:
            self.malformed += 1
            raise ChainUnreachable(f"GET /deployed: unreadable answer: {exc}") from None
        return value

    async def unfinished(self, owner: str) -> list[RelayerTransaction]:
        """``GET /transactions``: the key's transactions from ``owner`` not yet in a final state
        (a batch a killed run left at the relayer). ``ChainUnreachable`` if the list cannot be read
        or does not decode (counted)."""
        response = await self._read("/transactions", {})
        try:
            items = response.json()
            if not isinstance(items, list):
                raise _Malformed("not a JSON list")
            found = []
            for item in items:
                state, transaction_id = (item.get("state"), item.get("transactionID")) if isinstance(item, dict) \
                    else (None, None)
                if not isinstance(state, str) or not isinstance(transaction_id, str):
                    raise _Malformed("an item without transactionID or state")
                sender = item.get("from")
                if state not in FINAL_STATES and (not isinstance(sender, str) or sender.lower() == owner.lower()):
                    found.append(RelayerTransaction(transaction_id=transaction_id, state=state,
                                                    tx_hash=_str(item.get("transactionHash"))))
        except (ValueError, _Malformed) as exc:
            self.malformed += 1
            raise ChainUnreachable(f"GET /transactions: unreadable answer: {exc}") from None
        return found

    async def wallet_nonce(self, owner: str) -> int:
        """The batch nonce the relayer reports for the owner's wallet. Informational: batches are
        signed with the wallet's on-chain ``nonce()``."""
        try:
            value = _json_object(await self._read("/v1/account/transactions/params",
                                                  {"address": owner, "type": "WALLET"})).get("nonce")
            if isinstance(value, bool) or not isinstance(value, (int, str)) or not _DIGITS.fullmatch(str(value)):
                raise _Malformed("no nonce")
        except _Malformed as exc:
            self.malformed += 1
            raise ChainUnreachable(f"GET /v1/account/transactions/params: unreadable answer: {exc}") from None
        return int(value)

    # ------------------------------------------------------------------ the one way out

    async def _read(self, path: str, params: dict[str, str]) -> httpx.Response:
        response = await self._get(path, params)
        if response is None:
            raise ChainUnreachable(f"GET {path}: 404 not found")
        return response

    async def _get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response | None:
        """A 2xx answer, or None for a 404; the rest raised as the module says."""
        try:
            response = await self._send("GET", path, params=params)
        except _NoAnswer as exc:
            raise ChainUnreachable(f"GET {path}: no answer: {exc}") from None
        status = response.status_code
        if status == 404:
            return None
        if status == 429 or status >= 500:
            raise ChainUnreachable(f"GET {path}: {status} {_error_text(response)}")
        if status >= 400:
            raise ChainFailed(f"GET {path}: the relayer refused: {status} {_error_text(response)}", retryable=False)
        return response

    async def _send(self, method: str, path: str, *, content: bytes = b"",
                    params: dict[str, str] | None = None) -> httpx.Response:
        """One request: ``ChainUnreachable`` if it could not be sent, ``_NoAnswer`` if it left and
        nothing came back."""
        headers = self._auth.headers(method, path, content, self._clock.now_ns() // 1_000_000_000)
        if content:
            headers["Content-Type"] = "application/json"
        try:
            return await self._http.request(method, path, content=content or None, params=params, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ChainUnreachable(f"{method} {path}: not sent: {type(exc).__name__}") from None
        except httpx.TransportError as exc:  # it left, and then nothing (read timeout, reset)
            raise _NoAnswer(type(exc).__name__) from None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        raise _Malformed("not JSON") from None
    if not isinstance(answer, dict):
        raise _Malformed(f"a JSON {type(answer).__name__}, not an object")
    return answer
