"""The fully expanded desired state as one document: what `batchrun render` prints and what the digest covers.

Keys come in a stable order (sections in manifest order, ``id`` first, then alphabetical) so that renders
diff cleanly in review. Source paths are written relative to the manifest's folder, so the digest does not
depend on where the repository is cloned.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from batchrun.manifest.emit import Ordered, to_json, to_yaml
from batchrun.model import JobSpec, TaskSpec, Workload
from batchrun.model.write_only import mask


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def _resource(resource_id: str, properties: Any) -> Ordered:
    document = Ordered(id=resource_id)
    for key in sorted(properties):
        document[key] = properties[key]
    return document


def desired_document(workload: Workload, tasks_of: Callable[[int, JobSpec], Any] | None = None) -> Ordered:
    """The expanded desired state as plain data. Shares the workload's values: read it, do not change it.

    ``tasks_of(index, job)``: what stands for the tasks of the workload's ``index``-th job (by default the
    list of their documents)."""
    folder = workload.manifest_path.parent
    document = Ordered(apiVersion="batchrun/v1", kind="Workload")
    metadata = Ordered(name=workload.name)
    if workload.labels:
        metadata["labels"] = dict(workload.labels)
    document["metadata"] = metadata
    storage = Ordered()
    if workload.inputs:
        storage["inputs"] = [
            Ordered(
                name=item.name,
                source=_relative(item.source, folder),
                container=item.container,
                prefix=item.prefix,
            )
            for item in workload.inputs
        ]
    if workload.outputs is not None:
        storage["outputs"] = {"container": workload.outputs.container}
    if storage:
        document["storage"] = storage
    if workload.packages:
        document["packages"] = [
            Ordered(
                id=package.id,
                version=package.version,
                source=_relative(package.source, folder),
                setDefault=package.set_default,
                allowUpdates=package.allow_updates,
            )
            for package in workload.packages
        ]
    if workload.pool is not None:
        document["pool"] = _resource(workload.pool.id, workload.pool.properties)
    if workload.schedule is not None:
        document["schedule"] = dict(workload.schedule)
    rendered_jobs = [
        _job(job, _tasks(job) if tasks_of is None else tasks_of(index, job))
        for index, job in enumerate(workload.jobs)
    ]
    if len(rendered_jobs) == 1:
        document["job"] = rendered_jobs[0]
    elif rendered_jobs:
        document["jobs"] = rendered_jobs
    return document


def _task(task: TaskSpec) -> Ordered:
    rendered = _resource(task.id, task.properties)
    if task.inputs:
        some = task.input_paths
        rendered["inputs"] = [
            {"name": name, "paths": list(some[name])} if name in some else name for name in task.inputs
        ]
    if task.output_inputs:
        listed = rendered.setdefault("inputs", [])
        listed.extend({"outputs": prefix} for prefix in task.output_inputs)
    if task.outputs:
        rendered["outputs"] = [
            Ordered(pattern=output.pattern, path=output.path, uploadCondition=output.upload_condition)
            for output in task.outputs
        ]
    return rendered


def _tasks(spec: JobSpec) -> list[Ordered]:
    return [_task(task) for task in spec.tasks]


def _job(spec: JobSpec, tasks: Any) -> dict[str, Any]:
    job = _resource(spec.id, spec.properties)
    job["tasks"] = tasks
    return job


def _canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_digest(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of a desired-state document."""
    return hashlib.sha256(_canonical_json(document).encode("utf-8")).hexdigest()


TASKS_PER_CHUNK = 1000


def _around_tasks(workload: Workload) -> list[str]:
    """The canonical JSON of the workload's document cut where each job's tasks go (one piece more than
    jobs). Canonical JSON has no indentation, so a value encodes to the same text alone as inside the
    document: hashing the pieces and the tasks in order hashes the same bytes as the whole document."""
    markers = [f"batchrun-tasks-{index}-{uuid.uuid4().hex}" for index in range(len(workload.jobs))]
    rest = _canonical_json(desired_document(workload, lambda index, _job: markers[index]))
    pieces: list[str] = []
    for marker in markers:
        before, rest = rest.split(_canonical_json(marker), 1)
        pieces.append(before)
    return [*pieces, rest]


class _TaskArray:
    """A job's tasks hashed as the JSON array the document holds there, encoded a thousand at a time as
    they are added."""

    def __init__(self, digest: Any) -> None:
        self._digest = digest
        self._pending: list[Ordered] = []
        self._empty = True
        digest.update(b"[")

    def add(self, task: TaskSpec) -> None:
        self._pending.append(_task(task))
        if len(self._pending) == TASKS_PER_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            if not self._empty:
                self._digest.update(b",")
            self._digest.update(_canonical_json(self._pending)[1:-1].encode("utf-8"))
            self._pending, self._empty = [], False

    def close(self) -> None:
        self._flush()
        self._digest.update(b"]")


class TaskDigest:
    """:func:`workload_digest` of a workload with one job, hashed as the job's tasks go by (loading a manifest
    checks each task once: the digest then needs no second pass over them, and holds none of their text).
    ``workload``: the workload as it will be, its job's tasks aside."""

    def __init__(self, workload: Workload) -> None:
        before, self._rest = _around_tasks(workload)
        self._digest = hashlib.sha256(before.encode("utf-8"))
        self._tasks = _TaskArray(self._digest)

    def add(self, task: TaskSpec) -> None:
        self._tasks.add(task)

    def hexdigest(self) -> str:
        """The digest, once every task is added (call it once)."""
        self._tasks.close()
        self._digest.update(self._rest.encode("utf-8"))
        return self._digest.hexdigest()


def workload_digest(workload: Workload) -> str:
    """``canonical_digest(desired_document(workload))``, without holding either at once.

    The document of a 100,000-task workload and its JSON text took more memory than the workload itself
    (120 MiB at the peak of loading one). Here the document is encoded once without the jobs' tasks, and
    the tasks are encoded a thousand at a time in their place (:func:`_around_tasks`): the same bytes
    hashed, so the same digest."""
    first, *after = _around_tasks(workload)
    digest = hashlib.sha256(first.encode("utf-8"))
    for job, piece in zip(workload.jobs, after, strict=True):
        tasks = _TaskArray(digest)
        for task in job.tasks:
            tasks.add(task)
        tasks.close()
        digest.update(piece.encode("utf-8"))
    return digest.hexdigest()


def render_workload(workload: Workload, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The fully expanded desired state as YAML or JSON text, write-only values (passwords, keys) masked."""
    document = mask(desired_document(workload))
    if fmt == "json":
        return to_json(document)
    if fmt == "yaml":
        return to_yaml(document)
    raise ValueError(f"unknown render format {fmt!r}")
