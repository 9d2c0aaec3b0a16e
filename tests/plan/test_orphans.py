"""Orphans as data cases: owned but no longer in the manifest -> kept, deleted with --prune, or blocked."""

from __future__ import annotations

import pytest

from batchrun.plan.actions import Action, Change
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.decide_orphans import (
    ORPHAN,
    LiveJobRef,
    LivePoolRef,
    LiveScheduleRef,
    Named,
    Owned,
    decide_orphans,
)

W = "etl"
PRUNE = PlanOptions(prune=True)


def decide(owned: Owned, options: PlanOptions = PRUNE, job_pool: str = "pool-b") -> list[Change]:
    """The manifest names pool-b and job-b, which uses ``job_pool``."""
    return decide_orphans(W, owned, Named(frozenset({"pool-b"}), {"job-b": job_pool}), options)


def summary(changes: list[Change]) -> list[tuple[str, str, str]]:
    return [(c.address, c.action.value, c.reason) for c in changes]


def test_nothing_owned_beyond_the_manifest() -> None:
    owned = Owned(
        jobs=(LiveJobRef("job-b", "active", "pool-b", W), LiveJobRef("JOB-other", "active", "p", "other")),
        pools=(LivePoolRef("POOL-B", "active", W),),  # Batch ids ignore case
    )
    assert decide(owned) == []


def test_renamed_job_is_shown_then_deleted_with_prune_after_its_results_are_saved() -> None:
    owned = Owned(
        jobs=(LiveJobRef("job-a", "completed", "pool-b", W), LiveJobRef("job-b", "active", "pool-b", W))
    )
    kept = decide(owned, PlanOptions())
    assert summary(kept) == [
        ("job/job-a", "no-op", "owned but no longer in the manifest; kept (--prune deletes it)"),
    ]
    assert kept[0].cause == ORPHAN
    (deleted,) = decide(owned)
    assert (deleted.address, deleted.action) == ("job/job-a", Action.DELETE)
    assert [op.name for op in deleted.operations] == ["results.save", "job.delete"]


@pytest.mark.parametrize(
    ("job", "options", "action"),
    [
        (LiveJobRef("old", "active", "pool-b", W, busy_tasks=3), PRUNE, Action.BLOCKED),
        (
            LiveJobRef("old", "active", "pool-b", W, busy_tasks=3),
            PlanOptions(True, confirm_replace=True),
            "delete",
        ),
        (LiveJobRef("old", "completed", "pool-b", W, busy_tasks=3), PRUNE, Action.DELETE),  # counts are stale
        (LiveJobRef("old", "deleting", "pool-b", W), PRUNE, None),  # already going
        (LiveJobRef("old", "active", "pool-b", "someone-else"), PRUNE, None),  # not ours: never touched
        (LiveJobRef("old", "active", "pool-b", ""), PRUNE, None),
        (LiveJobRef("nightly:job-3", "completed", "pool-b", W), PRUNE, None),  # a job schedule's run
    ],
)
def test_job_cases(job: LiveJobRef, options: PlanOptions, action: Action | str | None) -> None:
    changes = decide(Owned(jobs=(job,)), options)
    assert [c.action.value for c in changes] == ([] if action is None else [Action(action).value])
    if action is Action.BLOCKED:
        assert "would interrupt 3 active or running task(s)" in changes[0].reason
        assert changes[0].unblock.startswith("--confirm-replace")


def test_renamed_pool_is_kept_while_a_job_uses_it() -> None:
    pools = (LivePoolRef("pool-a", "active", W),)
    # The manifest's job still points at the old pool.
    (change,) = decide(Owned(pools=pools), job_pool="pool-a")
    assert (change.action, change.reason) == (
        Action.NOOP,
        "owned but no longer in the manifest; kept while job/job-b uses it",
    )
    # Another workload's live job uses it.
    others = (LiveJobRef("their-job", "active", "pool-a", "other"),)
    (change,) = decide(Owned(jobs=others, pools=pools))
    assert change.action is Action.NOOP and "job/their-job" in change.reason
    # A job that finished does not hold it.
    done = (LiveJobRef("their-job", "completed", "pool-a", "other"),)
    (change,) = decide(Owned(jobs=done, pools=pools))
    assert change.action is Action.DELETE
    assert [op.name for op in change.operations] == ["pool.delete"]


def test_pool_and_its_orphan_job_go_together() -> None:
    owned = Owned(
        jobs=(LiveJobRef("job-a", "active", "pool-a", W),), pools=(LivePoolRef("pool-a", "active", W),)
    )
    changes = decide(owned)
    assert summary(changes) == [
        ("job/job-a", "delete", "owned but no longer in the manifest"),
        ("pool/pool-a", "delete", "owned but no longer in the manifest"),
    ]
    # When the job cannot go (busy), neither can its pool.
    busy = Owned(
        jobs=(LiveJobRef("job-a", "active", "pool-a", W, busy_tasks=1),),
        pools=(LivePoolRef("pool-a", "active", W),),
    )
    job, pool = decide(busy)
    assert job.action is Action.BLOCKED and pool.action is Action.NOOP and "job/job-a" in pool.reason


def test_pool_with_running_nodes_needs_confirmation() -> None:
    owned = Owned(pools=(LivePoolRef("pool-a", "active", W, running_nodes=2),))
    (change,) = decide(owned)
    assert change.action is Action.BLOCKED and "2 node(s) running tasks" in change.reason
    (change,) = decide(owned, PlanOptions(prune=True, confirm_replace=True))
    assert change.action is Action.DELETE


def test_every_job_the_manifest_names_is_kept_and_holds_its_pool() -> None:
    named = Named(frozenset({"Pool-B"}), {"Prep": "pool-a", "main": "pool-b"})
    owned = Owned(
        jobs=(LiveJobRef("prep", "active", "pool-a", W), LiveJobRef("MAIN", "active", "pool-b", W)),
        pools=(LivePoolRef("pool-a", "active", W), LivePoolRef("pool-b", "active", W)),
    )
    (change,) = decide_orphans(W, owned, named, PRUNE)
    assert (change.address, change.action) == ("pool/pool-a", Action.NOOP)
    assert change.reason == "owned but no longer in the manifest; kept while job/Prep uses it"


def test_a_schedule_no_longer_named_is_an_orphan_and_keeps_its_pool_until_it_goes() -> None:
    owned = Owned(
        pools=(LivePoolRef("pool-a", "active", W),),
        schedules=(
            LiveScheduleRef("nightly-old", "active", "pool-a", W),
            LiveScheduleRef("someone-elses", "active", "pool-a", "other"),
        ),
    )
    kept = decide(owned, PlanOptions())
    assert (
        "jobschedule/nightly-old",
        "no-op",
        "owned but no longer in the manifest; kept (--prune deletes it)",
    ) in summary(kept)
    pruned = summary(decide(owned))
    assert ("jobschedule/nightly-old", "delete", "owned but no longer in the manifest") in pruned
    # The other workload's schedule still runs jobs on pool-a: the pool stays.
    assert (
        "pool/pool-a",
        "no-op",
        "owned but no longer in the manifest; kept while jobschedule/someone-elses uses it",
    ) in pruned
    named = Named(frozenset({"pool-b"}), {}, {"nightly-old": "pool-a"})
    assert not [c for c in decide_orphans(W, owned, named, PRUNE) if c.address.startswith("jobschedule/")]
