"""Sending through SESv2 with a configuration set (so events flow to tracking) and message tags.

The client must be built with retries off: SES has no idempotency key, and a retry after a timeout may
send the same email twice. Errors are sorted into: throttled (not sent, retry later), rejected (not sent,
never retry for this address), and unknown (may have been sent: mark, alarm, never retry).
"""

from __future__ import annotations

from typing import Any

from cartrecovery.adapters.errors import error_code, http_status
from cartrecovery.ports import OutgoingEmail, SendFailed, SendOutcomeUnknown, SendRejected, SendThrottled

THROTTLED = {
    "ThrottlingException",
    "TooManyRequestsException",
    "LimitExceededException",
    "SendingPausedException",
    "AccountSuspendedException",
    "Throttling",
}
# Only a rejection of this message says something about the address; configuration errors do not.
REJECTED = {"MessageRejected"}


class SesMailer:
    def __init__(self, client: Any, configuration_set: str | None) -> None:
        self.client = client
        self.configuration_set = configuration_set

    def send(self, email: OutgoingEmail) -> str:
        kwargs: dict[str, Any] = {
            "FromEmailAddress": email.sender,
            "Destination": {"ToAddresses": [email.to]},
            "Content": {"Raw": {"Data": email.raw}},
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
    if code in REJECTED and "not verified" not in str(exc).lower():
        return SendRejected(code)
    name = type(exc).__name__
    if name in ("EndpointConnectionError", "ConnectTimeoutError"):
        return SendThrottled(name)  # never reached SES: safe to try again later
    status = http_status(exc)
    if code and (400 <= status < 500 or code in REJECTED):
        # SES answered and refused the request (permissions, identity, sandbox): nothing went out, and
        # retrying will not help until an operator fixes the configuration.
        return SendFailed(code)
    return SendOutcomeUnknown(code or name)
