"""Record one SES event (as delivered by EventBridge) against its message and the report counters.

Counts are of unique messages: the ledger marks each kind once per message, so a message opened five
times is one ``opened``. Hard bounces and complaints suppress the address for that store. A click made by a
machine (a mail security scanner, a link preview, a script: ``domain.bot_clicks``) is marked and counted as
``bot_clicked`` instead of ``clicked``, so a shopper's own click later still counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from cartrecovery.clock import Clock, parse_rfc3339
from cartrecovery.domain.bot_clicks import machine_click_reason
from cartrecovery.ports import ContactBook, Mark, MessageLedger

# SES eventType -> the report column it counts in.
COUNTED = {
    "Delivery": "delivered",
    "Open": "opened",
    "Click": "clicked",
    "Bounce": "bounced",
    "Complaint": "complained",
    "Reject": "rejected",
    "Rendering Failure": "rendering_failed",
}
# A click a machine made: its own mark and column, so it never takes the message's ``clicked`` mark.
MACHINE_CLICK = "bot_clicked"

# SES eventType -> the EventBridge detail-type SES publishes it under. The template's rule forwards exactly
# these to the tracking queue; a test holds the two together.
DETAIL_TYPES = {
    "Delivery": "Email Delivered",
    "Open": "Email Opened",
    "Click": "Email Clicked",
    "Bounce": "Email Bounced",
    "Complaint": "Email Complaint Received",
    "Reject": "Email Rejected",
    "Rendering Failure": "Email Rendering Failed",
}

# ``.../u/<payload>.<MAC>``: the unsubscribe link every email carries (``tokens.issue``: a 16-byte MAC),
# under the API's URL, which may have a base path (``/prod``).
_UNSUBSCRIBE_PATH = re.compile(r"/u/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}/?\Z")


def is_unsubscribe_link(url: str) -> bool:
    return _UNSUBSCRIBE_PATH.search(urlsplit(url).path) is not None


ROW_TAGS = (("store", "store_id"), ("day", "day"), ("flow", "flow"), ("step", "step"), ("variant", "variant"))
ONCE_PER_MESSAGE = {"delivered", "bounced", "complained", "rejected", "rendering_failed"}


class MessageNotYetRecorded(Exception):
    """The event beat the send's own record of the message: retry the event later."""


@dataclass(frozen=True)
class TrackOutcome:
    kind: str | None
    result: str  # new, again, ignored


@dataclass(frozen=True)
class SesEvent:
    """What an SES event counts: the message, the report column and its time, what the mark keeps."""

    mark: Mark
    suppresses: bool  # a hard bounce or a complaint

    @classmethod
    def read(cls, record: dict[str, Any], clock: Clock) -> SesEvent | None:
        """None for what counts nothing (Send, DeliveryDelay, Subscription, no message id)."""
        event_type = str(record.get("eventType") or record.get("notificationType"))
        message_id = (record.get("mail") or {}).get("messageId")
        kind = COUNTED.get(event_type)
        if kind is None or not message_id:
            return None
        click = record.get("click") or {}
        if event_type == "Click" and is_unsubscribe_link(str(click.get("link", ""))):
            # Opening the unsubscribe page is not interest in the shop: it counts no click (and so cannot
            # hold back a coupon step set to go only to shoppers who did not click). The shipped footers
            # mark the link ses:no-track; a store's own footer may not.
            return None
        at = _event_time(record, event_type) or clock.now()
        detail: dict[str, str] = {}
        if event_type == "Click":
            detail["url"] = str(click.get("link", ""))[:1000]
            reason = _machine_click(record, click)
            if reason is not None:
                kind = MACHINE_CLICK
                detail["reason"] = reason
        if event_type == "Bounce":
            detail["bounce_type"] = str((record.get("bounce") or {}).get("bounceType", ""))
        # SES reports a delivery, bounce or complaint once per message: it goes straight to the counting write,
        # its row taken from the message's tags. Opens and clicks repeat (privacy proxies, link scanners), and a
        # repeat is cheaper found by a read (one read unit) than by a cancelled transaction (four write units).
        row = counter_row(record) if kind in ONCE_PER_MESSAGE else None
        suppresses = event_type == "Complaint" or (
            event_type == "Bounce" and (record.get("bounce") or {}).get("bounceType") == "Permanent"
        )
        return cls(Mark(str(message_id), kind, at, detail, row), suppresses)


class RecordSesEvent:
    def __init__(self, ledger: MessageLedger, contacts: ContactBook, clock: Clock) -> None:
        self.ledger = ledger
        self.contacts = contacts
        self.clock = clock

    def __call__(self, record: dict[str, Any], counted: str | None = None) -> TrackOutcome:
        """``counted``: the event's result when its batch was counted together (``RecordSesEvents``)."""
        event = SesEvent.read(record, self.clock)
        if event is None:
            return TrackOutcome(None, "ignored")
        mark = event.mark
        result = counted or self.ledger.mark(mark.message_id, mark.kind, mark.at, detail=mark.detail, row=mark.row)
        if result == "missing":
            raise MessageNotYetRecorded(mark.message_id)
        # Suppress on a repeat too: the first delivery may have died after marking (SQS redelivers it), or an
        # earlier soft bounce of this message took the mark. Suppressing again keeps the first reason.
        if event.suppresses:
            message = self.ledger.get(mark.message_id)
            if message is not None:
                self.contacts.suppress(message.store_id, "e#" + message.email_hash, mark.kind, mark.at)
        return TrackOutcome(mark.kind, result)


class RecordSesEvents:
    """Count a batch of SES events in one write: at volume, most of tracking's cost is its counting writes.

    Returns each record's result ('new', 'again'; None for a record that counts nothing), for
    ``RecordSesEvent`` to finish each record with (suppression). Returns None, having written nothing, when
    the batch is better counted one record at a time: fewer than two events count, or the one write could
    not be made (a message not recorded yet, a repeat that only the write's condition caught). One record at
    a time then holds every guarantee as it always has.
    """

    def __init__(self, ledger: MessageLedger, clock: Clock) -> None:
        self.ledger = ledger
        self.clock = clock

    def __call__(self, records: list[dict[str, Any]]) -> list[str | None] | None:
        events = [SesEvent.read(record, self.clock) for record in records]
        marks = [event.mark for event in events if event is not None]
        if len(marks) < 2:
            return None
        results = self.ledger.mark_batch(marks)
        if results is None:
            return None
        counted = iter(results)
        return [next(counted) if event is not None else None for event in events]


def counter_row(record: dict[str, Any]) -> dict[str, Any] | None:
    """The report row a message counts in, from the tags the send put on it (None if any is missing)."""
    tags = (record.get("mail") or {}).get("tags") or {}
    values: dict[str, str] = {}
    for tag, field in ROW_TAGS:
        value = tags.get(tag)
        value = value[0] if isinstance(value, list) and value else value
        if not isinstance(value, str) or not value:
            return None
        values[field] = value
    if not values["step"].isdigit():
        return None
    return {**values, "step": int(values["step"])}


def _machine_click(record: dict[str, Any], click: dict[str, Any]) -> str | None:
    """Why a Click event was a machine's, or None. Only the click's own time is weighed against the send's:
    a click without one is not dated by the send (``_event_time``'s fallback), which would look too soon."""
    user_agent = click.get("userAgent")
    return machine_click_reason(
        user_agent if isinstance(user_agent, str) else None,
        _parsed_time(click.get("timestamp")),
        _parsed_time((record.get("mail") or {}).get("timestamp")),
    )


def _parsed_time(text: Any) -> datetime | None:
    try:
        return parse_rfc3339(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def _event_time(record: dict[str, Any], event_type: str) -> datetime | None:
    block = {
        "Delivery": "delivery",
        "Open": "open",
        "Click": "click",
        "Bounce": "bounce",
        "Complaint": "complaint",
    }.get(event_type)
    text = (record.get(block) or {}).get("timestamp") if block else None
    return _parsed_time(text or (record.get("mail") or {}).get("timestamp"))
