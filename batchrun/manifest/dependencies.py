"""Task dependencies: ids and globs resolved over the expanded task ids, ranges, Batch's limits, cycles."""

from __future__ import annotations

import bisect
import fnmatch
import re
from collections import deque
from collections.abc import Sequence
from typing import Any

from batchrun.errors import Diagnostic
from batchrun.manifest.expand import ExpandedTask, Reporter
from batchrun.manifest.load import Document
from batchrun.manifest.suggest import did_you_mean

_GLOB = re.compile(r"[*?\[]")
MAX_DEPENDENCY_CHARS = 64_000  # Batch rejects longer taskIds lists (TaskDependencyListTooLong)
_SUGGEST_LIMIT = 5_000  # "did you mean" over more ids would be slow and rarely helpful


class _Globs:
    """Matches globs against every task id once per distinct pattern."""

    def __init__(self, ids: Sequence[str]) -> None:
        self.ids = ids
        self.cache: dict[str, list[str]] = {}

    def match(self, pattern: str) -> list[str]:
        found = self.cache.get(pattern)
        if found is None:
            regex = re.compile(fnmatch.translate(pattern))
            found = [task_id for task_id in self.ids if regex.match(task_id)]
            self.cache[pattern] = found
        return found


def resolve_dependencies(
    document: Document, ids: Sequence[str], waiting: Sequence[ExpandedTask], problems: list[Diagnostic]
) -> bool:
    """Write Batch ``dependsOn`` into the properties of each task of ``waiting`` (the tasks with a
    ``dependsOn``), resolved over ``ids`` (every task's, in order); True when any task has dependencies."""
    reporter = Reporter(document, problems)
    by_lower = {task_id.lower(): task_id for task_id in ids}
    globs = _Globs(ids)
    numeric = sorted(int(task_id) for task_id in ids if task_id.isdigit())
    edges: dict[str, list[str]] = {}
    any_dependencies = False
    for task in waiting:
        spec = task.depends_on
        if spec is None:
            continue
        label = f"task {task.id!r}"
        names: list[tuple[str, tuple[str, str, int]]] = [
            (name, ("dependsOn", "tasks", position)) for position, name in enumerate(spec.get("tasks", []))
        ]
        names += [
            (name, ("dependsOn", "taskIds", position))
            for position, name in enumerate(spec.get("taskIds", []))
        ]
        resolved: dict[str, None] = {}
        for name, field_path in names:
            if _GLOB.search(name):
                matched = [task_id for task_id in globs.match(name) if task_id != task.id]
                if not matched:
                    reporter.report(
                        task.template,
                        field_path,
                        f"{label}: {name!r} matches no other task",
                        "check the pattern against the task ids",
                    )
                resolved.update(dict.fromkeys(matched))
                continue
            target = by_lower.get(name.lower())
            if target is None:
                hint = did_you_mean(name, ids) if len(ids) <= _SUGGEST_LIMIT else ""
                reporter.report(
                    task.template,
                    field_path,
                    f"{label} depends on unknown task {name!r}",
                    hint or "name a task of this job, or a glob such as 'prefix-*'",
                )
                continue
            resolved[target] = None
        ranges: list[dict[str, int]] = []
        raw_ranges: list[tuple[int, int, tuple[Any, ...]]] = [
            (pair[0], pair[1], ("dependsOn", "ranges", position))
            for position, pair in enumerate(spec.get("ranges", []))
        ]
        raw_ranges += [
            (item["start"], item["end"], ("dependsOn", "taskIdRanges", position))
            for position, item in enumerate(spec.get("taskIdRanges", []))
        ]
        range_targets: list[str] = []
        for start, end, field_path in raw_ranges:
            if start > end:
                reporter.report(
                    task.template,
                    field_path,
                    f"{label}: range [{start}, {end}] has start > end",
                    "write [smaller, larger]",
                )
                continue
            ranges.append({"start": start, "end": end})
            low, high = bisect.bisect_left(numeric, start), bisect.bisect_right(numeric, end)
            range_targets += [
                by_lower[str(number)] for number in numeric[low:high] if str(number) in by_lower
            ]
        batch: dict[str, Any] = {}
        if resolved:
            batch["taskIds"] = list(resolved)
            length = sum(len(task_id) for task_id in resolved)
            if length > MAX_DEPENDENCY_CHARS:
                reporter.report(
                    task.template,
                    ("dependsOn",),
                    f"{label} depends on {len(resolved)} task ids ({length} characters); Batch accepts "
                    f"at most {MAX_DEPENDENCY_CHARS}",
                    "give the tasks integer ids and depend on them with ranges: [[start, end]]",
                )
        if ranges:
            batch["taskIdRanges"] = ranges
        if batch:
            any_dependencies = True
            task.properties["dependsOn"] = batch
            edges[task.id] = [*resolved, *range_targets]
    reporter.finish()
    cycle = find_cycle(edges)
    if cycle:
        first = next(task for task in waiting if task.id == cycle[0])
        problems.append(
            document.diagnostic(
                (*first.template.path, "dependsOn"),
                "dependency cycle: " + " -> ".join(cycle),
                "remove one of these dependencies",
            )
        )
    return any_dependencies


def find_cycle(edges: dict[str, list[str]]) -> list[str]:
    """One cycle as ``[a, b, ..., a]``, or ``[]``; linear in the size of the graph.

    Peels off tasks whose dependencies are all peeled (starting from tasks with none); whatever is left has a
    dependency that is also left, so walking those dependencies from any leftover task must come back around.
    """
    pending: dict[str, int] = {}
    dependents: dict[str, list[str]] = {}
    for source, targets in edges.items():
        pending[source] = len(targets)
        for target in targets:
            pending.setdefault(target, 0)
            dependents.setdefault(target, []).append(source)
    queue = deque(node for node, count in pending.items() if count == 0)
    while queue:
        node = queue.popleft()
        for dependent in dependents.get(node, ()):
            pending[dependent] -= 1
            if pending[dependent] == 0:
                queue.append(dependent)
    remaining = {node for node, count in pending.items() if count > 0}
    if not remaining:
        return []
    order: dict[str, int] = {}
    walk: list[str] = []
    node = min(remaining)
    while node not in order:
        order[node] = len(walk)
        walk.append(node)
        node = min(target for target in edges[node] if target in remaining)
    return [*walk[order[node] :], node]
