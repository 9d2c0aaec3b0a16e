"""Semantic checks and resolution of the manifest's non-task parts: storage, packages, pool and job.

Runs on data that already passed the schema, so shapes and types are known; what is checked here needs more
than a schema: sources on disk, references between sections, fixed scale xor autoscale, the job's pool.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from msgspec import field

from batchrun.errors import Diagnostic
from batchrun.manifest.load import Document, PathKey
from batchrun.manifest.sources import source_problems
from batchrun.manifest.suggest import did_you_mean
from batchrun.model import PackageSpec, PoolSpec, StorageInput, StorageOutputs
from batchrun.model.durations import duration_seconds


class Resources(msgspec.Struct):
    """The resolved non-task parts of a manifest."""

    inputs: dict[str, StorageInput] = field(default_factory=dict)
    outputs: StorageOutputs | None = None
    packages: tuple[PackageSpec, ...] = ()
    pool: PoolSpec | None = None
    job_id: str | None = None
    job_properties: dict[str, Any] = field(default_factory=dict)


def resolve_source(
    document: Document, path: PathKey, source: str, allow_outside: bool, problems: list[Diagnostic]
) -> Path:
    """The absolute source path; reports a missing source or one outside the manifest's folder."""
    folder = document.path.parent
    resolved = Path(os.path.normpath(folder / os.path.expanduser(source)))
    if not resolved.exists():
        problems.append(
            document.diagnostic(
                path,
                f"source {source!r} does not exist ({resolved})",
                "check the path; it is relative to the manifest's folder",
            )
        )
        return resolved
    if not allow_outside:
        real_folder = os.path.realpath(folder)
        real_source = os.path.realpath(resolved)
        if os.path.commonpath([real_folder, real_source]) != real_folder:
            problems.append(
                document.diagnostic(
                    path,
                    f"source {source!r} is outside the manifest's folder",
                    "move it under the manifest's folder, or set allowOutsideSource: true",
                )
            )
    for message, hint in source_problems(resolved):  # links and special files inside are never followed
        problems.append(document.diagnostic(path, message, hint))
    return resolved


def resolve_storage(
    document: Document, storage: Mapping[str, Any], result: Resources, problems: list[Diagnostic]
) -> None:
    for index, entry in enumerate(storage.get("inputs", [])):
        path: PathKey = ("storage", "inputs", index)
        name = entry["name"]
        if name in result.inputs:
            problems.append(
                document.diagnostic(
                    (*path, "name"), f"duplicate storage input name {name!r}", "give each input its own name"
                )
            )
            continue
        source = resolve_source(
            document,
            (*path, "source"),
            entry["source"],
            bool(entry.get("allowOutsideSource", False)),
            problems,
        )
        prefix = entry.get("prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        prefix = prefix.lstrip("/")
        result.inputs[name] = StorageInput(
            name=name, source=source, container=entry["container"], prefix=prefix
        )
    outputs = storage.get("outputs")
    if outputs is not None:
        result.outputs = StorageOutputs(container=outputs["container"])


def resolve_packages(
    document: Document, packages: list[Mapping[str, Any]], result: Resources, problems: list[Diagnostic]
) -> None:
    seen: set[tuple[str, str]] = set()
    specs: list[PackageSpec] = []
    for index, entry in enumerate(packages):
        path: PathKey = ("packages", index)
        key = (entry["id"].lower(), entry["version"])
        if key in seen:
            problems.append(
                document.diagnostic(
                    path,
                    f"package {entry['id']}@{entry['version']} is listed twice",
                    "keep one entry per id and version",
                )
            )
            continue
        seen.add(key)
        source = resolve_source(
            document,
            (*path, "source"),
            entry["source"],
            bool(entry.get("allowOutsideSource", False)),
            problems,
        )
        if source.is_file() and source.suffix.lower() != ".zip":
            problems.append(
                document.diagnostic(
                    (*path, "source"),
                    f"package source {entry['source']!r} is a file but not a .zip",
                    "point it at a directory or a .zip file",
                )
            )
        specs.append(
            PackageSpec(
                id=entry["id"],
                version=entry["version"],
                source=source,
                set_default=bool(entry.get("setDefault", False)),
                allow_updates=bool(entry.get("allowUpdates", False)),
            )
        )
    result.packages = tuple(specs)


def package_references(
    document: Document,
    path: PathKey,
    names: list[str],
    existing: list[Any],
    packages: tuple[PackageSpec, ...],
    problems: list[Diagnostic],
) -> list[Any]:
    """``existing`` applicationPackageReferences plus one ``{applicationId, version}`` per short-form name."""
    references = list(existing)
    taken = {
        str(reference.get("applicationId", "")).lower()
        for reference in existing
        if isinstance(reference, dict)
    }
    ids = sorted({package.id for package in packages})
    for index, name in enumerate(names):
        versions = [package for package in packages if package.id.lower() == name.lower()]
        if not versions:
            problems.append(
                document.diagnostic(
                    (*path, index),
                    f"no package {name!r} in the manifest's packages",
                    did_you_mean(name, ids) or f"packages: {', '.join(ids) or 'none'}",
                )
            )
            continue
        if len(versions) > 1:
            problems.append(
                document.diagnostic(
                    (*path, index),
                    f"package {name!r} has several versions in the manifest",
                    "reference one with applicationPackageReferences: [{applicationId, version}]",
                )
            )
            continue
        if name.lower() in taken:
            problems.append(
                document.diagnostic(
                    (*path, index),
                    f"package {name!r} is also in applicationPackageReferences",
                    "list it only once",
                )
            )
            continue
        taken.add(name.lower())
        references.append({"applicationId": versions[0].id, "version": versions[0].version})
    return references


def check_scale(document: Document, pool: Mapping[str, Any], problems: list[Diagnostic]) -> None:
    fixed = [
        key for key in ("targetDedicatedNodes", "targetLowPriorityNodes", "resizeTimeout") if key in pool
    ]
    if pool.get("enableAutoScale"):
        if "autoScaleFormula" not in pool:
            problems.append(
                document.diagnostic(
                    ("pool", "enableAutoScale"),
                    "autoscale needs an autoScaleFormula",
                    "add autoScaleFormula, or set enableAutoScale: false",
                )
            )
        for key in fixed:
            problems.append(
                document.diagnostic(
                    ("pool", key),
                    f"{key} cannot be combined with enableAutoScale: true",
                    "use a fixed scale (targetDedicatedNodes/targetLowPriorityNodes) or autoscale, not both",
                    key=True,
                )
            )
        interval = pool.get("autoScaleEvaluationInterval")
        seconds = duration_seconds(interval) if isinstance(interval, str) else None
        if seconds is not None and not 300 <= seconds <= 168 * 3600:
            problems.append(
                document.diagnostic(
                    ("pool", "autoScaleEvaluationInterval"),
                    f"autoScaleEvaluationInterval {interval} is out of range",
                    "use between PT5M and PT168H",
                )
            )
    else:
        for key in ("autoScaleFormula", "autoScaleEvaluationInterval"):
            if key in pool:
                problems.append(
                    document.diagnostic(
                        ("pool", key),
                        f"{key} needs enableAutoScale: true",
                        "set enableAutoScale: true and drop targetDedicatedNodes/targetLowPriorityNodes, "
                        "or remove "
                        f"{key}",
                        key=True,
                    )
                )


_PACKAGE_VARIABLE = re.compile(r"AZ_BATCH_APP_PACKAGE_(\w+)", re.IGNORECASE)


def _flat(text: str) -> str:
    """How Batch spells an id or version in an environment variable name on Linux ('.', '-', '#' -> '_')."""
    return re.sub(r"[.\-#]", "_", text).lower()


def check_package_variables(
    document: Document,
    pool: Any,
    tasks: Any,
    packages: tuple[PackageSpec, ...],
    problems: list[Diagnostic],
) -> None:
    """A command line that names ``$AZ_BATCH_APP_PACKAGE_<id>_<version>`` for a version of one of the
    manifest's packages that the manifest no longer has (left behind by a version bump): the variable would
    be empty on the node. ``pool`` and ``tasks`` are the manifest's, as written."""
    versions: dict[str, list[PackageSpec]] = {}
    for package in packages:
        versions.setdefault(_flat(package.id), []).append(package)
    if not versions:
        return
    valid = set(versions) | {f"{_flat(p.id)}_{_flat(p.version)}" for p in packages}
    places: list[tuple[PathKey, Any]] = []
    if isinstance(pool, dict) and isinstance(pool.get("startTask"), dict):
        places.append((("pool", "startTask", "commandLine"), pool["startTask"].get("commandLine")))
    if isinstance(tasks, list):
        for index, task in enumerate(tasks):
            if isinstance(task, dict):
                places.append((("job", "tasks", index, "commandLine"), task.get("commandLine")))
    for path, command in places:
        if not isinstance(command, str):
            continue
        for match in _PACKAGE_VARIABLE.finditer(command):
            name = match.group(1).lower()
            if name in valid:
                continue
            owners = sorted((flat for flat in versions if name.startswith(flat + "_")), key=len)
            if not owners:
                continue  # a package the manifest does not build (referenced by id elsewhere)
            known = versions[owners[-1]]
            have = ", ".join(p.version for p in known)
            use = " or ".join(f"AZ_BATCH_APP_PACKAGE_{p.id}_{_flat(p.version)}" for p in known)
            problems.append(
                document.diagnostic(
                    path,
                    f"{match.group(0)} names a version of package {known[0].id!r} that the manifest does not "
                    f"have (it has {have}); the variable would be empty on the node",
                    f"use {use}, or AZ_BATCH_APP_PACKAGE_{known[0].id} for the default version",
                )
            )


def resolve_resources(
    document: Document,
    data: Mapping[str, Any],
    problems: list[Diagnostic],
    skip: frozenset[str] = frozenset(),
) -> Resources:
    """Resolve storage, packages, pool and job (without tasks); append every problem to ``problems``.

    Sections named in ``skip`` (they failed the schema) are left out, with the sections that depend on them.
    """
    result = Resources()
    if "storage" not in skip:
        resolve_storage(document, data.get("storage") or {}, result, problems)
    if "packages" not in skip:
        resolve_packages(document, data.get("packages") or [], result, problems)
    pool = data.get("pool")
    if "pool" in skip or ("packages" in skip and isinstance(pool, dict) and "packages" in pool):
        return result  # the job's checks need the pool
    if pool is not None:
        check_scale(document, pool, problems)
        properties = {key: value for key, value in pool.items() if key not in ("id", "packages")}
        if "packages" in pool:
            properties["applicationPackageReferences"] = package_references(
                document,
                ("pool", "packages"),
                pool["packages"],
                pool.get("applicationPackageReferences", []),
                result.packages,
                problems,
            )
        result.pool = PoolSpec(id=pool["id"], properties=properties)
    job = data.get("job")
    if job is not None and "job" not in skip:
        result.job_id = job["id"]
        properties = {key: value for key, value in job.items() if key not in ("id", "tasks")}
        pool_info = properties.get("poolInfo")
        if pool_info is None:
            if result.pool is None:
                problems.append(
                    document.diagnostic(
                        ("job",),
                        "the job has no pool",
                        "add a 'pool' section, or set job.poolInfo.poolId to an existing pool",
                    )
                )
            else:
                properties["poolInfo"] = {"poolId": result.pool.id}
        elif result.pool is not None and pool_info.get("poolId") not in (None, result.pool.id):
            problems.append(
                document.diagnostic(
                    ("job", "poolInfo", "poolId"),
                    f"job.poolInfo.poolId {pool_info['poolId']!r} is not the manifest's pool "
                    f"{result.pool.id!r}",
                    "remove job.poolInfo (it defaults to the manifest's pool)",
                )
            )
        elif result.pool is not None and "autoPoolSpecification" in pool_info:
            problems.append(
                document.diagnostic(
                    ("job", "poolInfo", "autoPoolSpecification"),
                    "the job uses an auto pool but the manifest also declares a pool",
                    "remove one of them",
                    key=True,
                )
            )
        result.job_properties = properties
    return result
