"""``mmbot sim-admin``: what an operator does to the simulator that on Polymarket happens
elsewhere — ``fund`` sends pUSD (and POL for gas) to an address on the simulated chain (on
Polymarket: a transfer from an exchange or a bridge), ``relayer-key`` prints the relayer API key of
the owner key in ``MMBOT_PRIVATE_KEY`` as environment lines (on Polymarket: made on the site, under
Settings → API Keys → Relayer API Keys).

Both use the simulator's admin endpoints: loopback only, with the token ``mmbot sim`` printed or
took from ``MMBOT_SIM_ADMIN_TOKEN`` (read from that variable here too).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mmbot.cli_errors import UsageError
from mmbot.cli_keys import signing_key
from mmbot.cli_places import HTTP, check_url
from mmbot.cli_sim import ADMIN_TOKEN_ENV



def _post(args: argparse.Namespace, who: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import httpx

    check_url("--rest", args.rest, HTTP, who)
    token = os.environ.get(ADMIN_TOKEN_ENV, "")
    if not token:
        raise UsageError(f"{who}: {ADMIN_TOKEN_ENV} is not set: the admin token mmbot sim printed")
    try:
        response = httpx.post(f"{args.rest.rstrip('/')}{path}", json=body, timeout=10,
                              headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise UsageError(f"{who}: {args.rest}: {exc}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code != 200 or not isinstance(answer, dict):
        reason = answer.get("error", response.text[:200]) if isinstance(answer, dict) else response.text[:200]
        raise UsageError(f"{who}: {response.status_code}: {reason}")
    return answer


def cmd_fund(args: argparse.Namespace) -> int:
    from mmbot.model import format_micro
    from mmbot.venues.polymarket.auth import SigningError, parse_address

    try:
        address = parse_address(args.address)
    except SigningError as exc:
        raise UsageError(f"mmbot sim-admin fund: --address: {exc}") from None
    answer = _post(args, "mmbot sim-admin fund", "/admin/fund",
                   {"address": address, "amount": args.amount, "pol": args.pol})
    pusd = int(answer.get("pusd", 0))
    print(f"{address}: {format_micro(pusd)} pUSD, {int(answer.get('pol_wei', 0)) / 10**18:.4f} POL")  # float-ok: display
    return 0


def cmd_relayer_key(args: argparse.Namespace) -> int:
    owner = signing_key("mmbot sim-admin relayer-key").address
    answer = _post(args, "mmbot sim-admin relayer-key", "/relayer/admin/relayer-key", {"address": owner})
    print(f"# the simulator's relayer API key of {owner}")
    print(f"MMBOT_RELAYER_API_KEY={answer['key']}")
    print(f"MMBOT_RELAYER_API_KEY_ADDRESS={answer['address']}")
    return 0


def cmd_sim_admin(args: argparse.Namespace) -> int:
    return {"fund": cmd_fund, "relayer-key": cmd_relayer_key}[args.admin_command](args)


def _decimal(text: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a decimal amount, got {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a decimal amount of at least 0, got {text!r}")
    return text


def add_parser(sub: Any) -> None:
    admin = sub.add_parser("sim-admin", help="the simulator's operator: fund an address, a relayer API key")
    actions = admin.add_subparsers(dest="admin_command", required=True)
    fund = actions.add_parser("fund", help="send pUSD (and POL for gas) to an address on the simulated chain")
    fund.add_argument("--rest", required=True, help="the simulator's REST base URL")
    fund.add_argument("--address", required=True, help="where to: the deposit wallet (or the EOA)")
    fund.add_argument("--amount", required=True, type=_decimal, help="pUSD")
    fund.add_argument("--pol", default="0", type=_decimal, help="POL for gas (an EOA's own transactions)")
    key = actions.add_parser("relayer-key", help="the relayer API key of the owner in MMBOT_PRIVATE_KEY, as"
                                                 " environment lines")
    key.add_argument("--rest", required=True, help="the simulator's REST base URL")
