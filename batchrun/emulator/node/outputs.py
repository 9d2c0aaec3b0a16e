"""Output files: uploading what a task produced, with Batch's filePattern, path and uploadCondition rules.

* ``filePattern`` is relative to the task working directory (absolute paths and ``../`` are allowed, as in
  Batch: ``../std*.txt`` uploads the task's stdout/stderr); ``$VAR`` / ``${VAR}`` are expanded from the task's
  environment; wildcards ``*``, ``?``, ``[...]`` match within a folder and ``**`` across folders.
* ``destination.container.path``: the blob name for a literal pattern (the file name when omitted), or a
  virtual folder prepended to each match's path below the pattern's fixed leading folders.
* Every upload is read back (size and MD5) and made again when storage does not hold it: an output that did
  not land fails the task with ``FileUploadMiscError``.
* Every attempt is logged to ``fileuploadout.txt``, failures also to ``fileuploaderr.txt`` (task folder).
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContentSettings

from batchrun.emulator.node.failures import USER_ERROR, failure_info
from batchrun.emulator.node.model import FailureInfo
from batchrun.emulator.node.storage import container_from_url, error_summary
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


@dataclass(frozen=True)
class UploadReport:
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
) -> UploadReport:
    """Upload the outputs whose condition holds; the first failure becomes a FileUploadMiscError."""
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
            headers = destination.get("uploadHeaders") or []
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
                    _upload_verified(container_url, blob_name, path, headers, log)
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


def _upload_verified(container_url: str, blob_name: str, path: Path, headers: object, log: Any) -> None:
    """Upload, then read the blob's properties back: its size and MD5 must be the file's, else upload again.

    Storage can acknowledge a write it then loses (Azurite persists its index every few seconds); a task's
    output counts only once storage shows it.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1024 * 1024), b""):
            digest.update(chunk)
    size = path.stat().st_size
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        try:
            _upload(container_url, blob_name, path, headers)
            _check_landed(container_url, blob_name, size, digest.digest())
            return
        except (NotLanded, HttpResponseError) as error:
            if attempt == UPLOAD_ATTEMPTS:
                raise
            _log(
                log,
                f"attempt {attempt} of {path} -> {blob_name} did not land ({error_summary(error)}); retrying",
            )


def _check_landed(container_url: str, blob_name: str, size: int, md5: bytes) -> None:
    with container_from_url(container_url) as container:
        try:
            properties = container.get_blob_client(blob_name).get_blob_properties()
        except ResourceNotFoundError:
            raise NotLanded(f"the blob '{blob_name}' is missing after its upload") from None
        except HttpResponseError as error:
            if error.status_code == 403:  # a write-only SAS (what Batch asks for) cannot read it back
                return
            raise
    stored_md5 = properties.content_settings.content_md5
    if properties.size != size or (stored_md5 and bytes(stored_md5) != md5):
        raise NotLanded(f"the blob '{blob_name}' does not hold the uploaded content")


def _upload(container_url: str, blob_name: str, path: Path, headers: object) -> None:
    content: dict[str, Any] = {}
    extra: dict[str, str] = {}
    if isinstance(headers, Sequence):
        for header in headers:
            if not isinstance(header, Mapping) or not header.get("name"):
                continue
            name = str(header["name"])
            value = str(header.get("value") or "")
            if name.lower() in _CONTENT_HEADERS:
                content[_CONTENT_HEADERS[name.lower()]] = value
            else:
                extra[name] = value
    options: dict[str, Any] = {}
    if content:
        options["content_settings"] = ContentSettings(**content)
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
