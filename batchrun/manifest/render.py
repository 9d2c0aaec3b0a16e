"""The fully expanded desired state as one document: what `batchrun render` prints and what the digest covers.

Keys come in a stable order (sections in manifest order, ``id`` first, then alphabetical) so that renders
diff cleanly in review. Source paths are written relative to the manifest's folder, so the digest does not
depend on where the repository is cloned.
"""

from __future__ import annotations

import hashlib
import itertools
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


class TaskDigest:
    """:func:`workload_digest` of a workload with one job, hashed as the job's tasks go by (loading a manifest
    checks each task once: the digest then needs no second pass over them, and holds none of their text).
    ``workload``: the workload as it will be, its job's tasks aside."""

    def __init__(self, workload: Workload) -> None:
        marker = f"batchrun-tasks-0-{uuid.uuid4().hex}"
        text = _canonical_json(desired_document(workload, lambda _index, _job: marker))
        before, self._rest = text.split(_canonical_json(marker), 1)
        self._digest = hashlib.sha256(before.encode("utf-8"))
        self._digest.update(b"[")
        self._pending: list[Ordered] = []
        self._empty = True

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

    def hexdigest(self) -> str:
        self._flush()
        digest = self._digest.copy()
        digest.update(b"]")
        digest.update(self._rest.encode("utf-8"))
        return digest.hexdigest()


def workload_digest(workload: Workload) -> str:
    """``canonical_digest(desired_document(workload))``, without holding either at once.

    The document of a 100,000-task workload and its JSON text took more memory than the workload itself
    (120 MiB at the peak of loading one). Here each job's tasks stand as a marker in the document, which is
    encoded once; the tasks are encoded a thousand at a time in their place. Canonical JSON has no
    indentation, so a value encodes to the same text alone as inside the document: the bytes hashed, and so
    the digest, are the same."""
    markers = [f"batchrun-tasks-{index}-{uuid.uuid4().hex}" for index in range(len(workload.jobs))]
    rest = _canonical_json(desired_document(workload, lambda index, _job: markers[index]))
    digest = hashlib.sha256()
    for job, marker in zip(workload.jobs, markers, strict=True):
        before, rest = rest.split(_canonical_json(marker), 1)
        digest.update(before.encode("utf-8"))
        digest.update(b"[")
        tasks = iter(job.tasks)  # in order: tasks made when read are made fastest that way
        for start in range(0, len(job.tasks), TASKS_PER_CHUNK):
            if start:
                digest.update(b",")
            chunk = [_task(task) for task in itertools.islice(tasks, TASKS_PER_CHUNK)]
            digest.update(_canonical_json(chunk)[1:-1].encode("utf-8"))
        digest.update(b"]")
    digest.update(rest.encode("utf-8"))
    return digest.hexdigest()


def render_workload(workload: Workload, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The fully expanded desired state as YAML or JSON text, write-only values (passwords, keys) masked."""
    document = mask(desired_document(workload))
    if fmt == "json":
        return to_json(document)
    if fmt == "yaml":
        return to_yaml(document)
    raise ValueError(f"unknown render format {fmt!r}")
