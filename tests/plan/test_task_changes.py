"""A plan's task changes held compactly: a task kept as it is is a number, read back as the same Change."""

from __future__ import annotations

from dataclasses import replace

import pytest

from batchrun.model import TaskSpec
from batchrun.plan.actions import (
    Action,
    Change,
    Changes,
    Operation,
    Plan,
    Stage,
    TaskChanges,
    acting,
    plan_from_json,
    plan_to_json,
)

TASKS = tuple(TaskSpec(f"t{i}", {"commandLine": "true"}) for i in range(6))


def _kept(index: int, reason: str = "", cause: str = "current") -> Change:
    return Change(f"task/j1/t{index}", Action.NOOP, reason=reason, cause=cause)


def _added(index: int) -> Change:
    add = Operation(Stage.TASKS, "task.add", {"job": "j1", "body": {"id": f"t{index}"}})
    return Change(f"task/j1/t{index}", Action.CREATE, reason="new", operations=(add,), cause="new")


def _mixed() -> tuple[TaskChanges, tuple[Change, ...]]:
    changes = TaskChanges("j1", TASKS)
    changes.keep(0, "", "current")
    changes.add(_added(1))
    changes.keep(2, "waiting or running", "pending")
    changes.keep(3, "", "current")
    orphan = Change("task/j1/old", Action.NOOP, reason="not in the manifest; kept (--prune deletes it)")
    changes.add(orphan)
    expected = (_kept(0), _added(1), _kept(2, "waiting or running", "pending"), _kept(3), orphan)
    return changes, expected


def test_tasks_kept_read_back_as_the_changes_they_stand_for() -> None:
    changes, expected = _mixed()
    assert tuple(changes) == expected and len(changes) == 5
    assert changes[0] == expected[0] and changes[-1] == expected[-1] and changes[1:3] == expected[1:3]
    assert list(acting(changes)) == [expected[1], expected[4]]  # only what is not a task kept
    with pytest.raises(IndexError):
        changes.keep(len(TASKS), "", "current")  # no such task: refused, not read back as another


def test_a_plan_of_parts_equals_the_plan_of_one_tuple_and_counts_the_same() -> None:
    changes, expected = _mixed()
    pool = Change("pool/p1", Action.NOOP)
    parts = Plan("w", "Target: test", Changes(((pool,), changes, ())))
    whole = Plan("w", "Target: test", (pool, *expected))
    assert parts == whole and whole == parts
    counts = parts.counts()
    assert counts == whole.counts() and (counts["no-op"], counts["create"], counts["replace"]) == (5, 1, 0)
    assert parts.has_changes and not replace(whole, changes=(pool, expected[0])).has_changes
    assert plan_from_json(plan_to_json(parts)) == parts
    assert parts.changes[1] == expected[0] and parts.changes[-1] == expected[-1]


def test_only_changes_that_act_are_mapped() -> None:
    changes, expected = _mixed()
    mapped = Changes(((), changes)).mapped(lambda c: replace(c, reason=c.reason + "!"))
    assert [c.reason for c in mapped] == ["", "new!", "waiting or running", "", expected[4].reason + "!"]


def test_more_reasons_than_a_byte_numbers_are_kept_whole() -> None:
    tasks = tuple(TaskSpec(f"t{i}", {}) for i in range(300))
    changes = TaskChanges("j1", tasks)
    for index in range(300):
        changes.keep(index, f"failed (exit {index})", "failed")
    assert [c.reason for c in changes] == [f"failed (exit {i})" for i in range(300)]
    assert [c.address for c in changes][-1] == "task/j1/t299"
