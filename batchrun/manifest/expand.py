"""Expanding task templates (with or without ``foreach``) into the job's tasks, and checking the result.

Per task: id rules, case-insensitive uniqueness, storage input references, outputs, ``packages`` short form.
The job's ``dependsOn`` references are resolved afterwards in :mod:`batchrun.manifest.dependencies`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import msgspec
from msgspec import field

from batchrun.errors import Diagnostic
from batchrun.manifest.factories import combinations, input_files
from batchrun.manifest.load import Document, PathKey
from batchrun.manifest.resources import Resources, package_references
from batchrun.manifest.suggest import did_you_mean
from batchrun.manifest.template import Compiled, Context, SubstitutionError
from batchrun.model import NO_INPUT_PATHS, TaskOutput, TaskSpec

ID_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_WILDCARD = re.compile(r"[*?\[]")
MAX_PROBLEMS_PER_TEMPLATE = 5


class TaskTemplate(msgspec.Struct):
    """One entry of ``job.tasks``: compiled once, rendered once per combination of its axes."""

    index: int
    body: Compiled  # the task without foreach/zip, variables substituted
    axes: dict[str, Sequence[Any]] = field(default_factory=dict)
    zipped: bool = False

    @property
    def path(self) -> PathKey:
        return ("job", "tasks", self.index)

    def task_id(self, context: Mapping[str, Any]) -> Any:
        """The id of the task made from ``context``, without making the task."""
        return self.body.item("id").value(Context(context))


class ExpandedTask(msgspec.Struct):
    id: str
    template: TaskTemplate
    properties: dict[str, Any]
    inputs: tuple[str, ...]
    outputs: tuple[TaskOutput, ...]
    depends_on: Mapping[str, Any] | None
    input_paths: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: NO_INPUT_PATHS)
    output_inputs: tuple[str, ...] = ()
    position: int = 0  # in the job's tasks

    def spec(self) -> TaskSpec:
        """The task as the plan reads it."""
        return TaskSpec(
            self.id, self.properties, self.inputs, self.outputs, self.input_paths, self.output_inputs
        )


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


class TaskMaker:
    """Makes one task of a template from one combination of its axes: what a manifest's task is, checked or
    not. The checks (:class:`TaskChecks`) run once, at load; the job's tasks are then made again each time
    they are read (:class:`batchrun.manifest.job_tasks.ManifestTasks`), which gives the same task."""

    def __init__(self, document: Document, resources: Resources) -> None:
        self.document = document
        self.job_id = resources.job_id or ""
        self.packages = resources.packages

    def make(
        self, template: TaskTemplate, context: Mapping[str, Any], problems: list[Diagnostic] | None = None
    ) -> ExpandedTask:
        """Raises SubstitutionError; the ``packages`` short form's problems go to ``problems``."""
        return ExpandedTask(*self.parts(template, context, problems))

    def spec(self, template: TaskTemplate, context: Mapping[str, Any], depends_on: Any = None) -> TaskSpec:
        """The task as the plan reads it; ``depends_on``: its resolved Batch ``dependsOn``, if it waits."""
        task_id, _, body, inputs, outputs, _, input_paths, output_inputs = self.parts(template, context, None)
        if depends_on is not None:
            body["dependsOn"] = depends_on
        return TaskSpec(task_id, body, inputs, outputs, input_paths, output_inputs)

    def parts(
        self, template: TaskTemplate, context: Mapping[str, Any], problems: list[Diagnostic] | None
    ) -> tuple[
        Any, TaskTemplate, dict[str, Any], tuple[str, ...], tuple[TaskOutput, ...], Any, Any, tuple[str, ...]
    ]:
        """An :class:`ExpandedTask`'s fields, in order (a plan makes many tasks: no object between)."""
        compiled = template.body
        value = compiled.value(Context(context))
        body = dict(value) if compiled.render is None else value  # a constant body is shared: copy it
        task_id = body.pop("id")
        body.pop("zip", None)
        inputs: tuple[str, ...] = ()
        input_paths = NO_INPUT_PATHS
        output_inputs: tuple[str, ...] = ()
        if "inputs" in body:
            inputs, input_paths, output_inputs = _task_inputs(body.pop("inputs"))
        outputs: tuple[TaskOutput, ...] = ()
        if "outputs" in body:
            outputs = tuple(
                TaskOutput(
                    pattern=entry["pattern"],
                    path=entry.get("path")
                    or default_output_path(self.job_id, str(task_id), entry["pattern"]),
                    upload_condition=entry.get("uploadCondition", "taskcompletion"),
                )
                for entry in body.pop("outputs")
            )
        short_packages = body.pop("packages", None)
        if short_packages is not None:
            body["applicationPackageReferences"] = package_references(
                self.document,
                (*template.path, "packages"),
                short_packages,
                body.get("applicationPackageReferences", []),
                self.packages,
                [] if problems is None else problems,
            )
        depends_on = body.pop("dependsOn", None)
        return task_id, template, body, inputs, outputs, depends_on, input_paths, output_inputs


class TaskChecks:
    """Expands every template once and checks each task as it is made, holding only what the checks need:
    the ids seen (lower-cased id -> id, in the job's order)."""

    def __init__(
        self,
        document: Document,
        templates: Sequence[TaskTemplate],
        resources: Resources,
        problems: list[Diagnostic],
    ) -> None:
        self.maker = TaskMaker(document, resources)
        self.templates = templates
        self.resources = resources
        self.reporter = Reporter(document, problems)
        self.seen: dict[str, str] = {}

    def ids(self) -> list[str]:
        return list(self.seen.values())

    def tasks(self) -> Iterator[ExpandedTask]:
        """The tasks without a problem of their own, in the job's order; ``position`` counts every task."""
        resources = self.resources
        reporter = self.reporter
        seen = self.seen
        input_names = sorted(resources.inputs)
        files_of: dict[str, set[str]] = {}  # input name -> its files, listed once
        position = 0
        for template in self.templates:
            described = bool(template.axes)
            for context in combinations(template.axes, template.zipped):
                position += 1
                package_problems: list[Diagnostic] = []
                try:
                    task = self.maker.make(template, context, package_problems)
                except SubstitutionError as error:
                    reporter.report(template, error.path[len(template.path) :], error.message, error.hint)
                    continue
                task.position = position - 1
                task_id = task.id
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
                if lowered == task_id:
                    lowered = task_id  # key and value one string: a sweep's ids are held once, not twice
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
                if task.output_inputs and resources.outputs is None:
                    reporter.report(
                        template,
                        ("inputs",),
                        f"{label} reads {{outputs: {task.output_inputs[0]}}} but storage.outputs is not set",
                        "add storage: {outputs: {container: <name>}}",
                    )
                for index, name in enumerate(task.inputs):
                    if name not in resources.inputs:
                        known = ", ".join(input_names) or "none"
                        reporter.report(
                            template,
                            ("inputs", index),
                            f"{label}: no storage input named {name!r}",
                            did_you_mean(name, input_names) or f"storage inputs: {known}",
                        )
                        continue
                    wanted = task.input_paths.get(name, ())
                    if wanted:
                        if name not in files_of:
                            files_of[name] = set(input_files(resources.inputs[name]))
                        missing = [path for path in wanted if path not in files_of[name]]
                        if missing:
                            reporter.report(
                                template,
                                ("inputs", index, "paths"),
                                f"{label}: storage input {name!r} has no file {missing[0]!r}",
                                "paths are relative to the input's source folder, '/'-separated "
                                "(in a files factory: ${f.path})",
                            )
                if task.outputs and resources.outputs is None:
                    reporter.report(
                        template,
                        ("outputs",),
                        f"{label} has outputs but storage.outputs is not set",
                        "add storage: {outputs: {container: <name>}}",
                    )
                for problem in package_problems:
                    reporter.report(template, ("packages",), problem.message, problem.hint)
                yield task
        self.reporter.finish()
