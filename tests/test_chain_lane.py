"""The chain lane (the venue side of merges and redemptions) against a fake chain on the autojump
clock: redemptions batched when the adapter is atomic and one per execute when not, a merge
always alone, nothing sent for a market held nothing of, failures answered per member, an
unreachable chain retried then given up, a run interrupted mid-execute decided by the balances
(never applied twice), and — over random request sequences and adapter scripts — every request
answered exactly once with what the chain really paid."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Sequence

import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmbot.clock import TrioClock
from mmbot.config import Secret, VenueConfig
from mmbot.model import ONE, ChainActionFailed, MarketInfo, MergeDone, MergeRequest, RedeemDone, RedeemRequest
from mmbot.venues.polymarket import contracts
from mmbot.venues.polymarket.auth import OrderSigner, SigningKey
from mmbot.venues.polymarket.chain import ChainLane
from mmbot.venues.polymarket.chain_types import ChainFailed, ChainReceipt, ChainUnreachable
from mmbot.venues.polymarket.contracts import Call
from mmbot.venues.polymarket.gateway import NO_CHAIN, LiveGateway

WALLET = "0xBc0fF067b7740Eff76C1ca93c875Ba6B890d6B50"
MARKETS = [MarketInfo(market="0x" + f"{n + 1:02x}" * 32, tokens=(f"{n}01", f"{n}02"), neg_risk=n == 2)
           for n in range(1, 5)]
BY_TOKEN = {t: m for m in MARKETS for t in m.tokens}
BY_MARKET = {m.market: m for m in MARKETS}
A, B, C, D = MARKETS


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, dict]] = []

    def record(self, kind, cid, payload=None, **_):  # noqa: ANN001, ANN201
        self.rows.append((kind, cid, payload or {}))

    def of(self, kind: str) -> list[tuple[str, dict]]:
        return [(cid, payload) for k, cid, payload in self.rows if k == kind]


class Crash(RuntimeError):
    pass


class FakeChain:
    """The wallet's shares and pUSD; applies merge and redeem calls as the collateral adapters do
    (all of a batch or none of it), and remembers what each market paid."""

    def __init__(self, shares: dict[str, int], winners: dict[str, str], pusd: int = 100 * ONE) -> None:
        self.shares = defaultdict(int, shares)
        self.winners = winners  # market -> winning token
        self.pusd = pusd
        self.paid: Counter[str] = Counter()  # market -> pUSD it returned
        self.applied: list[tuple[str, str]] = []  # (action, market)

    def apply(self, calls: Sequence[Call]) -> None:
        shares, pusd, paid, applied = dict(self.shares), self.pusd, Counter(self.paid), list(self.applied)
        for call in calls:
            function, args = contracts.decode(call.data)
            market = "0x" + args[2].hex()
            info = next(m for m in MARKETS if m.market == market)
            assert call.target == contracts.adapter(info.neg_risk)
            yes, no = info.tokens
            if function is contracts.REDEEM:
                payout = shares.get(self.winners[market], 0)
                shares[yes] = shares[no] = 0
            else:
                assert function is contracts.MERGE
                payout = args[4]
                if min(shares.get(yes, 0), shares.get(no, 0)) < payout:
                    raise ChainFailed("execution reverted: insufficient balance", retryable=False)
                shares[yes] -= payout
                shares[no] -= payout
            pusd += payout
            paid[market] += payout
            applied.append((function.name, market))
        self.shares.update(shares)
        self.pusd, self.paid, self.applied = pusd, paid, applied


class FakeAdapter:
    """Runs each ``execute`` by the next step of its script (then "ok"): ok, fail (a revert),
    busy (retryable), unreachable, crash (raises before anything lands), crash_after (lands, then
    raises), hang_after (lands, then never returns)."""

    def __init__(self, chain: FakeChain, *, atomic: bool = True, script: Sequence[str] = ()) -> None:
        self.chain = chain
        self.atomic = atomic
        self.address = WALLET
        self.script = list(script)
        self.executes: list[tuple[str, list[str]]] = []
        self.hanging = False

    async def execute(self, calls: Sequence[Call], *, cid: str) -> ChainReceipt:
        await trio.sleep(2)
        step = self.script.pop(0) if self.script else "ok"
        self.executes.append((step, [c.describe() for c in calls]))
        if step == "fail":
            raise ChainFailed("execution reverted", retryable=False, tx_hash="0xdead")
        if step == "busy":
            raise ChainFailed("wallet busy: active action", retryable=True)
        if step == "unreachable":
            raise ChainUnreachable("relayer unreachable (ConnectError)")
        if step == "crash":
            raise Crash("crashed before sending")
        self.chain.apply(calls)
        if step == "crash_after":
            raise Crash("crashed after it landed")
        if step == "hang_after":
            self.hanging = True
            await trio.sleep_forever()
        return ChainReceipt(tx_hash=f"0x{len(self.executes):064x}", block=100 + len(self.executes))


class FakeReader:
    """Reads the fake chain; ``failures`` next reads raise ``ChainUnreachable`` (or answer
    malformed, if so scripted)."""

    def __init__(self, chain: FakeChain, failures: Sequence[str] = ()) -> None:
        self.chain = chain
        self.failures = list(failures)
        self.reads = 0

    def _trouble(self) -> str | None:
        self.reads += 1
        return self.failures.pop(0) if self.failures else None

    async def shares(self, address: str, tokens: Sequence[str]) -> list[int]:
        await trio.sleep(0.1)
        assert address == WALLET
        trouble = self._trouble()
        if trouble == "unreachable":
            raise ChainUnreachable("eth_call: RPC node unreachable (ConnectTimeout)")
        if trouble == "malformed":
            return [1]  # one balance for several tokens
        return [self.chain.shares[t] for t in tokens]

    async def pusd(self, address: str) -> int:
        return self.chain.pusd


class Rig:
    def __init__(self, holdings: dict[str, int], *, atomic: bool = True, script: Sequence[str] = (),
                 reads: Sequence[str] = (), tries: int = 12, markets: dict[str, MarketInfo] = BY_TOKEN) -> None:
        self.chain = FakeChain(holdings, winners={m.market: m.tokens[n % 2] for n, m in enumerate(MARKETS)})
        self.adapter = FakeAdapter(self.chain, atomic=atomic, script=script)
        self.reader = FakeReader(self.chain, reads)
        self.answers: list = []
        self.sink = Rows()
        self.lane = ChainLane(adapter=self.adapter, balances=self.reader, markets=markets.get,
                              respond=self.answers.append, sink=self.sink, unreachable_tries=tries)
        self.restarts = 0

    async def supervised(self) -> None:
        """The lane's run, restarted at once after each crash (as the supervisor would)."""
        while True:
            try:
                await self.lane.run()
            except Crash:
                self.restarts += 1

    def answered(self, *cids: str) -> bool:
        return {a.cid for a in self.answers} >= set(cids)


def redeem(cid: str, info: MarketInfo) -> RedeemRequest:
    winning = info.tokens[MARKETS.index(info) % 2]
    return RedeemRequest(cid=cid, market=info.market, tokens=info.tokens, winning_token=winning)


def merge(cid: str, info: MarketInfo, sets: int) -> MergeRequest:
    return MergeRequest(cid=cid, market=info.market, tokens=info.tokens, size=sets * ONE)


async def until(condition, limit_s: float = 3_600) -> None:  # noqa: ANN001
    with trio.fail_after(limit_s):
        while not condition():
            await trio.sleep(0.01)


def held(*markets: MarketInfo, yes: int = 3, no: int = 2) -> dict[str, int]:
    return {t: n * ONE for m in markets for t, n in zip(m.tokens, (yes, no))}


# --------------------------------------------------------------------------- batching


@pytest.mark.parametrize("lookup", [BY_TOKEN, BY_MARKET])
async def test_redemptions_queued_together_go_in_one_batch_when_the_adapter_is_atomic(
    nursery, autojump_clock, lookup
) -> None:
    rig = Rig(held(A, B, C), markets=lookup)  # markets looked up by token or by market id
    for cid, info in (("r1", A), ("r2", B), ("r3", C)):
        rig.lane.send(redeem(cid, info))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1", "r2", "r3"))
    assert [len(calls) for _, calls in rig.adapter.executes] == [3]
    # A and C pay their YES (3 sets), B its NO (2); the neg-risk market through its own adapter
    assert rig.answers == [RedeemDone(cid="r1", market=A.market, payout=3 * ONE, tx_hash=f"0x{1:064x}"),
                           RedeemDone(cid="r2", market=B.market, payout=2 * ONE, tx_hash=f"0x{1:064x}"),
                           RedeemDone(cid="r3", market=C.market, payout=3 * ONE, tx_hash=f"0x{1:064x}")]
    assert rig.adapter.executes[0][1][1] == f"redeemPositions@{contracts.NEG_RISK_CTF_ADAPTER}"
    assert rig.chain.pusd == 108 * ONE
    requests = dict(rig.sink.of("chain_request"))
    assert set(requests) == {"r1", "r2", "r3"} and {r["batch"] for r in requests.values()} == {"r1"}
    assert requests["r2"]["shares_before"] == {B.tokens[0]: 3 * ONE, B.tokens[1]: 2 * ONE}
    assert [cid for cid, _ in rig.sink.of("chain_done")] == ["r1", "r2", "r3"]
    assert rig.sink.of("chain_done")[0][1]["shares_after"] == {t: 0 for t in A.tokens}
    assert rig.sink.of("chain_unverified") == []
    stats = rig.lane.statistics()
    assert (stats["received"], stats["batches"], stats["done"], stats["pending"]) == (3, 1, 3, 0)


async def test_redemptions_go_one_per_execute_when_the_adapter_is_not_atomic(nursery, autojump_clock) -> None:
    rig = Rig(held(A, B, C), atomic=False)
    for cid, info in (("r1", A), ("r2", B), ("r3", C)):
        rig.lane.send(redeem(cid, info))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1", "r2", "r3"))
    assert [len(calls) for _, calls in rig.adapter.executes] == [1, 1, 1]
    assert [a.payout for a in rig.answers] == [3 * ONE, 2 * ONE, 3 * ONE]
    assert rig.lane.statistics()["batches"] == 3


async def test_a_merge_goes_alone_and_redemptions_waiting_behind_it_are_batched(nursery, autojump_clock) -> None:
    rig = Rig(held(A, B, C, D, yes=5, no=4))
    for request in (merge("m1", A, 3), redeem("r1", B), redeem("r2", C), merge("m2", D, 1), redeem("r3", D)):
        rig.lane.send(request)
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("m1", "m2", "r1", "r2", "r3"))
    # the redemption of D waits behind D's merge; the merges go alone
    assert [calls for _, calls in rig.adapter.executes] == [
        [f"mergePositions@{contracts.CTF_ADAPTER}"],
        [f"redeemPositions@{contracts.NEG_RISK_CTF_ADAPTER}", f"redeemPositions@{contracts.CTF_ADAPTER}"],  # B, C
        [f"mergePositions@{contracts.CTF_ADAPTER}"],
        [f"redeemPositions@{contracts.CTF_ADAPTER}"],
    ]
    merged = {a.cid: a for a in rig.answers if isinstance(a, MergeDone)}
    assert merged["m1"] == MergeDone(cid="m1", market=A.market, size=3 * ONE, tx_hash=f"0x{1:064x}")
    assert rig.chain.shares[A.tokens[0]] == 2 * ONE and rig.chain.shares[A.tokens[1]] == 1 * ONE
    redeemed = {a.cid: a.payout for a in rig.answers if isinstance(a, RedeemDone)}
    assert redeemed == {"r1": 4 * ONE, "r2": 5 * ONE, "r3": 3 * ONE}  # D's NO: 4 held, 1 merged
    assert rig.chain.pusd == 100 * ONE + 4 * ONE + 12 * ONE  # merged sets, redeemed winners


async def test_a_redemption_of_a_market_held_nothing_of_is_answered_without_a_transaction(
    nursery, autojump_clock
) -> None:
    rig = Rig(held(A))
    rig.lane.send(redeem("r1", B))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1"))
    assert rig.answers == [RedeemDone(cid="r1", market=B.market, payout=0)]
    assert rig.adapter.executes == [] and rig.sink.of("chain_request") == []
    assert [cid for cid, _ in rig.sink.of("redeem_nothing_held")] == ["r1"]


async def test_a_merge_of_more_sets_than_held_is_refused_before_it_could_revert(nursery, autojump_clock) -> None:
    rig = Rig(held(A, yes=3, no=2))
    rig.lane.send(merge("m1", A, 3))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("m1"))
    assert rig.adapter.executes == []
    [answer] = rig.answers
    assert isinstance(answer, ChainActionFailed) and answer.action == "merge" and "holds" in answer.reason


async def test_requests_that_cannot_go_on_chain_are_answered_failed(nursery, autojump_clock) -> None:
    unknown = MarketInfo(market="0x" + "99" * 32, tokens=("901", "902"))
    rig = Rig(held(A))
    rig.lane.send(RedeemRequest(cid="r1", market=unknown.market, tokens=unknown.tokens, winning_token="901"))
    rig.lane.send(RedeemRequest(cid="r2", market=A.market, tokens=A.tokens, winning_token="nobody"))
    rig.lane.send(MergeRequest(cid="m1", market="0xnot-a-condition", tokens=A.tokens, size=ONE))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1", "r2", "m1"))
    assert [type(a) for a in rig.answers] == [ChainActionFailed] * 3 and rig.adapter.executes == []
    assert "no market known" in rig.answers[0].reason


# --------------------------------------------------------------------------- failures


async def test_a_failed_batch_is_answered_for_each_member(nursery, autojump_clock) -> None:
    rig = Rig(held(A, B), script=["fail"])
    rig.lane.send(redeem("r1", A))
    rig.lane.send(redeem("r2", B))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1", "r2"))
    assert rig.answers == [ChainActionFailed(cid="r1", market=A.market, action="redeem", reason="execution reverted"),
                           ChainActionFailed(cid="r2", market=B.market, action="redeem", reason="execution reverted")]
    assert [(cid, row["retryable"], row["tx_hash"]) for cid, row in rig.sink.of("chain_failed")] == [
        ("r1", False, "0xdead"), ("r2", False, "0xdead")]
    assert rig.chain.pusd == 100 * ONE and rig.lane.statistics()["failed"] == 2


async def test_an_unreachable_chain_is_tried_again_after_a_wait(nursery, autojump_clock) -> None:
    rig = Rig(held(A), script=["unreachable", "unreachable"])
    rig.lane.send(redeem("r1", A))
    nursery.start_soon(rig.supervised)
    start = trio.current_time()
    await until(lambda: rig.answered("r1"))
    assert rig.answers == [RedeemDone(cid="r1", market=A.market, payout=3 * ONE, tx_hash=f"0x{3:064x}")]
    assert trio.current_time() - start >= 10  # two waits of 5 s
    assert rig.lane.statistics()["unreachable_retries"] == 2 and len(rig.sink.of("chain_retry")) == 2


async def test_a_chain_unreachable_for_every_try_fails_the_batch(nursery, autojump_clock) -> None:
    rig = Rig(held(A), script=["unreachable"] * 3, tries=3)
    rig.lane.send(merge("m1", A, 1))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("m1"))
    [answer] = rig.answers
    assert isinstance(answer, ChainActionFailed) and answer.reason.startswith("chain unreachable: relayer")
    assert rig.chain.applied == []


async def test_balance_reads_that_fail_are_tried_again_and_a_malformed_one_is_counted(nursery, autojump_clock) -> None:
    rig = Rig(held(A), reads=["unreachable", "malformed", "unreachable"])
    rig.lane.send(redeem("r1", A))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1"))
    assert rig.answers == [RedeemDone(cid="r1", market=A.market, payout=3 * ONE, tx_hash=f"0x{1:064x}")]
    stats = rig.lane.statistics()
    assert stats["unreachable_retries"] == 3 and stats["malformed_reads"] == 1


async def test_balances_unreadable_before_sending_fail_the_batch_without_a_transaction(nursery, autojump_clock) -> None:
    rig = Rig(held(A), reads=["unreachable"] * 2, tries=2)
    rig.lane.send(redeem("r1", A))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1"))
    assert isinstance(rig.answers[0], ChainActionFailed) and rig.adapter.executes == []


async def test_a_receipt_whose_balances_disagree_is_answered_with_what_moved_and_flagged(
    nursery, autojump_clock
) -> None:
    rig = Rig(held(A))
    rig.lane.send(redeem("r1", A))
    original = rig.chain.apply

    def leaves_some(calls):  # noqa: ANN001, ANN202
        original(calls)
        rig.chain.shares[A.tokens[0]] = ONE  # a winning share the redemption did not take
    rig.chain.apply = leaves_some
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1"))
    assert rig.answers[0].payout == 2 * ONE
    [(cid, row)] = rig.sink.of("chain_unverified")
    assert cid == "r1" and row["level"] == "error" and row["shares_after"][A.tokens[0]] == ONE


async def test_a_confirmed_batch_whose_balances_cannot_be_read_after_is_answered_as_confirmed(
    nursery, autojump_clock
) -> None:
    rig = Rig(held(A, B), reads=[""] + ["unreachable"] * 3, tries=3)  # the read before passes, none after
    rig.lane.send(redeem("r1", A))
    rig.lane.send(merge("m1", B, 1))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1", "m1"))
    assert rig.answers == [RedeemDone(cid="r1", market=A.market, payout=3 * ONE, tx_hash=f"0x{1:064x}"),
                           MergeDone(cid="m1", market=B.market, size=ONE, tx_hash=f"0x{2:064x}")]
    unverified = dict(rig.sink.of("chain_unverified"))
    assert unverified["r1"]["why"].startswith("balances unreadable") and unverified["r1"]["shares_after"] is None


# --------------------------------------------------------------------------- restarts


@pytest.mark.parametrize("step, sends", [("crash_after", 1), ("crash", 2)])
async def test_a_run_that_crashes_mid_execute_lets_the_balances_decide(nursery, autojump_clock, step, sends) -> None:
    rig = Rig(held(A, B, yes=4, no=4), script=[step, step])
    rig.lane.send(redeem("r1", A))
    rig.lane.send(redeem("r2", B))
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1", "r2"))
    await trio.sleep(60)
    assert len(rig.adapter.executes) == sends + (step == "crash")  # crash: crashed again on the resend
    assert [type(a) for a in rig.answers] == [RedeemDone, RedeemDone]
    assert sum(a.payout for a in rig.answers) == rig.chain.pusd - 100 * ONE == 8 * ONE
    assert rig.chain.applied == [("redeemPositions", A.market), ("redeemPositions", B.market)]
    assert rig.restarts >= 1 and rig.lane.statistics()["resumed"] >= 1 and rig.lane.in_flight is None


async def test_a_merge_interrupted_after_it_landed_is_not_sent_again(nursery, autojump_clock) -> None:
    rig = Rig(held(A, yes=5, no=5), script=["hang_after"])
    rig.lane.send(merge("m1", A, 2))
    scope = trio.CancelScope()
    nursery.start_soon(_run_in, scope, rig.lane)
    await until(lambda: rig.adapter.hanging)
    scope.cancel()  # the run is cancelled while the merge it sent has landed unanswered
    await trio.sleep(1)
    assert rig.answers == [] and rig.lane.in_flight is not None
    nursery.start_soon(rig.lane.run)
    await until(lambda: rig.answered("m1"))
    assert rig.answers == [MergeDone(cid="m1", market=A.market, size=2 * ONE)]
    assert len(rig.adapter.executes) == 1 and rig.chain.shares[A.tokens[0]] == 3 * ONE
    assert rig.sink.of("chain_done")[0][1]["decided_by"] == "balances after a restart"


async def _run_in(scope: trio.CancelScope, lane: ChainLane) -> None:
    with scope:
        await lane.run()


async def test_a_resend_after_a_restart_that_finds_the_wallet_busy_looks_again(nursery, autojump_clock) -> None:
    """The interrupted batch may still land while the resend is refused: the balances decide."""
    rig = Rig(held(A), script=["crash", "busy"])
    rig.lane.send(redeem("r1", A))
    original = rig.adapter.execute

    async def lands_late(calls, *, cid):  # noqa: ANN001, ANN202
        if rig.adapter.script == ["busy"]:  # the busy answer: the first batch landed meanwhile
            rig.chain.apply(calls)
        return await original(calls, cid=cid)
    rig.adapter.execute = lands_late
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("r1"))
    assert rig.answers == [RedeemDone(cid="r1", market=A.market, payout=3 * ONE)]
    assert rig.chain.applied == [("redeemPositions", A.market)]


# --------------------------------------------------------------------------- any sequence

REQUESTS = st.lists(st.tuples(st.sampled_from(["redeem", "merge"]), st.integers(0, 3), st.integers(1, 3),
                              st.sampled_from([0, 0, 1, 7])), min_size=1, max_size=12)
STEPS = st.lists(st.sampled_from(["ok", "ok", "fail", "busy", "unreachable", "crash", "crash_after"]), max_size=10)
READS = st.lists(st.sampled_from(["unreachable", "malformed"]), max_size=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests=REQUESTS, script=STEPS, reads=READS, atomic=st.booleans(),
       holdings=st.lists(st.integers(0, 5), min_size=8, max_size=8))
def test_every_request_is_answered_exactly_once_with_what_the_chain_paid(requests, script, reads, atomic,
                                                                         holdings) -> None:
    shares = {t: n * ONE for t, n in zip([t for m in MARKETS for t in m.tokens], holdings)}

    async def scenario() -> Rig:
        rig = Rig(shares, atomic=atomic, script=script, reads=reads, tries=3)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rig.supervised)
            for n, (kind, market, sets, pause) in enumerate(requests):
                info = MARKETS[market]
                rig.lane.send(redeem(f"c{n}", info) if kind == "redeem" else merge(f"c{n}", info, sets))
                await trio.sleep(pause)
            await until(lambda: rig.answered(*[f"c{n}" for n in range(len(requests))]))
            await trio.sleep(120)
            nursery.cancel_scope.cancel()
        return rig

    rig = trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    cids = [f"c{n}" for n in range(len(requests))]
    assert sorted(a.cid for a in rig.answers) == sorted(cids)  # each exactly once
    paid: Counter[str] = Counter()
    for answer in rig.answers:
        if isinstance(answer, RedeemDone):
            paid[answer.market] += answer.payout
        elif isinstance(answer, MergeDone):
            paid[answer.market] += answer.size
    assert +paid == +rig.chain.paid  # per market, what the chain returned and nothing else
    assert sum(paid.values()) == rig.chain.pusd - 100 * ONE
    done = {cid for cid, _ in rig.sink.of("chain_done")}  # done on chain, each applied exactly once
    assert Counter(rig.chain.applied) == Counter((f"{kind}Positions", MARKETS[market].market)
                                                 for n, (kind, market, _, _) in enumerate(requests) if f"c{n}" in done)
    closing = ("chain_done", "chain_failed", "redeem_nothing_held")
    ends = Counter(cid for kind, cid, _ in rig.sink.rows if kind in closing)
    assert ends == Counter(cids)  # one closing row per cid
    requested = {cid for cid, _ in rig.sink.of("chain_request")}
    assert {cid for cid, _ in rig.sink.of("chain_done")} <= requested
    assert rig.lane.statistics()["pending"] == 0 and rig.lane.in_flight is None


# --------------------------------------------------------------------------- the gateway


KEY = SigningKey(Secret(value="0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))


def gateway(answers: list, sink: Rows, chain: ChainLane | None) -> LiveGateway:
    return LiveGateway(rest=None, signer=OrderSigner(KEY), owner="key-1", markets=BY_TOKEN.get,  # type: ignore
                       respond=answers.append, sink=sink, clock=TrioClock(anchor_ns=0), rng=random.Random(1),
                       config=VenueConfig(), chain=chain)


async def test_without_chain_access_the_gateway_answers_merges_and_redemptions_failed() -> None:
    answers: list = []
    sink = Rows()
    gw = gateway(answers, sink, None)
    gw.send(merge("m1", A, 1))
    gw.send(redeem("r1", B))
    assert answers == [ChainActionFailed(cid="m1", market=A.market, action="merge", reason=NO_CHAIN),
                       ChainActionFailed(cid="r1", market=B.market, action="redeem", reason=NO_CHAIN)]
    assert [cid for cid, _ in sink.of("chain_failed")] == ["m1", "r1"]


async def test_with_chain_access_the_gateway_hands_them_to_the_lane(nursery, autojump_clock) -> None:
    rig = Rig(held(A, B))
    answers: list = []
    gw = gateway(answers, Rows(), rig.lane)
    gw.send(merge("m1", A, 1))
    gw.send(redeem("r1", B))
    assert answers == [] and rig.lane.statistics()["received"] == 2
    nursery.start_soon(rig.supervised)
    await until(lambda: rig.answered("m1", "r1"))
    assert [type(a) for a in rig.answers] == [MergeDone, RedeemDone]


# --------------------------------------------------------------------------- the session


def session(lane: ChainLane | None):  # noqa: ANN201
    from mmbot.config import Config
    from mmbot.venues.polymarket.auth import ApiCredentials
    from mmbot.venues.polymarket.session import VenueSession
    from mmbot.venues.polymarket.startup import StartupSnapshot

    class NoReconcile:
        def on_leg(self, *_: object) -> None: ...

    creds = ApiCredentials(api_key="key-1", secret=Secret(value="AAAA"), passphrase=Secret(value="pass"))
    snapshot = StartupSnapshot(cash=0, holdings={}, trades=(), canceled=0, left_alone=0)
    return VenueSession(rest=None, key=KEY, creds=creds, markets=BY_TOKEN.get, respond=list().append,  # type: ignore
                        reconcile=NoReconcile(), sink=Rows(), clock=TrioClock(anchor_ns=0),  # type: ignore
                        config=Config(), user_ws_url="ws://127.0.0.1:1/ws/user", snapshot=snapshot,
                        rng=random.Random(1), on_failure=lambda _: None, chain=lane)


async def test_the_session_runs_the_lane_when_given_one_and_reports_its_counts() -> None:
    rig = Rig(held(A))
    with_lane, without = session(rig.lane), session(None)
    assert dict(with_lane.services())["chain"] == rig.lane.run and "chain" not in dict(without.services())
    rig.lane.send(redeem("r1", A))
    assert with_lane.statistics()["chain"]["pending"] == 1 and "chain" not in without.statistics()
    with_lane.gateway.send(redeem("r2", B))  # the session's gateway routes to its lane
    assert rig.lane.statistics()["received"] == 2
