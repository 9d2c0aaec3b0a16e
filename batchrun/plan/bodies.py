"""Desired REST bodies for the pool, the job and each task, with batchrun's ownership marks.

Pools and jobs carry metadata ``batchrun.workload`` (ownership), ``batchrun.digest`` (the manifest's digest
when batchrun last wrote the resource) and ``batchrun.revision`` (the manifest's git commit). Tasks cannot
carry metadata, so each carries the environment setting ``BATCHRUN_TASK_DIGEST``: its identity over its
definition and everything it reads (see :mod:`batchrun.plan.task_identity`), never the SAS URLs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
from msgspec.structs import replace

from batchrun.model import JobSpec, PoolSpec, TaskSpec, Workload
from batchrun.plan.actions import InputBinding
from batchrun.plan.last_applied import KEYS_KEY, applied_of, applied_record
from batchrun.plan.live import DIGEST_KEY, LABELS_KEY, REVISION_KEY, TASK_DIGEST_ENV, WORKLOAD_KEY
from batchrun.plan.secrets import SECRETS_KEY, secrets_record

OWNERSHIP_KEYS = frozenset({WORKLOAD_KEY, DIGEST_KEY, REVISION_KEY, LABELS_KEY, KEYS_KEY, SECRETS_KEY})


class Ownership(msgspec.Struct, frozen=True):
    """batchrun's marks on a pool or job. ``salt`` (hex) overrides the salt of the digests of write-only
    values, which is otherwise derived from the workload and the resource id (stable, so a plan made twice
    is equal); ``marks`` are the per-resource items ``batchrun.keys`` and ``batchrun.secrets``
    (see :func:`marked`)."""

    workload: str
    digest: str
    revision: str  # "" outside git
    labels: tuple[tuple[str, str], ...] = ()
    salt: str = ""
    marks: tuple[tuple[str, str], ...] = ()

    def metadata(self) -> dict[str, str]:
        items = {WORKLOAD_KEY: self.workload, DIGEST_KEY: self.digest}
        if self.revision:
            items[REVISION_KEY] = self.revision
        if self.labels:
            items[LABELS_KEY] = canonical_json(dict(self.labels))
        items.update(self.marks)
        return items

    def salt_hex(self, resource: str) -> str:
        return self.salt or hashlib.sha256(f"batchrun:{self.workload}:{resource}".encode()).hexdigest()[:32]


# One encoder for every digest: json.dumps with options builds a new encoder per call (slow at 100,000 tasks).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
# The same encoding by the C encoder that JSONEncoder.encode makes anew at each call, made once (without
# the check for circular references, which a manifest's data cannot have): 0.7 us for a task's properties
# instead of 1.8 us, a tenth of a no-change plan's CPU at 10,000 tasks. Where the C encoder is missing,
# the encoder above.
_MAKE_C_ENCODER: Any = getattr(json.encoder, "c_make_encoder", None)  # not in the stdlib's type stubs
_C_CANONICAL: Any = (
    None
    if _MAKE_C_ENCODER is None
    else _MAKE_C_ENCODER(None, str, json.encoder.encode_basestring, None, ":", ",", True, False, True)
)


def canonical_json(value: Any) -> str:
    """``value`` as JSON with sorted keys and no spaces, non-ASCII kept as it is (what digests hash)."""
    if _C_CANONICAL is None:
        return _CANONICAL.encode(value)
    return "".join(_C_CANONICAL(value, 0))


def metadata_list(user: Sequence[Mapping[str, Any]], ownership: Ownership) -> list[dict[str, str]]:
    """The manifest's metadata items followed by batchrun's (which win on a name clash)."""
    marks = ownership.metadata()
    items = [{"name": str(i["name"]), "value": str(i["value"])} for i in user if i["name"] not in marks]
    items.extend({"name": name, "value": value} for name, value in marks.items())
    return items


def user_metadata(properties: Mapping[str, Any]) -> dict[str, str]:
    return {str(i["name"]): str(i["value"]) for i in properties.get("metadata", ()) or ()}


def marked(
    body: Mapping[str, Any], ownership: Ownership, kept: Sequence[Mapping[str, Any]] = ()
) -> tuple[dict[str, Any], Ownership]:
    """``body`` with its metadata rebuilt: the manifest's items, ``kept`` items others set on the live
    resource, then batchrun's marks including ``batchrun.keys`` (what this body sets) and
    ``batchrun.secrets`` (digests of its write-only values). Also the ownership carrying those marks, for
    later writes of the same resource's metadata."""
    user = [i for i in body.get("metadata", ()) or () if i["name"] not in OWNERSHIP_KEYS]
    names = [str(i["name"]) for i in user]
    marks = [(KEYS_KEY, applied_record(applied_of(body, names)))]
    secrets = secrets_record(body, ownership.salt_hex(str(body.get("id", ""))))
    if secrets:
        marks.append((SECRETS_KEY, secrets))
    with_marks = replace(ownership, marks=tuple(marks))
    others = [i for i in kept if i["name"] not in OWNERSHIP_KEYS and i["name"] not in names]
    result = dict(body)
    result["metadata"] = metadata_list([*user, *others], with_marks)
    return result, with_marks


def pool_body(pool: PoolSpec, ownership: Ownership) -> dict[str, Any]:
    body = {key: value for key, value in pool.properties.items() if key != "metadata"}
    body["id"] = pool.id
    body["metadata"] = list(pool.properties.get("metadata", ()) or ())
    return marked(body, ownership)[0]


def job_body(job: JobSpec, ownership: Ownership) -> dict[str, Any]:
    """The create body, with ``onAllTasksComplete: noaction`` until the tasks are in (no tasks = complete)."""
    body = {
        key: value for key, value in job.properties.items() if key not in ("metadata", "onAllTasksComplete")
    }
    body["id"] = job.id
    body["onAllTasksComplete"] = "noaction"
    body["metadata"] = metadata_list(job.properties.get("metadata", ()) or (), ownership)
    return body


def task_body(task: TaskSpec, digest: str) -> dict[str, Any]:
    """The task body without storage URLs (added at apply time from ``inputs``/``outputs``)."""
    body = dict(task.properties)
    body["id"] = task.id
    environment = [
        dict(item)
        for item in body.get("environmentSettings", ()) or ()
        if item.get("name") != TASK_DIGEST_ENV
    ]
    environment.append({"name": TASK_DIGEST_ENV, "value": digest})
    body["environmentSettings"] = environment
    return body


def task_operation_args(task: TaskSpec, digest: str) -> dict[str, Any]:
    args: dict[str, Any] = {"body": task_body(task, digest)}
    if task.inputs:
        args["inputs"] = list(task.inputs)
    if task.input_paths:
        args["inputPaths"] = {name: list(paths) for name, paths in task.input_paths.items()}
    if task.output_inputs:
        args["readsOutputs"] = list(task.output_inputs)
    if task.outputs:
        args["outputs"] = [
            {"pattern": o.pattern, "path": o.path, "uploadCondition": o.upload_condition}
            for o in task.outputs
        ]
    return args


def input_bindings(workload: Workload) -> dict[str, InputBinding]:
    return {i.name: InputBinding(i.name, i.container, i.prefix) for i in workload.inputs}
