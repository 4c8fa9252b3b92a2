"""Sending through SESv2: one raw MIME message with our own headers (RFC 8058 one-click unsubscribe), sent
through the configuration set with the message tags tracking counts by; failures sorted so that only a
refusal of this address stops mail to it, and a send that may have gone out is never retried."""

from __future__ import annotations

import email
import email.policy
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from cartrecovery.adapters.ses import SesMailer
from cartrecovery.email.mime import sender_address
from cartrecovery.ports import OutgoingEmail, SendFailed, SendOutcomeUnknown, SendRejected, SendThrottled
from cartrecovery.wiring import Services

if TYPE_CHECKING:
    from conftest import Deployment

UNSUBSCRIBE = "https://mail.shop.example.jp/u/eyJzIjoidGVhLXNob3AifQ.c2ln"
TAGS = {"store": "tea-shop", "flow": "cart_recovery", "step": "1", "variant": "a", "day": "2026-12-01"}


def outgoing(sender: str, to: str = "taro@example.jp") -> OutgoingEmail:
    return OutgoingEmail(
        sender=sender_address("抹茶堂", sender),
        to=to,
        subject="カートに商品が残っています",
        html="<p>山田 太郎 様、<a href='https://shop.example.jp/cart'>カートに戻る</a></p>",
        text="山田 太郎 様\nカートに戻る: https://shop.example.jp/cart\n",
        headers={"List-Unsubscribe": f"<{UNSUBSCRIBE}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        tags=TAGS,
    )


def capture_requests(client: Any) -> list[dict[str, Any]]:
    """The SendEmail parameters as they leave the client (moto ignores the configuration set and tags)."""
    seen: list[dict[str, Any]] = []
    client.meta.events.register("before-parameter-build.sesv2.SendEmail", lambda params, **_: seen.append(params))
    return seen


def test_a_message_goes_out_with_its_headers_tags_and_configuration_set(
    svc: Services, deployment: Deployment, outbox: Any
) -> None:
    requests = capture_requests(svc.ses_client)

    message_id = svc.mailer.send(outgoing(deployment.sender))

    [request] = requests
    assert request["ConfigurationSetName"] == deployment.configuration_set
    assert request["EmailTags"] == [{"Name": k, "Value": v} for k, v in TAGS.items()]
    assert request["Destination"] == {"ToAddresses": ["taro@example.jp"]}
    [sent] = outbox()
    assert sent.id == message_id
    # moto keeps the message as text; parse its bytes, as a mail client would (8bit UTF-8 parts).
    parsed = email.message_from_bytes(sent.raw_data.encode("utf-8"), policy=email.policy.default)
    assert parsed["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Subject"] == "カートに商品が残っています"
    assert parsed["From"].addresses[0].display_name == "抹茶堂"
    assert parsed["From"].addresses[0].addr_spec == deployment.sender
    assert parsed["To"] == "taro@example.jp"
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert plain is not None and "山田 太郎 様" in plain.get_content()
    assert html is not None and "カートに戻る</a>" in html.get_content()


def test_without_a_configuration_set_none_is_named(svc: Services, deployment: Deployment) -> None:
    requests = capture_requests(svc.ses_client)

    SesMailer(svc.ses_client, None).send(outgoing(deployment.sender))

    assert "ConfigurationSetName" not in requests[0]


@pytest.mark.parametrize(
    ("code", "message", "status", "expected"),
    [
        ("TooManyRequestsException", "Too many requests", 429, SendThrottled),
        ("SendingPausedException", "Sending is paused for this account", 400, SendThrottled),
        ("MessageRejected", "Email address is on the suppression list", 400, SendRejected),
        (
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region "
            "AP-NORTHEAST-1: shop@tea-shop.example.jp",
            400,
            SendFailed,
        ),
        ("AccessDeniedException", "not authorized to perform ses:SendEmail", 403, SendFailed),
        ("InternalFailure", "Internal failure", 500, SendOutcomeUnknown),
    ],
)
def test_ses_errors_are_sorted_by_what_they_say_about_the_address(
    svc: Services, deployment: Deployment, code: str, message: str, status: int, expected: type[Exception]
) -> None:
    client = svc.ses_client
    with Stubber(client) as stub:
        stub.add_client_error("send_email", service_error_code=code, service_message=message, http_status_code=status)
        with pytest.raises(expected):
            SesMailer(client, deployment.configuration_set).send(outgoing(deployment.sender))


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (EndpointConnectionError(endpoint_url="https://email.ap-northeast-1.amazonaws.com"), SendThrottled),
        (ReadTimeoutError(endpoint_url="https://email.ap-northeast-1.amazonaws.com"), SendOutcomeUnknown),
    ],
)
def test_a_send_that_may_have_reached_ses_is_attempted_once(
    svc: Services, deployment: Deployment, outbox: Any, failure: Exception, expected: type[Exception]
) -> None:
    attempts: list[int] = []

    def fail(**_: Any) -> None:
        attempts.append(1)
        raise failure

    svc.ses_client.meta.events.register_first("before-send.sesv2.SendEmail", fail)

    with pytest.raises(expected):
        svc.mailer.send(outgoing(deployment.sender))

    assert len(attempts) == 1  # the wired client never retries: SES has no idempotency key
    assert outbox() == []
