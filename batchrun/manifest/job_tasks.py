"""A manifest job's tasks, each made from its template when read: a job of 100,000 tasks holds none of them.

Loading checks every task once (:class:`batchrun.manifest.expand.TaskChecks`) and keeps what cannot be made
again from the templates alone: each task's resolved ``dependsOn``. A plan reads each task a few times; a
task costs a few microseconds to make, against about 550 bytes for each one held.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from batchrun.manifest.expand import TaskMaker, TaskTemplate
from batchrun.manifest.factories import combination_at, combination_count, combinations
from batchrun.model import MadeTasks, TaskSpec


class ManifestTasks(MadeTasks):
    """The tasks of ``templates`` in order, every combination of each one's axes (all checked at load)."""

    def __init__(
        self,
        templates: Sequence[TaskTemplate],
        maker: TaskMaker,
        depends_on: Mapping[int, Mapping[str, Any]],
    ) -> None:
        self._templates = tuple(templates)
        self._maker = maker
        self._depends_on = depends_on  # position -> Batch's dependsOn, for the tasks that wait
        self._starts: list[int] = []
        count = 0
        for template in self._templates:
            self._starts.append(count)
            count += combination_count(template.axes, template.zipped)
        self._count = count

    def __len__(self) -> int:
        return self._count

    def _at(self, position: int) -> TaskSpec:
        return self._made(*self._source(position), position)

    def _source(self, position: int) -> tuple[TaskTemplate, dict[str, Any]]:
        """The template of the task at ``position`` and its combination of the template's axes."""
        part = bisect.bisect_right(self._starts, position) - 1
        template = self._templates[part]
        return template, combination_at(template.axes, template.zipped, position - self._starts[part])

    def id_at(self, position: int) -> str:
        template, context = self._source(position)
        return str(template.task_id(context))

    def ids(self) -> Iterator[str]:
        for template in self._templates:
            for context in combinations(template.axes, template.zipped):
                yield str(template.task_id(context))

    def _made(self, template: TaskTemplate, context: Mapping[str, Any], position: int) -> TaskSpec:
        return self._maker.spec(template, context, self._depends_on.get(position))

    def __iter__(self) -> Iterator[TaskSpec]:
        position = 0
        for template in self._templates:
            for context in combinations(template.axes, template.zipped):
                yield self._made(template, context, position)
                position += 1

    def with_dependencies(self) -> Iterator[TaskSpec]:
        return map(self._at, sorted(self._depends_on))

    def __repr__(self) -> str:
        return f"ManifestTasks({self._count} tasks)"
