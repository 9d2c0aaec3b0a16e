"""load -> variables -> substitution -> schema -> semantic checks -> expansion -> Workload.

Every stage collects its problems; the manifest is rejected with all of them at once. The schema sees each
task template once, rendered with the first combination of its axes (so typed ``${axis}`` values are checked
as the values they become); 100,000 expanded tasks never go through jsonschema.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec.structs

from batchrun.errors import Diagnostic, ManifestError
from batchrun.manifest.dependencies import resolve_dependencies
from batchrun.manifest.expand import ExpandedTask, TaskChecks, TaskTemplate
from batchrun.manifest.factories import (
    AxisError,
    FileItem,
    axis_length,
    axis_values,
    combination_count,
    combinations,
)
from batchrun.manifest.job_tasks import ManifestTasks
from batchrun.manifest.limits import TaskSizes, expansion_problems
from batchrun.manifest.load import Document, load_document
from batchrun.manifest.render import TaskDigest, workload_digest
from batchrun.manifest.resources import Resources, check_package_variables, resolve_resources, resolve_storage
from batchrun.manifest.several_jobs import load_jobs
from batchrun.manifest.template import Compiled, Compiler, SubstitutionError
from batchrun.manifest.validate import SchemaChecker, SchemaPaths
from batchrun.manifest.variables import resolve_variables
from batchrun.model import JobSpec, StorageInput, Workload

DEFAULT_MAX_TASKS = 100_000


class _Unresolved:
    """Stands in for an axis whose values are unknown (the axis is invalid) while checking the schema."""

    ATTRIBUTES = FileItem.ATTRIBUTES  # a files axis that failed: ${f.stem} is as unknown as ${f}

    def __init__(self, name: str) -> None:
        self._axis = name

    def __getattr__(self, attribute: str) -> _Unresolved:
        if attribute in FileItem.ATTRIBUTES:
            return _Unresolved(f"{self._axis}.{attribute}")
        raise AttributeError(attribute)

    def __format__(self, spec: str) -> str:
        return f"${{{self._axis}}}"

    def __str__(self) -> str:
        return f"${{{self._axis}}}"


def _substitution_problems(document: Document, compiler: Compiler) -> list[Diagnostic]:
    return [document.diagnostic(error.path, error.message, error.hint) for error in compiler.errors]


def _inputs_for_axes(document: Document, data: Mapping[str, Any]) -> dict[str, StorageInput]:
    """Storage inputs as far as they can be resolved before validation (for ``{files: ...}`` axes)."""
    storage = data.get("storage")
    if not isinstance(storage, dict):
        return {}
    entries = storage.get("inputs")
    if not isinstance(entries, list):
        return {}
    usable = [
        entry
        for entry in entries
        if isinstance(entry, dict)
        and all(isinstance(entry.get(key), str) for key in ("name", "source", "container"))
        and isinstance(entry.get("prefix", ""), str)
    ]
    result = Resources()
    resolve_storage(document, {"inputs": usable}, result, [])
    return result.inputs


def _templates(
    document: Document,
    paths: SchemaPaths,
    raw_tasks: list[Any],
    variables: Mapping[str, Any],
    inputs: Mapping[str, StorageInput],
    problems: list[Diagnostic],
) -> tuple[list[TaskTemplate], list[Any]]:
    """Compiled templates, and each template rendered once for the schema check."""
    templates: list[TaskTemplate] = []
    views: list[Any] = []
    for index, raw in enumerate(raw_tasks):
        path = ("job", "tasks", index)
        if not isinstance(raw, dict):
            templates.append(TaskTemplate(index, Compiled(raw)))
            views.append(raw)
            continue
        foreach = raw.get("foreach")
        axis_names = frozenset(foreach) if isinstance(foreach, dict) else frozenset()
        axes_compiler = Compiler(variables, text_only=paths.text_only)
        axes_spec = (
            axes_compiler.compile(foreach, (*path, "foreach")).constant if foreach is not None else None
        )
        problems.extend(_substitution_problems(document, axes_compiler))
        body_compiler = Compiler(variables, axis_names, paths.text_only)
        body = body_compiler.compile({key: value for key, value in raw.items() if key != "foreach"}, path)
        problems.extend(_substitution_problems(document, body_compiler))
        axes: dict[str, Any] = {}
        axes_ok = True
        if isinstance(axes_spec, dict):
            for name, spec in axes_spec.items():
                try:
                    axes[name] = axis_values(name, spec, inputs)
                except AxisError as error:
                    axes_ok = False
                    if not error.reported:
                        where = (*path, "foreach", name)
                        problems.append(document.diagnostic(where, error.message, error.hint))
        zipped = raw.get("zip") is True
        if zipped and axes_ok and len({axis_length(values) for values in axes.values()}) > 1:
            lengths = ", ".join(f"{name}: {axis_length(values)}" for name, values in axes.items())
            problems.append(
                document.diagnostic(
                    (*path, "zip"),
                    f"zipped axes have different lengths ({lengths})",
                    "give every axis the same number of values, or drop zip: true",
                )
            )
            axes_ok = False
        if axes_ok:
            template = TaskTemplate(index, body, axes, zipped)
            first = next(combinations(axes, zipped), {})
        else:
            template = TaskTemplate(index, body, {name: [] for name in axis_names})
            first = {name: _Unresolved(name) for name in axis_names}
        try:
            view = dict(body.value(first))
        except SubstitutionError as error:
            problems.append(document.diagnostic(error.path, error.message, error.hint))
            view = {key: value for key, value in raw.items() if key != "foreach"}
        if foreach is not None:
            view["foreach"] = axes_spec
        templates.append(template)
        views.append(view)
    return templates, views


def _broken_sections(document: Document, problems: list[Diagnostic]) -> frozenset[str] | None:
    """Top-level sections with problems so far, or None when a problem spoils everything (a variable, the
    document's root)."""
    sections: set[str] = set()
    for problem in problems:
        match = re.match(r"[A-Za-z_]+", problem.path)
        if problem.file != document.file or match is None or match.group(0) == "variables":
            return None
        sections.add("job" if match.group(0) == "jobs" else match.group(0))
    return frozenset(sections)


def load_workload(
    path: Path,
    variables: Mapping[str, str] = {},
    var_files: Sequence[Path] = (),
    max_tasks: int = DEFAULT_MAX_TASKS,
) -> Workload:
    """Load, validate and expand one manifest. Raises ManifestError holding every problem found."""
    try:
        return _load_workload(Path(path), variables, var_files, max_tasks)
    except RecursionError:
        raise ManifestError(
            [Diagnostic(str(path), 0, 0, "the manifest is nested too deeply", "", "flatten the document")]
        ) from None


def _load_workload(
    path: Path, variables: Mapping[str, str], var_files: Sequence[Path], max_tasks: int
) -> Workload:
    document = load_document(path)
    checker = SchemaChecker()  # one per manifest, whatever its number of jobs
    if isinstance(document.data, dict) and "jobs" in document.data:
        return load_jobs(
            document,
            lambda view: _load_document(view, variables, var_files, max_tasks, checker),
            workload_digest,
            max_tasks,
        )
    workload = _load_document(document, variables, var_files, max_tasks, checker, hash_as_checked=True)
    return (
        workload if workload.digest else msgspec.structs.replace(workload, digest=workload_digest(workload))
    )


def _load_document(
    document: Document,
    variables: Mapping[str, str],
    var_files: Sequence[Path],
    max_tasks: int,
    checker: SchemaChecker,
    hash_as_checked: bool = False,
) -> Workload:
    """The workload of one document (its job's tasks made when read). Its digest is "" unless
    ``hash_as_checked`` and it could be hashed as the tasks were checked (no task waits for another)."""
    problems: list[Diagnostic] = []
    values = resolve_variables(document, variables, var_files, problems)
    data: dict[str, Any] = document.data
    job = data.get("job")
    raw_tasks = job.get("tasks") if isinstance(job, dict) else None
    skeleton = {key: value for key, value in data.items() if key != "variables"}
    if isinstance(job, dict) and "tasks" in job:
        skeleton["job"] = {key: value for key, value in job.items() if key != "tasks"}
    paths = SchemaPaths(checker.schema)
    compiler = Compiler(values, text_only=paths.text_only)
    resolved: dict[str, Any] = compiler.compile(skeleton, ()).constant
    problems.extend(_substitution_problems(document, compiler))

    templates: list[TaskTemplate] = []
    view = dict(resolved)
    if "variables" in data:
        view["variables"] = data["variables"]
    if isinstance(raw_tasks, list):
        inputs = _inputs_for_axes(document, resolved)
        templates, task_views = _templates(document, paths, raw_tasks, values, inputs, problems)
        view["job"] = {**resolved["job"], "tasks": task_views}
    elif isinstance(job, dict) and "tasks" in job:
        view["job"] = {**resolved["job"], "tasks": raw_tasks}
    problems.extend(checker.check(document, view))
    broken = _broken_sections(document, problems)
    if broken is None:
        raise ManifestError(problems)
    # Check what the broken sections do not spoil, so that one run reports as much as it can.
    resources = resolve_resources(document, resolved, problems, broken)
    check_package_variables(document, resolved.get("pool"), raw_tasks, resources.packages, problems)
    if broken & {"job", "pool", "storage", "packages"}:
        raise ManifestError(problems)
    total = sum(combination_count(template.axes, template.zipped) for template in templates)
    if total > max_tasks:
        problems.append(
            document.diagnostic(
                ("job", "tasks"),
                f"the job expands to {total:,} tasks, more than the limit of {max_tasks:,}",
                "reduce the factory axes, or raise the limit with --max-tasks N (or BATCHRUN_MAX_TASKS)",
            )
        )
        raise ManifestError(problems)
    if size_problems := expansion_problems(document, resolved, templates, raw_tasks):  # before expanding
        raise ManifestError(problems + size_problems)
    # Each task is made and checked once here, and made again whenever it is read (ManifestTasks): only the
    # tasks that wait for others are held, to resolve their dependencies.
    checks = TaskChecks(document, templates, resources, problems)
    sizes = TaskSizes(document, templates, raw_tasks)
    waiting: list[ExpandedTask] = []
    digest: TaskDigest | None = None
    # Hashed as the tasks go by only when no entry has dependencies: a task's resolved dependsOn is known only
    # after the pass, and the job's properties may gain usesTaskDependencies (both are in the digest).
    waits = any(isinstance(raw, dict) and "dependsOn" in raw for raw in raw_tasks or ())
    if hash_as_checked and not problems and not waits and resources.job_id is not None:
        digest = TaskDigest(
            _workload(document, resolved, resources, JobSpec(resources.job_id, resources.job_properties))
        )
    for task in checks.tasks():
        sizes.check(task)
        if task.depends_on is not None:
            waiting.append(task)
        elif digest is not None:
            digest.add(task.spec())
    problems.extend(sizes.problems)
    uses_dependencies = bool(waiting) and resolve_dependencies(document, checks.ids(), waiting, problems)
    job_spec: JobSpec | None = None
    if resources.job_id is not None:
        properties = resources.job_properties
        if uses_dependencies:
            if properties.get("usesTaskDependencies") is False:
                problems.append(
                    document.diagnostic(
                        ("job", "usesTaskDependencies"),
                        "tasks have dependencies but usesTaskDependencies is false",
                        "remove usesTaskDependencies (batchrun sets it when tasks have dependencies)",
                    )
                )
            properties["usesTaskDependencies"] = True
        job_spec = JobSpec(
            id=resources.job_id,
            properties=properties,
            tasks=ManifestTasks(
                templates,
                checks.maker,
                {
                    task.position: task.properties["dependsOn"]
                    for task in waiting
                    if "dependsOn" in task.properties
                },
            ),
        )
    schedule = resolved.get("schedule")
    if schedule is not None and job_spec is not None and "jobManagerTask" in job_spec.properties:
        problems.append(
            document.diagnostic(
                ("job", "jobManagerTask"),
                "a scheduled job's job manager task is batchrun's: it adds the manifest's tasks to each run",
                "remove job.jobManagerTask, or remove `schedule` and keep your own job manager",
                key=True,
            )
        )
    if schedule is not None and job_spec is None:
        problems.append(
            document.diagnostic(
                ("schedule",),
                "a schedule runs the manifest's job, and the manifest has no job",
                "add a `job` with its tasks, or remove `schedule`",
                key=True,
            )
        )
    if problems:
        raise ManifestError(problems)
    workload = _workload(document, resolved, resources, job_spec)
    return workload if digest is None else msgspec.structs.replace(workload, digest=digest.hexdigest())


def _workload(
    document: Document, resolved: Mapping[str, Any], resources: Resources, job: JobSpec | None
) -> Workload:
    """The workload of a checked document, its digest not made."""
    metadata = resolved["metadata"]
    schedule = resolved.get("schedule")
    return Workload(
        name=metadata["name"],
        manifest_path=document.path,
        digest="",
        labels=dict(metadata.get("labels", {})),
        inputs=tuple(resources.inputs.values()),
        outputs=resources.outputs,
        packages=resources.packages,
        pool=resources.pool,
        job=job,
        schedule=dict(schedule) if schedule is not None else None,
    )
