"""Desired x live -> Plan, for apply and for destroy. Pure: every input is already read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from batchrun.model import JobSpec, Workload
from batchrun.model.durations import duration_seconds
from batchrun.plan.actions import (
    Action,
    Change,
    Changes,
    InputBinding,
    Operation,
    Plan,
    Stage,
    held,
    mapped,
    new_task_count,
)
from batchrun.plan.bodies import Ownership, input_bindings, job_body, pool_body, task_operation_args
from batchrun.plan.decide_common import PlanOptions, ownership_block
from batchrun.plan.decide_job import decide_job, job_address
from batchrun.plan.decide_orphans import Owned, orphan_changes
from batchrun.plan.decide_pool import decide_pool, pool_address
from batchrun.plan.decide_schedule import decide_schedule, schedule_address
from batchrun.plan.decide_storage import decide_input, decide_outputs, decide_package
from batchrun.plan.decide_tasks import TaskDecisions, decide_tasks
from batchrun.plan.live import (
    STATE_CONTAINER,
    LiveJobState,
    LivePackage,
    LiveState,
    PreparedInput,
    PreparedPackage,
)
from batchrun.plan.task_identity import Contents, TaskGraph, package_refs, task_graph
from batchrun.plan.task_status import ContentChanges, TaskOptions

DAY = 86400
DEFAULT_SAS_LIFETIME = 30 * DAY
ENTRA_SAS_LIMIT = 7 * DAY  # a user delegation key lives at most 7 days


def sas_lifetime_seconds(workload: Workload, user_delegation_sas: bool) -> int:
    """The jobs' longest maxWallClockTime plus a day (when every job sets one and there is no schedule), else
    30 days; at most 7 days with Entra ID."""
    limits = [
        duration_seconds(limit)
        for job in workload.jobs
        if isinstance(limit := (job.properties.get("constraints") or {}).get("maxWallClockTime"), str)
    ]
    seconds = DEFAULT_SAS_LIFETIME
    if workload.schedule is not None:  # runs start long after the apply: the longest lifetime there is
        limits = []
    if workload.jobs and len(limits) == len(workload.jobs) and all(p is not None for p in limits):
        seconds = int(max(p for p in limits if p is not None)) + DAY
    return min(seconds, ENTRA_SAS_LIMIT) if user_delegation_sas else seconds


def make_plan(
    workload: Workload,
    live: LiveState,
    inputs: Sequence[PreparedInput],
    packages: Sequence[PreparedPackage],
    ownership: Ownership,
    options: PlanOptions,
    target_line: str,
    user_delegation_sas: bool = False,
    owned: Owned | None = None,
    now: datetime | None = None,
    graphs: Mapping[str, TaskGraph] | None = None,
) -> Plan:
    """``owned``: what the workload owns live, for its orphans (None: not looked for); ``now``: for a
    schedule's SAS renewal (None: not checked); ``graphs``: :func:`task_graphs` of the same workload,
    inputs and packages when already made (they need no live state)."""
    if graphs is None:
        graphs = task_graphs(workload, inputs, packages)
    changes: list[Change] = [
        decide_input(prepared, live.inputs.get(prepared.name), options.prune) for prepared in inputs
    ]
    if workload.outputs is not None:
        changes.append(decide_outputs(workload.outputs.container, live.outputs_container_exists))
    for package in packages:
        key = f"{package.id}@{package.version}"
        observed = live.packages.get(key) or LivePackage(package.id, package.version, False, False)
        changes.append(decide_package(package, observed))
    if workload.pool is not None:
        changes.append(decide_pool(pool_body(workload.pool, ownership), live.pool, ownership, options))
    bindings = input_bindings(workload)
    outputs = workload.outputs.container if workload.outputs else None
    if workload.schedule is not None and workload.job is not None:
        graph = graphs[workload.job.id.lower()]
        tasks = [task_operation_args(t, graph.digest_of(t, i)) for i, t in enumerate(workload.job.tasks)]
        changes.extend(decide_schedule(workload, live.schedule, ownership, options, tasks, now))
    job_parts: list[Sequence[Change]] = []  # each job's change, then its tasks' (not copied into one)
    if workload.schedule is None:
        for index, job in enumerate(workload.jobs):
            job_parts.extend(
                _job_and_tasks(
                    job,
                    live,
                    live.job_state(job.id, first=index == 0),
                    graphs[job.id.lower()],
                    packages,
                    ownership,
                    options,
                    bindings,
                    changes[: len(inputs)],
                )
            )
        if not live.state_container_exists and any(
            new_task_count(part) or any(c.runs for c in held(part)) for part in job_parts
        ):
            changes.append(state_container_change())
    orphans = orphan_changes(workload, owned, options) if owned is not None else []
    return Plan(
        workload=workload.name,
        target=target_line,
        changes=Changes((tuple(changes), *job_parts, tuple(orphans))),
        inputs=tuple(bindings.values()),
        outputs_container=outputs,
        sas_expiry_seconds=sas_lifetime_seconds(workload, user_delegation_sas),
        job_id=workload.job.id if workload.job else None,
    )


def state_container_change() -> Change:
    """The container that keeps the workloads' records of results and their tasks' logs."""
    create = Operation(Stage.STORAGE, "storage.create_container", {"container": STATE_CONTAINER})
    return Change(
        f"storage.state/{STATE_CONTAINER}",
        Action.CREATE,
        reason="keeps the record of results and failed tasks' logs",
        operations=(create,),
    )


def task_graphs(
    workload: Workload, inputs: Sequence[PreparedInput], packages: Sequence[PreparedPackage]
) -> dict[str, TaskGraph]:
    """Each job's task graph by lower-cased job id: from the manifest and local content alone, so it can be
    made while live state is read (without dependencies a graph makes no digest until one is read)."""
    bindings = input_bindings(workload)
    outputs = workload.outputs.container if workload.outputs else None
    contents = contents_of(workload, inputs, packages)
    return {job.id.lower(): task_graph(job, bindings, outputs, contents) for job in workload.jobs}


def contents_of(
    workload: Workload, inputs: Sequence[PreparedInput], packages: Sequence[PreparedPackage]
) -> Contents:
    """What tasks will read once the plan is applied: the local files and package builds."""
    defaults = {p.id.lower(): p.version for p in packages if p.set_default}
    return Contents(
        # Only inputs no task reads have files left unhashed (batchrun.local_inputs): none is in a digest.
        inputs={i.name: {f.blob: f.md5 for f in i.files if f.md5 is not None} for i in inputs},
        packages={f"{p.id.lower()}@{p.version}": p.sha256 for p in packages},
        default_versions=defaults,
        pool_packages=tuple(package_refs(workload.pool.properties)) if workload.pool else (),
    )


def content_changes(
    changes: Sequence[Change], live: LiveState, packages: Sequence[PreparedPackage]
) -> ContentChanges:
    """Which input files are uploaded and which pool packages move, to name them in task reasons."""
    blobs: dict[str, list[str]] = {}
    for change in changes:
        if change.kind != "storage.input":
            continue
        name = change.address.split("/", 1)[1]
        for operation in change.operations:
            if operation.name == "storage.upload":
                blobs.setdefault(name, []).extend(str(f["blob"]) for f in operation.args.get("files", ()))
    moved: dict[str, str] = {}
    live_refs = dict(package_refs(live.pool.properties)) if live.pool is not None else {}
    before = {name.rstrip("/").rsplit("/", 1)[-1].lower(): version for name, version in live_refs.items()}
    for package in packages:
        old = before.get(package.id.lower())
        if old is not None and old != package.version:
            moved[package.id] = f"{old} -> {package.version}"
    return ContentChanges(blobs, moved)


def _job_and_tasks(
    job: JobSpec,
    live: LiveState,
    job_live: LiveJobState,
    graph: TaskGraph,
    packages: Sequence[PreparedPackage],
    ownership: Ownership,
    options: PlanOptions,
    bindings: Mapping[str, InputBinding],
    input_changes: Sequence[Change],
) -> list[Sequence[Change]]:
    """The job's change followed by its tasks' changes (blocked with the job when the job is blocked)."""
    task_options = TaskOptions(options.prune, options.rerun_failed, options.rerun)
    reasons = content_changes(input_changes, live, packages)
    prefixes = {name: binding.prefix for name, binding in bindings.items()}

    live_job = job_live.job
    open_job = live_job is not None and live_job.state.lower() not in ("completed", "terminating", "deleting")

    def decide(fresh: bool, earlier: TaskDecisions | None = None) -> TaskDecisions:
        return decide_tasks(
            job,
            graph,
            job_live.tasks,
            live.results,
            fresh,
            task_options,
            reasons,
            prefixes,
            open_job,
            earlier,
        )

    tasks = decide(live_job is None)
    final = str(job.properties.get("onAllTasksComplete", "noaction"))
    decision = decide_job(
        job_body(job, ownership),
        final,
        live_job,
        ownership,
        options,
        tasks.any_change,
        tasks.any_run,
        has_tasks=bool(job.tasks),
    )
    if decision.change.action is Action.BLOCKED:
        unblock = decision.change.unblock

        def blocked(change: Change) -> Change:
            if change.action is Action.NOOP:
                return change
            return Change(change.address, Action.BLOCKED, reason="its job is blocked", unblock=unblock)

        return [(decision.change,), mapped(tasks.changes, blocked)]
    if decision.fresh and live_job is not None:
        tasks = decide(True, tasks)
    return [(decision.change,), tasks.changes]


def make_destroy_plan(
    workload: Workload,
    live: LiveState,
    options: PlanOptions,
    target_line: str,
    containers: bool = False,
) -> Plan:
    """Delete the job and the pool when this workload owns them; containers only when asked."""
    changes: list[Change] = []
    if workload.schedule is not None and workload.job is not None:
        schedule = live.schedule
        changes.append(
            _delete(
                schedule_address(workload.job.id),
                None if schedule is None else schedule.metadata,
                workload.name,
                None,
                Operation(Stage.JOB_DELETE, "jobschedule.delete", {"id": workload.job.id}),
            )
        )
    for index, job in enumerate(() if workload.schedule is not None else workload.jobs):
        live_job = live.job_state(job.id, first=index == 0).job
        busy = live_job.active_tasks + live_job.running_tasks if live_job is not None else 0
        changes.append(
            _delete(
                job_address(job.id),
                None if live_job is None else live_job.metadata,
                workload.name,
                f"{busy} active or running task(s)" if busy and not options.confirm_replace else None,
                Operation(Stage.JOB_DELETE, "job.delete", {"id": job.id}),
            )
        )
    if workload.pool is not None:
        running = live.pool.running_nodes if live.pool is not None else 0
        changes.append(
            _delete(
                pool_address(workload.pool.id),
                None if live.pool is None else live.pool.metadata,
                workload.name,
                f"{running} node(s) running tasks" if running and not options.confirm_replace else None,
                Operation(Stage.POOL_DELETE, "pool.delete", {"id": workload.pool.id}),
            )
        )
    if live.results and not any(c.action is Action.BLOCKED for c in changes):
        # Forgotten with the job: a workload applied again after destroy runs every task again.
        forget = Operation(Stage.JOB_DELETE, "results.forget", {})
        changes.append(
            Change(
                f"storage.state/{STATE_CONTAINER}/{workload.name}",
                Action.DELETE,
                reason=f"the record of {len(live.results)} task result(s) and their kept logs",
                operations=(forget,),
            )
        )
    if containers:
        changes.extend(_container_deletes(workload, live.inputs))
    return Plan(workload=workload.name, target=target_line, changes=tuple(changes), job_id=None)


def _delete(
    address: str,
    live_metadata: Mapping[str, str] | None,
    workload_name: str,
    would_interrupt: str | None,
    operation: Operation,
) -> Change:
    """Delete a live pool or job this workload owns; blocked while it has work that would be interrupted."""
    if live_metadata is None:
        return Change(address, Action.NOOP, reason="already gone")
    blocked = ownership_block(address, live_metadata, workload_name, adopt=False)
    if blocked is not None:
        return _left_alone(blocked)
    if would_interrupt is not None:
        return Change(
            address,
            Action.BLOCKED,
            reason=f"deleting would interrupt {would_interrupt}",
            unblock="--confirm-replace (or answer yes when asked)",
        )
    return Change(address, Action.DELETE, operations=(operation,))


def _left_alone(blocked: Change) -> Change:
    return Change(
        blocked.address, Action.NOOP, reason=blocked.reason.replace("; batchrun never", "; batchrun will not")
    )


def _container_deletes(workload: Workload, inputs: Mapping[str, object]) -> list[Change]:
    names = sorted(
        {i.container for i in workload.inputs} | ({workload.outputs.container} if workload.outputs else set())
    )
    return [
        Change(
            f"storage.container/{name}",
            Action.DELETE,
            operations=(Operation(Stage.CONTAINER_DELETE, "storage.delete_container", {"container": name}),),
        )
        for name in names
    ]
