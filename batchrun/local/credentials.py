"""The local Batch account key and bearer token: generated once, kept in ``credentials.json`` (mode 0600)."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

import msgspec

from batchrun.errors import LocalTargetError
from batchrun.redact import repr_without


class Credentials(msgspec.Struct, frozen=True):
    account_key: str  # base64 of 64 random bytes, like an Azure Batch key
    token: str  # the local management/data-plane bearer token

    def __repr__(self) -> str:
        return repr_without(self, "account_key", "token")


def load_or_create(path: Path) -> Credentials:
    if path.exists():
        return _load(path)
    created = Credentials(
        account_key=base64.b64encode(secrets.token_bytes(64)).decode("ascii"),
        token=secrets.token_urlsafe(32),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps({"account_key": created.account_key, "token": created.token}, indent=2))
    return created


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, replacing it atomically."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def _load(path: Path) -> Credentials:
    try:
        data = json.loads(path.read_text())
        return Credentials(account_key=str(data["account_key"]), token=str(data["token"]))
    except (OSError, ValueError, KeyError, TypeError):
        raise LocalTargetError(
            f"{path} is unreadable or damaged; delete it (a new account key is then generated) or run "
            "'batchrun local reset'"
        ) from None
