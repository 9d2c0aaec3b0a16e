"""Application packages: each version is downloaded and extracted once per node under ``applications/``.

The folder is named like Batch's: ``<applicationId><version><upload time yyyy-mm-dd-HH-MM>`` (for example
``blender2.802019-01-15-09-19``), so a re-uploaded package version lands in a new folder, as in Batch.
Concurrent tasks on one node share one extraction through a file lock.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from batchrun.emulator.node.failures import USER_ERROR, failure_info
from batchrun.emulator.node.model import FailureInfo, NodeIdentity, PackageBlob, StorageAccess
from batchrun.emulator.node.storage import container_in_account, error_summary

COMPLETE_MARKER = ".batchrun-extracted"


class PackageError(Exception):
    def __init__(self, info: FailureInfo) -> None:
        super().__init__(info["message"])
        self.info = info


def install_packages(
    identity: NodeIdentity,
    packages: Sequence[PackageBlob],
    storage: StorageAccess | None,
    spec: Mapping[str, Any],
) -> list[tuple[str, str | None, Path]]:
    """Extract every package on the node; returns (application id, version or None, folder) per variable.

    Each package gets its versioned variable; one referenced without a version (the default version) also gets
    the version-less one.
    """
    unversioned = _unversioned_references(spec.get("applicationPackageReferences"))
    result: list[tuple[str, str | None, Path]] = []
    for package in packages:
        folder = install_package(identity, package, storage)
        result.append((package.application_id, package.version, folder))
        if package.referenced_without_version or package.application_id.lower() in unversioned:
            result.append((package.application_id, None, folder))
    return result


def install_package(identity: NodeIdentity, package: PackageBlob, storage: StorageAccess | None) -> Path:
    if storage is None:
        raise PackageError(_error(package, "no storage account is linked to the Batch account"))
    client = container_in_account(storage, package.container).get_blob_client(package.blob_name)
    try:
        uploaded = client.get_blob_properties().last_modified
    except Exception as error:
        raise PackageError(
            _error(package, f"the package blob cannot be read ({error_summary(error)})")
        ) from None
    applications = identity.root / "applications"
    applications.mkdir(parents=True, exist_ok=True)
    folder = (
        applications / f"{_segment(package.application_id)}{_segment(package.version)}"
        f"{uploaded:%Y-%m-%d-%H-%M}"
    )
    if (folder / COMPLETE_MARKER).exists():
        return folder
    with open(applications / f".{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / COMPLETE_MARKER).exists():
            return folder
        staging = applications / f".{folder.name}.{os.getpid()}.partial"
        archive = applications / f".{folder.name}.{os.getpid()}.zip"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            with open(archive, "wb") as handle:
                client.download_blob().readinto(handle)
            _extract(archive, staging)
            (staging / COMPLETE_MARKER).write_text(package.blob_name)
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
        except PackageError:
            raise
        except zipfile.BadZipFile:
            raise PackageError(_error(package, "the package is not a valid zip file")) from None
        except Exception as error:
            raise PackageError(
                _error(package, f"download or extraction failed ({error_summary(error)})")
            ) from None
        finally:
            archive.unlink(missing_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _extract(archive: Path, destination: Path) -> None:
    destination.mkdir(parents=True)
    with zipfile.ZipFile(archive) as bundle:
        for member in bundle.infolist():
            parts = PurePosixPath(member.filename.replace("\\", "/")).parts
            if not parts or parts[0] == "/" or ".." in parts:
                raise PackageError(
                    failure_info(
                        USER_ERROR,
                        "ApplicationPackageError",
                        f"The package contains an unsafe path '{member.filename}'",
                    )
                )
            target = destination.joinpath(*parts)
            if member.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with bundle.open(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
            # zipfile drops Unix permissions; executables in a package must stay executable.
            unix_mode = (member.external_attr >> 16) & 0o777  # no setuid/setgid/sticky bits from a zip
            if unix_mode and stat.S_IFMT(member.external_attr >> 16) in (0, stat.S_IFREG):
                os.chmod(target, unix_mode | stat.S_IRUSR)


def _unversioned_references(references: object) -> set[str]:
    if not isinstance(references, Iterable):
        return set()
    return {
        str(item.get("applicationId", "")).rsplit("/", 1)[-1].lower()
        for item in references
        if isinstance(item, Mapping) and not item.get("version")
    }


def _segment(name: str) -> str:
    if not name or "/" in name or "\0" in name or name in (".", ".."):
        raise PackageError(
            failure_info(USER_ERROR, "ApplicationPackageError", f"Invalid package name '{name}'")
        )
    return name


def _error(package: PackageBlob, reason: str) -> FailureInfo:
    return failure_info(
        USER_ERROR,
        "ApplicationPackageError",
        f"Application package '{package.application_id}' version '{package.version}' could not be deployed: "
        f"{reason}",
        {"ApplicationId": package.application_id, "Version": package.version},
    )
