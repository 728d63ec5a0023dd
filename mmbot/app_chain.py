"""Composition of chain access: the JSON-RPC reader and the adapter that acts for the account,
chosen by how the funds are held (onchain reference §1, §5.3).

- ``deposit-wallet`` (signature type 3, every new Polymarket account): the funds sit in the owner's
  deposit wallet; the chain is read over JSON-RPC and every action is a relayer ``WALLET`` batch
  signed by the owner (``RelayerAdapter``). Relayer credentials come from the environment.
- ``eoa`` (signature type 0): the funds sit at the key's own address; actions are EIP-1559
  transactions sent over the same JSON-RPC (``DirectAdapter``), gas paid in POL.

Which of the two deposit-wallet addresses the owner has is read on chain (``kind_on_chain``), never
guessed. Used by ``mmbot wallet`` and by ``mmbot run`` (the chain lane of the venue session).
"""

from __future__ import annotations

import contextlib
import os
from typing import AsyncIterator, Mapping

import attrs
import httpx
import trio

from mmbot.clock import TrioClock
from mmbot.ports import EventSink, VenueError
from mmbot.venues.polymarket.auth import CHAIN_ID, EOA, POLY_1271, SigningKey
from mmbot.venues.polymarket.chain_types import ChainAdapter, ChainFailed, ChainUnreachable
from mmbot.venues.polymarket.chain_view import ChainView
from mmbot.venues.polymarket.deposit_wallet import WalletKind, addresses, kind_on_chain
from mmbot.venues.polymarket.direct_adapter import DirectAdapter
from mmbot.venues.polymarket.relayer import RelayerAuth, RelayerClient, relayer_auth_from_env
from mmbot.venues.polymarket.relayer_adapter import RelayerAdapter
from mmbot.venues.polymarket.rpc import RpcClient, RpcError

WALLET_TYPES = {"deposit-wallet": POLY_1271, "eoa": EOA}


class ChainSetupError(VenueError):
    """Chain access cannot be set up as asked (a missing URL or credential, the wrong chain, a
    wallet not deployed or not approved): one line."""


@attrs.frozen
class ChainAccess:
    view: ChainView
    adapter: ChainAdapter | None  # None when opened to read only
    owner: str  # the key's address: signs everything
    wallet: str  # where the funds are: the deposit wallet, or the owner itself
    signature_type: int
    kind: WalletKind | None  # which deposit-wallet address (None for an EOA)
    relayer: RelayerAdapter | None  # the deposit wallet's adapter (deploys), None for an EOA
    relayer_client: RelayerClient | None = None  # its relayer, for what is unfinished there


def relayer_auth(environ: Mapping[str, str] | None = None) -> RelayerAuth:
    """The relayer credentials from the environment; ``ChainSetupError`` naming what is missing."""
    try:
        auth = relayer_auth_from_env(os.environ if environ is None else environ)
    except ValueError as exc:
        raise ChainSetupError(str(exc)) from None
    if auth is None:
        raise ChainSetupError("missing from the environment: MMBOT_RELAYER_API_KEY and MMBOT_RELAYER_API_KEY_ADDRESS"
                              " (or MMBOT_BUILDER_API_KEY, MMBOT_BUILDER_SECRET, MMBOT_BUILDER_PASSPHRASE)")
    return auth


@contextlib.asynccontextmanager
async def open_chain(*, rpc_url: str, relayer_url: str | None, key: SigningKey, signature_type: int,
                     sink: EventSink, chain_id: int = CHAIN_ID, deadline_s: int = 240, poll_s: float = 2.0,
                     timeout_s: float = 300.0, confirmations: int = 2, read_only: bool = False,
                     environ: Mapping[str, str] | None = None) -> AsyncIterator[ChainAccess]:
    """Chain access for ``key``'s account, open for the block's lifetime. The node must serve
    ``chain_id`` (orders and batches are signed for it). ``read_only``: no adapter (and no relayer
    credentials needed)."""
    acting_by_relayer = signature_type == POLY_1271 and not read_only
    auth = relayer_auth(environ) if acting_by_relayer else None
    if acting_by_relayer and not relayer_url:
        raise ChainSetupError("a deposit wallet acts through the relayer: expected --relayer URL")
    async with contextlib.AsyncExitStack() as stack:
        rpc_http = await stack.enter_async_context(httpx.AsyncClient(base_url=rpc_url, timeout=10))
        rpc = RpcClient(rpc_http, "")
        served = await rpc.chain_id()
        if served != chain_id:
            raise ChainSetupError(f"{rpc_url} serves chain {served}, not {chain_id}")
        view = ChainView(rpc)
        if signature_type == POLY_1271:
            kind = await kind_on_chain(view, key.address)
            wallet = addresses(key.address).of_kind(kind)
            if read_only:
                yield ChainAccess(view=view, adapter=None, owner=key.address, wallet=wallet,
                                  signature_type=signature_type, kind=kind, relayer=None)
                return
            assert auth is not None and relayer_url is not None
            relayer_http = await stack.enter_async_context(httpx.AsyncClient(base_url=relayer_url, timeout=10))
            client = RelayerClient(relayer_http, auth, TrioClock())
            relayer = RelayerAdapter(relayer=client, chain=view, key=key, wallet=wallet, sink=sink, chain_id=chain_id,
                                     deadline_s=deadline_s, poll_s=poll_s, timeout_s=timeout_s)
            yield ChainAccess(view=view, adapter=relayer, owner=key.address, wallet=wallet,
                              signature_type=signature_type, kind=kind, relayer=relayer, relayer_client=client)
        elif read_only:
            yield ChainAccess(view=view, adapter=None, owner=key.address, wallet=key.address,
                              signature_type=signature_type, kind=None, relayer=None)
        else:
            direct = DirectAdapter(rpc=rpc, key=key, sink=sink, chain_id=chain_id, confirmations=confirmations,
                                   poll_s=poll_s, timeout_s=timeout_s)
            yield ChainAccess(view=view, adapter=direct, owner=key.address, wallet=key.address,
                              signature_type=signature_type, kind=None, relayer=None)


async def check_ready(access: ChainAccess) -> None:
    """Before a run trades: the deposit wallet is deployed and owned by the key, and every approval
    is in place — never granted silently here (``mmbot wallet deploy`` / ``approve`` do that)."""
    if access.relayer is not None:
        if not await access.view.code(access.wallet):
            raise ChainSetupError(f"the deposit wallet {access.wallet} is not deployed: run mmbot wallet deploy")
        owner = await access.view.wallet_owner(access.wallet)
        if owner is None or owner.lower() != access.owner.lower():
            raise ChainSetupError(f"the deposit wallet {access.wallet} is owned by {owner}, not by {access.owner}")
    missing = await access.view.missing_approvals(access.wallet)
    if missing:
        raise ChainSetupError(f"{len(missing)} approval(s) missing for {access.wallet} (first: {missing[0].describe()}):"
                              " run mmbot wallet approve")


async def wait_for_unfinished(access: ChainAccess, sink: EventSink, *, poll_s: float = 2.0,  # float-ok: a delay
                              limit_s: int = 300) -> None:
    """Before a run reads its start-up balances: what a previous run left unfinished on chain (it
    was killed while a batch was at the relayer, or while its EOA transaction waited in the
    mempool) is waited for, since it may still move the wallet's balances, and a run that adopted
    the balances from before it would part from the wallet for good. A ``chain_unfinished`` row
    says what is waited for; still there after ``limit_s``: ``ChainSetupError``. A relayer whose
    list cannot be read is a warning row, and the run goes on."""
    waited_s = 0.0
    while True:
        try:
            if access.relayer_client is not None:
                pending = [t.transaction_id for t in await access.relayer_client.unfinished(access.owner)]
            elif access.relayer is None:
                rpc = access.view.rpc
                pending = [f"nonce {n}" for n in range(await rpc.nonce(access.owner, "latest"),
                                                       await rpc.nonce(access.owner, "pending"))]
            else:
                pending = []
        except (ChainUnreachable, ChainFailed, RpcError) as exc:
            sink.record("chain_unfinished", "startup", {"level": "warning", "unknown": str(exc)[:200]})
            return
        if not pending:
            if waited_s:
                sink.record("chain_unfinished", "startup", {"pending": [], "waited_s": round(waited_s)})
            return
        if waited_s >= limit_s:
            raise ChainSetupError(f"{len(pending)} action(s) of {access.wallet} still unfinished after {limit_s} s"
                                  f" (first: {pending[0]}): start again once they have ended")
        if not waited_s:
            sink.record("chain_unfinished", "startup", {"pending": pending[:10], "up_to_s": limit_s,
                                                        "why": "left by an earlier run; it may still move the balances"})
        await trio.sleep(poll_s)
        waited_s += poll_s
