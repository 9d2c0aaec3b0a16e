"""The text summary of a job's tasks, gathered in one pass over the plan's changes."""

from __future__ import annotations

from batchrun.model import TaskSpec
from batchrun.plan.actions import Action, Change, Changes, Operation, Plan, Stage, TaskChanges
from batchrun.plan.markdown import render_markdown
from batchrun.plan.render import render_text


def _run(task_id: str, action: Action, cause: str) -> Change:
    add = Operation(Stage.TASKS, "task.add", {"job": "j1", "body": {"id": task_id}})
    return Change(f"task/j1/{task_id}", action, reason=cause, operations=(add,), cause=cause)


def _mixed() -> TaskChanges:
    """Kept tasks of every kind (failed, current, waiting) between changes held whole, and an orphan kept."""
    tasks = (*(TaskSpec(f"f{i}", {}) for i in range(6)), TaskSpec("c0", {}), TaskSpec("w0", {}))
    changes = TaskChanges("j1", tasks)
    changes.keep(0, "failed (exit 1); --rerun-failed reruns it", "failed")
    changes.add(_run("n0", Action.CREATE, "new"))
    for index in range(1, 6):
        changes.keep(index, f"failed (exit {index + 1}); --rerun-failed reruns it", "failed")
        changes.add(_run(f"n{index}", Action.CREATE, "new"))
    changes.keep(6, "succeeded in an earlier run", "current")
    changes.add(_run("d0", Action.REPLACE, "definition changed"))
    changes.keep(7, "waits for failed f0 (--rerun-failed reruns it)", "waits for a failed task")
    changes.add(Change("task/j1/old", Action.NOOP, reason="not in the manifest; kept (--prune deletes it)"))
    return changes


def test_the_text_and_the_comment_read_kept_tasks_as_the_changes_they_stand_for() -> None:
    """Both renderers walk a job's task changes without making the kept ones: what they print is what the
    same changes print held whole, in a plain tuple."""
    changes = _mixed()
    pool = Change("pool/p1", Action.NOOP)
    walked = Plan("w", "Target: test", Changes(((pool,), changes)))
    whole = Plan("w", "Target: test", (pool, *changes))
    assert render_text(walked) == render_text(whole)
    assert render_markdown(walked) == render_markdown(whole)
    assert "f0: failed (exit 1)" in render_text(walked) and "`f0`" in render_markdown(walked)


def test_a_jobs_tasks_are_summarised_with_counts_the_first_few_and_why() -> None:
    tasks = (*(TaskSpec(f"f{i}", {}) for i in range(6)), TaskSpec("c0", {}), TaskSpec("w0", {}))
    changes = TaskChanges("j1", tasks)
    for index in range(6):
        changes.keep(index, f"failed (exit {index + 1}); --rerun-failed reruns it", "failed")
    changes.keep(6, "succeeded in an earlier run", "current")
    changes.keep(7, "waits for failed f0 (--rerun-failed reruns it)", "waits for a failed task")
    runs = [_run(f"n{i}", Action.CREATE, "new") for i in range(6)]
    runs += [_run("i0", Action.CREATE, "input changed"), _run("d0", Action.REPLACE, "definition changed")]
    for change in runs:
        changes.add(change)
    changes.add(Change("task/j1/old", Action.NOOP, reason="not in the manifest; kept (--prune deletes it)"))
    text = render_text(Plan("w", "Target: test", Changes(((Change("pool/p1", Action.NOOP),), changes))))
    lines = text.splitlines()
    assert lines[0] == (
        "    tasks of job/j1: 7 to add, 1 to replace, 0 to update, 0 to delete, 9 unchanged "
        "(1 carried over from an earlier run)"
    )
    assert lines[1] == "    why they run: 6 new, 1 input changed, 1 definition changed"
    assert lines[2] == (
        "    6 task(s) failed and will not run again: "
        + "; ".join(f"f{i}: failed (exit {i + 1}); --rerun-failed reruns it" for i in range(5))
        + "; ... and 1 more"
    )
    assert (
        lines[3] == "    1 task(s) wait for a failed task: w0: waits for failed f0 (--rerun-failed reruns it)"
    )
    assert lines[4] == "    1 task(s) not in the manifest are kept (--prune deletes them)"
    assert "      ... and 2 more to create" in lines
    assert sum("task/j1/n" in line for line in lines) == 5  # the first five to create are shown
    assert "task/j1/d0" in text and "task/j1/c0" not in text
    assert lines[-1] == "Plan: 7 to create, 0 to update, 1 to replace, 0 to delete (10 unchanged)."
