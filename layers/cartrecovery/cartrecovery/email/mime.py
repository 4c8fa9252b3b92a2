"""The MIME message handed to SES: multipart/alternative (text, then HTML), UTF-8, with our own headers.

We build the raw message ourselves so that every header (List-Unsubscribe and its One-Click companion
among them) is exactly what we decided, and so that the local emulator keeps the whole message.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr


def build_message(sender: str, to: str, subject: str, text: str, html: str, headers: dict[str, str]) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    for name, value in headers.items():
        message[name] = value
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message.as_bytes()


def sender_address(display_name: str, email: str) -> str:
    """``"Shop name" <noreply@shop>``, with a non-ASCII name encoded as RFC 2047 requires."""
    local, _, domain = email.partition("@")
    return (
        str(Address(display_name=display_name, username=local, domain=domain))
        if display_name
        else formataddr(("", email))
    )
