"""Making untrusted text (task output, service messages) safe to print: no control characters, no secrets."""

from __future__ import annotations

import re

from batchrun.redact import redact

# ANSI escape sequences first (so their parameters go too), then any other C0/C1 control character but tab.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` without escape sequences, control characters (tab and newline kept) or secrets."""
    return redact(_CONTROL.sub("", _ANSI.sub("", text)))
