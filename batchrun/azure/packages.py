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
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
from azure.core.exceptions import AzureError, HttpResponseError, ResourceNotFoundError
from azure.storage.blob import BlobClient

from batchrun.azure.clients import Clients
from batchrun.azure.failures import status_of, translated
from batchrun.errors import ApplyError, ConfigurationError
from batchrun.manifest.sources import source_entries
from batchrun.model import PackageSpec
from batchrun.plan.live import PACKAGE_HASH_KEY, LivePackage, PreparedPackage

FIXED_TIME = (1980, 1, 1, 0, 0, 0)
CHUNK = 1024 * 1024
ZIP_LEVEL = 9


def _zip_info(name: str, compress: bool) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, FIXED_TIME)
    info.create_system = 3
    if compress:
        info.compress_type = zipfile.ZIP_DEFLATED
        # ZipFile.open(info, "w") takes the level from the entry (writestr would set it the same way).
        level_slot = "compress_level" if "compress_level" in zipfile.ZipInfo.__slots__ else "_compresslevel"
        setattr(info, level_slot, ZIP_LEVEL)  # "compress_level" since Python 3.13
    return info


def write_reproducible_zip(source: Path, target: BinaryIO) -> None:
    """Write the reproducible zip of the folder ``source`` into ``target`` (seekable), file by file.

    Files are streamed from disk in chunks, so memory stays flat whatever their size. Links and special
    files in the folder are refused (ManifestError naming each), never followed. Modes are normalised to
    0644/0755: setuid, setgid and sticky bits never reach a zip entry.
    """
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as archive:
        for entry in source_entries(source):
            if entry.is_dir:
                info = _zip_info(entry.name + "/", compress=False)
                info.external_attr = (0o40755 << 16) | 0x10
                archive.writestr(info, b"")
                continue
            info = _zip_info(entry.name, compress=True)
            executable = entry.path.stat().st_mode & 0o100
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.file_size = entry.size  # decides zip64 up front, as writestr would
            with entry.path.open("rb") as handle, archive.open(info, "w") as out:
                while chunk := handle.read(CHUNK):
                    out.write(chunk)


class ZipDigest(msgspec.Struct, frozen=True):
    sha256: str  # hex
    md5: bytes
    size: int


def _digest(handle: BinaryIO) -> ZipDigest:
    handle.seek(0)
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    while chunk := handle.read(CHUNK):
        sha.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return ZipDigest(sha.hexdigest(), md5.digest(), size)


@contextmanager
def package_zip(source: Path) -> Iterator[tuple[BinaryIO, ZipDigest]]:
    """An open, rewound file holding the package: ``source`` itself when it is a .zip, else the
    reproducible zip of the folder in a temporary file (removed on exit); and its digests."""
    if source.is_file():
        with source.open("rb") as handle:
            yield handle, _digest(handle)
        return
    with tempfile.TemporaryFile(prefix="batchrun-package-") as spool:
        write_reproducible_zip(source, spool)
        yield spool, _digest(spool)


def reproducible_zip(source: Path) -> bytes:
    """The bytes of ``source`` (a .zip file as is) or of a reproducible zip of the folder ``source``.

    Whole in memory: for tests and small folders. Apply streams through :func:`package_zip`.
    """
    with package_zip(source) as (handle, _digests):
        return handle.read()


def prepare_package(spec: PackageSpec) -> PreparedPackage:
    with package_zip(spec.source) as (_handle, digest):
        sha256 = digest.sha256
    return PreparedPackage(
        spec.id,
        spec.version,
        str(spec.source),
        sha256,
        spec.set_default,
        spec.allow_updates,
    )


class AccountRef(msgspec.Struct, frozen=True):
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
    except AzureError:
        return ""  # no read permission in the SAS, no blob yet, storage unreachable: unknown
    return str((properties.metadata or {}).get(PACKAGE_HASH_KEY, ""))


def upload_package(clients: Clients, args: dict[str, Any]) -> None:
    """Create the application if needed, then the version; upload the zip; activate it.

    Each step is safe to repeat. A version an interrupted apply left Pending (created, never activated) is
    finished: its create answers 409 when the application does not allow updates, so batchrun reads the
    version and, when it is still Pending with this content's hash (or none), uploads to its storage URL
    and activates it.
    """
    from azure.mgmt.batch import models as mgmt_models

    ref = account_ref(clients)
    mgmt = clients.management()
    package_id, version, expected = str(args["id"]), str(args["version"]), str(args["sha256"])
    address = f"package/{package_id}@{version}"
    with package_zip(Path(str(args["source"]))) as (handle, digest):
        if digest.sha256 != expected:
            raise ApplyError(
                f"{address}: {args['source']} changed after the plan was made; run the plan again."
            )
        with translated(f"creating {address}"):
            if args.get("createApplication") or args.get("allowUpdates"):
                properties: dict[str, Any] = {"allowUpdates": bool(args.get("allowUpdates"))}
                application = mgmt_models.Application({"properties": properties})
                if args.get("createApplication"):
                    mgmt.application.create(ref.resource_group, ref.account, package_id, application)
                else:
                    mgmt.application.update(ref.resource_group, ref.account, package_id, application)
            storage_url = _version_storage_url(clients, ref, package_id, version, expected)
        with translated(f"uploading the zip of {address}"):
            BlobClient.from_blob_url(storage_url).upload_blob(
                handle,
                length=digest.size,
                overwrite=True,
                metadata={PACKAGE_HASH_KEY: expected},
                content_settings=_zip_settings(digest.md5),
                max_concurrency=2,
            )
    with translated(f"activating {address}"):
        mgmt.application_package.activate(
            ref.resource_group,
            ref.account,
            package_id,
            version,
            mgmt_models.ActivateApplicationPackageParameters(format="zip"),
        )


def _version_storage_url(clients: Clients, ref: AccountRef, package_id: str, version: str, sha: str) -> str:
    """Create the version (tagged with the zip's hash) and return where its zip goes; a version that already
    exists and was never activated (an interrupted apply) is reused when its hash tag matches."""
    from azure.mgmt.batch import models as mgmt_models

    mgmt = clients.management()
    address = f"package/{package_id}@{version}"
    try:
        created = mgmt.application_package.create(
            ref.resource_group,
            ref.account,
            package_id,
            version,
            mgmt_models.ApplicationPackage({"tags": {PACKAGE_HASH_KEY: sha}}),
        )
    except HttpResponseError as error:
        if status_of(error) != 409:
            raise
        created = mgmt.application_package.get(ref.resource_group, ref.account, package_id, version)
        data = created.as_dict()
        state = str((data.get("properties") or {}).get("state", ""))
        tag = str((data.get("tags") or {}).get(PACKAGE_HASH_KEY, ""))
        if state.lower() == "active" and tag != sha:
            raise ApplyError(
                f"{address}: the version was activated with other content since the plan was made; "
                "run the plan again."
            ) from None
        if tag and tag != sha:
            raise ApplyError(
                f"{address}: an interrupted apply left this version pending with other content "
                f"(sha256 {tag[:12]}...), and the application does not allow updates; bump the version "
                "of the package in the manifest (or set allowUpdates: true)."
            ) from None
    storage_url = str(_properties(created).get("storageUrl", ""))
    if not storage_url:
        raise ApplyError(f"{address}: the service returned no storage URL for the package; try again.")
    return storage_url


def _zip_settings(md5: bytes) -> Any:
    from azure.storage.blob import ContentSettings

    return ContentSettings(content_type="application/zip", content_md5=bytearray(md5))


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
