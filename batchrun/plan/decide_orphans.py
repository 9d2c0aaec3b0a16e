"""Orphans: pools, jobs and job schedules this workload owns (``batchrun.workload`` metadata) that the
manifest no longer names, e.g. after a job or pool was renamed. Pure.

Without ``--prune`` each is shown and kept (a no-op whose ``cause`` is :data:`ORPHAN`); with ``--prune`` it is
deleted, except:

- a job with active or running tasks is blocked until ``--confirm-replace``; the results of its tasks are
  saved to the workload's record before it is deleted, so the tasks carried over to the renamed job are
  not run again;
- a job made by a job schedule (its id is ``<schedule>:job-<n>``, which no other job can have) is the
  schedule's, never an orphan of its own;
- a job schedule (of a workload with ``schedule:``) is deleted with its jobs;
- a pool is kept while a job or job schedule that stays uses it (the manifest's job, a job kept or blocked
  here, or any other live job, whoever owns it); a pool with nodes running tasks is blocked until
  ``--confirm-replace``. It is deleted last (:attr:`Stage.ORPHAN_POOL_DELETE`), after the manifest's job
  has moved to its new pool.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
from msgspec import field

from batchrun.model import Workload
from batchrun.plan.actions import Action, Change, Operation, Stage
from batchrun.plan.decide_common import CONFIRM_FLAG, PlanOptions

ORPHAN = "orphan"  # Change.cause of an orphan's change
KEPT = "owned but no longer in the manifest; kept (--prune deletes it)"
GONE = "owned but no longer in the manifest"
FINISHED = ("completed", "deleting")


class LiveJobRef(msgspec.Struct, frozen=True):
    """A live job as listed (``$select=id,metadata,state,poolInfo``): who owns it and which pool it uses."""

    id: str
    state: str
    pool_id: str
    owner: str  # its batchrun.workload metadata, "" when none
    busy_tasks: int = 0  # active + running; read only for orphans


class LivePoolRef(msgspec.Struct, frozen=True):
    id: str
    state: str
    owner: str
    running_nodes: int = 0  # nodes running a task; read only for orphans


class LiveScheduleRef(msgspec.Struct, frozen=True):
    """A live job schedule as listed: who owns it and which pool its jobs use."""

    id: str
    state: str
    pool_id: str
    owner: str


class Owned(msgspec.Struct, frozen=True):
    """What the listing found: every live job and job schedule (to see who uses a pool) and the pools this
    workload owns."""

    jobs: tuple[LiveJobRef, ...] = ()
    pools: tuple[LivePoolRef, ...] = ()
    schedules: tuple[LiveScheduleRef, ...] = ()


class Named(msgspec.Struct, frozen=True):
    """What the manifest names: pool ids, and each job's id with the pool it uses."""

    pools: frozenset[str] = frozenset()
    jobs: Mapping[str, str] = field(default_factory=dict)  # job id -> pool id ("" when none)
    # The job schedule of a workload with ``schedule:``, with the pool its jobs use (its job is not a job).
    schedules: Mapping[str, str] = field(default_factory=dict)

    def names_schedule(self, schedule_id: str) -> bool:
        return schedule_id.lower() in {s.lower() for s in self.schedules}

    def names_pool(self, pool_id: str) -> bool:
        return pool_id.lower() in {p.lower() for p in self.pools}

    def names_job(self, job_id: str) -> bool:
        return job_id.lower() in {j.lower() for j in self.jobs}


def named_by(workload: Workload) -> Named:
    pools = frozenset({workload.pool.id} if workload.pool else ())
    jobs = {job.id: str((job.properties.get("poolInfo") or {}).get("poolId", "")) for job in workload.jobs}
    if workload.schedule is not None:  # a job left from before the schedule is an orphan
        return Named(pools, {}, jobs)
    return Named(pools, jobs)


def orphan_schedule_ids(workload: str, owned: Owned, named: Named) -> list[str]:
    return [
        s.id
        for s in owned.schedules
        if s.owner == workload and s.state not in ("deleting",) and not named.names_schedule(s.id)
    ]


def _schedule_change(schedule: LiveScheduleRef, options: PlanOptions) -> Change:
    address = f"jobschedule/{schedule.id}"
    if not options.prune:
        return Change(address, Action.NOOP, reason=KEPT, cause=ORPHAN)
    delete = Operation(Stage.JOB_DELETE, "jobschedule.delete", {"id": schedule.id})
    return Change(address, Action.DELETE, reason=GONE, operations=(delete,), cause=ORPHAN)


def orphan_ids(workload: str, owned: Owned, named: Named) -> tuple[list[str], list[str]]:
    """Ids of this workload's pools and jobs that the manifest does not name (Batch ids ignore case)."""
    pools = [
        p.id
        for p in owned.pools
        if p.owner == workload and p.state != "deleting" and not named.names_pool(p.id)
    ]
    jobs = [
        j.id
        for j in owned.jobs
        if j.owner == workload
        and j.state != "deleting"
        and not named.names_job(j.id)
        and ":" not in j.id  # made by a job schedule (``<schedule>:job-<n>``): the schedule owns it
    ]
    return pools, jobs


def _job_change(job: LiveJobRef, options: PlanOptions) -> Change:
    address = f"job/{job.id}"
    if not options.prune:
        return Change(address, Action.NOOP, reason=KEPT, cause=ORPHAN)
    busy = job.busy_tasks if job.state not in FINISHED else 0
    if busy and not options.confirm_replace:
        return Change(
            address,
            Action.BLOCKED,
            reason=f"{GONE}; deleting would interrupt {busy} active or running task(s)",
            unblock=f"{CONFIRM_FLAG} (or answer yes when asked)",
            cause=ORPHAN,
        )
    save = Operation(Stage.RESULTS, "results.save", {"job": job.id})
    delete = Operation(Stage.JOB_DELETE, "job.delete", {"id": job.id})
    return Change(address, Action.DELETE, reason=GONE, operations=(save, delete), cause=ORPHAN)


def _pool_change(pool: LivePoolRef, users: Sequence[str], options: PlanOptions) -> Change:
    address = f"pool/{pool.id}"
    if not options.prune:
        return Change(address, Action.NOOP, reason=KEPT, cause=ORPHAN)
    if users:
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        return Change(address, Action.NOOP, reason=f"{GONE}; kept while {shown} uses it", cause=ORPHAN)
    if pool.running_nodes and not options.confirm_replace:
        return Change(
            address,
            Action.BLOCKED,
            reason=f"{GONE}; deleting would interrupt {pool.running_nodes} node(s) running tasks",
            unblock=f"{CONFIRM_FLAG} (or answer yes when asked)",
            cause=ORPHAN,
        )
    delete = Operation(Stage.ORPHAN_POOL_DELETE, "pool.delete", {"id": pool.id})
    return Change(address, Action.DELETE, reason=GONE, operations=(delete,), cause=ORPHAN)


def decide_orphans(workload: str, owned: Owned, named: Named, options: PlanOptions) -> list[Change]:
    """One change per orphan of ``workload``: job schedules and jobs first, then pools."""
    pool_ids, job_ids = orphan_ids(workload, owned, named)
    schedules = {x.id: x for x in owned.schedules}
    changes = [
        _schedule_change(schedules[i], options) for i in sorted(orphan_schedule_ids(workload, owned, named))
    ]
    gone_schedules = {c.address.split("/", 1)[1].lower() for c in changes if c.action is Action.DELETE}
    jobs = {j.id: j for j in owned.jobs}
    changes += [_job_change(jobs[i], options) for i in sorted(job_ids)]
    deleted = {c.address.split("/", 1)[1].lower() for c in changes if c.action is Action.DELETE}
    pools = {p.id: p for p in owned.pools}
    for pool in sorted(pool_ids):
        # The manifest's jobs as they will be, then the live jobs that stay (not the manifest's: they move).
        users = sorted(f"job/{job}" for job, uses in named.jobs.items() if uses.lower() == pool.lower())
        users += sorted(
            f"jobschedule/{x}" for x, uses in named.schedules.items() if uses.lower() == pool.lower()
        )
        users += sorted(
            f"job/{j.id}"
            for j in owned.jobs
            if j.pool_id.lower() == pool.lower()
            and j.state not in FINISHED
            and j.id.lower() not in deleted
            and not named.names_job(j.id)
            and j.id.split(":", 1)[0].lower() not in gone_schedules  # a deleted schedule's runs go with it
        )
        users += sorted(
            f"jobschedule/{x.id}"
            for x in owned.schedules
            if x.pool_id.lower() == pool.lower()
            and x.state not in FINISHED
            and x.id.lower() not in gone_schedules
            and not named.names_schedule(x.id)
        )
        changes.append(_pool_change(pools[pool], users, options))
    return changes


def orphan_changes(workload: Workload, owned: Owned, options: PlanOptions) -> list[Change]:
    """:func:`decide_orphans` for what ``workload`` names."""
    return decide_orphans(workload.name, owned, named_by(workload), options)
