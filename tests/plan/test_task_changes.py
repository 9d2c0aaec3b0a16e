"""A plan's task changes held compactly: a task kept as it is is a number, read back as the same Change."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

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
    held,
    new_task_count,
)
from batchrun.plan.plan_json import plan_from_json, plan_to_json

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


def _new_tasks(count: int) -> tuple[TaskChanges, list[int]]:
    """Task changes whose new tasks are made by a maker that counts what it makes."""
    made: list[int] = []

    def new_task(position: int, reason: str, cause: str) -> Change:
        made.append(position)
        add = Operation(Stage.TASKS, "task.add", {"job": "j1", "body": {"id": f"t{position}"}})
        return Change(f"task/j1/t{position}", Action.CREATE, reason=reason, operations=(add,), cause=cause)

    changes = TaskChanges("j1", TASKS[:count], new_task)
    return changes, made


def test_new_tasks_are_made_only_when_read_and_equal_the_changes_they_stand_for() -> None:
    changes, made = _new_tasks(4)
    changes.keep(0, "", "current")
    changes.add_new(1, "new", "new")
    changes.add(_added(2))  # held whole
    changes.add_new(3, "new", "new")
    plan = Plan("w", "Target: test", Changes(((), changes)))
    # Counting, deciding whether anything is to do or blocked, and reading the held changes make none.
    assert plan.counts()["create"] == 3 and plan.counts()["no-op"] == 1
    assert plan.has_changes and not plan.blocked
    assert list(held(changes)) == [_added(2)] and new_task_count(plan.changes) == 2
    # Shown (a plan's text walks its tasks): a new task is a create without its operations, not made.
    shown = [whole for whole, *_ in changes.walk() if whole is not None]
    assert shown == [replace(_added(1), operations=()), _added(2), replace(_added(3), operations=())]
    assert made == []
    new = changes.new_tasks()
    assert len(new) == 2 and made == [] and new[1] == _added(3) and made == [3]
    adds = changes.new_task_adds()  # what an apply sends: the add arguments, made as read
    assert len(adds) == 2 and made == [3]
    sent = adds[0:2]  # a request's slice: each made once
    assert made == [3, 1, 3] and sent == (_added(1).operations[0].args, _added(3).operations[0].args)
    assert tuple(changes) == (_kept(0), _added(1), _added(2), _added(3))
    assert list(acting(changes)) == [_added(1), _added(2), _added(3)]
    assert plan_from_json(plan_to_json(plan)) == plan


def test_mapping_makes_new_tasks_unless_told_they_stay_as_they_are() -> None:
    changes, made = _new_tasks(3)
    changes.add_new(0, "new", "new")
    changes.keep(1, "", "current")
    changes.add_new(2, "new", "new")
    untouched = changes.mapped(lambda c: replace(c, reason="?"), new_tasks=False)
    assert made == [] and len(untouched.new_tasks()) == 2
    assert [c.reason for c in untouched] == ["new", "", "new"]
    blocked = changes.mapped(lambda c: replace(c, action=Action.BLOCKED))
    assert len(blocked.new_tasks()) == 0 and [c.action for c in held(blocked)] == [Action.BLOCKED] * 2
    assert len(Plan("w", "t", blocked).blocked) == 2


def test_a_new_task_needs_a_maker() -> None:
    changes = TaskChanges("j1", TASKS)
    with pytest.raises(ValueError, match="without a maker"):
        changes.add_new(0, "new", "new")


def test_every_task_added_new_at_once_reads_as_each_added_new() -> None:
    at_once, made = _new_tasks(5)
    at_once.add_new_each("new", "new")
    one_by_one, _ = _new_tasks(5)
    for position in range(5):
        one_by_one.add_new(position, "new", "new")
    assert made == [] and len(at_once.new_tasks()) == 5 and Plan("w", "t", at_once).counts()["create"] == 5
    assert tuple(at_once) == tuple(one_by_one) == tuple(_added(i) for i in range(5))
    with pytest.raises(ValueError, match="hold changes already"):
        at_once.add_new_each("new", "new")  # the tasks from the first: only on task changes holding none
