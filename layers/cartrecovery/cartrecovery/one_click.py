"""Reading an RFC 8058 one-click body: ``List-Unsubscribe=One-Click``, urlencoded or multipart."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs


def is_one_click(content_type: str, body: bytes) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        try:
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
            )
        except (ValueError, UnicodeError):
            return False
        if not message.is_multipart():
            return False
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == "List-Unsubscribe":
                payload = part.get_payload(decode=True)
                return isinstance(payload, bytes) and payload.strip() == b"One-Click"
        return False
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return False
    return "One-Click" in fields.get("List-Unsubscribe", [])
