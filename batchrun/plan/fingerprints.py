"""What a saved plan was made from, and what moved since. Pure.

The fingerprints of a plan (see :mod:`batchrun.plan.saved`): the digest of the manifest's expanded desired
state, each storage input file's MD5 (a saved plan hashes every file), each package build's
sha256, the live pool's and job's ETag and lastModified with a digest per top-level property (values only for
a few plain fields, so a refusal can show them), a digest of the live task states and one of the record of
results. :func:`what_moved` compares two.
Properties that move without anyone changing the resource (:data:`VOLATILE`) are left out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from msgspec import field
from msgspec.structs import replace

from batchrun.plan.live import (
    LiveJob,
    LivePool,
    LiveSchedule,
    LiveState,
    LiveTask,
    PreparedInput,
    PreparedPackage,
)
from batchrun.redact import redact

VOLATILE = frozenset(
    {
        "eTag",
        "lastModified",
        "url",
        "creationTime",
        "stateTransitionTime",
        "previousState",
        "previousStateTransitionTime",
        "allocationState",  # steady/resizing moves by itself; a resize that matters changes the plan
        "allocationStateTransitionTime",
        "currentDedicatedNodes",
        "currentLowPriorityNodes",
        "resizeErrors",
        "stats",
        "executionInfo",
    }
)
# Plain fields whose values a refusal may show (never a secret, never a URL).
SHOWN_VALUES = frozenset(
    {
        "vmSize",
        "targetDedicatedNodes",
        "targetLowPriorityNodes",
        "enableAutoScale",
        "taskSlotsPerNode",
        "state",
        "allocationState",
        "priority",
        "maxParallelTasks",
        "onAllTasksComplete",
        "onTaskFailure",
    }
)


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


class ResourcePrint(msgspec.Struct, frozen=True):
    """A live pool or job as the plan saw it."""

    id: str
    etag: str
    last_modified: str
    fields: Mapping[str, str]  # top-level property -> digest of its value
    values: Mapping[str, Any] = field(default_factory=dict)  # SHOWN_VALUES present on the resource

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "eTag": self.etag,
            "lastModified": self.last_modified,
            "fields": dict(self.fields),
            "values": dict(self.values),
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ResourcePrint:
        return ResourcePrint(
            str(data["id"]),
            str(data.get("eTag", "")),
            str(data.get("lastModified", "")),
            dict(data.get("fields", {})),
            dict(data.get("values", {})),
        )


def resource_print(resource: LivePool | LiveJob | LiveSchedule | None) -> ResourcePrint | None:
    if resource is None:
        return None
    properties = resource.properties
    return ResourcePrint(
        id=resource.id,
        etag=str(properties.get("eTag", "")),
        last_modified=str(properties.get("lastModified", "")),
        fields={k: digest(v) for k, v in properties.items() if k not in VOLATILE},
        values={k: properties[k] for k in sorted(SHOWN_VALUES) if k in properties},
    )


def _schedule_print(schedule: LiveSchedule | None) -> ResourcePrint | None:
    """A schedule's print without its ETag and time: Batch may move them when a run starts, which is not a
    change of what the plan was made from (its fields still are)."""
    found = resource_print(schedule)
    return None if found is None else replace(found, etag="", last_modified="")


class JobPrints(msgspec.Struct, frozen=True):
    """One of a workload's other jobs as the plan saw it: the job and a digest of its tasks."""

    job: ResourcePrint | None
    tasks: str
    task_count: int


class Fingerprints(msgspec.Struct, frozen=True):
    """What a plan was made from (see the module docstring)."""

    manifest_digest: str
    inputs: Mapping[str, Mapping[str, str]]  # input name -> blob -> base64 MD5
    packages: Mapping[str, str]  # "<id>@<version>" -> sha256 of the build
    pool: ResourcePrint | None
    job: ResourcePrint | None
    tasks: str  # digest of the live tasks' ids, digests, states and results
    task_count: int
    results: str  # digest of the record of results
    result_count: int
    # The workload's other jobs (``jobs:``), by lower-cased id: their prints, their tasks' digest and count.
    other_jobs: Mapping[str, JobPrints] = field(default_factory=dict)
    schedule: ResourcePrint | None = None  # a scheduled workload's job schedule

    def to_json(self) -> dict[str, Any]:
        return {
            "manifestDigest": self.manifest_digest,
            "inputs": {name: dict(files) for name, files in self.inputs.items()},
            "packages": dict(self.packages),
            "pool": self.pool.to_json() if self.pool else None,
            "job": self.job.to_json() if self.job else None,
            "tasks": {"digest": self.tasks, "count": self.task_count},
            "results": {"digest": self.results, "count": self.result_count},
            "schedule": self.schedule.to_json() if self.schedule else None,
            "otherJobs": {
                key: {
                    "job": prints.job.to_json() if prints.job else None,
                    "tasks": {"digest": prints.tasks, "count": prints.task_count},
                }
                for key, prints in self.other_jobs.items()
            },
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Fingerprints:
        return Fingerprints(
            manifest_digest=str(data["manifestDigest"]),
            inputs={str(k): dict(v) for k, v in data.get("inputs", {}).items()},
            packages=dict(data.get("packages", {})),
            pool=ResourcePrint.from_json(data["pool"]) if data.get("pool") else None,
            job=ResourcePrint.from_json(data["job"]) if data.get("job") else None,
            tasks=str(data["tasks"]["digest"]),
            task_count=int(data["tasks"]["count"]),
            results=str(data["results"]["digest"]),
            result_count=int(data["results"]["count"]),
            schedule=ResourcePrint.from_json(data["schedule"]) if data.get("schedule") else None,
            other_jobs={
                str(key): JobPrints(
                    ResourcePrint.from_json(value["job"]) if value.get("job") else None,
                    str(value["tasks"]["digest"]),
                    int(value["tasks"]["count"]),
                )
                for key, value in (data.get("otherJobs") or {}).items()
            },
        )


def _task_states(tasks: Mapping[str, LiveTask]) -> list[tuple[Any, ...]]:
    """What a job's tasks are, in a stable order: id, digest, state, result, exit code."""
    return sorted((k, t.digest, t.state, t.result, t.exit_code) for k, t in tasks.items())


def fingerprints(
    manifest_digest: str,
    live: LiveState,
    inputs: Sequence[PreparedInput],
    packages: Sequence[PreparedPackage],
) -> Fingerprints:
    tasks = _task_states(live.tasks)
    other_jobs = {
        job_id: JobPrints(resource_print(other.job), digest(_task_states(other.tasks)), len(other.tasks))
        for job_id, other in sorted(live.more_jobs.items())
    }
    results = sorted((k, tuple(r)) for k, r in live.results.items())
    return Fingerprints(
        manifest_digest=manifest_digest,
        inputs={i.name: {f.blob: f.identity for f in i.files} for i in inputs},
        packages={f"{p.id}@{p.version}": p.sha256 for p in packages},
        pool=resource_print(live.pool),
        job=resource_print(live.job),
        tasks=digest(tasks),
        task_count=len(tasks),
        results=digest(results),
        result_count=len(results),
        other_jobs=other_jobs,
        schedule=_schedule_print(live.schedule),
    )


def _files_moved(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    return sorted(name for name in set(before) | set(after) if before.get(name) != after.get(name))


def _some(names: Sequence[str], shown: int = 5) -> str:
    text = ", ".join(names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _resource_moved(kind: str, before: ResourcePrint | None, after: ResourcePrint | None) -> str | None:
    if before is None and after is None:
        return None
    if before is None:
        assert after is not None
        return f"{kind}/{after.id}: created since the plan was made"
    if after is None:
        return f"{kind}/{before.id}: deleted since the plan was made"
    keys = sorted(
        k for k in set(before.fields) | set(after.fields) if before.fields.get(k) != after.fields.get(k)
    )
    if not keys and before.etag == after.etag and before.last_modified == after.last_modified:
        return None
    named = []
    for key in keys:
        if key in before.values or key in after.values:
            named.append(f"{key} {before.values.get(key, '(unset)')} -> {after.values.get(key, '(unset)')}")
        else:
            named.append(key)
    detail = ", ".join(named) if named else f"its ETag changed: {before.etag} -> {after.etag}"
    return redact(f"{kind}/{before.id}: changed since the plan was made ({detail})")


def what_moved(saved: Fingerprints, now: Fingerprints) -> list[str]:
    """One line per thing that changed since the plan was made; empty when nothing did."""
    moved: list[str] = []
    if saved.manifest_digest != now.manifest_digest:
        moved.append(
            "the manifest changed since the plan was made (its expanded desired state has digest "
            f"{now.manifest_digest[:12]}, the plan was made from {saved.manifest_digest[:12]})"
        )
    for name in sorted(set(saved.inputs) | set(now.inputs)):
        files = _files_moved(saved.inputs.get(name, {}), now.inputs.get(name, {}))
        if files:
            moved.append(
                f"storage.input/{name}: local files changed since the plan was made ({_some(files)})"
            )
    for key in _files_moved(saved.packages, now.packages):
        moved.append(f"package/{key}: its content changed since the plan was made")
    resources = (
        ("pool", saved.pool, now.pool),
        ("job", saved.job, now.job),
        ("jobschedule", saved.schedule, now.schedule),
    )
    for kind, before, after in resources:
        line = _resource_moved(kind, before, after)
        if line:
            moved.append(line)
    if saved.tasks != now.tasks:
        job = saved.job.id if saved.job else now.job.id if now.job else "?"
        moved.append(
            f"tasks of job/{job}: changed since the plan was made (states or definitions; "
            f"{saved.task_count} task(s) then, {now.task_count} now)"
        )
    for key in sorted(set(saved.other_jobs) | set(now.other_jobs)):
        then, later = saved.other_jobs.get(key), now.other_jobs.get(key)
        line = _resource_moved("job", then.job if then else None, later.job if later else None)
        if line:
            moved.append(line)
        if (then.tasks if then else None) != (later.tasks if later else None):
            moved.append(
                f"tasks of job/{key}: changed since the plan was made (states or definitions; "
                f"{then.task_count if then else 0} task(s) then, {later.task_count if later else 0} now)"
            )
    if saved.results != now.results:
        moved.append(
            "the record of results changed since the plan was made (tasks finished or another apply ran; "
            f"{saved.result_count} result(s) then, {now.result_count} now)"
        )
    return moved
