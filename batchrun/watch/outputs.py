"""``batchrun outputs``: download a workload's outputs container into a folder, skipping unchanged files.

A file is skipped when it is already present with the same content:

* when the blob has a Content-MD5 (Azure and Azurite compute it for single-request uploads), by comparing the
  local file's MD5 with it;
* otherwise by a record the previous download left in ``.batchrun-outputs.json``: the blob's ETag then (the
  service changes it on every write) and the MD5 of what was written locally. Same ETag and the local file
  still hashing to what was written means same content, without downloading the blob again.

Blob names become relative paths; names that would leave the folder (``..``, absolute) are refused.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from batchrun.errors import BatchrunError, TargetError

if TYPE_CHECKING:  # the SDK-facing readers import this package's snapshots: no import cycle
    from batchrun.azure.monitor import OutputBlob, OutputStore

STATE_FILE = ".batchrun-outputs.json"

Action = Literal["downloaded", "unchanged", "refused"]


class OutputFile(msgspec.Struct, frozen=True):
    blob: str
    path: Path | None  # None when refused
    size: int
    action: Action


class OutputsResult(msgspec.Struct, frozen=True):
    container: str
    directory: Path
    container_exists: bool
    files: tuple[OutputFile, ...]

    def count(self, action: Action) -> int:
        return sum(1 for f in self.files if f.action == action)

    def to_json(self) -> dict[str, Any]:
        return {
            "container": self.container,
            "directory": str(self.directory),
            "containerExists": self.container_exists,
            "downloaded": self.count("downloaded"),
            "unchanged": self.count("unchanged"),
            "refused": self.count("refused"),
            "files": [
                {
                    "blob": f.blob,
                    "path": None if f.path is None else str(f.path),
                    "size": f.size,
                    "action": f.action,
                }
                for f in self.files
            ],
        }


def local_path(directory: Path, blob_name: str) -> Path | None:
    """Where ``blob_name`` goes under ``directory``; None when the name would escape it or names no file.

    Names are split on ``/`` without normalising, so ``a//b`` or ``a/./b`` (which would collide with ``a/b``)
    are refused rather than silently merged.
    """
    parts = blob_name.split("/")
    if any(part in ("", ".", "..") for part in parts) or "\\" in blob_name or "\x00" in blob_name:
        return None
    if parts == [STATE_FILE]:
        return None
    return directory.joinpath(*parts)


def file_md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_state(directory: Path) -> dict[str, Any]:
    try:
        data = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(directory: Path, container: str, state: dict[str, dict[str, Any]]) -> None:
    """Best effort: without the record the next run downloads blobs lacking a Content-MD5 again."""
    partial = directory / f".{STATE_FILE}.{os.getpid()}"
    try:
        partial.write_text(json.dumps({"container": container, "blobs": state}, indent=1, sort_keys=True))
        os.replace(partial, directory / STATE_FILE)
    except OSError:
        partial.unlink(missing_ok=True)


def _is_unchanged(blob: OutputBlob, path: Path, record: dict[str, Any] | None) -> bool:
    if not path.is_file() or path.stat().st_size != blob.size:
        return False
    if blob.content_md5 is not None:
        return file_md5(path) == blob.content_md5.hex()
    return bool(record and record.get("etag") == blob.etag and record.get("md5") == file_md5(path))


def download_outputs(store: OutputStore, container: str, directory: Path) -> OutputsResult:
    blobs = store.list(container)
    if blobs is None:
        return OutputsResult(container, directory, container_exists=False, files=())
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise BatchrunError(
            f"Cannot create the output folder {directory}: {error.strerror}; pick another with -d."
        ) from None
    loaded = _load_state(directory)
    previous = loaded.get("blobs") if loaded.get("container") == container else None
    if not isinstance(previous, dict):
        previous = {}
    state: dict[str, dict[str, Any]] = {}
    files: list[OutputFile] = []
    try:
        for blob in blobs:
            path = local_path(directory, blob.name)
            if path is None:
                files.append(OutputFile(blob.name, None, blob.size, "refused"))
                continue
            record = previous.get(blob.name)
            if _is_unchanged(blob, path, record if isinstance(record, dict) else None):
                state[blob.name] = (
                    record if isinstance(record, dict) else {"etag": blob.etag, "md5": file_md5(path)}
                )
                files.append(OutputFile(blob.name, path, blob.size, "unchanged"))
                continue
            try:
                written_md5 = store.download(container, blob.name, path)
            except OSError as error:
                raise BatchrunError(
                    f"Cannot write {path} (from blob {container}/{blob.name}): {error.strerror}; "
                    "check the folder's permissions and free space, or pick another with -d."
                ) from None
            if blob.content_md5 is not None and written_md5 != blob.content_md5.hex():
                path.unlink(missing_ok=True)
                expected = base64.b64encode(blob.content_md5).decode()
                raise TargetError(
                    f"Blob {container}/{blob.name} did not match its Content-MD5 ({expected}) once "
                    "downloaded; it may have been rewritten meanwhile: run the command again."
                )
            state[blob.name] = {"etag": blob.etag, "md5": written_md5}
            files.append(OutputFile(blob.name, path, blob.size, "downloaded"))
    finally:
        listed = {blob.name for blob in blobs}
        kept = {name: record for name, record in previous.items() if name in listed and name not in state}
        _save_state(directory, container, state | kept)
    return OutputsResult(container, directory, container_exists=True, files=tuple(files))
