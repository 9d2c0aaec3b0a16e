"""Application packages: reproducible zips and the management-plane flow (create, upload, activate, default).

The zip of a folder is reproducible: entries sorted, fixed timestamps (1980-01-01), permissions normalised to
0644 (0755 when the owner may execute), deflate level 9; so the same content always gives the same sha256.

The management API keeps no free-form metadata on a version, so batchrun records the zip's sha256 twice: as
the version's ``batchrun_sha256`` tag (sent with the version's PUT) and as the package blob's metadata.
Reading it back, the tag wins; the blob's metadata is the fallback when the service drops tags. A version
whose hash cannot be read is treated as different content.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from batchrun.azure.clients import Clients
from batchrun.azure.failures import translated
from batchrun.errors import ApplyError, ConfigurationError
from batchrun.model import PackageSpec
from batchrun.plan.live import PACKAGE_HASH_KEY, LivePackage, PreparedPackage

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def reproducible_zip(source: Path) -> bytes:
    """The bytes of ``source`` (a .zip file as is) or of a reproducible zip of the folder ``source``."""
    if source.is_file():
        return source.read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in sorted(source.rglob("*"), key=lambda p: p.relative_to(source).as_posix()):
            name = path.relative_to(source).as_posix()
            if path.is_dir():
                info = zipfile.ZipInfo(name + "/", FIXED_TIME)
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
                continue
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.create_system = 3
            executable = path.stat().st_mode & 0o100
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def prepare_package(spec: PackageSpec) -> PreparedPackage:
    data = reproducible_zip(spec.source)
    return PreparedPackage(
        spec.id,
        spec.version,
        str(spec.source),
        hashlib.sha256(data).hexdigest(),
        spec.set_default,
        spec.allow_updates,
    )


@dataclass(frozen=True)
class AccountRef:
    resource_group: str
    account: str


def account_ref(clients: Clients) -> AccountRef:
    target = clients.target
    if not target.has_management:
        raise ConfigurationError(
            "The manifest has application packages, which need the Batch management plane: set "
            "AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP and AZURE_BATCH_ACCOUNT_NAME (see docs/azure.md)."
        )
    return AccountRef(str(target.resource_group), str(target.management_account))


def _properties(model: Any) -> dict[str, Any]:
    data: dict[str, Any] = model.as_dict() if hasattr(model, "as_dict") else dict(model)
    props = data.get("properties") or {}
    return dict(props)


def read_package(clients: Clients, prepared: PreparedPackage) -> LivePackage:
    ref = account_ref(clients)
    mgmt = clients.management()
    address = f"package/{prepared.id}@{prepared.version}"
    with translated(f"reading {address}"):
        try:
            application = _properties(mgmt.application.get(ref.resource_group, ref.account, prepared.id))
        except ResourceNotFoundError:
            return LivePackage(prepared.id, prepared.version, False, False)
        allow_updates = bool(application.get("allowUpdates", True))
        default_version = str(application.get("defaultVersion") or "")
        try:
            version = mgmt.application_package.get(
                ref.resource_group, ref.account, prepared.id, prepared.version
            )
        except ResourceNotFoundError:
            return LivePackage(
                prepared.id,
                prepared.version,
                True,
                False,
                allow_updates=allow_updates,
                default_version=default_version,
            )
    data = version.as_dict()
    props = dict(data.get("properties") or {})
    sha = str((data.get("tags") or {}).get(PACKAGE_HASH_KEY, ""))
    if not sha and props.get("storageUrl"):
        sha = _blob_hash(str(props["storageUrl"]))
    return LivePackage(
        prepared.id,
        prepared.version,
        True,
        True,
        state=str(props.get("state", "")),
        content_sha256=sha,
        allow_updates=allow_updates,
        default_version=default_version,
    )


def _blob_hash(storage_url: str) -> str:
    try:
        properties = BlobClient.from_blob_url(storage_url).get_blob_properties()
    except HttpResponseError:
        return ""  # no read permission in the SAS, or no blob yet: unknown
    return str((properties.metadata or {}).get(PACKAGE_HASH_KEY, ""))


def upload_package(clients: Clients, args: dict[str, Any]) -> None:
    """Create the application if needed, then the version; upload the zip; activate it."""
    from azure.mgmt.batch import models as mgmt_models

    ref = account_ref(clients)
    mgmt = clients.management()
    package_id, version, expected = str(args["id"]), str(args["version"]), str(args["sha256"])
    address = f"package/{package_id}@{version}"
    data = reproducible_zip(Path(str(args["source"])))
    if hashlib.sha256(data).hexdigest() != expected:
        raise ApplyError(f"{address}: {args['source']} changed after the plan was made; run the plan again.")
    with translated(f"creating {address}"):
        if args.get("createApplication") or args.get("allowUpdates"):
            properties: dict[str, Any] = {"allowUpdates": bool(args.get("allowUpdates"))}
            if args.get("createApplication"):
                mgmt.application.create(
                    ref.resource_group,
                    ref.account,
                    package_id,
                    mgmt_models.Application({"properties": properties}),
                )
            else:
                mgmt.application.update(
                    ref.resource_group,
                    ref.account,
                    package_id,
                    mgmt_models.Application({"properties": properties}),
                )
        created = mgmt.application_package.create(
            ref.resource_group,
            ref.account,
            package_id,
            version,
            mgmt_models.ApplicationPackage({"tags": {PACKAGE_HASH_KEY: expected}}),
        )
    storage_url = str(_properties(created).get("storageUrl", ""))
    if not storage_url:
        raise ApplyError(f"{address}: the service returned no storage URL for the package; try again.")
    with translated(f"uploading the zip of {address}"):
        BlobClient.from_blob_url(storage_url).upload_blob(
            data,
            overwrite=True,
            metadata={PACKAGE_HASH_KEY: expected},
            content_settings=_zip_settings(data),
        )
    with translated(f"activating {address}"):
        mgmt.application_package.activate(
            ref.resource_group,
            ref.account,
            package_id,
            version,
            mgmt_models.ActivateApplicationPackageParameters(format="zip"),
        )


def _zip_settings(data: bytes) -> Any:
    from azure.storage.blob import ContentSettings

    md5 = bytearray(hashlib.md5(data).digest())
    return ContentSettings(content_type="application/zip", content_md5=md5)


def set_default_version(clients: Clients, args: dict[str, Any]) -> None:
    from azure.mgmt.batch import models as mgmt_models

    ref = account_ref(clients)
    package_id, version = str(args["id"]), str(args["version"])
    with translated(f"setting the default version of package/{package_id} to {version}"):
        clients.management().application.update(
            ref.resource_group,
            ref.account,
            package_id,
            mgmt_models.Application({"properties": {"defaultVersion": version}}),
        )


def md5_base64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()
