"""The chain lane: the venue side of merges and redemptions (DESIGN §3, onchain reference §5, §7).

``MergeRequest`` and ``RedeemRequest`` reach the lane through the gateway's ``send``, which never
blocks; each is answered exactly once, through ``respond``: ``MergeDone``, ``RedeemDone`` or
``ChainActionFailed`` (the executor holds the shares until then).

One batch at a time per wallet (onchain reference §4). The lane takes the next request; with an
atomic adapter (a relayer ``WALLET`` batch) it also takes every redemption already waiting, one per
market, up to ``max_calls`` calls; a merge goes alone, since a batch is all-or-nothing and a bad
merge must not sink redemptions. Before sending it reads the wallet's shares of each market (and
its pUSD): a redemption of a market it holds nothing of is answered ``RedeemDone(payout=0)`` with
no transaction, a merge of more sets than it holds is refused before it could revert. After the
chain confirms, it reads them again and answers with what moved: a redemption pays its winning
shares (1 pUSD each), a merge returns its sets; a redemption whose balances disagree with the
call (both outcomes gone) makes an error-level ``chain_unverified`` row; a merge's market trades
on while the batch is out, so fills move its balances too and they prove nothing. The chain or the balances unreachable (or a malformed balance
answer): wait ``unreachable_retry_s`` and ask again, up to ``unreachable_tries``, then fail.

Restart safety: the batch being worked on (``in_flight``) and the requests taken from the channel
live on the lane, so a ``run`` restarted after a crash or a cancel finds them. A batch interrupted
while its calls were out has an unknown outcome and the balances decide: a redemption whose market
now holds nothing (and held something) is done, a merge whose tokens are both down by its size is
done, anything else is sent again. No cid is answered twice.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from itertools import count
from typing import Callable, Protocol, Sequence

import trio

from mmbot.model import ChainActionFailed, MarketInfo, MergeDone, MergeRequest, RedeemDone, RedeemRequest, VenueResponse
from mmbot.ports import EventSink
from mmbot.venues.polymarket.chain_types import ChainAdapter, ChainFailed, ChainReceipt, ChainUnreachable
from mmbot.venues.polymarket.chain_batch import (
    Batch, ChainRequest, Member, Phase, amount_ok, landed, malformed_request,
)
from mmbot.venues.polymarket.rpc import RpcError

PUSD_KEY = "pusd"  # beside the token ids (decimal strings) in a balance snapshot
UNREACHABLE = "chain unreachable: "


class BalanceReader(Protocol):
    """What an account holds on chain, read fresh: outcome shares and pUSD, micro-units
    (``ChainUnreachable`` when it cannot say)."""

    async def shares(self, address: str, tokens: Sequence[str]) -> list[int]:
        """The CTF balance of each of ``tokens`` at ``address``, in order."""
        ...

    async def pusd(self, address: str) -> int:
        """The pUSD balance at ``address``."""
        ...


class _Unreadable(Exception):
    """Balances could not be read within the tries."""


class ChainLane:
    def __init__(
        self, *, adapter: ChainAdapter, balances: BalanceReader, markets: Callable[[str], MarketInfo | None],
        respond: Callable[[VenueResponse], None], sink: EventSink, max_calls: int = 10,
        unreachable_retry_s: float = 5.0, unreachable_tries: int = 12,
    ) -> None:
        """``markets(key)``: a market by its id or by one of its tokens (either lookup does), for
        its ``neg_risk``, which picks the collateral adapter."""
        self._adapter = adapter
        self._balances = balances
        self._markets = markets
        self._respond = respond
        self._sink = sink
        self._max_calls = max(1, max_calls)
        self._retry_s = unreachable_retry_s
        self._tries = max(1, unreachable_tries)
        self._send, self._receive = trio.open_memory_channel[ChainRequest](math.inf)
        self._queue: deque[ChainRequest] = deque()  # taken from the channel, not yet in a batch
        self.in_flight: Batch | None = None
        self._answered: set[str] = set()  # cids of the batch in flight already answered
        self.counts = {"received": 0, "batches": 0, "done": 0, "failed": 0, "nothing_held": 0, "unverified": 0,
                       "unreachable_retries": 0, "malformed_reads": 0, "resumed": 0}

    def send(self, request: ChainRequest) -> None:
        """Queue a request; never blocks."""
        self.counts["received"] += 1
        self._send.send_nowait(request)

    # ------------------------------------------------------------------ the loop

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            if self.in_flight is None:
                if not self._queue:
                    self._queue.append(await self._receive.receive())
                self._drain()
                self.in_flight = self._take()
            await self._work(self.in_flight)
            self._finish(self.in_flight)

    def _drain(self) -> None:
        with contextlib.suppress(trio.WouldBlock):
            while True:
                self._queue.append(self._receive.receive_nowait())

    def _take(self) -> Batch:
        """The next batch: the first request waiting, and (atomic adapter, a redemption first)
        every other redemption waiting, one per market, none behind a merge of its market."""
        first = self._queue.popleft()
        chosen = [first]
        if isinstance(first, RedeemRequest) and self._adapter.atomic:
            markets, merging = {first.market}, set[str]()
            rest: deque[ChainRequest] = deque()
            for req in self._queue:
                if (isinstance(req, RedeemRequest) and len(chosen) < self._max_calls
                        and req.market not in markets and req.market not in merging):
                    chosen.append(req)
                    markets.add(req.market)
                else:
                    if isinstance(req, MergeRequest):
                        merging.add(req.market)
                    rest.append(req)
            self._queue = rest
        members: list[Member] = []
        for req in chosen:
            info = next((i for key in (req.market, *req.tokens)
                         if (i := self._markets(key)) is not None and i.market == req.market), None)
            members.append(Member(req, neg_risk=bool(info and info.neg_risk)))
            if (wrong := malformed_request(members[-1], info)) is not None:
                self._fail(members[-1], first.cid, wrong, retryable=False)
        return Batch(cid=first.cid, members=members)

    def _finish(self, batch: Batch) -> None:
        self._answered -= {m.request.cid for m in batch.members}
        self.in_flight = None

    async def _work(self, batch: Batch) -> None:
        if not batch.pending():
            return
        if batch.phase is Phase.READING:
            try:
                batch.before = await self._read(batch)
            except _Unreadable as exc:
                return self._fail_all(batch, f"{UNREACHABLE}{exc}", retryable=True)
            self._sort_out(batch)
            if not batch.pending():
                return
            batch.phase = Phase.SENDING
            self.counts["batches"] += 1
            await self._send_calls(batch)
        elif batch.phase is Phase.SENDING:
            await self._resume(batch)
        else:
            await self._confirm(batch)

    def _sort_out(self, batch: Batch) -> None:
        """Answer what needs no transaction; record the rest as sent."""
        before = batch.before
        for member in batch.pending():
            req = member.request
            held = {t: before[t] for t in req.tokens}
            if isinstance(req, RedeemRequest) and not any(held.values()):
                self.counts["nothing_held"] += 1
                self._sink.record("redeem_nothing_held", req.cid, {"batch": batch.cid, "shares_before": held},
                                  market=req.market)
                self._answer(member, RedeemDone(cid=req.cid, market=req.market, payout=0))
                continue
            if isinstance(req, MergeRequest) and min(held.values()) < req.size:
                self._fail(member, batch.cid, f"merge of {req.size} sets, but the wallet holds"
                           f" {' and '.join(str(v) for v in held.values())} on chain", retryable=True)
                continue
            self._sink.record("chain_request", req.cid, {
                "action": member.action, "market": req.market, "calls": [member.call().describe()], "batch": batch.cid,
                "shares_before": held, "pusd_before": before[PUSD_KEY], "neg_risk": member.neg_risk,
            }, market=req.market)

    # ------------------------------------------------------------------ sending and confirming

    async def _send_calls(self, batch: Batch) -> None:
        for attempt in count(1):
            try:
                receipt = await self._adapter.execute([m.call() for m in batch.pending()], cid=batch.cid)
            except ChainUnreachable as exc:
                if attempt >= self._tries:
                    return self._fail_all(batch, f"{UNREACHABLE}{exc}", retryable=True)
                await self._wait(batch.cid, "execute", exc, attempt)
                continue
            except ChainFailed as exc:
                return self._fail_all(batch, exc.reason, retryable=exc.retryable, tx_hash=exc.tx_hash)
            batch.receipt, batch.phase = receipt, Phase.CONFIRMED
            await self._confirm(batch)
            return

    async def _confirm(self, batch: Batch) -> None:
        """The chain confirmed: answer each member with what its balances say moved."""
        receipt = batch.receipt
        assert receipt is not None
        unreadable = ""
        try:
            after: dict[str, int] | None = await self._read(batch)
        except _Unreadable as exc:
            after, unreadable = None, str(exc)
        for member in batch.pending():
            req = member.request
            before = {t: batch.before[t] for t in req.tokens}
            expected = {t: 0 if isinstance(req, RedeemRequest) else before[t] - req.size for t in req.tokens}
            now = expected if after is None else {t: after[t] for t in req.tokens}  # unreadable: as confirmed
            answer: MergeDone | RedeemDone
            if isinstance(req, RedeemRequest):
                payout = max(0, before[req.winning_token] - now[req.winning_token])
                answer = RedeemDone(cid=req.cid, market=req.market, payout=payout, tx_hash=receipt.tx_hash)
            else:
                answer = MergeDone(cid=req.cid, market=req.market, size=req.size, tx_hash=receipt.tx_hash)
            if after is None or (isinstance(req, RedeemRequest) and now != expected):
                self.counts["unverified"] += 1
                self._sink.record("chain_unverified", req.cid, {
                    "level": "error", "action": member.action, "batch": batch.cid, "tx_hash": receipt.tx_hash,
                    "shares_before": before, "shares_after": None if after is None else now, "expected": expected,
                    "why": f"balances unreadable: {unreadable}" if after is None else "balances disagree with the call",
                }, market=req.market)
            self._done(member, batch, answer, receipt, None if after is None else now)

    async def _resume(self, batch: Batch) -> None:
        """Calls that may have gone out before the lane was interrupted: the balances decide what
        landed, the rest is sent again. Never answered blind: while the balances cannot be read it
        waits; a failed resend is followed by another look (the interrupted batch may land late)."""
        self.counts["resumed"] += 1
        sends = 0
        giving_up: tuple[str, bool, str] | None = None  # reason, retryable, tx hash
        while True:
            try:
                now = await self._read(batch)
            except _Unreadable as exc:
                self._sink.record("error", batch.cid, {"where": "chain", "error": f"outcome unknown: {exc}"})
                await trio.sleep(self._retry_s)
                continue
            for member in batch.pending():
                if landed(member, batch.before, now):
                    req = member.request
                    answer: MergeDone | RedeemDone = (
                        MergeDone(cid=req.cid, market=req.market, size=req.size)
                        if isinstance(req, MergeRequest) else
                        RedeemDone(cid=req.cid, market=req.market, payout=batch.before[req.winning_token]))
                    self._done(member, batch, answer, None, {t: now[t] for t in req.tokens})
            if not batch.pending():
                return
            if giving_up is not None:
                return self._fail_all(batch, giving_up[0], retryable=giving_up[1], tx_hash=giving_up[2])
            self._sink.record("chain_resend", batch.cid, {"cids": [m.request.cid for m in batch.pending()],
                                                          "why": "outcome unknown after a restart; balances unmoved"})
            sends += 1
            try:
                receipt = await self._adapter.execute([m.call() for m in batch.pending()], cid=batch.cid)
            except (ChainFailed, ChainUnreachable) as exc:
                failed = exc if isinstance(exc, ChainFailed) else None
                if (failed and not failed.retryable) or sends >= self._tries:
                    giving_up = (failed.reason, failed.retryable, failed.tx_hash) if failed else (
                        f"{UNREACHABLE}{exc}", True, "")
                else:
                    await self._wait(batch.cid, "execute", exc, sends)
                continue
            batch.receipt, batch.phase = receipt, Phase.CONFIRMED
            await self._confirm(batch)
            return

    # ------------------------------------------------------------------ balances

    async def _read(self, batch: Batch) -> dict[str, int]:
        """Shares of every token in the batch, and pUSD, at the adapter's address."""
        tokens = list(dict.fromkeys(t for m in batch.pending() for t in m.request.tokens))
        address = self._adapter.address
        for attempt in count(1):
            try:
                shares = await self._balances.shares(address, tokens)
                pusd = await self._balances.pusd(address)
                if not (isinstance(shares, list) and len(shares) == len(tokens)
                        and all(amount_ok(v) for v in shares) and amount_ok(pusd)):
                    self.counts["malformed_reads"] += 1
                    raise ChainUnreachable(f"malformed balances: {len(tokens)} shares and pUSD asked, got"
                                     f" {str(shares)[:80]} and {str(pusd)[:40]}")
                return {**dict(zip(tokens, shares)), PUSD_KEY: pusd}
            except (ChainUnreachable, ChainFailed, RpcError) as exc:  # RpcError: the node said no to a read
                if attempt >= self._tries:
                    raise _Unreadable(str(exc)) from None
                await self._wait(batch.cid, "balances", exc, attempt)
        raise AssertionError("count() never ends")

    async def _wait(self, cid: str, what: str, exc: Exception, attempt: int) -> None:
        self.counts["unreachable_retries"] += 1
        self._sink.record("chain_retry", cid, {"what": what, "attempt": attempt, "of": self._tries,
                                               "error": str(exc), "in_s": self._retry_s})
        await trio.sleep(self._retry_s)

    # ------------------------------------------------------------------ answers

    def _answer(self, member: Member, msg: VenueResponse) -> None:
        member.answered = True
        if msg.cid in self._answered:
            return
        self._answered.add(msg.cid)
        self._respond(msg)

    def _done(self, member: Member, batch: Batch, msg: MergeDone | RedeemDone, receipt: ChainReceipt | None,
              after: dict[str, int] | None) -> None:
        req = member.request
        self.counts["done"] += 1
        moved = {"payout": msg.payout} if isinstance(msg, RedeemDone) else {"size": msg.size}
        self._sink.record("chain_done", req.cid, {
            "action": member.action, "batch": batch.cid, "tx_hash": receipt.tx_hash if receipt else "",
            "block": receipt.block if receipt else None, "reference": receipt.reference if receipt else "",
            "shares_after": after, "decided_by": "receipt" if receipt else "balances after a restart", **moved,
        }, market=req.market)
        self._answer(member, msg)

    def _fail(self, member: Member, batch_cid: str, reason: str, *, retryable: bool, tx_hash: str = "") -> None:
        req = member.request
        self.counts["failed"] += 1
        self._sink.record("chain_failed", req.cid, {"action": member.action, "batch": batch_cid, "reason": reason,
                                                    "retryable": retryable, "tx_hash": tx_hash}, market=req.market)
        self._answer(member, ChainActionFailed(cid=req.cid, market=req.market, action=member.action, reason=reason))

    def _fail_all(self, batch: Batch, reason: str, *, retryable: bool, tx_hash: str = "") -> None:
        for member in batch.pending():
            self._fail(member, batch.cid, reason, retryable=retryable, tx_hash=tx_hash)

    def statistics(self) -> dict[str, int]:
        in_flight = 0 if self.in_flight is None else len(self.in_flight.pending())
        waiting = self._receive.statistics().current_buffer_used + len(self._queue)
        return {**self.counts, "pending": waiting + in_flight}
