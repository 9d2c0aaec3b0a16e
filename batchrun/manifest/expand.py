"""Expanding task templates (with or without ``foreach``) into the job's tasks, and checking the result.

Per task: id rules, case-insensitive uniqueness, storage input references, outputs, ``packages`` short form.
The job's ``dependsOn`` references are resolved afterwards in :mod:`batchrun.manifest.dependencies`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batchrun.errors import Diagnostic
from batchrun.manifest.factories import combinations, input_files
from batchrun.manifest.load import Document, PathKey
from batchrun.manifest.resources import Resources, package_references
from batchrun.manifest.suggest import did_you_mean
from batchrun.manifest.template import Compiled, Context, SubstitutionError
from batchrun.model import NO_INPUT_PATHS, TaskOutput

ID_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_WILDCARD = re.compile(r"[*?\[]")
MAX_PROBLEMS_PER_TEMPLATE = 5


@dataclass
class TaskTemplate:
    """One entry of ``job.tasks``: compiled once, rendered once per combination of its axes."""

    index: int
    body: Compiled  # the task without foreach/zip, variables substituted
    axes: dict[str, Sequence[Any]] = field(default_factory=dict)
    zipped: bool = False

    @property
    def path(self) -> PathKey:
        return ("job", "tasks", self.index)


@dataclass
class ExpandedTask:
    id: str
    template: TaskTemplate
    properties: dict[str, Any]
    inputs: tuple[str, ...]
    outputs: tuple[TaskOutput, ...]
    depends_on: Mapping[str, Any] | None
    input_paths: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: NO_INPUT_PATHS)
    output_inputs: tuple[str, ...] = ()


class Reporter:
    """Collects problems, keeping at most a few per task template so a 100,000-task factory stays readable."""

    def __init__(self, document: Document, problems: list[Diagnostic]) -> None:
        self.document = document
        self.problems = problems
        self.counts: dict[int, int] = {}  # hidden problems per template
        self.shown: dict[int, int] = {}
        self.seen: set[tuple[Any, ...]] = set()

    def report(self, template: TaskTemplate, field_path: PathKey, message: str, hint: str = "") -> None:
        """Record a problem; the same kind of problem at the same place is shown once per template."""
        kind = (template.index, field_path, hint)
        if kind in self.seen:
            self.counts[template.index] = self.counts.get(template.index, 0) + 1
            return
        shown = self.shown.get(template.index, 0)
        if shown >= MAX_PROBLEMS_PER_TEMPLATE:
            self.counts[template.index] = self.counts.get(template.index, 0) + 1
            return
        self.seen.add(kind)
        self.shown[template.index] = shown + 1
        self.problems.append(self.document.diagnostic((*template.path, *field_path), message, hint))

    def finish(self) -> None:
        for index, hidden in self.counts.items():
            if hidden > 0:
                self.problems.append(
                    self.document.diagnostic(
                        ("job", "tasks", index),
                        f"... and {hidden} more similar problems in the tasks made by this entry",
                        "fix the ones above first",
                    )
                )


def default_output_path(job_id: str, task_id: str, pattern: str) -> str:
    base = f"{job_id}/{task_id}/"
    return base if _WILDCARD.search(pattern) else base + pattern


def _task_inputs(
    entries: Sequence[Any],
) -> tuple[tuple[str, ...], Mapping[str, tuple[str, ...]], tuple[str, ...]]:
    """Input names in order, the file paths of those listed as ``{name, paths}``, and the outputs-container
    prefixes listed as ``{outputs: PREFIX}`` (schema-checked)."""
    names: list[str] = []
    paths: dict[str, tuple[str, ...]] = {}
    prefixes: list[str] = []
    for entry in entries:
        if isinstance(entry, Mapping) and "outputs" in entry:
            if str(entry["outputs"]) not in prefixes:
                prefixes.append(str(entry["outputs"]))
            continue
        if isinstance(entry, Mapping):
            name = str(entry["name"])
            paths[name] = tuple(dict.fromkeys([*paths.get(name, ()), *map(str, entry["paths"])]))
        else:
            name = str(entry)
        if name not in names:
            names.append(name)
    return tuple(names), paths or NO_INPUT_PATHS, tuple(prefixes)


def expand_tasks(
    document: Document, templates: Sequence[TaskTemplate], resources: Resources, problems: list[Diagnostic]
) -> list[ExpandedTask]:
    reporter = Reporter(document, problems)
    tasks: list[ExpandedTask] = []
    seen: dict[str, str] = {}  # lower-cased id -> id
    job_id = resources.job_id or ""
    input_names = sorted(resources.inputs)
    files_of: dict[str, set[str]] = {}  # input name -> its files, listed once
    for template in templates:
        described = bool(template.axes)
        for context in combinations(template.axes, template.zipped):
            try:
                body = dict(template.body.value(Context(context)))  # shallow copy: constant bodies are shared
            except SubstitutionError as error:
                reporter.report(template, error.path[len(template.path) :], error.message, error.hint)
                continue
            task_id = body.pop("id")
            label = f"task {task_id!r}" if described else "task"
            if not isinstance(task_id, str) or not ID_RULE.match(task_id):
                reporter.report(
                    template,
                    ("id",),
                    f"{label}: invalid task id {str(task_id)!r}",
                    "task ids use only letters, digits, '-' and '_', at most 64 characters",
                )
                continue
            lowered = task_id.lower()
            if lowered in seen:
                same = "" if seen[lowered] == task_id else f" (same as {seen[lowered]!r} ignoring case)"
                reporter.report(
                    template,
                    ("id",),
                    f"duplicate task id {task_id!r}{same}",
                    "make ids unique, e.g. include every factory axis in the id",
                )
                continue
            seen[lowered] = task_id
            body.pop("zip", None)
            inputs, input_paths, output_inputs = _task_inputs(body.pop("inputs", ()))
            if output_inputs and resources.outputs is None:
                reporter.report(
                    template,
                    ("inputs",),
                    f"{label} reads {{outputs: {output_inputs[0]}}} but storage.outputs is not set",
                    "add storage: {outputs: {container: <name>}}",
                )
            for position, name in enumerate(inputs):
                if name not in resources.inputs:
                    known = ", ".join(input_names) or "none"
                    reporter.report(
                        template,
                        ("inputs", position),
                        f"{label}: no storage input named {name!r}",
                        did_you_mean(name, input_names) or f"storage inputs: {known}",
                    )
                    continue
                wanted = input_paths.get(name, ())
                if wanted:
                    if name not in files_of:
                        files_of[name] = set(input_files(resources.inputs[name]))
                    missing = [path for path in wanted if path not in files_of[name]]
                    if missing:
                        reporter.report(
                            template,
                            ("inputs", position, "paths"),
                            f"{label}: storage input {name!r} has no file {missing[0]!r}",
                            "paths are relative to the input's source folder, '/'-separated "
                            "(in a files factory: ${f.path})",
                        )
            outputs: list[TaskOutput] = []
            raw_outputs = body.pop("outputs", [])
            if raw_outputs and resources.outputs is None:
                reporter.report(
                    template,
                    ("outputs",),
                    f"{label} has outputs but storage.outputs is not set",
                    "add storage: {outputs: {container: <name>}}",
                )
            for entry in raw_outputs:
                pattern = entry["pattern"]
                path = entry.get("path") or default_output_path(job_id, task_id, pattern)
                outputs.append(
                    TaskOutput(
                        pattern=pattern,
                        path=path,
                        upload_condition=entry.get("uploadCondition", "taskcompletion"),
                    )
                )
            short_packages = body.pop("packages", None)
            if short_packages is not None:
                package_problems: list[Diagnostic] = []
                body["applicationPackageReferences"] = package_references(
                    document,
                    (*template.path, "packages"),
                    short_packages,
                    body.get("applicationPackageReferences", []),
                    resources.packages,
                    package_problems,
                )
                for problem in package_problems:
                    reporter.report(template, ("packages",), problem.message, problem.hint)
            depends_on = body.pop("dependsOn", None)
            tasks.append(
                ExpandedTask(
                    task_id, template, body, inputs, tuple(outputs), depends_on, input_paths, output_inputs
                )
            )
    reporter.finish()
    return tasks
