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
operations as the saved one; otherwise it refuses and names what moved
(:func:`batchrun.plan.fingerprints.what_moved`, :func:`plan_differences`). Secrets and local paths are
compared in the same sanitised form they are saved in, so the same plan made on another checkout (CI) compares
equal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
from msgspec.structs import fields

from batchrun.errors import PlanError
from batchrun.plan.actions import Plan
from batchrun.plan.bodies import Ownership
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.fingerprints import Fingerprints, digest
from batchrun.plan.plan_json import plan_to_json
from batchrun.plan.secrets import mask
from batchrun.redact import redact

KIND = "batchrun/saved-plan"
SET_KIND = "batchrun/saved-plans"  # several workloads' plans, saved by one `plan -out` of several manifests
FORMAT_VERSION = 1


# Properties that move without anyone changing the resource (node counts, transition times, statistics).
def _relative(path: str, base: Path) -> str:
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive on Windows
        return path


def sanitised_plan(plan: Plan, manifest_folder: Path) -> dict[str, Any]:
    """The plan as saved: write-only values masked, signatures redacted, local paths relative to the
    manifest's folder and no stat data of local files (so the same plan made on another checkout, or after
    the files were written again with the same content, is equal; apply carries out the plan it makes again,
    with the stat data of now)."""
    data = plan_to_json(plan)
    for change in data["changes"]:
        for operation in change.get("operations", ()):
            args = operation["args"]
            if operation["name"] == "storage.upload":
                args["files"] = [
                    {
                        **{key: value for key, value in f.items() if key != "stat"},
                        "path": _relative(str(f["path"]), manifest_folder),
                    }
                    for f in args["files"]
                ]
            if operation["name"] == "package.upload" and "source" in args:
                args["source"] = _relative(str(args["source"]), manifest_folder)
    parsed: dict[str, Any] = json.loads(redact(json.dumps(mask(data), default=str)))
    return parsed


def _executed(plan_json: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """address -> (action, digest of its operations): what apply does, nothing shown only."""
    return {
        c["address"]: (c["action"], digest(c.get("operations", []))) for c in plan_json.get("changes", ())
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


class ManifestRef(msgspec.Struct, frozen=True):
    """How to load the manifest again: its path and the variable flags (names only) it was planned with."""

    path: str
    var_files: tuple[str, ...]
    var_names: tuple[str, ...]
    max_tasks: int


class SavedPlan(msgspec.Struct, frozen=True):
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


def dumps_set(saved: Sequence[SavedPlan]) -> str:
    """Several workloads' saved plans in one file, in the order they are applied."""
    document = {
        "kind": SET_KIND,
        "formatVersion": FORMAT_VERSION,
        "plans": [saved_plan_to_json(one) for one in saved],
    }
    return redact(json.dumps(document, indent=1, default=str)) + "\n"


def is_saved_plan(text: str) -> bool:
    """Whether ``text`` (a file's start) is a saved plan (or a set of them) rather than a manifest."""
    start = text.lstrip()[:200]
    return text.lstrip().startswith("{") and (f'"{KIND}"' in start or f'"{SET_KIND}"' in start)


def loads_all(text: str, where: str) -> tuple[SavedPlan, ...]:
    """The saved plans of a file written by :func:`dumps` (one) or :func:`dumps_set` (several)."""
    try:
        data = json.loads(text)
    except ValueError as error:
        raise PlanError(
            f"{where}: not a readable saved plan ({error}); "
            "make it again with `batchrun plan MANIFEST -out FILE`."
        ) from error
    if not isinstance(data, dict) or data.get("kind") != SET_KIND:
        return (loads(text, where),)
    if data.get("formatVersion") == FORMAT_VERSION and data.get("plans") == []:
        raise PlanError(
            f"{where}: the saved plan set holds no plans; make it again with `batchrun plan -out`."
        )
    if data.get("formatVersion") != FORMAT_VERSION or not isinstance(data.get("plans"), list):
        raise PlanError(
            f"{where}: saved plan format {data.get('formatVersion')!r} is not supported (expected "
            f"{FORMAT_VERSION}); make the plan again with this batchrun version (`batchrun plan -out`)."
        )
    return tuple(
        loads(json.dumps(one), f"{where} (plan {index + 1})") for index, one in enumerate(data["plans"])
    )


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
