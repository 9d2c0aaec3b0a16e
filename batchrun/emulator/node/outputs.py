"""Output files: uploading what a task produced, with Batch's filePattern, path and uploadCondition rules.

* ``filePattern`` is relative to the task working directory (absolute paths and ``../`` are allowed, as in
  Batch: ``../std*.txt`` uploads the task's stdout/stderr); ``$VAR`` / ``${VAR}`` are expanded from the task's
  environment; wildcards ``*``, ``?``, ``[...]`` match within a folder and ``**`` across folders.
* ``destination.container.path``: the blob name for a literal pattern (the file name when omitted), or a
  virtual folder prepended to each match's path below the pattern's fixed leading folders.
* Every upload carries its Content-MD5 and is read back (size and MD5; with the account key when the container
  is in the linked storage account) and made again when storage does not hold it: an output that did not land
  fails the task with ``FileUploadMiscError``.
* Every acknowledged upload is journaled (:mod:`.upload_journal`); after a storage crash
  :func:`restore_upload` checks it again and uploads it once more from the task's folder when it was lost.
* Every attempt is logged to ``fileuploadout.txt``, failures also to ``fileuploaderr.txt`` (task folder).
"""

from __future__ import annotations

import glob
import hashlib
import io
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import msgspec
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

from batchrun.emulator.node.failures import USER_ERROR, failure_info
from batchrun.emulator.node.model import FailureInfo, StorageAccess
from batchrun.emulator.node.storage import container_from_url, container_in_account, error_summary
from batchrun.emulator.node.upload_journal import RunRecorder, UploadEntry
from batchrun.redact import redact

_WILDCARD = re.compile(r"[*?\[]")
_ENV_REFERENCE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
_CONTENT_HEADERS = {
    "content-type": "content_type",
    "content-encoding": "content_encoding",
    "content-language": "content_language",
    "content-disposition": "content_disposition",
    "cache-control": "cache_control",
}


class UploadReport(msgspec.Struct, frozen=True):
    uploaded: int
    failure: FailureInfo | None


def applies(output: Mapping[str, Any], succeeded: bool) -> bool:
    options = output.get("uploadOptions") or {}
    condition = (
        str(options.get("uploadCondition") or "taskcompletion").lower()
        if isinstance(options, Mapping)
        else "taskcompletion"
    )
    if condition == "tasksuccess":
        return succeeded
    if condition == "taskfailure":
        return not succeeded
    return True


def expand_variables(pattern: str, env: Mapping[str, str]) -> str:
    """``$NAME`` and ``${NAME}`` from ``env``; unknown variables are left as written."""
    return _ENV_REFERENCE.sub(
        lambda match: env.get(match.group(1) or match.group(2), match.group(0)), pattern
    )


def matches(pattern: str, working_dir: Path) -> list[tuple[Path, str]]:
    """Files matching ``pattern``, each with its blob name suffix (relative to the fixed leading folders)."""
    absolute = pattern if os.path.isabs(pattern) else os.path.join(str(working_dir), pattern)
    absolute = os.path.normpath(absolute)
    if not _WILDCARD.search(pattern):
        path = Path(absolute)
        return [(path, path.name)] if path.is_file() else []
    parts = absolute.split(os.sep)
    fixed: list[str] = []
    for part in parts:
        if _WILDCARD.search(part):
            break
        fixed.append(part)
    base = os.sep.join(fixed) or os.sep
    found = []
    for name in sorted(glob.glob(absolute, recursive=True)):
        path = Path(name)
        if path.is_file():
            found.append((path, os.path.relpath(name, base).replace(os.sep, "/")))
    return found


def upload_outputs(
    outputs: Sequence[Mapping[str, Any]],
    working_dir: Path,
    task_dir: Path,
    env: Mapping[str, str],
    succeeded: bool,
    storage: StorageAccess | None = None,
    recorder: RunRecorder | None = None,
) -> UploadReport:
    """Upload the outputs whose condition holds; the first failure becomes a FileUploadMiscError.

    ``storage`` (the linked account) lets the read-back use the account key; ``recorder`` journals each
    acknowledged upload of this run.
    """
    chosen = [output for output in outputs if applies(output, succeeded)]
    if not chosen:
        return UploadReport(0, None)
    uploaded = 0
    failure: FailureInfo | None = None
    with (
        open(task_dir / "fileuploadout.txt", "a") as log,
        open(task_dir / "fileuploaderr.txt", "a") as errors,
    ):
        for output in chosen:
            pattern = expand_variables(str(output.get("filePattern") or ""), env)
            destination = (output.get("destination") or {}).get("container") or {}
            container_url = str(destination.get("containerUrl") or "")
            prefix = str(destination.get("path") or "")
            headers = header_pairs(destination.get("uploadHeaders"))
            if not pattern or not container_url:
                failure = failure or _failure(
                    "an output file needs filePattern and destination.container.containerUrl", pattern
                )
                _log(errors, f"invalid output file specification for pattern '{pattern}'")
                continue
            found = matches(pattern, working_dir)
            literal = not _WILDCARD.search(pattern)
            _log(log, f"pattern '{pattern}': {len(found)} file(s) to {redact(container_url)}")
            for path, relative in found:
                if literal:
                    blob_name = prefix or relative
                else:
                    blob_name = f"{prefix.rstrip('/')}/{relative}" if prefix else relative
                try:
                    _upload_verified(container_url, blob_name, path, headers, log, storage, recorder)
                    uploaded += 1
                    _log(log, f"uploaded {path} -> {blob_name}")
                except Exception as error:
                    summary = error_summary(error)
                    _log(errors, f"failed to upload {path} -> {blob_name}: {summary}")
                    failure = failure or _failure(
                        f"uploading '{path.name}' to '{blob_name}' failed: {summary}", pattern
                    )
    return UploadReport(uploaded, failure)


UPLOAD_ATTEMPTS = 3


class NotLanded(Exception):
    """An upload the storage service acknowledged but does not hold (or holds with other content)."""


class CannotRestore(Exception):
    """An acknowledged output that storage lost and that cannot be uploaded again: its file changed or is gone
    (``lasting``), or storage refuses it or cannot be reached (worth another try later)."""

    def __init__(self, reason: str, lasting: bool = True) -> None:
        super().__init__(reason)
        self.lasting = lasting


def _upload_verified(
    container_url: str,
    blob_name: str,
    path: Path,
    headers: tuple[tuple[str, str], ...],
    log: Any,
    storage: StorageAccess | None,
    recorder: RunRecorder | None,
    expected: tuple[int, bytes] | None = None,
) -> None:
    """Upload, then read the blob's properties back: its size and MD5 must be the file's, else upload again.

    Storage can acknowledge a write it then loses (Azurite persists its index every few seconds); a task's
    output counts only once storage shows it. The read-back uses the account key when the container is in the
    linked storage account (output SAS URLs may be write-only). Each acknowledged upload goes to the run's
    journal, so a later storage crash can be repaired. ``expected`` (size, MD5): the file must still hold
    that content (an upload made again after a crash), else :class:`CannotRestore`.
    """
    with recorder.uploading() if recorder is not None else nullcontext():
        size, md5 = file_digest(path)
        if expected is not None and (size, md5) != expected:
            raise CannotRestore(f"the file {path} changed after its upload")
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            try:
                _upload(container_url, blob_name, path, headers, md5)
                if recorder is not None:
                    recorder.acknowledged(container_url, blob_name, path, size, md5, headers)
                _check_landed(container_url, blob_name, size, md5, storage)
                return
            except (NotLanded, HttpResponseError) as error:
                if attempt == UPLOAD_ATTEMPTS:
                    raise
                _log(
                    log,
                    f"attempt {attempt} of {path} -> {blob_name} did not land ({error_summary(error)}); "
                    "retrying",
                )


def file_digest(path: Path) -> tuple[int, bytes]:
    """(size, MD5) of a file's content."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1024 * 1024), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.digest()


def linked_container(container_url: str, storage: StorageAccess | None) -> ContainerClient | None:
    """A client with the account key when the URL is a container of the linked storage account, else None."""
    base = container_url.split("?", 1)[0].rstrip("/")
    if storage is not None:
        endpoint = storage.blob_endpoint.rstrip("/")
        if base.lower().startswith(endpoint.lower() + "/"):
            name = unquote(base[len(endpoint) + 1 :])
            if name and "/" not in name:
                return container_in_account(storage, name)
    return None


def readable_container(container_url: str, storage: StorageAccess | None) -> ContainerClient:
    """A client that can read the container: with the account key when the URL is a container of the linked
    storage account (a SAS for outputs may be write-only), else with the URL's own SAS."""
    return linked_container(container_url, storage) or container_from_url(container_url)


def stored_matches(
    container_url: str, blob_name: str, size: int, md5: bytes, storage: StorageAccess | None
) -> bool | None:
    """True when storage holds the blob with this size and MD5, False when it is missing or other content,
    None when it cannot be read (a write-only SAS outside the linked account)."""
    with readable_container(container_url, storage) as container:
        try:
            properties = container.get_blob_client(blob_name).get_blob_properties()
        except ResourceNotFoundError:
            return False
        except HttpResponseError as error:
            if error.status_code == 403:
                return None
            raise
    stored_md5 = properties.content_settings.content_md5
    return properties.size == size and (not stored_md5 or bytes(stored_md5) == md5)


def _check_landed(
    container_url: str, blob_name: str, size: int, md5: bytes, storage: StorageAccess | None
) -> None:
    if stored_matches(container_url, blob_name, size, md5, storage) is False:
        raise NotLanded(f"the blob '{blob_name}' is missing or holds other content after its upload")


def restore_upload(entry: UploadEntry, storage: StorageAccess | None, recorder: RunRecorder | None) -> bool:
    """Check one acknowledged upload again; upload it once more from its file when storage lost it.

    Returns True when it was uploaded again, False when storage still holds it. Raises
    :class:`CannotRestore` (with the reason) when it is lost and cannot be uploaded again.
    """
    try:
        held = stored_matches(entry.container_url, entry.blob_name, entry.size, entry.md5, storage)
    except Exception as error:
        raise CannotRestore(f"storage cannot be read ({error_summary(error)})", lasting=False) from None
    if held:
        return False
    if not entry.path.is_file():
        raise CannotRestore(f"the file {entry.path} is gone")
    try:
        with _task_log(entry.task_dir, "fileuploadout.txt") as log:
            _recreate_container(entry, storage, log)
            _upload_verified(
                entry.container_url,
                entry.blob_name,
                entry.path,
                entry.headers,
                log,
                storage,
                recorder,
                expected=(entry.size, entry.md5),
            )
            _log(log, f"uploaded {entry.path} -> {entry.blob_name} again: storage lost it in a crash")
    except CannotRestore:
        raise
    except Exception as error:
        raise CannotRestore(f"uploading it again failed: {error_summary(error)}", lasting=False) from None
    return True


def _recreate_container(entry: UploadEntry, storage: StorageAccess | None, log: Any) -> None:
    """Storage can lose a container created just before the crash with the blobs in it: create it again
    (possible in the linked account only, with its key; it held the acknowledged upload)."""
    client = linked_container(entry.container_url, storage)
    if client is None:
        return
    with client:
        try:
            client.create_container()
        except ResourceExistsError:
            return
    _log(log, f"created the container of {entry.blob_name} again: storage lost it in a crash")


def lost_output_failure(entry: UploadEntry, reason: str) -> FailureInfo:
    """The failureInfo of a task whose acknowledged output storage lost and that could not be uploaded again:
    what Batch reports for an output that did not land (UserError, FileUploadMiscError)."""
    return failure_info(
        USER_ERROR,
        "FileUploadMiscError",
        f"An output file could not be uploaded: storage lost '{entry.blob_name}' in a crash after the task "
        f"uploaded it, and it could not be uploaded again: {reason}",
        {"FilePath": str(entry.path), "BlobName": entry.blob_name},
    )


def note_lost(entry: UploadEntry, reason: str) -> None:
    """Say in the task's fileuploaderr.txt that an acknowledged output was lost for good."""
    with _task_log(entry.task_dir, "fileuploaderr.txt") as log:
        _log(log, f"{entry.path} -> {entry.blob_name} was lost by storage in a crash: {reason}")


@contextmanager
def _task_log(task_dir: Path, name: str) -> Iterator[Any]:
    """The task folder's log file, or a sink when the folder is gone (the task was deleted)."""
    try:
        handle: Any = open(task_dir / name, "a")  # noqa: SIM115 - closed below
    except OSError:
        handle = io.StringIO()
    try:
        yield handle
    finally:
        handle.close()


def header_pairs(headers: object) -> tuple[tuple[str, str], ...]:
    """An output's uploadHeaders as (name, value) pairs; malformed items are skipped."""
    if not isinstance(headers, Sequence) or isinstance(headers, (str, bytes)):
        return ()
    return tuple(
        (str(header["name"]), str(header.get("value") or ""))
        for header in headers
        if isinstance(header, Mapping) and header.get("name")
    )


def _upload(
    container_url: str, blob_name: str, path: Path, headers: tuple[tuple[str, str], ...], md5: bytes
) -> None:
    # Content-MD5 is stored with every output (the service computes it only for single-shot uploads), so a
    # read-back and a later check can compare content whatever the size.
    content: dict[str, Any] = {"content_md5": bytearray(md5)}
    extra: dict[str, str] = {}
    for name, value in headers:
        if name.lower() in _CONTENT_HEADERS:
            content[_CONTENT_HEADERS[name.lower()]] = value
        else:
            extra[name] = value
    options: dict[str, Any] = {"content_settings": ContentSettings(**content)}
    if extra:
        options["headers"] = extra
    with container_from_url(container_url) as container, open(path, "rb") as data:
        container.upload_blob(blob_name, data, overwrite=True, **options)


def _failure(reason: str, pattern: str) -> FailureInfo:
    return failure_info(
        USER_ERROR,
        "FileUploadMiscError",
        f"An output file could not be uploaded: {reason}",
        {"FilePattern": pattern},
    )


def _log(handle: Any, line: str) -> None:
    handle.write(f"{datetime.now(timezone.utc).isoformat()} {redact(line)}\n")
    handle.flush()
