"""Text the system can store and send: no unpaired UTF-16 surrogates.

JSON may spell half of a surrogate pair on its own (``"\\ud800"``), and ``json.loads`` keeps it as a code
point that no UTF-8 text can hold; Python turns bytes that are not UTF-8 on a command line into the same
kind of code point. Taken in, such a string fails much later and far from its cause: in the cart's write,
the email's rendering or SES. So every input is checked for them where it comes in.
"""

from __future__ import annotations

import re
from typing import Any

_UNPAIRED_SURROGATE = re.compile("[\ud800-\udfff]")  # a valid pair was already joined into one code point
NOT_UNICODE = "must be valid Unicode: it holds an unpaired surrogate (a lone \\ud800-\\udfff escape)"


def has_unpaired_surrogate(text: str) -> bool:
    # ASCII first: nearly every id and URL is, and the check is then free.
    return not text.isascii() and _UNPAIRED_SURROGATE.search(text) is not None


def unpaired_surrogate_path(value: Any, path: str = "") -> str | None:
    """The dotted path (``legal.sender_name``, ``recommendations[0].name``) of the first string or key in a
    decoded JSON value that holds an unpaired surrogate; None when there is none."""
    if isinstance(value, str):
        return path if has_unpaired_surrogate(value) else None
    if isinstance(value, dict):
        for key, inner in value.items():
            inner_path = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and has_unpaired_surrogate(key):
                return inner_path
            found = unpaired_surrogate_path(inner, inner_path)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found = unpaired_surrogate_path(inner, f"{path}[{index}]")
            if found is not None:
                return found
    return None
