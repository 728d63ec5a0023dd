"""``mmbot doctor``: can this account trade on this venue now? Every check a line — ok, warn or
fail — with what it found and, when it is not ok, what to do.

=================  =========================================================================
check              how
=================  =========================================================================
signing key        ``MMBOT_PRIVATE_KEY`` is set and is 32 bytes of hex (as ``mmbot run`` reads it)
venue version      ``GET /version``: the order version the venue takes is the one mmbot signs
clock skew         ``GET /time`` against our wall clock, the round trip (and the venue's whole
                   seconds) as the bound; reported, never failed: the venue's clock decides nothing
api credentials    ``MMBOT_API_KEY``/``_SECRET``/``_PASSPHRASE`` (or, when none is set, derived
                   from the key, L1: a warning), proven by an L2 call (the balance)
balance            the pUSD the venue says the account holds (``GET /balance-allowance``)
allowances         the exchanges may spend the whole balance (``/balance-allowance``); with ``--rpc``
                   also every approval on chain (``chain_view.missing_approvals``)
deposit wallet     with ``--signature-type deposit-wallet`` (needs ``--rpc``): the owner's wallet
                   is deployed on chain (``mmbot wallet deploy`` otherwise)
relayer            with ``--relayer``: its credentials are in the environment and it answers
heartbeat          ``POST /v1/heartbeats`` is answered. The first heartbeat arms the venue's
                   cancel-on-disconnect: with orders open (a bot running) it is not sent (warn)
market channel     ``--ws``: connect, subscribe one listed token, a frame comes within 10 s
user channel       ``--user-ws`` (default ``--ws`` with ``/ws/market`` → ``/ws/user``): connect
                   with the credentials; the venue keeps the connection (it closes it on bad ones)
=================  =========================================================================

Exit code 0 when no check failed (warnings allowed), 1 when any did, 2 on bad input (one line).
A check that needs what an earlier one could not give (the key, the credentials) is skipped.
Secrets are never printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Awaitable, Callable

import attrs

from mmbot.cli_errors import UsageError
from mmbot.cli_keys import API_ENV, PRIVATE_KEY_ENV, SIGNATURE_TYPES
from mmbot.cli_places import HTTP, WS, check_url

TIMEOUT_S = 10
USER_HOLD_S = 2  # how long the user channel must stay open after the credentials went in
SKEW_WARN_S = 5  # a skew beyond the bound by more than this is a warning


class _NoLog:
    def record(self, kind: str, cid: str, payload: Any = None, **_: Any) -> None:
        pass


@attrs.frozen
class Check:
    name: str
    status: str  # ok, warn, fail, skip
    detail: str
    fix: str = ""


class Doctor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.checks: list[Check] = []
        self.key: Any = None
        self.creds: Any = None
        self.rest: Any = None
        self.wallet: str | None = None

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.checks.append(Check(name, status, detail, fix))

    async def run(self) -> list[Check]:
        import httpx

        from mmbot.clock import TrioClock

        self.clock = TrioClock()
        self.read_key()
        async with httpx.AsyncClient(base_url=self.args.rest, timeout=TIMEOUT_S) as http:
            self.http = http
            if await self.guard("venue version", self.venue_version):
                await self.guard("clock skew", self.clock_skew)
                if self.key is not None:
                    await self.guard("api credentials", self.credentials)
            if self.rest is not None:
                await self.guard("balance", self.balance)
                await self.guard("allowances", self.allowances)
            if self.args.rpc and self.key is not None:
                await self.guard("approvals on chain", self.chain)
            if self.args.relayer:
                await self.guard("relayer", self.relayer)
            if self.rest is not None:
                await self.guard("heartbeat", self.heartbeat)
            await self.guard("market channel", self.market_channel)
            if self.creds is not None:
                await self.guard("user channel", self.user_channel)
        needs = {"api credentials": "the signing key", "balance": "working API credentials",
                 **({"deposit wallet": "the signing key"} if self.args.signature_type == "deposit-wallet" else {}),
                 "heartbeat": "working API credentials", "user channel": "API credentials"}
        if self.args.rpc:
            needs["approvals on chain"] = "the signing key and a deployed wallet"
        done = {c.name for c in self.checks}
        for name, what in needs.items():
            if name not in done:
                self.add(name, "skip", f"not checked: needs {what}")
        return self.checks

    async def guard(self, name: str, check: Callable[[], Awaitable[None]]) -> bool:
        """Run one check; a venue that cannot be reached or answers oddly is that check's failure."""
        before = len(self.checks)
        try:
            await check()
        except Exception as exc:  # whatever it is, it is this check's failure, told in one line
            self.add(name, "fail", f"{type(exc).__name__}: {exc}"[:300], "check the URL and that the service is up")
        return all(c.status != "fail" for c in self.checks[before:])

    # ------------------------------------------------------------------ the checks

    def read_key(self) -> None:
        from mmbot.config import secret_from_env
        from mmbot.venues.polymarket.auth import SigningError, SigningKey

        secret = secret_from_env(PRIVATE_KEY_ENV)
        if secret is None:
            self.add("signing key", "fail", f"{PRIVATE_KEY_ENV} is not set",
                     f"export {PRIVATE_KEY_ENV}=<the owner key's 32 bytes of hex>")
            return
        try:
            self.key = SigningKey(secret)
        except SigningError as exc:
            self.add("signing key", "fail", f"{PRIVATE_KEY_ENV}: {exc}", "expected 32 bytes of hex (64 digits, 0x optional)")
            return
        self.add("signing key", "ok", f"owner {self.key.address}")

    async def venue_version(self) -> None:
        from mmbot.venues.polymarket.rest import ORDER_VERSION
        from mmbot.venues.polymarket.rest_answers import decode_version

        response = await self.http.get("/version")
        response.raise_for_status()
        version = decode_version(response.content)
        if version != ORDER_VERSION:
            self.add("venue version", "fail", f"the venue takes order version {version}; mmbot signs {ORDER_VERSION}",
                     "upgrade mmbot before trading")
            return
        self.add("venue version", "ok", f"order version {version} at {self.args.rest}")

    async def clock_skew(self) -> None:
        from mmbot.clock import wall_ns

        sent = wall_ns()
        response = await self.http.get("/time")
        back = wall_ns()
        response.raise_for_status()
        text = response.text.strip()
        venue_s = int(json.loads(text)["time"]) if text.startswith("{") else int(text)
        skew_ms = venue_s * 1_000 - (sent + back) // 2 // 1_000_000
        bound_ms = (back - sent) // 1_000_000 // 2 + 1_000  # half the round trip, and /time's whole seconds
        detail = f"venue - ours = {skew_ms:+,} ms (± {bound_ms:,} ms); reported only, nothing depends on it"
        if abs(skew_ms) > bound_ms + SKEW_WARN_S * 1_000:
            self.add("clock skew", "warn", detail, "sync this machine's clock (NTP) if the venue is the real one;"
                     " a simulator running faster than real time keeps its own clock")
        else:
            self.add("clock skew", "ok", detail)

    async def credentials(self) -> None:
        from mmbot.config import secret_from_env
        from mmbot.ports import Fatal
        from mmbot.venues.polymarket.auth import ApiCredentials
        from mmbot.venues.polymarket.rest import ClobRest

        present = [name for name in API_ENV if secret_from_env(name) is not None]
        how = "from the environment"
        if len(present) == len(API_ENV):
            api_key, secret, passphrase = (secret_from_env(name) for name in API_ENV)
            creds = ApiCredentials(api_key=api_key.reveal(), secret=secret, passphrase=passphrase)
        elif present:
            missing = [name for name in API_ENV if name not in present]
            self.add("api credentials", "fail", f"missing from the environment: {', '.join(missing)}",
                     "set all three, or none (then they are derived from the key)")
            return
        else:
            creds = await ClobRest.create_or_derive_api_key(self.http, self.key, self.clock)
            how = "derived from the key (L1): not in the environment"
        rest = ClobRest(client=self.http, creds=creds, address=self.key.address, clock=self.clock)
        try:
            self.collateral = await rest.collateral(self.signature_type())
        except Fatal as exc:
            self.add("api credentials", "fail", f"the venue refused them: {exc}",
                     f"derive them again: mmbot creds derive --rest {self.args.rest}")
            self.creds = creds  # the user channel shows how it takes them
            return
        self.creds, self.rest = creds, rest
        status = "ok" if how == "from the environment" else "warn"
        self.add("api credentials", status, f"{how}; an L2 call (the balance) is answered",
                 "" if status == "ok" else f"keep them in the environment: mmbot creds derive --rest {self.args.rest}")

    async def balance(self) -> None:
        from mmbot.model import format_micro

        balance = self.collateral.balance
        if balance <= 0:
            self.add("balance", "fail", "the account holds no pUSD",
                     "deposit pUSD (on the simulator: POST /admin/fund, or mmbot sim --funding)")
            return
        self.add("balance", "ok", f"{format_micro(balance)} pUSD")

    async def allowances(self) -> None:
        from mmbot.model import format_micro

        allowance, balance = self.collateral.allowance, self.collateral.balance
        if allowance is None:
            self.add("allowances", "warn", "the venue gave no allowance figure",
                     "check the approvals on chain: pass --rpc")
        elif allowance < balance:
            self.add("allowances", "fail", f"the exchanges may spend {format_micro(allowance)} of"
                     f" {format_micro(balance)} pUSD", "mmbot wallet approve")
        else:
            self.add("allowances", "ok", "the exchanges may spend the whole balance")

    async def chain(self) -> None:
        """With --rpc: the deposit wallet (with that signature type) and the approvals, on chain."""
        from mmbot.app_chain import open_chain
        from mmbot.venues.polymarket.auth import EOA, POLY_1271

        deposit = self.args.signature_type == "deposit-wallet"
        async with open_chain(rpc_url=self.args.rpc, relayer_url=None, key=self.key, read_only=True, sink=_NoLog(),
                              signature_type=POLY_1271 if deposit else EOA) as chain:
            self.wallet = chain.wallet
            if deposit:
                if not await chain.view.code(chain.wallet):
                    self.add("deposit wallet", "fail", f"{chain.wallet} is not deployed",
                             "mmbot wallet deploy --rpc URL --relayer URL")
                    return
                owner = await chain.view.wallet_owner(chain.wallet)
                if owner is None or owner.lower() != self.key.address.lower():
                    self.add("deposit wallet", "fail", f"{chain.wallet} is owned by {owner}, not by the key",
                             "use the key that owns the wallet")
                    return
                self.add("deposit wallet", "ok", f"{chain.wallet} deployed, owned by the key ({chain.kind.value} clone)")
            missing = await chain.view.missing_approvals(chain.wallet)
            if missing:
                self.add("approvals on chain", "fail", f"{len(missing)} missing for {chain.wallet} (first:"
                         f" {missing[0].describe()})", "mmbot wallet approve")
            else:
                self.add("approvals on chain", "ok", f"every trading approval in place for {chain.wallet}")

    async def relayer(self) -> None:
        import httpx

        from mmbot.app_chain import ChainSetupError, relayer_auth
        from mmbot.venues.polymarket.relayer import RelayerClient

        try:
            auth = relayer_auth()
        except ChainSetupError as exc:
            self.add("relayer", "fail", str(exc), "export the relayer's API key (docs/live-trading.md)")
            return
        async with httpx.AsyncClient(base_url=self.args.relayer, timeout=TIMEOUT_S) as http:
            address = self.wallet or (self.key.address if self.key is not None else None)
            if address is None:
                self.add("relayer", "warn", "credentials in the environment; not asked (no key)")
                return
            deployed = await RelayerClient(http, auth, self.clock).deployed(address)
        self.add("relayer", "ok", f"credentials in the environment; it answers ({address}"
                 f" {'deployed' if deployed else 'not deployed'} by its word)")

    async def heartbeat(self) -> None:
        open_orders = await self.rest.open_orders()
        if open_orders and not self.args.heartbeat:
            self.add("heartbeat", "warn", f"not sent: {len(open_orders)} order(s) open, and a first heartbeat"
                     " arms cancel-on-disconnect (they would be cancelled ~15 s later)",
                     "stop the bot first, or pass --heartbeat to send one anyway")
            return
        await self.rest.heartbeat("")
        self.add("heartbeat", "ok", "POST /v1/heartbeats answered")

    async def market_channel(self) -> None:
        import trio
        from trio_websocket import open_websocket_url

        response = await self.http.get("/sampling-markets")
        response.raise_for_status()
        token = next((t["token_id"] for m in response.json().get("data", [])
                      if m.get("accepting_orders", True) and not m.get("closed") for t in m.get("tokens", [])), None)
        if token is None:
            self.add("market channel", "warn", "no listed market to subscribe to: not tried")
            return
        try:
            with trio.fail_after(TIMEOUT_S):
                async with open_websocket_url(self.args.ws) as ws:
                    await ws.send_message(json.dumps({"assets_ids": [token], "type": "market"}))
                    first = await ws.get_message()
        except trio.TooSlowError:
            self.add("market channel", "fail", f"no frame within {TIMEOUT_S} s of subscribing", "check --ws")
            return
        except Exception as exc:  # trio_websocket's handshake and close errors, OSError
            self.add("market channel", "fail", f"{self.args.ws}: {type(exc).__name__}: {exc}"[:300],
                     "check --ws and that the venue is up")
            return
        self.add("market channel", "ok", f"subscribed one token, first frame {len(first):,} bytes")

    async def user_channel(self) -> None:
        import trio
        from trio_websocket import ConnectionClosed, open_websocket_url

        url = self.user_ws_url()
        auth = {"apiKey": self.creds.api_key, "secret": self.creds.secret.reveal(),
                "passphrase": self.creds.passphrase.reveal()}
        try:
            with trio.fail_after(TIMEOUT_S + USER_HOLD_S):
                async with open_websocket_url(url) as ws:
                    await ws.send_message(json.dumps({"auth": auth, "markets": [], "type": "user"}))
                    with trio.move_on_after(USER_HOLD_S):
                        while True:
                            await ws.get_message()
        except ConnectionClosed as exc:
            reason = exc.reason
            self.add("user channel", "fail", f"the venue closed it: {reason.code} {reason.reason or ''}".strip(),
                     "check the API credentials (mmbot creds derive) and --user-ws")
            return
        except Exception as exc:  # handshake errors, OSError, too slow
            self.add("user channel", "fail", f"{url}: {type(exc).__name__}: {exc}"[:300],
                     "check --user-ws and that the venue is up")
            return
        self.add("user channel", "ok", f"authenticated, kept open {USER_HOLD_S} s")

    # ------------------------------------------------------------------ helpers

    def signature_type(self) -> int:
        from mmbot.venues.polymarket.auth import EOA, POLY_1271, POLY_GNOSIS_SAFE, POLY_PROXY

        return dict(zip(SIGNATURE_TYPES, (EOA, POLY_PROXY, POLY_GNOSIS_SAFE, POLY_1271)))[self.args.signature_type]

    def user_ws_url(self) -> str:
        return self.args.user_ws or self.args.ws.replace("/ws/market", "/ws/user")


def print_checks(checks: list[Check], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"ok": not any(c.status == "fail" for c in checks),
                          "checks": [attrs.asdict(c) for c in checks]}))
        return
    for check in checks:
        print(f"{check.status:<4}  {check.name:<18} {check.detail}")
        if check.fix and check.status != "ok":
            print(f"{'':<24} -> {check.fix}")
    failed = sum(c.status == "fail" for c in checks)
    warned = sum(c.status == "warn" for c in checks)
    print(f"{failed} failed, {warned} warning(s)" if failed or warned else "every check passed")


def cmd_doctor(args: argparse.Namespace) -> int:
    import trio

    for flag, value, schemes in (("--rest", args.rest, HTTP), ("--ws", args.ws, WS), ("--user-ws", args.user_ws, WS),
                                 ("--rpc", args.rpc, HTTP), ("--relayer", args.relayer, HTTP)):
        check_url(flag, value, schemes, "mmbot doctor")
    if args.signature_type == "deposit-wallet" and not args.rpc:
        raise UsageError("mmbot doctor: --signature-type deposit-wallet: expected --rpc (the wallet is found on chain)")
    checks = trio.run(Doctor(args).run)
    print_checks(checks, args.json)
    sys.stdout.flush()
    return 1 if any(c.status == "fail" for c in checks) else 0


def add_parser(sub: Any) -> None:
    doctor = sub.add_parser("doctor", help="check that the account can trade on the venue: key, credentials, version,"
                                           " clock, balance, allowances, heartbeat, websockets, deposit wallet")
    doctor.add_argument("--rest", required=True, help="CLOB REST base URL")
    doctor.add_argument("--ws", required=True, help="market channel URL")
    doctor.add_argument("--user-ws", help="user channel URL (default: --ws with /ws/market -> /ws/user)")
    doctor.add_argument("--rpc", help="Polygon JSON-RPC URL: also check the approvals (and the deposit wallet) on chain")
    doctor.add_argument("--relayer", help="relayer URL: check its credentials and that it answers")
    doctor.add_argument("--signature-type", choices=SIGNATURE_TYPES, default="eoa",
                        help="how orders are signed (default: eoa)")
    doctor.add_argument("--heartbeat", action="store_true",
                        help="send the heartbeat even with orders open (it arms cancel-on-disconnect)")
    doctor.add_argument("--json", action="store_true", help="one JSON object instead of the lines")
