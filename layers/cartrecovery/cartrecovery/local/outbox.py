"""Every email the stack hands to SES, as SES received it: the local stack's outbox.

Hooks on the boto3 session the handlers use capture each successful SESv2 ``SendEmail``: the request (raw
MIME bytes, recipients, configuration set, message tags) and the ``MessageId`` the emulator answered, with
the virtual time of the send. The emulator drops tags and configuration sets and never emits events, so the
outbox is also where the SES event emulation (``ses_events``) finds what it needs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from functools import cached_property
from typing import Any

from cartrecovery.clock import Clock, isoformat

log = logging.getLogger("cartrecovery.local")

CONTEXT_KEY = "cartrecovery_local_send"


@dataclass(frozen=True)
class ParsedEmail:
    subject: str
    sender: str
    html: str
    text: str
    headers: dict[str, str]


@dataclass
class SentMessage:
    message_id: str
    sender: str  # FromEmailAddress as passed to SES
    to: tuple[str, ...]
    raw: bytes
    sent_at: datetime
    configuration_set: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @cached_property
    def parsed(self) -> ParsedEmail:
        return parse_email(self.raw)

    def to_json(self) -> dict[str, Any]:
        parsed = self.parsed
        return {
            "message_id": self.message_id,
            "to": list(self.to),
            "from": parsed.sender or self.sender,
            "subject": parsed.subject,
            "html": parsed.html,
            "text": parsed.text,
            "headers": parsed.headers,
            "sent_at": isoformat(self.sent_at),
        }


def parse_email(raw: bytes) -> ParsedEmail:
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    headers: dict[str, str] = {}
    for name, value in message.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else str(value)
    html_part = message.get_body(preferencelist=("html",))
    text_part = message.get_body(preferencelist=("plain",))
    return ParsedEmail(
        subject=str(message.get("Subject", "")),
        sender=str(message.get("From", "")),
        html=_content(html_part),
        text=_content(text_part),
        headers=headers,
    )


def _content(part: Any) -> str:
    if part is None:
        return ""
    try:
        content = str(part.get_content())
    except (LookupError, ValueError):  # an unknown charset or a broken transfer encoding: show it as-is
        payload = part.get_payload(decode=True) or b""
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload)
    return content.replace("\r\n", "\n")  # MIME's canonical CRLF line ends, as a mail client shows them


class Outbox:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._messages: list[SentMessage] = []
        self._by_id: dict[str, SentMessage] = {}
        self._unannounced: list[SentMessage] = []  # sent, SES events not emitted yet
        self._lock = threading.Lock()

    def install(self, session: Any, before_send: Callable[[dict[str, Any]], None] | None = None) -> None:
        """Register the hooks on a boto3 session, before any client of it is created (clients copy hooks)."""

        def remember_request(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            if before_send is not None:
                try:
                    before_send(params)
                except Exception:  # a helper's failure must not turn into a send failure
                    log.exception("before-send hook failed")
            context[CONTEXT_KEY] = params

        def capture(http_response: Any, parsed: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            params = context.get(CONTEXT_KEY)
            status = getattr(http_response, "status_code", 0)
            if params is None or not 200 <= status < 300 or "MessageId" not in parsed:
                return
            self.record(params, str(parsed["MessageId"]))

        session.events.register("before-parameter-build.sesv2.SendEmail", remember_request)
        session.events.register("after-call.sesv2.SendEmail", capture)

    def record(self, params: dict[str, Any], message_id: str) -> SentMessage:
        content = params.get("Content") or {}
        raw = (content.get("Raw") or {}).get("Data") or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        destination = params.get("Destination") or {}
        recipients = [
            *destination.get("ToAddresses", []),
            *destination.get("CcAddresses", []),
            *destination.get("BccAddresses", []),
        ]
        message = SentMessage(
            message_id=message_id,
            sender=str(params.get("FromEmailAddress") or ""),
            to=tuple(str(r) for r in recipients),
            raw=bytes(raw),
            sent_at=self.clock.now(),
            configuration_set=params.get("ConfigurationSetName"),
            tags={str(t["Name"]): str(t["Value"]) for t in params.get("EmailTags") or []},
        )
        if not message.to:  # a raw message may carry its recipients in its headers only
            parsed = message.parsed
            message.to = tuple(a for _, a in getaddresses([parsed.headers.get("To", "")]) if a)
        with self._lock:
            self._messages.append(message)
            self._by_id[message_id] = message
            self._unannounced.append(message)
        return message

    def messages(self, to: str | None = None) -> list[SentMessage]:
        """Oldest first; ``to`` matches one recipient address, case-insensitively."""
        with self._lock:
            messages = list(self._messages)
        if to is None:
            return messages
        wanted = to.strip().lower()
        return [m for m in messages if any(_address(r) == wanted for r in m.to)]

    def get(self, message_id: str) -> SentMessage | None:
        with self._lock:
            return self._by_id.get(message_id)

    def take_unannounced(self) -> list[SentMessage]:
        """Messages sent since the last call (for their Send and Delivery events), oldest first."""
        with self._lock:
            taken, self._unannounced = self._unannounced, []
        return taken

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)


def _address(recipient: str) -> str:
    addresses = getaddresses([recipient])
    return (addresses[0][1] if addresses and addresses[0][1] else recipient).strip().lower()
