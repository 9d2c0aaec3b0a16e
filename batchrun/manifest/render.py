"""The fully expanded desired state as one document: what `batchrun render` prints and what the digest covers.

Keys come in a stable order (``id`` first, then alphabetical) so renders diff cleanly in review. Source paths
are written relative to the manifest's folder, so the digest does not depend on where the repository lives.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml

from batchrun.model import Workload

_BaseDumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[misc]
    """Writes repeated (shared) values in full: anchors and aliases would make renders hard to review."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted(value[key]) for key in sorted(value, key=lambda key: (key != "id", key))}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(path, folder)).as_posix()


def desired_document(workload: Workload) -> dict[str, Any]:
    """The expanded desired state as plain data, keys ordered for review."""
    folder = workload.manifest_path.parent
    document: dict[str, Any] = {"apiVersion": "batchrun/v1", "kind": "Workload"}
    document["metadata"] = {
        "name": workload.name,
        **({"labels": dict(workload.labels)} if workload.labels else {}),
    }
    storage: dict[str, Any] = {}
    if workload.inputs:
        storage["inputs"] = [
            {
                "name": item.name,
                "source": _relative(item.source, folder),
                "container": item.container,
                "prefix": item.prefix,
            }
            for item in workload.inputs
        ]
    if workload.outputs is not None:
        storage["outputs"] = {"container": workload.outputs.container}
    if storage:
        document["storage"] = storage
    if workload.packages:
        document["packages"] = [
            {
                "id": package.id,
                "version": package.version,
                "source": _relative(package.source, folder),
                "setDefault": package.set_default,
                "allowUpdates": package.allow_updates,
            }
            for package in workload.packages
        ]
    if workload.pool is not None:
        document["pool"] = {"id": workload.pool.id, **_sorted(dict(workload.pool.properties))}
    if workload.job is not None:
        tasks = []
        for task in workload.job.tasks:
            rendered: dict[str, Any] = {"id": task.id, **_sorted(dict(task.properties))}
            if task.inputs:
                rendered["inputs"] = list(task.inputs)
            if task.outputs:
                rendered["outputs"] = [
                    {
                        "pattern": output.pattern,
                        "path": output.path,
                        "uploadCondition": output.upload_condition,
                    }
                    for output in task.outputs
                ]
            tasks.append(rendered)
        document["job"] = {"id": workload.job.id, **_sorted(dict(workload.job.properties)), "tasks": tasks}
    return document


def canonical_digest(document: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of a desired-state document."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def render_workload(workload: Workload, fmt: Literal["yaml", "json"] = "yaml") -> str:
    """The fully expanded desired state as YAML or JSON text."""
    document = desired_document(workload)
    if fmt == "json":
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        text: str = yaml.dump(document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
        return text
    raise ValueError(f"unknown render format {fmt!r}")
