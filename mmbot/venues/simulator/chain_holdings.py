"""Who holds what on the simulated chain, sans-IO: pUSD and outcome tokens by *holder*,
allowances and operator approvals by address (``chain_state`` builds the chain around it).

A simulator trading account keeps one pUSD and share balance for its owner and all the owner's
wallets. So the balances of an address that is an account's owner, or one of that owner's
wallets (``SimTrading.account_for_wallet``), *are* that account's balance (holder
``acct:<api key>``); any other address holds its own (holder: the address in lower case). What an
address got before its owner had an account moves into the account when the account is made
(``account_made``, which the chain registers with ``SimTrading.account_listeners``). What an
account's resting orders hold is not *free*: the chain moves only the rest (the venue's own
balance rule), so no account's cash or shares go below zero when those orders fill.
"""

from __future__ import annotations

from mmbot.venues.simulator.access import Account
from mmbot.venues.simulator.chain_calls import Changes
from mmbot.venues.simulator.engine import Engine
from mmbot.venues.simulator.trading import SimTrading

_ACCOUNT = "acct:"  # a holder that is a trading account: "acct:<api key>"


class Holdings:
    def __init__(self, trading: SimTrading, engine: Engine) -> None:
        self.trading = trading
        self.engine = engine
        self._pusd: dict[str, int] = {}  # address (lower) -> pUSD, addresses of no account
        self._shares: dict[str, dict[str, int]] = {}  # address (lower) -> token -> shares
        self._allowances: dict[tuple[str, str], int] = {}
        self._operators: set[tuple[str, str]] = set()

    def holder(self, address: str) -> str:
        account = self.trading.account_for_wallet(address)
        return _ACCOUNT + account.creds.api_key if account is not None else address.lower()

    def _account(self, holder: str) -> Account | None:
        return self.trading.account(api_key=holder[len(_ACCOUNT):]) if holder.startswith(_ACCOUNT) else None

    def held_pusd(self, holder: str, *, free: bool) -> int:
        account = self._account(holder)
        if account is None:
            return self._pusd.get(holder, 0)
        held = self.trading.cash(account)
        return held - self.engine.committed(account.creds.api_key, "")[0] if free else held

    def held_shares(self, holder: str, token: str, *, free: bool) -> int:
        account = self._account(holder)
        if account is None:
            return self._shares.get(holder, {}).get(token, 0)
        held = self.trading.shares(account, token)
        return held - self.engine.committed(account.creds.api_key, token)[1] if free else held

    def allowance(self, owner: str, spender: str) -> int:
        return self._allowances.get((owner.lower(), spender.lower()), 0)

    def approved(self, owner: str, operator: str) -> bool:
        return (owner.lower(), operator.lower()) in self._operators

    def apply(self, changes: Changes) -> None:
        """A run's changes, made."""
        for holder, amount in changes.pusd.items():
            account = self._account(holder)
            if account is not None:
                self.trading.give(account.creds.api_key, cash=amount)
            elif self._pusd.get(holder, 0) + amount:
                self._pusd[holder] = self._pusd.get(holder, 0) + amount
            else:
                self._pusd.pop(holder, None)
        for (holder, token), amount in changes.shares.items():
            account = self._account(holder)
            if account is not None:
                self.trading.give(account.creds.api_key, shares={token: amount})
                continue
            held = self._shares.setdefault(holder, {})
            held[token] = held.get(token, 0) + amount
            if not held[token]:
                del held[token]
            if not held:
                del self._shares[holder]
        self._allowances.update(changes.allowances)
        for key, approved in changes.operators.items():
            (self._operators.add if approved else self._operators.discard)(key)

    def account_made(self, account: Account) -> None:
        """What the new account's addresses got before it existed becomes its balance."""
        if self.trading.account_for_wallet(account.address) is not account:
            return  # the owner had an account already: its addresses were bound to that one
        key = account.creds.api_key
        wallets = self.trading.wallets.of(account.address)
        for address in (wallets.owner, wallets.deposit, wallets.proxy, wallets.safe):
            cash = self._pusd.pop(address.lower(), 0)
            shares = self._shares.pop(address.lower(), {})
            if cash or shares:
                self.trading.give(key, cash=cash, shares=shares)

    def pusd_of_addresses(self) -> int:
        """pUSD held by addresses of no account."""
        return sum(self._pusd.values())

    def tokens_of_addresses(self) -> dict[str, dict[str, int]]:
        """Outcome tokens held by addresses of no account: address -> token -> shares."""
        return self._shares

    def sizes(self) -> int:
        return len(self._pusd) + len(self._shares)
