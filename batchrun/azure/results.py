"""The workload's record of results: which task digests ran, how they ended, and in which job.

It lives in the target's storage account, next to the workload, so every laptop and CI runner that applies the
manifest sees the same record, and it outlives the jobs whose tasks it describes. One gzipped JSON blob per
workload, ``batchrun-state/<workload>/results.json.gz``, read in one request whatever the number of tasks::

    {"formatVersion": 1, "workload": "hello",
     "tasks": [["greet-001", "<digest>", "success", 0, "2026-12-02T01:02:03Z", "hello-job"], ...]}

Entries are added from a job's completed tasks before that job is deleted (``results.save`` in a plan) and
when ``wait`` sees a job finish. Writes are conditional on the ETag read, so two appliers merge instead of
losing each other's entries. The same folder keeps the stdout/stderr of each task's latest failed run
(``logs/<task id>/``).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator, Mapping
from contextlib import suppress
from datetime import datetime
from typing import Any
from urllib.parse import quote

import msgspec
from azure.batch import BatchClient
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from batchrun.azure.blob_requests import download_blob
from batchrun.azure.failures import error_code, translated
from batchrun.azure.rest import list_json
from batchrun.errors import TargetError
from batchrun.plan.live import STATE_CONTAINER, TaskResult, task_digest_of

FORMAT_VERSION = 1
RECORD_NAME = "results.json.gz"
SAVE_ATTEMPTS = 8
TASK_PAGE_SIZE = 1000


def record_blob(workload: str) -> str:
    return f"{workload}/{RECORD_NAME}"


def logs_prefix(workload: str, task_id: str) -> str:
    """Where a failed task's stdout.txt and stderr.txt are kept (its latest failed run)."""
    return f"{workload}/logs/{task_id}/"


class Record(msgspec.Struct, frozen=True):
    results: dict[str, TaskResult]  # by lower-cased task id
    etag: str | None  # None: no record yet
    container_exists: bool


def _decode(data: bytes, workload: str) -> dict[str, TaskResult]:
    try:
        document = json.loads(gzip.decompress(data))
        if document.get("formatVersion") != FORMAT_VERSION:
            raise ValueError(f"format version {document.get('formatVersion')!r}")
        return {
            str(row[0]).lower(): TaskResult(str(row[1]), str(row[2]), row[3], str(row[4]), str(row[5]))
            for row in document["tasks"]
        }
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise TargetError(
            f"the record of results of workload {workload!r} ({STATE_CONTAINER}/{record_blob(workload)}) "
            f"cannot be read ({error}); delete that blob to start a fresh record "
            "(every task then runs again)."
        ) from None


def _encode(workload: str, results: Mapping[str, TaskResult], ids: Mapping[str, str]) -> bytes:
    rows = [
        [ids.get(key, key), r.digest, r.result, r.exit_code, r.end_time, r.job]
        for key, r in sorted(results.items())
    ]
    document = {"formatVersion": FORMAT_VERSION, "workload": workload, "tasks": rows}
    return gzip.compress(json.dumps(document, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def read_record(service: BlobServiceClient, workload: str) -> Record:
    """The record as stored now (one request)."""
    with translated(f"reading the record of results of workload {workload!r}"):
        try:
            data, etag = download_blob(service, STATE_CONTAINER, record_blob(workload))
        except ResourceNotFoundError as error:
            return Record({}, None, error_code(error) != "ContainerNotFound")
    return Record(_decode(data, workload), etag, True)


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value or "")


def completed_tasks(batch: BatchClient, job_id: str) -> Iterator[tuple[str, TaskResult]]:
    """(task id, result) for each completed task of the job that carries a batchrun digest."""
    select = {"$select": "id,state,environmentSettings,executionInfo"}
    with translated(f"listing the tasks of job/{job_id}"):
        try:
            for data in list_json(batch, f"/jobs/{quote(job_id, safe='')}/tasks", select, TASK_PAGE_SIZE):
                if str(data.get("state", "")).lower() != "completed":
                    continue
                digest = task_digest_of(data.get("environmentSettings"))
                if not digest:
                    continue
                info = data.get("executionInfo") or {}
                exit_code = info.get("exitCode")
                result = str(info.get("result") or ("success" if exit_code == 0 else "failure")).lower()
                yield (
                    str(data["id"]),
                    TaskResult(digest, result, exit_code, _iso(info.get("endTime")), job_id),
                )
        except ResourceNotFoundError:
            return


def save_results(batch: BatchClient, service: BlobServiceClient, workload: str, job_id: str) -> int:
    """Add the job's completed tasks to the record; returns how many entries changed. Safe to repeat."""
    harvested = list(completed_tasks(batch, job_id))
    if not harvested:
        return 0
    blob = service.get_blob_client(STATE_CONTAINER, record_blob(workload))
    for _attempt in range(SAVE_ATTEMPTS):
        record = read_record(service, workload)
        merged = dict(record.results)
        ids = {key: key for key in merged}
        changed = 0
        for task_id, result in harvested:
            key = task_id.lower()
            ids[key] = task_id
            if merged.get(key) != result:
                merged[key] = result
                changed += 1
        if not changed:
            return 0
        data = _encode(workload, merged, ids)
        with translated(f"saving the record of results of workload {workload!r}"):
            if not record.container_exists:
                with suppress(ResourceExistsError):
                    service.create_container(STATE_CONTAINER)
            try:
                if record.etag is None:
                    blob.upload_blob(data, overwrite=False)
                else:
                    blob.upload_blob(
                        data, overwrite=True, etag=record.etag, match_condition=MatchConditions.IfNotModified
                    )
                return changed
            except (ResourceExistsError, ResourceModifiedError):
                continue  # someone else saved meanwhile: read again and merge
    raise TargetError(
        f"the record of results of workload {workload!r} kept changing while it was saved "
        f"({SAVE_ATTEMPTS} attempts); run the command again."
    )


def forget_results(service: BlobServiceClient, workload: str) -> None:
    """Delete the workload's record and kept logs (``destroy``): the next apply runs every task."""
    container = service.get_container_client(STATE_CONTAINER)
    with translated(f"deleting the record of results of workload {workload!r}"):
        try:
            names = [
                b.name
                for prefix in (record_blob(workload), f"{workload}/logs/")
                for b in container.list_blobs(name_starts_with=prefix)
            ]
        except ResourceNotFoundError:
            return
        for name in names:
            try:
                container.delete_blob(name)
            except ResourceNotFoundError:
                continue


def read_log(service: BlobServiceClient, workload: str, task_id: str, name: str) -> bytes | None:
    """A kept stdout.txt/stderr.txt of the task's latest failed run, or None when none was kept."""
    blob = service.get_blob_client(STATE_CONTAINER, logs_prefix(workload, task_id) + name)
    with translated(f"reading the kept {name} of task {task_id}"):
        try:
            return bytes(blob.download_blob().readall())
        except ResourceNotFoundError:
            return None
