"""What each store knows of an address or customer id, keyed by salted hash. No address is stored here.

An address has two items, so that expiry can only ever remove proof, never a stop:

- ``e#<hash>``, the stops, never expire: the suppression (bounce, complaint, rejected), the opt-out (the
  unsubscribe link, ``customer.unsubscribed``, a withdrawn consent) and the last order time. A customer id's
  ``c#<hash>`` holds only its last order time.
- ``p#<hash>``, the consent proof: the statements (granted, when, source, the event that carried them), newest
  first and at most ``HISTORY_LIMIT``, the last email (and the last flow entry, for stores measuring a holdout
  group), and ``expires_at`` (the table's TTL attribute): three
  years after the last email to the address, or after the newest statement while none was sent. The write that
  records an email moves it, so a send costs no extra call.

``get_many`` reads both in one BatchGetItem and merges them into one record per key asked for. Items written
before the split kept ``consent`` and ``last_message`` on ``e#``: they are still read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cartrecovery.adapters.carts import decode_consent
from cartrecovery.adapters.dynamo_codec import from_item, opt_str, opt_time, to_attr
from cartrecovery.clock import isoformat, parse_rfc3339
from cartrecovery.domain.events import Consent
from cartrecovery.ports import EARLIER_MESSAGES_KEPT, ConcurrentUpdate, ConsentStatement, ContactRecord

STOP = "e#"
PROOF = "p#"
PROOF_YEARS = 3
HISTORY_LIMIT = 20  # statements kept per address; the oldest beyond it are dropped
STOPS = ("suppressed", "unsubscribed_at", "opted_out")  # what erasure keeps of the stop item
PROOF_KEPT = ("history", "expires_at", "version")  # what erasure keeps of the proof item
WRITE_ATTEMPTS = 8
READ_ATTEMPTS = 4


def proof_expiry(at: datetime) -> datetime:
    """Three calendar years after ``at`` (29 February moves to 1 March)."""
    try:
        return at.replace(year=at.year + PROOF_YEARS)
    except ValueError:
        return at.replace(year=at.year + PROOF_YEARS, month=3, day=1)


def proof_key(key: str) -> str:
    return PROOF + key.removeprefix(STOP)


def encode_statement(statement: ConsentStatement) -> dict[str, Any]:
    return {"granted": statement.granted, "at": statement.at, "source": statement.source, "event": statement.event}


def decode_statement(raw: dict[str, Any] | None) -> ConsentStatement | None:
    if not raw:
        return None
    return ConsentStatement(
        granted=bool(raw["granted"]),
        at=parse_rfc3339(str(raw["at"])),
        source=opt_str(raw.get("source")),
        event=opt_str(raw.get("event")),
    )


def _same(a: ConsentStatement, b: ConsentStatement) -> bool:
    """The same statement delivered again (whatever carried it): equal as stored, to the second."""
    return (a.granted, isoformat(a.at), a.source) == (b.granted, isoformat(b.at), b.source)


def _newest_first(statement: ConsentStatement) -> tuple[str, bool]:
    return isoformat(statement.at), not statement.granted  # on equal times the withdrawal counts as newer


@dataclass(frozen=True)
class _Proof:
    history: tuple[ConsentStatement, ...] = ()
    version: int = 0
    sent_at: datetime | None = None


class DynamoContactBook:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    def _key(self, store_id: str, key: str) -> dict[str, Any]:
        return {"store_id": {"S": store_id}, "contact_key": {"S": key}}

    # ---- reading ----

    def get_many(self, store_id: str, keys: list[str]) -> dict[str, ContactRecord]:
        if not keys:
            return {}
        wanted = list(dict.fromkeys([*keys, *(proof_key(k) for k in keys if k.startswith(STOP))]))
        items = self._batch_get(store_id, wanted)
        records = {}
        for key in keys:
            stop = items.get(key)
            proof = items.get(proof_key(key)) if key.startswith(STOP) else None
            if stop is not None or proof is not None:
                records[key] = _merge(key, stop or {}, proof or {})
        return records

    def _batch_get(self, store_id: str, keys: list[str]) -> dict[str, dict[str, Any]]:
        request: dict[str, Any] = {self.table: {"Keys": [self._key(store_id, k) for k in keys], "ConsistentRead": True}}
        found: dict[str, dict[str, Any]] = {}
        for attempt in range(READ_ATTEMPTS):
            response = self.client.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(self.table, []):
                data = from_item(raw)
                found[data["contact_key"]] = data
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(0.05 * 2**attempt)
        # A missing stop must never read as "no stop": fail, and the caller's invocation is retried.
        raise ConcurrentUpdate("contacts still unprocessed after retries")

    def _read_proof(self, store_id: str, key: str) -> _Proof:
        response = self.client.get_item(
            TableName=self.table, Key=self._key(store_id, proof_key(key)), ConsistentRead=True
        )
        return _proof_of(from_item(response["Item"]) if "Item" in response else {})

    # ---- writing ----

    def _update_if(
        self,
        store_id: str,
        key: str,
        expression: str,
        condition: str | None,
        names: dict[str, str],
        values: dict[str, Any],
        returns: str = "NONE",
    ) -> dict[str, Any] | None:
        """The update's old item (``returns="ALL_OLD"``), ``{}`` otherwise; None when the condition failed."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._key(store_id, key),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {k: to_attr(v) for k, v in values.items()},
            "ReturnValues": returns,
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            response = self.client.update_item(**kwargs)
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        attributes: dict[str, Any] = response.get("Attributes") or {}
        return attributes

    def record_order(self, store_id: str, key: str, at: datetime) -> None:
        self._update_if(
            store_id, key, "SET #o = :at", "attribute_not_exists(#o) OR #o < :at", {"#o": "last_order_at"}, {":at": at}
        )

    def record_consent(self, store_id: str, key: str, consent: Consent, event: str | None = None) -> None:
        """Keep the statement as proof; a withdrawal is also an opt-out, kept for good."""
        assert consent.at is not None
        statement = ConsentStatement(consent.granted, consent.at, consent.source, event)
        if not consent.granted:
            self._opt_out(store_id, key, statement)
        self._prove(store_id, key, statement)

    def unsubscribe(self, store_id: str, key: str, at: datetime, source: str, event: str | None = None) -> bool:
        """Withdraw consent as of ``at``; True only for the address's first opt-out of any kind.

        An address that already withdrew (an earlier unsubscribe, ``customer.unsubscribed`` or a
        ``consent_changed`` withdrawal) is not counted again: the report's ``unsubscribed`` is the
        opt-outs an email caused, and this one changed nothing.
        """
        statement = ConsentStatement(False, at, source, event)
        old = self._update_if(
            store_id,
            key,
            "SET #o = :o, #u = if_not_exists(#u, :at)",
            "attribute_not_exists(#o) OR #o.#at < :at",
            {"#o": "opted_out", "#u": "unsubscribed_at", "#at": "at"},
            {":o": encode_statement(statement), ":at": at},
            returns="ALL_OLD",
        )
        if old is not None:
            newly = "unsubscribed_at" not in old and "opted_out" not in old
        else:  # a newer opt-out is already kept; only the first unsubscribe time may be missing
            self._update_if(
                store_id, key, "SET #u = :at", "attribute_not_exists(#u)", {"#u": "unsubscribed_at"}, {":at": at}
            )
            newly = False
        self._prove(store_id, key, statement)
        return newly

    def _opt_out(self, store_id: str, key: str, statement: ConsentStatement) -> None:
        self._update_if(
            store_id,
            key,
            "SET #o = :o",
            "attribute_not_exists(#o) OR #o.#at < :at",
            {"#o": "opted_out", "#at": "at"},
            {":o": encode_statement(statement), ":at": statement.at},
        )

    def note_entry(self, store_id: str, key: str, entry: dict[str, Any], until: datetime) -> None:
        """Kept on the proof item, beside the last email. A held-out shopper may have no proof item: the item
        made here expires when the entry's window ends, unless a statement or an email keeps it longer."""
        self._update_if(
            store_id,
            proof_key(key),
            "SET #l = :l, #e = if_not_exists(#e, :e)",
            None,
            {"#l": "last_entry", "#e": "expires_at"},
            {":l": entry, ":e": int(until.timestamp())},
        )

    def suppress(self, store_id: str, key: str, reason: str, at: datetime) -> None:
        self._update_if(
            store_id,
            key,
            "SET #s = if_not_exists(#s, :s)",
            None,
            {"#s": "suppressed"},
            {":s": {"reason": reason, "at": at}},
        )

    def note_sent(
        self,
        store_id: str,
        key: str,
        last_message: dict[str, Any],
        consent: ConsentStatement | None = None,
        seen: ContactRecord | None = None,
    ) -> None:
        sent_at = parse_rfc3339(str(last_message["sent_at"]))
        history = seen.history if seen else ()
        sent = _Sent(last_message, _earlier(seen, str(last_message["message_id"])) if seen is not None else None)
        if consent is not None and not any(_same(consent, s) for s in history):
            proof = _Proof(history, seen.proof_version if seen else 0)
            if self._write_proof(store_id, key, consent, proof, sent, sent_at):
                return
            # The proof changed since it was read: record the email, then the statement on a fresh read.
            self._note(store_id, key, sent, sent_at)
            self._prove(store_id, key, consent)
            return
        self._note(store_id, key, sent, sent_at)

    def _note(self, store_id: str, key: str, sent: _Sent, sent_at: datetime) -> None:
        names = {"#e": "expires_at"}
        values: dict[str, Any] = {":e": int(proof_expiry(sent_at).timestamp())}
        expression = "SET #e = :e, " + sent.set_clause(names, values)
        self._update_if(store_id, proof_key(key), expression, None, names, values)

    def _prove(self, store_id: str, key: str, statement: ConsentStatement) -> None:
        """Add a statement to the proof (a statement already there, delivered again, changes nothing)."""
        for _ in range(WRITE_ATTEMPTS):
            proof = self._read_proof(store_id, key)
            if any(_same(statement, s) for s in proof.history):
                return
            if self._write_proof(store_id, key, statement, proof, None, proof.sent_at):
                return
        raise ConcurrentUpdate(f"the consent proof kept changing under {WRITE_ATTEMPTS} attempts")

    def _write_proof(
        self,
        store_id: str,
        key: str,
        statement: ConsentStatement,
        proof: _Proof,
        sent: _Sent | None,
        sent_at: datetime | None,
    ) -> bool:
        """Write the history with ``statement`` added, if the proof is still the version read."""
        history = sorted((statement, *proof.history), key=_newest_first, reverse=True)[:HISTORY_LIMIT]
        expires = proof_expiry(sent_at if sent_at is not None else history[0].at)
        names = {"#h": "history", "#v": "version", "#e": "expires_at"}
        values: dict[str, Any] = {
            ":h": [encode_statement(s) for s in history],
            ":v": proof.version + 1,
            ":e": int(expires.timestamp()),
        }
        expression = "SET #h = :h, #v = :v, #e = :e"
        if sent is not None:
            expression += ", " + sent.set_clause(names, values)
        if proof.version:
            condition = "#v = :read"
            values[":read"] = proof.version
        else:
            condition = "attribute_not_exists(#v)"
        return self._update_if(store_id, proof_key(key), expression, condition, names, values) is not None

    # ---- erasure ----

    def erase(self, store_id: str, key: str) -> None:
        """Forget this key but its stops (suppression, opt-out) and its consent proof, which keeps its expiry:
        all of them keyed by the salted hash, holding no address (see docs/decisions.md, Erasure)."""
        self._keep_only(store_id, key, STOPS, STOPS)
        if key.startswith(STOP):
            self._keep_only(store_id, proof_key(key), PROOF_KEPT, ("history",))

    def _keep_only(self, store_id: str, key: str, names: tuple[str, ...], needs: tuple[str, ...]) -> None:
        """Keep only ``names`` of the item, or delete it when it has none of ``needs``."""
        response = self.client.get_item(TableName=self.table, Key=self._key(store_id, key), ConsistentRead=True)
        if "Item" not in response:
            return
        kept = {name: value for name, value in response["Item"].items() if name in names}
        if any(name in kept for name in needs):
            self.client.put_item(TableName=self.table, Item={**self._key(store_id, key), **kept})
        else:
            self.client.delete_item(TableName=self.table, Key=self._key(store_id, key))


@dataclass(frozen=True)
class _Sent:
    """An email sent to the address: it becomes ``last_message``, and the one before joins ``earlier``
    (None when the record was not read: the earlier list is then left as it is)."""

    last_message: dict[str, Any]
    earlier: list[dict[str, Any]] | None

    def set_clause(self, names: dict[str, str], values: dict[str, Any]) -> str:
        names["#m"] = "last_message"
        values[":m"] = self.last_message
        if self.earlier is None:
            return "#m = :m"
        names["#r"] = "earlier_messages"
        values[":r"] = self.earlier
        return "#m = :m, #r = :r"


def _earlier(seen: ContactRecord, message_id: str) -> list[dict[str, Any]]:
    """What ``earlier_messages`` becomes when email ``message_id`` follows the ``seen`` record's last one
    (a retried send that finds its own email already noted moves nothing)."""
    previous = seen.last_message
    moved = (
        [{"message_id": previous["message_id"], "sent_at": previous["sent_at"]}]
        if previous and previous["message_id"] != message_id
        else []
    )
    return (moved + [dict(m) for m in seen.earlier_messages])[:EARLIER_MESSAGES_KEPT]


def _proof_of(data: dict[str, Any]) -> _Proof:
    history = tuple(s for s in (decode_statement(raw) for raw in data.get("history") or []) if s is not None)
    sent = (data.get("last_message") or {}).get("sent_at")
    return _Proof(history, int(data.get("version", 0)), parse_rfc3339(str(sent)) if sent else None)


def _merge(key: str, stop: dict[str, Any], proof: dict[str, Any]) -> ContactRecord:
    kept = _proof_of(proof)
    statement = kept.history[0] if kept.history else None
    opted_out = decode_statement(stop.get("opted_out"))
    signals = [Consent(s.granted, s.at, s.source) for s in (statement, opted_out) if s is not None]
    legacy = decode_consent(stop.get("consent"))  # written before the proof had its own item
    if legacy is not None and legacy.at is not None:
        signals.append(legacy)
    consent = max(signals, key=lambda c: (isoformat(c.at) if c.at else "", not c.granted)) if signals else None
    suppressed = stop.get("suppressed") or {}
    expires = proof.get("expires_at")
    return ContactRecord(
        key=key,
        consent=consent,
        unsubscribed_at=opt_time(stop.get("unsubscribed_at")),
        suppressed_reason=suppressed.get("reason"),
        last_order_at=opt_time(stop.get("last_order_at")),
        last_message=proof.get("last_message") or stop.get("last_message"),
        earlier_messages=tuple(m for m in proof.get("earlier_messages") or () if isinstance(m, dict)),
        proof=statement,
        history=kept.history,
        proof_expires_at=datetime.fromtimestamp(int(expires), UTC) if expires is not None else None,
        proof_version=kept.version,
        opted_out=opted_out,
        last_entry=proof.get("last_entry"),
    )
