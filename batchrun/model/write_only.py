"""Write-only fields: values Batch takes but never returns (passwords, keys), and their masked form.

Shared by the planner (which never compares them with a GET and never prints them) and the manifest's render
(which shows the desired state without them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

SECRET_KEYS = frozenset({"password", "accountKey", "sasKey", "sshPrivateKey"})
MASK = "(sensitive)"


def mask(value: Any) -> Any:
    """``value`` with every write-only field replaced by ``(sensitive)`` (for plans, logs and errors)."""
    if isinstance(value, Mapping):
        return {k: MASK if k in SECRET_KEYS and v is not None else mask(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [mask(item) for item in value]
    return value
