"""Reading an RFC 8058 one-click body: ``List-Unsubscribe=One-Click``, urlencoded or multipart."""

from __future__ import annotations

from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

# A one-click body is one short field: mail providers send some 30 bytes urlencoded, a few hundred as
# multipart. Anything much larger is not one, and is not parsed (the email parser's time grows with parts).
MAX_BODY = 16 * 1024


def is_one_click(content_type: str, body: bytes) -> bool:
    if len(body) > MAX_BODY:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        try:
            message = BytesParser(policy=HTTP).parsebytes(
                b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
            )
        except (ValueError, UnicodeError, RecursionError):  # RecursionError: parts nested hundreds deep
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
    # Whitespace around the value is a sender's line ending (``...=One-Click\r\n``), not another value.
    return any(value.strip() == "One-Click" for value in fields.get("List-Unsubscribe", []))
