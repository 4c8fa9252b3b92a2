"""SES events, as AWS would deliver them, run through the deployed tracking handler.

In AWS the configuration set publishes each event to EventBridge (``source: aws.ses``, ``detail-type``
``Email Delivered`` and so on, ``detail`` = the SES event record), a rule forwards it to SQS, and the
tracking function reads the queue. Here the same SQS event is built and handed to the same handler.

Automatic events: ``Send`` and ``Delivery`` for every message sent with a configuration set (the emulator
has no mailbox to bounce or complain; a message sent without a configuration set gets no events, as in
AWS). Every other kind is emitted on request (``POST /_local/ses/{message_id}/{kind}``).

A click is the shopper's unless told otherwise: a phone browser's user agent, dated no sooner than
``SHOPPER_READING_TIME`` after the send, as a person's click is (a click within seconds of the send, or with
a scanner's or a script's user agent, counts as a machine's: ``domain.bot_clicks``). A caller emulating a
scanner gives its user agent, or how soon after the send it clicked.

A record the handler reports as failed (``batchItemFailures``) or that raises is retried a few times, as
SQS would redeliver it; what still fails is kept for the console.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from cartrecovery.clock import Clock, isoformat
from cartrecovery.local.emulator import REGION, TRACKING_QUEUE_ARN
from cartrecovery.local.lambda_invoke import ACCOUNT_ID
from cartrecovery.local.outbox import SentMessage

log = logging.getLogger("cartrecovery.local")

# kind (as in the route) -> (SES eventType, EventBridge detail-type)
KINDS: dict[str, tuple[str, str]] = {
    "send": ("Send", "Email Sent"),
    "delivery": ("Delivery", "Email Delivered"),
    "open": ("Open", "Email Opened"),
    "click": ("Click", "Email Clicked"),
    "bounce": ("Bounce", "Email Bounced"),
    "complaint": ("Complaint", "Email Complaint Received"),
}
USER_AGENT = "Mozilla/5.0 (cartrecovery local emulator)"
# What a shopper's click carries by default: Safari on an iPhone, the commonest reader of Japanese email.
SHOPPER_USER_AGENT = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
# A shopper's click comes at least this long after the send: the email has to arrive and be read first.
SHOPPER_READING_TIME = timedelta(minutes=1)


def ses_timestamp(moment: datetime) -> str:
    """SES writes millisecond UTC timestamps: ``2026-12-01T03:00:00.000Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ses_record(
    kind: str, message: SentMessage, at: datetime, *, url: str | None = None, user_agent: str | None = None
) -> dict[str, Any]:
    """The SES event record (the EventBridge ``detail``) of one event of ``kind`` for ``message``;
    ``user_agent`` is a click's (a shopper's phone unless given)."""
    event_type, _ = KINDS[kind]
    sender = parseaddr(message.sender)[1] or message.sender
    tags = {name: [value] for name, value in message.tags.items()}
    tags.update(
        {
            "ses:operation": ["SendEmail"],
            "ses:source-ip": ["127.0.0.1"],
            "ses:from-domain": [sender.rpartition("@")[2]],
            "ses:caller-identity": ["cartrecovery-local"],
        }
    )
    if message.configuration_set:
        tags["ses:configuration-set"] = [message.configuration_set]
    parsed = message.parsed
    record: dict[str, Any] = {
        "eventType": event_type,
        "mail": {
            "timestamp": ses_timestamp(message.sent_at),
            "source": message.sender,
            "sourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:identity/{sender.rpartition('@')[2]}",
            "sendingAccountId": ACCOUNT_ID,
            "messageId": message.message_id,
            "destination": list(message.to),
            "headersTruncated": False,
            "commonHeaders": {"from": [parsed.sender], "to": list(message.to), "subject": parsed.subject},
            "tags": tags,
        },
    }
    stamp = ses_timestamp(at)
    if kind == "send":
        record["send"] = {}
    elif kind == "delivery":
        record["delivery"] = {
            "timestamp": stamp,
            "processingTimeMillis": 120,
            "recipients": list(message.to),
            "smtpResponse": "250 2.0.0 OK (local emulator)",
            "reportingMTA": "local.cartrecovery.test",
        }
    elif kind == "open":
        record["open"] = {"timestamp": stamp, "userAgent": USER_AGENT, "ipAddress": "127.0.0.1"}
    elif kind == "click":
        record["click"] = {
            "timestamp": stamp,
            "link": url or "",
            "linkTags": {},
            "userAgent": SHOPPER_USER_AGENT if user_agent is None else user_agent,
            "ipAddress": "127.0.0.1",
        }
    elif kind == "bounce":
        record["bounce"] = {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": parseaddr(r)[1] or r,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
                for r in message.to
            ],
            "timestamp": stamp,
            "feedbackId": _feedback_id(message.message_id, kind),
            "reportingMTA": "dns; local.cartrecovery.test",
        }
    elif kind == "complaint":
        record["complaint"] = {
            "complainedRecipients": [{"emailAddress": parseaddr(r)[1] or r} for r in message.to],
            "timestamp": stamp,
            "feedbackId": _feedback_id(message.message_id, kind),
            "userAgent": USER_AGENT,
            "complaintFeedbackType": "abuse",
            "arrivalDate": stamp,
        }
    return record


def shopper_click_time(message: SentMessage, now: datetime) -> datetime:
    """When an emulated shopper's click happens: now, but no sooner after the send than a person reads.
    Clicking the moment an email is sent would otherwise be dated as only a scanner clicks."""
    return max(now, message.sent_at + SHOPPER_READING_TIME)


def eventbridge_envelope(record: dict[str, Any], at: datetime) -> dict[str, Any]:
    detail_type = next(dt for event_type, dt in KINDS.values() if event_type == record["eventType"])
    resources = []
    configuration_set = (record["mail"]["tags"].get("ses:configuration-set") or [None])[0]
    if configuration_set:
        resources.append(f"arn:aws:ses:{REGION}:{ACCOUNT_ID}:configuration-set/{configuration_set}")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.ses",
        "account": ACCOUNT_ID,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": resources,
        "detail": record,
    }


def sqs_event(bodies: list[str], receive_count: int = 1) -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": now_ms,
                    "SenderId": "AIDAEVENTBRIDGE",
                    "ApproximateFirstReceiveTimestamp": now_ms,
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 (SQS's own checksum)
                "eventSource": "aws:sqs",
                "eventSourceARN": TRACKING_QUEUE_ARN,
                "awsRegion": REGION,
            }
            for body in bodies
        ]
    }


def _feedback_id(message_id: str, kind: str) -> str:
    return f"{message_id}-{kind}-{uuid.uuid4().hex[:8]}-000000"


@dataclass(frozen=True)
class Emission:
    kind: str
    message_id: str
    ok: bool
    attempts: int
    response: Any = None
    error: str | None = None
    at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message_id": self.message_id,
            "ok": self.ok,
            "attempts": self.attempts,
            "error": self.error,
            "at": isoformat(self.at) if self.at else None,
        }


class SesEventEmitter:
    def __init__(
        self,
        invoke_tracking: Callable[[dict[str, Any]], Any],
        clock: Clock,
        *,
        attempts: int = 4,
        retry_delay: float = 0.1,
    ) -> None:
        self.invoke_tracking = invoke_tracking
        self.clock = clock
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.failures: deque[Emission] = deque(maxlen=200)
        self._lock = threading.Lock()

    def announce(self, message: SentMessage) -> list[Emission]:
        """What SES publishes on its own for an accepted message: Send, then Delivery."""
        if not message.configuration_set:
            return []
        return [self.emit("send", message, at=message.sent_at), self.emit("delivery", message)]

    def emit(
        self,
        kind: str,
        message: SentMessage,
        *,
        url: str | None = None,
        at: datetime | None = None,
        user_agent: str | None = None,
    ) -> Emission:
        if kind not in KINDS:
            raise ValueError(f"unknown SES event kind {kind!r}")
        moment = at or self.clock.now()
        record = ses_record(kind, message, moment, url=url, user_agent=user_agent)
        body = json.dumps(eventbridge_envelope(record, moment))
        error: str | None = None
        response: Any = None
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.invoke_tracking(sqs_event([body], receive_count=attempt))
                failed = (response or {}).get("batchItemFailures") if isinstance(response, dict) else None
                if not failed:
                    return Emission(kind, message.message_id, True, attempt, response, None, moment)
                error = "tracking reported the record as failed"
            except Exception as exc:  # a function error: SQS would redeliver the message
                error = f"{type(exc).__name__}: {exc}"
            if attempt < self.attempts:
                time.sleep(self.retry_delay * attempt)
        emission = Emission(kind, message.message_id, False, self.attempts, response, error, moment)
        log.warning("SES %s event for %s failed after %d attempts: %s", kind, message.message_id, self.attempts, error)
        with self._lock:
            self.failures.append(emission)
        return emission
