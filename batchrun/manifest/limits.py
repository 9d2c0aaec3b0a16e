"""Size limits checked at validate, before anything is expanded or sent.

Batch's own limits, so that a manifest that cannot be applied fails at ``validate`` with its line instead
of at ``apply`` with an HTTP 413:

* A task is added in a collection whose serialized size must be under 1 MB; larger requests fail with
  ``RequestBodyTooLarge`` (BatchTaskGroup.value, Azure Batch REST reference:
  https://learn.microsoft.com/javascript/api/@azure-rest/batch/batchtaskgroup). batchrun splits collections
  down to one task, so one task's body must fit on its own, with room for what batchrun adds to it (input
  SAS URLs, output files, its digest): :data:`MAX_TASK_BYTES`.
* Pool and job bodies get the same bound: the local target refuses any request body over 1 MiB, and a pool
  or job of a megabyte has no use a storage input would not serve better.
* Task ids (64 characters, letters, digits, ``-``, ``_``) and ``dependsOn.taskIds`` (64,000 characters in
  all, ``TaskDependencyListTooLong``) are checked where tasks are expanded and dependencies resolved
  (:mod:`batchrun.manifest.expand`, :mod:`batchrun.manifest.dependencies`).

batchrun's own bound: the tasks of the job may hold at most :data:`MAX_JOB_BYTES` in all. It is computed
from each ``job.tasks`` entry before expansion (its first task, plus every factory reference taking the
longest value of its axis), so a manifest that would expand to gigabytes is refused in milliseconds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from batchrun.errors import Diagnostic
from batchrun.manifest.factories import axis_length, combination_count, combinations
from batchrun.manifest.load import Document, PathKey
from batchrun.manifest.template import SubstitutionError, text_of

MAX_REQUEST_BYTES = 1024 * 1024
# Room for what batchrun adds to a task: resource files with SAS URLs, output files, its digest.
MAX_TASK_BYTES = MAX_REQUEST_BYTES - 64 * 1024
MAX_JOB_BYTES = 1024 * 1024 * 1024
_LARGEST_SHOWN = 3


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _largest_fields(body: Mapping[str, Any]) -> str:
    sizes = sorted(((json_size(value), key) for key, value in body.items()), reverse=True)
    return ", ".join(f"{key} {size:,} bytes" for size, key in sizes[:_LARGEST_SHOWN])


def body_problem(
    document: Document, path: PathKey, what: str, body: Mapping[str, Any], limit: int = MAX_TASK_BYTES
) -> Diagnostic | None:
    """A problem when ``body`` is over ``limit`` bytes as JSON."""
    size = json_size(body)
    if size <= limit:
        return None
    room = ", less room for what batchrun adds" if limit < MAX_REQUEST_BYTES else ""
    return document.diagnostic(
        path,
        f"{what} is {size:,} bytes as JSON, over Batch's request limit ({limit:,} bytes{room}); largest: "
        f"{_largest_fields(body)}",
        "move large data into a storage input file and read it from the command line",
    )


def _longest_text(values: Sequence[Any]) -> int:
    if isinstance(values, range):
        if not axis_length(values):
            return 0
        return max(len(str(values[0])), len(str(values[-1])))
    longest = 0
    for value in values:
        text = text_of(value)
        longest = max(longest, len(text.encode()) + len(str(getattr(value, "blob", ""))))
    return longest


def task_bound(template: Any, raw: Any) -> tuple[int, int, Mapping[str, Any] | None]:
    """(first task's size, upper bound of any task's size, the first task) of a ``job.tasks`` entry."""
    try:
        first = dict(template.body.value(next(combinations(template.axes, template.zipped), {})))
    except (SubstitutionError, StopIteration, TypeError, KeyError):
        return 0, 0, None
    size = json_size(first)
    if not template.axes:
        return size, size, first
    raw_text = json.dumps(raw, ensure_ascii=False, default=str) if isinstance(raw, dict) else ""
    extra = 0
    for name, values in template.axes.items():
        references = len(re.findall(r"\$\{\s*" + re.escape(name) + r"\b", raw_text))
        extra += references * _longest_text(values)
    return size, size + extra, first


def expansion_problems(
    document: Document,
    resolved: Mapping[str, Any],
    templates: Sequence[Any],
    raw_tasks: Sequence[Any] | None,
) -> list[Diagnostic]:
    """Problems with the pool's and job's bodies and with the size the tasks would expand to."""
    problems: list[Diagnostic] = []
    for section in ("pool", "job"):
        body = resolved.get(section)
        if isinstance(body, dict):
            what = f"{section} {body.get('id', '')}".strip()
            found = body_problem(document, (section,), what, body, MAX_REQUEST_BYTES)
            if found is not None:
                problems.append(found)
    total = 0
    for template in templates:
        raw = raw_tasks[template.index] if raw_tasks is not None and template.index < len(raw_tasks) else None
        first_size, bound, first = task_bound(template, raw)
        path: PathKey = ("job", "tasks", template.index)
        if first is not None and first_size > MAX_TASK_BYTES:
            found = body_problem(document, path, "the task body", first)
            if found is not None:
                problems.append(found)
            continue
        total += bound * combination_count(template.axes, template.zipped)
    if total > MAX_JOB_BYTES:
        problems.append(
            document.diagnostic(
                ("job", "tasks"),
                f"the job's tasks would take up to {total:,} bytes once expanded, over batchrun's limit of "
                f"{MAX_JOB_BYTES:,}",
                "use fewer tasks or shorter values; large data belongs in a storage input file",
            )
        )
    return problems


class TaskSizes:
    """Expanded tasks over :data:`MAX_TASK_BYTES` (one per entry), measured one task at a time as they are
    made, and only for the entries whose bound allows it: most entries cost nothing here."""

    def __init__(self, document: Document, templates: Sequence[Any], raw_tasks: Sequence[Any] | None) -> None:
        self.document = document
        self.suspicious: set[int] = set()
        for template in templates:
            raw = (
                raw_tasks[template.index]
                if raw_tasks is not None and template.index < len(raw_tasks)
                else None
            )
            if task_bound(template, raw)[1] > MAX_TASK_BYTES:
                self.suspicious.add(template.index)
        self.problems: list[Diagnostic] = []
        self.reported: set[int] = set()

    def check(self, task: Any) -> None:
        index = task.template.index
        if index not in self.suspicious or index in self.reported:
            return
        body = {"id": task.id, **task.properties}
        found = body_problem(self.document, ("job", "tasks", index), f"task {task.id!r}", body)
        if found is not None:
            self.problems.append(found)
            self.reported.add(index)
