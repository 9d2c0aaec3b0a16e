"""``plan -o markdown``: counts first, what needs attention first, tasks collapsed by why they run, no secret,
and under GitHub's comment limit whatever the plan's size."""

from __future__ import annotations

from batchrun.plan.actions import Action, Change, FieldChange, Operation, Plan, Stage
from batchrun.plan.markdown import COMMENT_LIMIT, render_markdown

SAS = "https://acct.blob.core.windows.net/c/x?sv=2024-01-01&sp=r&sig=SECRETSIGNATURE123"


def _task(job: str, index: int, action: Action, cause: str, reason: str) -> Change:
    return Change(f"task/{job}/t-{index:05d}", action, reason=reason, cause=cause)


def big_plan(tasks: int = 10_000) -> Plan:
    changes = [
        Change(
            "pool/p",
            Action.REPLACE,
            (
                FieldChange("vmSize", "standard_d2s_v3", "standard_d4s_v3", True),
                FieldChange("userAccounts", [{"name": "u", "password": "hunter2"}], []),
            ),
        ),
        Change(
            "package/tools@2.0",
            Action.BLOCKED,
            reason="the content of version 2.0 changed",
            unblock="bump the version of package tools",
        ),
        Change("storage.input/data", Action.UPDATE, (FieldChange("files", "1 unchanged", "2 to upload"),)),
        Change("job/j", Action.UPDATE, (FieldChange("priority", 0, 10),)),
    ]
    for i in range(tasks):
        if i % 10 == 0:
            changes.append(_task("j", i, Action.CREATE, "new", "new"))
        elif i % 10 == 1:
            changes.append(_task("j", i, Action.NOOP, "failed", f"failed with exit code {i % 7}"))
        else:
            # A distinct reason per task, as inputs of one-task-per-file factories give.
            changes.append(
                _task("j", i, Action.REPLACE, "input changed", f"input data/file-{i:05d}.csv changed")
            )
    return Plan(
        workload="demo", target="local (Batch account local at http://127.0.0.1:1)", changes=tuple(changes)
    )


def test_ten_thousand_task_change_fits_a_comment() -> None:
    text = render_markdown(big_plan())
    assert len(text) < COMMENT_LIMIT
    # Counts are complete even though the lists are cut.
    assert (
        "**Plan: 1000 to create, 2 to update, 8001 to replace, 0 to delete, 1 blocked (1000 unchanged).**"
        in text
    )
    assert "<details><summary>8000 task(s): run again: input changed</summary>" in text
    assert "<details><summary>1000 task(s): run: new</summary>" in text
    assert "<details><summary>1000 task(s): do not run: failed</summary>" in text
    assert "- ... and 7950 more" in text
    # Each listed task says its own reason when it is more precise than its group's.
    assert "- `t-00002` (input data/file-00002.csv changed)" in text


def test_hundred_thousand_tasks_in_many_groups_still_fit() -> None:
    changes = [
        Change(f"task/j/t-{i:06d}", Action.REPLACE, reason=f"r{i % 500}", cause=f"cause {i % 500}")
        for i in range(100_000)
    ]
    text = render_markdown(Plan("demo", "local", tuple(changes)))
    assert len(text) < COMMENT_LIMIT
    assert "more task(s) in" in text
    assert "100000 to replace" in text


def test_attention_first_and_blocked_before_replaced() -> None:
    text = render_markdown(big_plan(20))
    attention = text.index("#### Needs attention")
    blocked = text.index("`package/tools@2.0`")
    replaced = text.index("`pool/p`")
    changes = text.index("#### Changes")
    tasks = text.index("**Tasks of `job/j`**")
    assert attention < blocked < replaced < changes < tasks
    assert "to proceed: bump the version of package tools" in text
    assert "(forces replacement)" in text


def test_no_secret_reaches_the_comment() -> None:
    plan = Plan(
        "demo",
        "azure (Batch account b; storage AccountKey=abc123==)",
        (
            Change("pool/p", Action.UPDATE, (FieldChange("startTask.resourceFiles", None, SAS),)),
            Change(
                "pool/q",
                Action.CREATE,
                reason="new",
                fields=(FieldChange("userAccounts[0].password", None, "hunter2"),),
                operations=(Operation(Stage.POOL, "pool.create", {"body": {"password": "hunter2"}}),),
            ),
            Change("task/j/a", Action.CREATE, reason=f"input {SAS} changed", cause="new"),
        ),
    )
    text = render_markdown(plan)
    for secret in ("hunter2", "SECRETSIGNATURE123", "abc123=="):
        assert secret not in text
    assert "sig=REDACTED" in text


def test_cells_cannot_break_the_table() -> None:
    plan = Plan(
        "demo", "local", (Change("job/j", Action.UPDATE, (FieldChange("commandLine", "a | b`", "c\nd"),)),)
    )
    row = next(line for line in render_markdown(plan).splitlines() if "`job/j`" in line)
    assert row.count(" | ") == 2  # the three cells' separators only; the value's pipe is escaped
    assert "\\|" in row and "\n" not in row


def test_no_changes() -> None:
    plan = Plan(
        "demo", "local", (Change("pool/p", Action.NOOP), Change("task/j/a", Action.NOOP, cause="current"))
    )
    text = render_markdown(plan)
    assert "**No changes. Live state matches the manifest.**" in text
    assert "Tasks of" not in text
