"""Resource files: downloading a task's ``resourceFiles`` into its working directory before it runs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from azure.storage.blob import ContainerClient

from batchrun.emulator.node.failures import USER_ERROR, failure_info
from batchrun.emulator.node.model import FailureInfo, StorageAccess
from batchrun.emulator.node.storage import (
    blob_from_url,
    container_from_url,
    container_in_account,
    download_error_code,
    error_summary,
)
from batchrun.redact import redact

DEFAULT_FILE_MODE = 0o770


class ResourceFileError(Exception):
    """A resource file could not be placed; carries the failureInfo to report."""

    def __init__(self, info: FailureInfo) -> None:
        super().__init__(info["message"])
        self.info = info


def resolve_inside(base: Path, relative: str, what: str) -> Path:
    """``base / relative``, refusing absolute paths and ``..`` that would leave ``base``."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                "ResourceFileCreateFailed",
                f"The {what} '{relative}' must be a relative path inside the task working directory "
                "(no leading '/' and no '..')",
                {"FilePath": relative},
            )
        )
    return base.joinpath(*pure.parts)


def download_resource_files(
    resource_files: Sequence[Mapping[str, Any]], working_dir: Path, storage: StorageAccess | None
) -> None:
    """Place every resource file under ``working_dir``; raises ResourceFileError on the first failure."""
    for resource in resource_files:
        _download_one(resource, working_dir, storage)


def _download_one(resource: Mapping[str, Any], working_dir: Path, storage: StorageAccess | None) -> None:
    file_path = str(resource.get("filePath") or "")
    mode = _file_mode(resource.get("fileMode"))
    http_url = resource.get("httpUrl")
    container_url = resource.get("storageContainerUrl")
    auto_container = resource.get("autoStorageContainerName")
    given = [
        name
        for name, value in (
            ("httpUrl", http_url),
            ("storageContainerUrl", container_url),
            ("autoStorageContainerName", auto_container),
        )
        if value
    ]
    if len(given) != 1:
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                "BlobDownloadMiscError",
                "A resource file must specify exactly one of httpUrl, storageContainerUrl and "
                f"autoStorageContainerName (found: {', '.join(given) or 'none'})",
            )
        )
    if http_url:
        if not file_path:
            raise ResourceFileError(
                failure_info(
                    USER_ERROR,
                    "BlobDownloadMiscError",
                    "A resource file with httpUrl needs a filePath",
                    {"HttpUrl": str(http_url)},
                )
            )
        target = resolve_inside(working_dir, file_path, "resource file path")
        _download_url(str(http_url), target, mode)
        return
    directory = resolve_inside(working_dir, file_path, "resource file path") if file_path else working_dir
    prefix = str(resource.get("blobPrefix") or "")
    if container_url:
        _download_container(
            container_from_url(str(container_url)), prefix, directory, mode, str(container_url)
        )
        return
    if storage is None:
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                "BlobDownloadMiscError",
                f"autoStorageContainerName '{auto_container}' needs a storage account linked to the "
                "Batch account",
            )
        )
    client = container_in_account(storage, str(auto_container))
    _download_container(client, prefix, directory, mode, f"{storage.blob_endpoint}/{auto_container}")


def _file_mode(value: object) -> int:
    if value in (None, ""):
        return DEFAULT_FILE_MODE
    try:
        # Permission bits only: a setuid, setgid or sticky bit from a request never reaches the node.
        return int(str(value), 8) & 0o777
    except ValueError:
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                "ResourceFileCreateFailed",
                f"fileMode '{value}' is not an octal mode such as 0770",
            )
        ) from None


def _download_url(url: str, target: Path, mode: int) -> None:
    try:
        client = blob_from_url(url)
    except ValueError as error:
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                "BlobDownloadMiscError",
                f"httpUrl is not a blob URL the local target can read: {error}",
                {"HttpUrl": url},
            )
        ) from None
    try:
        with client:
            _write(target, lambda handle: client.download_blob().readinto(handle), mode)
    except ResourceFileError:
        raise
    except Exception as error:
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                download_error_code(error),
                f"The resource file could not be downloaded: {error_summary(error)}",
                {"HttpUrl": redact(url), "FilePath": str(target)},
            )
        ) from None


def _download_container(client: ContainerClient, prefix: str, directory: Path, mode: int, where: str) -> None:
    try:
        with client:
            for blob in client.list_blobs(name_starts_with=prefix or None):
                name = str(blob.name)
                target = resolve_inside(directory, name, "blob name")
                _write(target, lambda handle, name=name: client.download_blob(name).readinto(handle), mode)
    except ResourceFileError:
        raise
    except Exception as error:
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                download_error_code(error),
                f"The resource files could not be downloaded from the container: {error_summary(error)}",
                {"ContainerUrl": redact(where), "BlobPrefix": prefix},
            )
        ) from None


def _write(target: Path, fill: Any, mode: int) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                "ResourceDirectoryCreateFailed",
                f"Cannot create {target.parent}: {error.strerror}",
            )
        ) from None
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as handle:
            fill(handle)
        os.chmod(partial, mode)
        os.replace(partial, target)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ResourceFileError(
            failure_info(
                USER_ERROR,
                "ResourceFileWriteFailed",
                f"Cannot write {target}: {error.strerror}",
            )
        ) from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
