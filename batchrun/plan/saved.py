"""Saved plans (``plan -out FILE``, ``apply FILE``): the file format and what the plan was made from. Pure.

A saved plan holds the plan exactly as shown (masked and redacted: never a secret), the options and
ownership marks it was made with, and fingerprints of everything it was made from:

- the manifest: its path, the digest of its expanded desired state, the ``--var-file`` paths and the names
  (never the values) of the ``--var`` flags;
- the content: each storage input file's MD5 and each application package build's sha256;
- live state: the pool's and the job's ETag and lastModified, a digest per top-level property (values only
  for a few plain fields, e.g. ``vmSize``, so a refusal can show them), a digest of the live task states and
  one of the record of results.

``apply FILE`` makes the plan again from the manifest and live state as they are then, with the saved
ownership marks, and carries it out only when every fingerprint is unchanged and the new plan has the same
operations as the saved one; otherwise it refuses and names what moved (:func:`what_moved`,
:func:`plan_differences`). Secrets and local paths are compared in the same sanitised form they are saved in,
so the same plan made on another checkout (CI) compares equal.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from batchrun.errors import PlanError
from batchrun.plan.actions import Plan, plan_to_json
from batchrun.plan.bodies import Ownership
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.live import LiveJob, LivePool, LiveState, PreparedInput, PreparedPackage
from batchrun.plan.secrets import mask
from batchrun.redact import redact

KIND = "batchrun/saved-plan"
FORMAT_VERSION = 1
# Properties that move without anyone changing the resource (node counts, transition times, statistics).
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


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class ResourcePrint:
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


def resource_print(resource: LivePool | LiveJob | None) -> ResourcePrint | None:
    if resource is None:
        return None
    properties = resource.properties
    return ResourcePrint(
        id=resource.id,
        etag=str(properties.get("eTag", "")),
        last_modified=str(properties.get("lastModified", "")),
        fields={k: _digest(v) for k, v in properties.items() if k not in VOLATILE},
        values={k: properties[k] for k in sorted(SHOWN_VALUES) if k in properties},
    )


@dataclass(frozen=True)
class Fingerprints:
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

    def to_json(self) -> dict[str, Any]:
        return {
            "manifestDigest": self.manifest_digest,
            "inputs": {name: dict(files) for name, files in self.inputs.items()},
            "packages": dict(self.packages),
            "pool": self.pool.to_json() if self.pool else None,
            "job": self.job.to_json() if self.job else None,
            "tasks": {"digest": self.tasks, "count": self.task_count},
            "results": {"digest": self.results, "count": self.result_count},
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
        )


def fingerprints(
    manifest_digest: str,
    live: LiveState,
    inputs: Sequence[PreparedInput],
    packages: Sequence[PreparedPackage],
) -> Fingerprints:
    tasks = sorted((k, t.digest, t.state, t.result, t.exit_code) for k, t in live.tasks.items())
    results = sorted((k, tuple(r)) for k, r in live.results.items())
    return Fingerprints(
        manifest_digest=manifest_digest,
        inputs={i.name: {f.blob: f.md5 for f in i.files} for i in inputs},
        packages={f"{p.id}@{p.version}": p.sha256 for p in packages},
        pool=resource_print(live.pool),
        job=resource_print(live.job),
        tasks=_digest(tasks),
        task_count=len(tasks),
        results=_digest(results),
        result_count=len(results),
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
    for kind, before, after in (("pool", saved.pool, now.pool), ("job", saved.job, now.job)):
        line = _resource_moved(kind, before, after)
        if line:
            moved.append(line)
    if saved.tasks != now.tasks:
        job = saved.job.id if saved.job else now.job.id if now.job else "?"
        moved.append(
            f"tasks of job/{job}: changed since the plan was made (states or definitions; "
            f"{saved.task_count} task(s) then, {now.task_count} now)"
        )
    if saved.results != now.results:
        moved.append(
            "the record of results changed since the plan was made (tasks finished or another apply ran; "
            f"{saved.result_count} result(s) then, {now.result_count} now)"
        )
    return moved


def _relative(path: str, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows
        return path


def sanitised_plan(plan: Plan, manifest_folder: Path) -> dict[str, Any]:
    """The plan as saved: write-only values masked, signatures redacted, local paths relative to the
    manifest's folder (so the same plan made on another checkout is equal)."""
    data = plan_to_json(plan)
    for change in data["changes"]:
        for operation in change.get("operations", ()):
            args = operation["args"]
            if operation["name"] == "storage.upload":
                args["files"] = [
                    {**f, "path": _relative(str(f["path"]), manifest_folder)} for f in args["files"]
                ]
            if operation["name"] == "package.upload" and "source" in args:
                args["source"] = _relative(str(args["source"]), manifest_folder)
    parsed: dict[str, Any] = json.loads(redact(json.dumps(mask(data), default=str)))
    return parsed


def _executed(plan_json: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """address -> (action, digest of its operations): what apply does, nothing shown only."""
    return {
        c["address"]: (c["action"], _digest(c.get("operations", []))) for c in plan_json.get("changes", ())
    }


def plan_differences(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Addresses whose action or operations differ between the saved plan and the plan made now."""
    if saved.get("target") != now.get("target"):
        return [
            f"the target: the plan was made against '{saved.get('target')}', now it is '{now.get('target')}'"
        ]
    before, after = _executed(saved), _executed(now)
    lines = []
    for address in sorted(set(before) | set(after), key=lambda a: (a.startswith("task/"), a)):
        if address not in after:
            lines.append(f"{address}: in the saved plan, not in the plan made now")
        elif address not in before:
            lines.append(f"{address}: {after[address][0]} now, not in the saved plan")
        elif before[address][0] != after[address][0]:
            lines.append(f"{address}: {before[address][0]} in the saved plan, {after[address][0]} now")
        elif before[address][1] != after[address][1]:
            lines.append(f"{address}: its operations differ (e.g. a body or a file list)")
    return lines


@dataclass(frozen=True)
class ManifestRef:
    """How to load the manifest again: its path and the variable flags (names only) it was planned with."""

    path: str
    var_files: tuple[str, ...]
    var_names: tuple[str, ...]
    max_tasks: int


@dataclass(frozen=True)
class SavedPlan:
    manifest: ManifestRef
    options: PlanOptions
    ownership: Ownership
    fingerprints: Fingerprints
    plan: Mapping[str, Any]  # sanitised_plan()
    created: str  # ISO 8601 UTC


def _options_json(options: PlanOptions) -> dict[str, Any]:
    return {
        f.name: list(v) if isinstance(v := getattr(options, f.name), tuple) else v for f in fields(options)
    }


def _options_from_json(data: Mapping[str, Any]) -> PlanOptions:
    known = {f.name for f in fields(PlanOptions)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"options {', '.join(unknown)} are not known to this batchrun version")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return PlanOptions(**values)


def _ownership_json(ownership: Ownership) -> dict[str, Any]:
    return {
        "workload": ownership.workload,
        "digest": ownership.digest,
        "revision": ownership.revision,
        "labels": [list(pair) for pair in ownership.labels],
        "salt": ownership.salt,
    }


def saved_plan_to_json(saved: SavedPlan) -> dict[str, Any]:
    return {
        "kind": KIND,
        "formatVersion": FORMAT_VERSION,
        "created": saved.created,
        "manifest": {
            "path": saved.manifest.path,
            "varFiles": list(saved.manifest.var_files),
            "varNames": list(saved.manifest.var_names),
            "maxTasks": saved.manifest.max_tasks,
        },
        "options": _options_json(saved.options),
        "ownership": _ownership_json(saved.ownership),
        "madeFrom": saved.fingerprints.to_json(),
        "plan": dict(saved.plan),
    }


def dumps(saved: SavedPlan) -> str:
    """The file's text: JSON, and checked once more for anything secret-looking (redact is idempotent)."""
    return redact(json.dumps(saved_plan_to_json(saved), indent=1, default=str)) + "\n"


def is_saved_plan(text: str) -> bool:
    """Whether ``text`` (a file's start) is a saved plan rather than a manifest."""
    return text.lstrip().startswith("{") and f'"{KIND}"' in text[:200]


def loads(text: str, where: str) -> SavedPlan:
    """Parse a saved plan; a damaged or foreign file is a :class:`PlanError` naming ``where``."""
    try:
        data = json.loads(text)
        if data.get("kind") != KIND:
            raise ValueError(f"kind is {data.get('kind')!r}, not {KIND!r}")
        if data.get("formatVersion") != FORMAT_VERSION:
            raise PlanError(
                f"{where}: saved plan format {data.get('formatVersion')!r} is not supported (expected "
                f"{FORMAT_VERSION}); make the plan again with this batchrun version (`batchrun plan -out`)."
            )
        manifest, options, owner = data["manifest"], data["options"], data["ownership"]
        return SavedPlan(
            manifest=ManifestRef(
                str(manifest["path"]),
                tuple(manifest.get("varFiles", ())),
                tuple(manifest.get("varNames", ())),
                int(manifest["maxTasks"]),
            ),
            options=_options_from_json(options),
            ownership=Ownership(
                str(owner["workload"]),
                str(owner["digest"]),
                str(owner["revision"]),
                tuple((str(k), str(v)) for k, v in owner.get("labels", ())),
                str(owner["salt"]),
            ),
            fingerprints=Fingerprints.from_json(data["madeFrom"]),
            plan=data["plan"],
            created=str(data.get("created", "")),
        )
    except PlanError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PlanError(
            f"{where}: not a readable saved plan ({error}); "
            "make it again with `batchrun plan MANIFEST -out FILE`."
        ) from error
