"""The fully expanded desired state as one document: what `batchrun render` prints and what the digest covers.

Keys come in a stable order (sections in manifest order, ``id`` first, then alphabetical) so that renders
diff cleanly in review. Source paths are written relative to the manifest's folder, so the digest does not
depend on where the repository is cloned.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

from batchrun.manifest.emit import Ordered, to_json, to_yaml
from batchrun.model import JobSpec, Workload
from batchrun.model.write_only import mask


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def _resource(resource_id: str, properties: Any) -> Ordered:
    document = Ordered(id=resource_id)
    for key in sorted(properties):
        document[key] = properties[key]
    return document


def desired_document(workload: Workload) -> Ordered:
    """The expanded desired state as plain data. Shares the workload's values: read it, do not change it."""
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
    rendered_jobs = [_job(job) for job in workload.jobs]
    if len(rendered_jobs) == 1:
        document["job"] = rendered_jobs[0]
    elif rendered_jobs:
        document["jobs"] = rendered_jobs
    return document


def _job(spec: JobSpec) -> dict[str, Any]:
    tasks = []
    for task in spec.tasks:
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
        tasks.append(rendered)
    job = _resource(spec.id, spec.properties)
    job["tasks"] = tasks
    return job


def canonical_digest(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of a desired-state document."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def render_workload(workload: Workload, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The fully expanded desired state as YAML or JSON text, write-only values (passwords, keys) masked."""
    document = mask(desired_document(workload))
    if fmt == "json":
        return to_json(document)
    if fmt == "yaml":
        return to_yaml(document)
    raise ValueError(f"unknown render format {fmt!r}")
