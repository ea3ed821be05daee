"""The owner's money: what each grant earned, the wallet that pays gas and what a payout
nets after gas, claiming it, withdrawing the balance."""

from __future__ import annotations

from typing import Final

from vault import errors
from vault.grant import Status
from vault.owner.state import CLAIM, WITHDRAW, OwnerState
from vault.wire import BalancePublic, ClaimResult, EarningsPublic, GrantEarnings, WithdrawResult

#: ``withdraw``'s gas, which does not depend on the amount (docs/ledger.md's gas report:
#: 29,875). Used only while nothing is owed yet: the node cannot estimate a withdraw then
#: (it reverts ``NothingOwed`` until a claim has credited the balance).
WITHDRAW_GAS: Final = 30_000


class Money:
    def __init__(self, state: OwnerState) -> None:
        self._state = state

    def __repr__(self) -> str:
        return f"Money(owner={self._state.owner})"

    def earnings(self) -> EarningsPublic:
        with self._state.chain_lock:
            ledger = self._state.ledger
            grants = [
                GrantEarnings(id=r.id, earned_wei=ledger.earned(r.id),
                              claimable_wei=ledger.claimable(r.id))
                for r in self._state.mine() if r.status in (Status.ACTIVE, Status.REVOKED)
            ]
            return EarningsPublic(
                owed_wei=ledger.owed(self._state.owner),
                claimable_wei=sum(g.claimable_wei for g in grants),
                grants=grants,
            )

    def balance(self) -> BalancePublic:
        """The wallet, the ledger's balances, and the gas a full payout (claim, then
        withdraw) costs at the node's current gas price."""
        with self._state.chain_lock:
            ledger = self._state.ledger
            found = self.earnings()
            claim_ids = [g.id for g in found.grants if g.claimable_wei > 0]
            gas = ledger.estimate_claim_many(claim_ids) if claim_ids else 0
            if found.owed_wei:
                gas += ledger.estimate_withdraw()
            elif claim_ids:
                gas += WITHDRAW_GAS
            price = ledger.gas_price()
            return BalancePublic(
                address=self._state.owner,
                wallet_wei=ledger.balance_of(self._state.owner),
                owed_wei=found.owed_wei,
                claimable_wei=found.claimable_wei,
                gas_price_wei=price,
                payout_gas=gas,
                payout_gas_wei=gas * price,
                payout_net_wei=found.owed_wei + found.claimable_wei - gas * price,
            )

    def claim(self, ids: list[int] | None = None) -> ClaimResult:
        with self._state.chain_lock:
            if ids is None:
                ids = [g.id for g in self.earnings().grants if g.claimable_wei > 0]
            if not ids:
                return ClaimResult(claimed_wei=0, tx_hash=None)
            for request_id in ids:
                self._state.get(request_id)
            try:
                claimed = self._state.ledger.claim_many(ids)
            except errors.ContractReverted as reverted:
                if reverted.name in ("NothingOwed", "NothingToClaim"):
                    raise errors.NothingOwed("nothing is claimable; nothing changed") from None
                raise
            self._state.record(CLAIM, detail={"ids": ids, "claimed_wei": claimed})
            return ClaimResult(claimed_wei=claimed, tx_hash=None)

    def withdraw(self) -> WithdrawResult:
        with self._state.chain_lock:
            try:
                withdrawn = self._state.ledger.withdraw()
            except errors.ContractReverted as reverted:
                if reverted.name == "NothingOwed":
                    raise errors.NothingOwed("nothing is owed to you; nothing changed") from None
                raise
            self._state.record(WITHDRAW, detail={"withdrawn_wei": withdrawn})
            return WithdrawResult(withdrawn_wei=withdrawn, tx_hash=None)
