"""Sending through SESv2 with a configuration set (so events flow to tracking) and message tags.

The client must be built with retries off: SES has no idempotency key, and a retry after a timeout may
send the same email twice. Errors are sorted into: throttled (not sent, retry later), rejected (not sent,
never retry for this address), and unknown (may have been sent: mark, alarm, never retry).
"""

from __future__ import annotations

from typing import Any

from cartrecovery.adapters.errors import error_code, http_status
from cartrecovery.email.mime import build_message
from cartrecovery.ports import OutgoingEmail, SendOutcomeUnknown, SendRejected, SendThrottled

THROTTLED = {"ThrottlingException", "TooManyRequestsException", "LimitExceededException",
             "SendingPausedException", "AccountSuspendedException", "Throttling"}
REJECTED = {"MessageRejected", "BadRequestException", "MailFromDomainNotVerifiedException", "NotFoundException"}


class SesMailer:
    def __init__(self, client: Any, configuration_set: str | None) -> None:
        self.client = client
        self.configuration_set = configuration_set

    def send(self, email: OutgoingEmail) -> str:
        raw = build_message(email.sender, email.to, email.subject, email.text, email.html, email.headers)
        kwargs: dict[str, Any] = {
            "FromEmailAddress": email.sender,
            "Destination": {"ToAddresses": [email.to]},
            "Content": {"Raw": {"Data": raw}},
            "EmailTags": [{"Name": k, "Value": v} for k, v in email.tags.items()],
        }
        if self.configuration_set:
            kwargs["ConfigurationSetName"] = self.configuration_set
        try:
            return str(self.client.send_email(**kwargs)["MessageId"])
        except Exception as exc:
            raise classify(exc) from exc


def classify(exc: Exception) -> Exception:
    code = error_code(exc)
    if code in THROTTLED:
        return SendThrottled(code)
    if code in REJECTED:
        return SendRejected(code)
    name = type(exc).__name__
    if name in ("EndpointConnectionError", "ConnectTimeoutError"):
        return SendThrottled(name)  # never reached SES: safe to try again later
    status = http_status(exc)
    if code and 400 <= status < 500:
        # SES answered and refused the request (permissions, validation): nothing went out.
        return SendThrottled(code)
    return SendOutcomeUnknown(code or name)
