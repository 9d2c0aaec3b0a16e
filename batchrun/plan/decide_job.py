"""Decisions for the job (pure): create; PATCH in place; a pool change by disable, patch, enable; replace."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from batchrun.model import Workload
from batchrun.plan.actions import Action, Change, FieldChange, Operation, Stage
from batchrun.plan.bodies import Ownership, marked, metadata_list
from batchrun.plan.decide_common import (
    PlanOptions,
    body_user,
    kept_metadata,
    needs_confirmation,
    ownership_block,
    user_metadata_changes,
)
from batchrun.plan.diff import diff_subset, scalars_equal
from batchrun.plan.live import WORKLOAD_KEY, LiveJob, LiveState
from batchrun.plan.removals import job_removals
from batchrun.plan.rules import Family, job_family
from batchrun.plan.secrets import recorded_secret_changes


def job_address(job_id: str) -> str:
    return f"job/{job_id}"


NOTHING_TO_RUN = "not created: every task's result is current"


def creates_a_job(workload: Workload, live: LiveState) -> bool:
    """The plan will create the workload's job, whatever else it decides: the job is missing, it has tasks,
    and no result of any task is recorded (with results recorded, a missing job is created only for the
    tasks whose results are not current, maybe none). Known from the live state alone, before the
    decisions."""
    job = workload.job
    return (
        job is not None
        and workload.schedule is None
        and live.job is None
        and not live.results
        and len(job.tasks) > 0
    )


class JobDecision(msgspec.Struct, frozen=True):
    change: Change
    fresh: bool  # the job is created or replaced: every task is created


def _job_finish(ownership: Ownership, body: Mapping[str, Any], final: str, job_id: str) -> Operation:
    """After the tasks are in: the requested onAllTasksComplete and the current digest and revision."""
    patch: dict[str, Any] = {"metadata": metadata_list(body_user(body)["metadata"], ownership)}
    if final:
        patch["onAllTasksComplete"] = final
    return Operation(Stage.JOB_FINAL, "job.patch", {"id": job_id, "body": patch})


def decide_job(
    body: Mapping[str, Any],
    final_on_all_tasks_complete: str,
    live: LiveJob | None,
    ownership: Ownership,
    options: PlanOptions,
    tasks_change: bool,
    tasks_run: bool,
    has_tasks: bool = True,
) -> JobDecision:
    """``tasks_change``: a task is added, replaced, updated or deleted; ``tasks_run``: a task must run.

    A job exists to run tasks: when every task's result is current it is neither created nor replaced, and a
    completed job is never changed (Batch refuses); its job-level changes apply when it next runs tasks.
    """
    job_id = str(body["id"])
    address = job_address(job_id)
    # batchrun.keys / batchrun.secrets marks; metadata items someone else set are written back, not wiped.
    body, ownership = marked(body, ownership, kept_metadata(body_user(body), live.metadata) if live else ())
    finish = _job_finish(ownership, body, final_on_all_tasks_complete, job_id)
    create = Operation(Stage.JOB, "job.create", {"body": dict(body)})
    # A job is created with noaction (it has no tasks yet) and its marks: only another onAllTasksComplete
    # needs a patch once its tasks are in.
    ends_itself = (final_on_all_tasks_complete or "noaction").lower() != "noaction"
    created = (create, finish) if ends_itself else (create,)
    idle = has_tasks and not tasks_run
    if live is None:
        if idle:
            return JobDecision(Change(address, Action.NOOP, reason=NOTHING_TO_RUN), True)
        return JobDecision(Change(address, Action.CREATE, operations=created), True)
    if live.state.lower() == "deleting":
        if idle:
            return JobDecision(Change(address, Action.NOOP, reason=NOTHING_TO_RUN), True)
        wait = Operation(Stage.JOB_DELETE, "job.wait_deleted", {"id": job_id})
        return JobDecision(
            Change(address, Action.CREATE, reason="the job is being deleted", operations=(wait, *created)),
            True,
        )
    blocked = ownership_block(address, live.metadata, ownership.workload, options.adopt)
    if blocked is not None:
        return JobDecision(blocked, False)
    desired = {k: v for k, v in body.items() if k not in ("id", "metadata", "onAllTasksComplete")}
    replace_fields: list[FieldChange] = []
    patch_fields: list[FieldChange] = []
    pool_fields: list[FieldChange] = []
    for key, value in desired.items():
        changes = diff_subset(value, live.properties.get(key), key)
        family = job_family(key)
        if family is Family.REPLACE:
            replace_fields.extend(FieldChange(c.path, c.before, c.after, True) for c in changes)
        elif family is Family.POOL_INFO:
            pool_fields.extend(changes)
        elif family is Family.PATCH:
            patch_fields.extend(changes)
    replace_fields.extend(recorded_secret_changes(body, live.metadata))  # write-only values: create-only
    removed = job_removals(body, live.properties, live.metadata)  # what batchrun set and no longer sets
    replace_fields.extend(removed.replace_fields)
    live_final = str(live.properties.get("onAllTasksComplete", "noaction"))
    final_fields: list[FieldChange] = []
    if not scalars_equal("onAllTasksComplete", final_on_all_tasks_complete or "noaction", live_final):
        change = FieldChange("onAllTasksComplete", live_final, final_on_all_tasks_complete or "noaction")
        if live_final.lower() == "terminatejob":
            # Batch refuses terminatejob -> noaction.
            replace_fields.append(FieldChange(change.path, change.before, change.after, True))
        else:
            final_fields.append(change)
    reason = "forces replacement"
    ended = live.state.lower() in ("completed", "terminating")
    if idle and replace_fields and not ended:
        names = ", ".join(sorted({f.path.split(".")[0] for f in replace_fields}))
        shown = f"nothing needs to run; its job-level changes ({names}) apply when it next runs tasks"
        return JobDecision(Change(address, Action.NOOP, reason=shown), False)
    if ended and not tasks_run:
        later = patch_fields or pool_fields or final_fields or replace_fields
        shown = f"{live.state.lower()}; nothing needs to run"
        if later:
            shown += "; its job-level changes apply when it next runs tasks"
        return JobDecision(Change(address, Action.NOOP, reason=shown), False)
    if ended:
        reason = f"the job is {live.state.lower()} and tasks must run; current results are carried over"
        replace_fields.append(FieldChange("state", live.state, "active", True))
    if replace_fields:
        fields = tuple(replace_fields)
        busy = live.active_tasks + live.running_tasks
        if busy and not options.confirm_replace:
            return JobDecision(
                needs_confirmation(address, f"{busy} active or running task(s)", fields, "replacing"), False
            )
        save = Operation(Stage.RESULTS, "results.save", {"job": job_id})
        delete = Operation(Stage.JOB_DELETE, "job.delete", {"id": job_id})
        steps = (save, delete, *(() if idle else created))
        return JobDecision(Change(address, Action.REPLACE, fields, reason=reason, operations=steps), True)
    operations: list[Operation] = []
    metadata_fields = user_metadata_changes(body_user(body), live.metadata)
    adopting = live.metadata.get(WORKLOAD_KEY, "") != ownership.workload
    if adopting:
        metadata_fields.append(
            FieldChange(f"metadata.{WORKLOAD_KEY}", live.metadata.get(WORKLOAD_KEY), ownership.workload)
        )
    patch = {c.path.split(".")[0]: desired[c.path.split(".")[0]] for c in patch_fields}
    patch.update(removed.patch)
    patch_fields.extend(removed.patch_fields)
    if patch or metadata_fields:
        patch["metadata"] = body["metadata"]
        operations.append(Operation(Stage.JOB, "job.patch", {"id": job_id, "body": patch}))
    if pool_fields:
        operations.extend(
            (
                Operation(Stage.JOB, "job.disable", {"id": job_id}),
                Operation(Stage.JOB, "job.patch", {"id": job_id, "body": {"poolInfo": desired["poolInfo"]}}),
                Operation(Stage.JOB, "job.enable", {"id": job_id}),
            )
        )
    if final_fields or tasks_change or operations:
        operations.append(finish)
    fields = (*patch_fields, *metadata_fields, *pool_fields, *final_fields)
    if not fields:
        # Only tasks change: the job's digest and revision are refreshed; nothing to show for the job.
        return JobDecision(Change(address, Action.NOOP, operations=tuple(operations)), False)
    return JobDecision(
        Change(
            address, Action.UPDATE, fields, reason="adopted" if adopting else "", operations=tuple(operations)
        ),
        False,
    )
