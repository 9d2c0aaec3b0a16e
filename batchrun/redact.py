"""Removal of secrets from text that may reach output, logs or error messages."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import msgspec

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # SAS signatures and other signed query parameters.
    (re.compile(r"(?i)([?&]sig=)[^&\s\"']+"), r"\1REDACTED"),
    # Connection-string keys.
    (re.compile(r"(?i)((?:AccountKey|SharedAccessSignature|SharedAccessKey)=)[^;\s\"']+"), r"\1REDACTED"),
    # Authorization headers (SharedKey, Bearer).
    (re.compile(r"(?i)(SharedKey\s+[^:\s]+:)[A-Za-z0-9+/=]+"), r"\1REDACTED"),
    (re.compile(r"(?i)(Bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1REDACTED"),
)


def redact(text: str, *secrets: str) -> str:
    """Return ``text`` with SAS signatures, account keys, tokens and each of ``secrets`` replaced."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "REDACTED")
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def repr_without(record: msgspec.Struct, *hidden: str) -> str:
    """``record``'s repr without the fields named in ``hidden``: secrets, or clients that hold them."""
    shown = ", ".join(
        f"{name}={getattr(record, name)!r}" for name in record.__struct_fields__ if name not in hidden
    )
    return f"{type(record).__name__}({shown})"
