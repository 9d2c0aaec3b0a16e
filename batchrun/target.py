"""Which Batch account and storage account a command talks to: the local target or Azure.

Local is the default. Azure is chosen with ``--target azure`` or, without a flag, when
``AZURE_BATCH_ENDPOINT`` (or ``AZURE_BATCH_ACCOUNT_URL``) is set and is not the endpoint of the running local
target (``batchrun local up`` prints those variables for people's own SDK scripts; exporting them must not
turn batchrun's view of the local target into a half-configured Azure one). The resolved :class:`Target`
holds plain strings only; the SDK clients are built from it by :mod:`batchrun.azure.clients`.
:meth:`Target.describe` is the one line every command prints first: it names endpoints and accounts, never a
key or token.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from batchrun.errors import ConfigurationError
from batchrun.redact import repr_without

if TYPE_CHECKING:
    from batchrun.local.target import LocalTarget

TargetKind = Literal["local", "azure"]

ARM_ENDPOINT = "https://management.azure.com"


class Target(msgspec.Struct, frozen=True):
    """Endpoints and credentials of one Batch account and its storage account.

    ``batch_key`` / ``storage_key`` are ``None`` when Entra ID (DefaultAzureCredential) is used instead.
    ``management_token`` is set only for the local target, whose management plane takes a static bearer token.
    """

    kind: TargetKind
    batch_url: str
    batch_account: str
    batch_key: str | None
    blob_url: str
    storage_account: str
    storage_key: str | None
    subscription_id: str | None = None
    resource_group: str | None = None
    management_account: str | None = None  # Batch account name for the management plane
    management_url: str = ARM_ENDPOINT
    management_token: str | None = None

    def __repr__(self) -> str:
        return repr_without(self, "batch_key", "storage_key", "management_token")

    @property
    def uses_entra_id(self) -> bool:
        return self.batch_key is None

    @property
    def signs_with_user_delegation(self) -> bool:
        """SAS URLs are signed with a user delegation key (no storage account key)."""
        return self.storage_key is None

    @property
    def has_management(self) -> bool:
        return bool(self.subscription_id and self.resource_group and self.management_account)

    def secrets(self) -> tuple[str, ...]:
        """Every secret this target carries, for :func:`batchrun.redact.redact`."""
        return tuple(s for s in (self.batch_key, self.storage_key, self.management_token) if s)

    def describe(self) -> str:
        auth = "Entra ID" if self.uses_entra_id else "shared key"
        return (
            f"Target: {self.kind} (Batch account {self.batch_account} at {self.batch_url}, {auth}; "
            f"storage {self.storage_account} at {self.blob_url})"
        )


LocalStarter = Callable[[Path, Callable[[str], None]], Target]


def batchrun_home(environ: Mapping[str, str]) -> Path:
    """The state folder: ``$BATCHRUN_HOME`` or ``~/.batchrun``."""
    value = environ.get("BATCHRUN_HOME")
    return Path(value).expanduser() if value else Path.home() / ".batchrun"


def resolve_target(
    kind: str | None,
    environ: Mapping[str, str] | None = None,
    announce: Callable[[str], None] = lambda _line: None,
    start_local: LocalStarter | None = None,
) -> Target:
    """Resolve the target from ``--target`` (``kind``) and the environment; start the local target if needed.

    ``announce`` receives progress lines of the local target's start-up (e.g. the first Azurite install).
    ``start_local`` replaces :func:`start_local_target` (e.g. when the caller already runs a local target).
    """
    env = os.environ if environ is None else environ
    if kind not in (None, "local", "azure"):
        raise ConfigurationError(f"--target {kind!r} is not a target; use --target local or --target azure.")
    endpoint = _batch_endpoint(env)
    chosen = kind or ("azure" if endpoint and not _is_local_endpoint(endpoint, env) else "local")
    if chosen == "azure":
        return azure_target_from_environment(env)
    return (start_local or start_local_target)(batchrun_home(env), announce)


def _is_local_endpoint(endpoint: str, env: Mapping[str, str]) -> bool:
    """Whether ``endpoint`` is the Batch URL of the local target running under this state folder."""
    from batchrun.local.target import running_target

    local = running_target(batchrun_home(env))
    return local is not None and local.batch_url.rstrip("/") == endpoint.rstrip("/")


def start_local_target(home: Path, announce: Callable[[str], None]) -> Target:
    """Start (or reuse) the local emulator + Azurite under ``home`` and describe it as a :class:`Target`."""
    # The local target's lifecycle is owned by batchrun.local.
    from batchrun.local.target import ensure_running

    return target_from_local(ensure_running(home, announce))


def target_from_local(local: LocalTarget) -> Target:
    """A :class:`Target` from a running ``batchrun.local.target.LocalTarget``."""
    return Target(
        kind="local",
        batch_url=local.batch_url,
        batch_account=local.account_name,
        batch_key=local.account_key,
        blob_url=local.blob_endpoint,
        storage_account=local.storage_account_name,
        storage_key=local.storage_account_key,
        subscription_id=local.subscription_id,
        resource_group=local.resource_group,
        management_account=local.batch_account_name,
        management_url=local.batch_url,
        management_token=local.token,
    )


def _batch_endpoint(env: Mapping[str, str]) -> str:
    return env.get("AZURE_BATCH_ENDPOINT") or env.get("AZURE_BATCH_ACCOUNT_URL") or ""


def _parse_connection_string(value: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for item in value.split(";"):
        if "=" in item:
            key, _, val = item.partition("=")
            parts[key.strip().lower()] = val.strip()
    return parts


def azure_target_from_environment(env: Mapping[str, str]) -> Target:
    """Build an Azure target from the documented variables (docs/azure.md); name every missing one."""
    endpoint = _batch_endpoint(env)
    missing: list[str] = []
    if not endpoint:
        missing.append("AZURE_BATCH_ENDPOINT (or AZURE_BATCH_ACCOUNT_URL)")
    account = env.get("AZURE_BATCH_ACCOUNT", "")
    if not account:
        missing.append("AZURE_BATCH_ACCOUNT")
    connection_string = env.get("AZURE_STORAGE_CONNECTION_STRING", "")
    storage_url = env.get("AZURE_STORAGE_ACCOUNT_URL", "")
    if not connection_string and not storage_url:
        missing.append("AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_URL)")
    if missing:
        raise ConfigurationError(
            "The Azure target is not fully configured: set "
            + ", ".join(missing)
            + " (see docs/azure.md), or use --target local."
        )
    if not endpoint.startswith(("https://", "http://")):
        endpoint = "https://" + endpoint
    storage_key: str | None = env.get("AZURE_STORAGE_KEY") or None
    storage_account = env.get("AZURE_STORAGE_ACCOUNT", "")
    if connection_string:
        parts = _parse_connection_string(connection_string)
        storage_account = parts.get("accountname", "")
        storage_key = parts.get("accountkey") or None
        storage_url = parts.get("blobendpoint", "")
        if not storage_url and storage_account:
            protocol = parts.get("defaultendpointsprotocol", "https")
            suffix = parts.get("endpointsuffix", "core.windows.net")
            storage_url = f"{protocol}://{storage_account}.blob.{suffix}"
        if not storage_account or not storage_url:
            raise ConfigurationError(
                "AZURE_STORAGE_CONNECTION_STRING must contain AccountName (and AccountKey, or use "
                "AZURE_STORAGE_ACCOUNT_URL with Entra ID instead)."
            )
    if not storage_account:
        host = storage_url.split("://", 1)[-1].split("/", 1)[0]
        storage_account = host.split(".", 1)[0]
    subscription = env.get("AZURE_SUBSCRIPTION_ID") or None
    resource_group = env.get("AZURE_RESOURCE_GROUP") or None
    management_account = env.get("AZURE_BATCH_ACCOUNT_NAME") or account
    return Target(
        kind="azure",
        batch_url=endpoint.rstrip("/"),
        batch_account=account,
        batch_key=env.get("AZURE_BATCH_ACCESS_KEY") or None,
        blob_url=storage_url.rstrip("/"),
        storage_account=storage_account,
        storage_key=storage_key,
        subscription_id=subscription,
        resource_group=resource_group,
        management_account=management_account,
        management_url=env.get("AZURE_RESOURCE_MANAGER_URL") or ARM_ENDPOINT,
    )
