"""One-click unsubscribe (RFC 8058) from a signed token: the address stops getting this store's mail."""

from __future__ import annotations

from dataclasses import dataclass

from cartrecovery.clock import Clock
from cartrecovery.ports import ContactBook, MessageLedger, StoreRepository
from cartrecovery.tokens import InvalidToken, UnsubscribeToken, peek_store, verify


@dataclass(frozen=True)
class TokenSubject:
    store_name: str
    store_locale: str
    token: UnsubscribeToken

    @property
    def locale(self) -> str:
        """The language of the email the link came from (the store's for links issued before tokens said)."""
        return self.token.locale or self.store_locale


class Unsubscribe:
    def __init__(self, stores: StoreRepository, contacts: ContactBook, ledger: MessageLedger, clock: Clock) -> None:
        self.stores = stores
        self.contacts = contacts
        self.ledger = ledger
        self.clock = clock

    def check(self, text: str) -> TokenSubject:
        """Verify a token without changing anything (the GET confirmation page); InvalidToken if bad."""
        store = self.stores.get(peek_store(text))
        if store is None:
            raise InvalidToken("unknown store")
        return TokenSubject(store.settings.name, store.settings.locale, verify(text, store.token_key))

    def __call__(self, text: str) -> TokenSubject:
        return self.record(self.check(text))

    def record(self, subject: TokenSubject) -> TokenSubject:
        """Unsubscribe the address of a token ``check`` verified."""
        token = subject.token
        newly = self.contacts.unsubscribe(token.store_id, "e#" + token.email_hash, self.clock.now(), source="one-click")
        if newly:
            row = {"day": token.day, "flow": token.flow, "step": token.step, "variant": token.variant}
            self.ledger.count(token.store_id, row, "unsubscribed")
        return subject
