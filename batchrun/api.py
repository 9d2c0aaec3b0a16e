"""The Python API: ``plan``, ``apply`` and ``destroy``, the same verbs as the CLI.

    import batchrun
    plan = batchrun.plan("workloads/hello.yaml", variables={"count": "5"})
    print(batchrun.render_plan(plan))
    batchrun.apply(plan)                  # carries out exactly this plan
    batchrun.apply("workloads/hello.yaml")  # plans and applies in one go
    batchrun.destroy("workloads/hello.yaml")

Every function resolves the target like the CLI (local by default, Azure when configured, or ``target=``),
raises :class:`~batchrun.errors.BatchrunError` subclasses, and never prints unless given ``announce``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from batchrun.apply.hooks import ApplyHooks
from batchrun.errors import Diagnostic, ManifestError, PlanError
from batchrun.model import TaskSpec, Workload, task_ids
from batchrun.plan.actions import Action, Plan
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.render import blocked_lines, render_text
from batchrun.target import Target, resolve_target

if TYPE_CHECKING:
    from batchrun.azure.clients import Clients
    from batchrun.azure.lock_ahead import LockAhead
    from batchrun.plan.bodies import Ownership
    from batchrun.plan.live import LiveState, PreparedInput, PreparedPackage

    Observe = Callable[[LiveState, Sequence[PreparedInput], Sequence[PreparedPackage]], None]

ManifestSource = str | Path | Workload
Announce = Callable[[str], None]


def quiet(_line: str) -> None:
    """The default ``announce``: says nothing."""
    return None


class Session(msgspec.Struct, frozen=True):
    """A resolved target and its SDK clients (opaque outside ``batchrun.azure``)."""

    target: Target
    clients: Clients


@contextmanager
def open_session(
    target: str | Target | None = None,
    announce: Announce = quiet,
    request_log: Callable[[str], None] | None = None,
) -> Iterator[Session]:
    from batchrun.azure.clients import build_clients

    resolved = target if isinstance(target, Target) else resolve_target(target, announce=announce)
    announce(resolved.describe())
    clients = build_clients(resolved, request_log)
    try:
        yield Session(resolved, clients)
    finally:
        clients.close()


def load(
    manifest: ManifestSource,
    variables: Mapping[str, str] | None = None,
    var_files: Sequence[Path] = (),
    max_tasks: int | None = None,
) -> Workload:
    """Load, validate and expand a manifest (a ``Workload`` passes through unchanged)."""
    if isinstance(manifest, Workload):
        return manifest
    from batchrun.manifest import DEFAULT_MAX_TASKS, load_workload

    return load_workload(
        Path(manifest), dict(variables or {}), tuple(var_files), max_tasks or DEFAULT_MAX_TASKS
    )


def load_all(
    manifests: Sequence[Path | str],
    max_tasks: int | None = None,
    skipped: Callable[[Path], None] | None = None,
) -> tuple[Workload, ...]:
    """Load several manifests (files, or folders of them) as one set, in the order to apply them.

    Every manifest's problems are reported together (one ManifestError); two manifests may not declare the
    same workload, pool or job. Workloads whose jobs run on another's pool come after it. ``skipped`` is told
    of each YAML file under a folder that is not a workload manifest."""
    from batchrun.manifest import DEFAULT_MAX_TASKS, load_workload
    from batchrun.manifest.collection import manifest_files
    from batchrun.plan.workload_order import apply_order, check_together

    found = manifest_files([Path(m) for m in manifests])
    for path in found.skipped:
        if skipped is not None:
            skipped(path)
    workloads: list[Workload] = []
    problems: list[Diagnostic] = []
    for path in found.files:
        try:
            workloads.append(load_workload(path, {}, (), max_tasks or DEFAULT_MAX_TASKS))
        except ManifestError as error:
            problems.extend(error.diagnostics)
    if problems:
        raise ManifestError(problems)
    check_together(workloads)
    return apply_order(workloads)


def plan_with(
    session: Session,
    workload: Workload,
    options: PlanOptions,
    ownership: Ownership | None = None,
    observe: Observe | None = None,
    ahead: LockAhead | None = None,
    hash_every_file: bool = False,
) -> Plan:
    """Read live state through ``session`` and decide the plan (``ownership``: the marks of a saved plan;
    ``observe`` sees what the plan is made from, for :mod:`batchrun.saved_plans`; ``ahead``: the apply's
    lock, taken beside the reads when its blob is missing, else as soon as the live state shows that the
    apply will write, :class:`batchrun.azure.lock_ahead.LockAhead`; ``hash_every_file``: every input file's
    MD5 in the plan, even where the plan could leave it to the upload, see :mod:`batchrun.local_inputs`)."""
    from batchrun.azure.orphans import reading_orphans
    from batchrun.azure.ownership import ownership_of
    from batchrun.azure.packages import prepare_package
    from batchrun.azure.parallel import calls_at_once, prompt_thread_switches
    from batchrun.azure.read import READ_THREADS, TASK_PAGE_SIZE, read_task_bodies, reading_live
    from batchrun.collector import collector_paused
    from batchrun.hash_cache import HashCache
    from batchrun.local_inputs import prepare_inputs, with_compared_md5s
    from batchrun.plan.build import make_plan, task_graphs
    from batchrun.plan.decide_job import creates_a_job
    from batchrun.plan.explain import explain, tasks_to_explain

    # Without local inputs there is nothing to look up: the cache's file is not even found.
    hashes = (
        HashCache.for_workload(workload.name, workload.manifest_path.parent)
        if workload.inputs
        else HashCache(None)
    )
    inputs = prepare_inputs(workload, hashes, hash_every_file)  # else new files no task reads wait
    packages = [prepare_package(spec) for spec in workload.packages]
    # The task graphs (digests) need no live state and the orphans are another read: both are made while
    # live state is read, so the plan costs about the slowest of them rather than their sum. The tasks are
    # decided as their listing brings them, while the service makes the next pages. One pool for all the
    # reads: its threads start before any read does. A small workload's orphan listings come first: they
    # tell its reads which of its jobs and pool exist.
    one_page = sum(len(job.tasks) for job in workload.jobs) <= TASK_PAGE_SIZE
    reads = READ_THREADS + 4  # and the three listings of the orphans, and git
    # Threads waiting for Python's lock ask for it at the switch interval in force when they began to wait:
    # set before the first call is submitted. The pool's idle threads end after it, out of the decisions.
    with calls_at_once(reads, "batchrun-plan") as pool, prompt_thread_switches(), collector_paused():
        if ahead is not None:  # on the reads' threads, first: taken only if its blob is missing
            ahead.begin(pool)
        orphans = reading_orphans(pool, session.clients.batch, workload, side_by_side=one_page)
        marks = pool.submit(lambda: ownership or ownership_of(workload))  # git is asked for the revision
        with reading_live(
            session.clients, workload, inputs, packages, pool=pool, exists=orphans.listed
        ) as settled:
            graphs = task_graphs(workload, inputs, packages)  # while the reads are on their way
            live = settled()
            inputs = with_compared_md5s(inputs, live.inputs, hashes)
            hashes.save()
            if ahead is not None and creates_a_job(workload, live):
                ahead.start()  # sure to write: the lock is taken while the plan is decided
            if observe is not None:
                observe(live, inputs, packages)
            decided = make_plan(
                workload,
                live,
                inputs,
                packages,
                marks.result(),
                options,
                session.target.describe(),
                session.target.signs_with_user_delegation,
                orphans.owned(),
                datetime.now(timezone.utc),
                graphs,
            )
    shown = tasks_to_explain(decided)
    if not shown or not workload.jobs:
        return decided
    wanted = {task_id.lower() for task_id in shown}
    bodies: dict[str, dict[str, Any]] = {}
    specs: dict[str, TaskSpec] = {}
    for job in workload.jobs:  # task ids are unique across the jobs; only the tasks shown are made
        mine = [job.tasks[at] for at, task_id in enumerate(task_ids(job.tasks)) if task_id.lower() in wanted]
        if mine:
            bodies.update(read_task_bodies(session.clients.batch, job.id, [task.id for task in mine]))
            specs.update((task.id.lower(), task) for task in mine)
    return explain(decided, specs, bodies)


def destroy_plan_with(session: Session, workload: Workload, options: PlanOptions, containers: bool) -> Plan:
    from batchrun.azure.read import read_live_without_tasks
    from batchrun.plan.build import make_destroy_plan

    live = read_live_without_tasks(session.clients, workload)
    return make_destroy_plan(workload, live, options, session.target.describe(), containers)


def blocked_plan_error(plan: Plan) -> PlanError:
    """Why nothing was applied: each blocked change and the flag or edit that unblocks it."""
    return PlanError(
        "the plan has blocked changes, so nothing was applied:\n  " + "\n  ".join(blocked_lines(plan.blocked))
    )


def execute(
    session: Session,
    plan: Plan,
    hooks: ApplyHooks | None = None,
    break_lock: bool = False,
    ahead: LockAhead | None = None,
    remove_lock: bool = False,
) -> None:
    """Carry out ``plan`` exactly; refuses a plan with blocked changes or made against another target.

    A plan with changes runs under the workload's apply lock (:mod:`batchrun.azure.lock`): the one taken
    ``ahead`` while the plan was made, when it was; ``break_lock`` breaks a lock left by an apply that is gone
    first; ``remove_lock`` (a destroy) deletes the lock's blob at the end instead of releasing it."""
    from contextlib import nullcontext

    from batchrun.apply.executor import Executor
    from batchrun.azure.lock import apply_lock

    if plan.target != session.target.describe():
        raise PlanError(
            f"this plan was made against '{plan.target}' but the target now is "
            f"'{session.target.describe()}'; make the plan again."
        )
    if plan.blocked:
        raise blocked_plan_error(plan)
    poll = 1 if session.target.kind == "local" else 5
    # Nothing to change writes nothing, not even the lock.
    lock = (
        (
            ahead.held()
            if ahead is not None
            else apply_lock(session.clients.blob, plan.workload, force=break_lock, remove_after=remove_lock)
        )
        if plan.has_changes
        else nullcontext()
    )
    with lock:
        Executor(plan, session.clients, hooks, poll_seconds=poll).run()


def lock_ahead(session: Session, workload: Workload, break_lock: bool = False) -> LockAhead:
    """A :class:`batchrun.azure.lock_ahead.LockAhead` (a context manager) for planning ``workload`` and
    applying the plan: pass it to :func:`plan_with` and to :func:`execute`; let go at the block's end when
    nothing was applied."""
    from batchrun.azure.lock_ahead import LockAhead

    return LockAhead(session.clients.blob, workload.name, force=break_lock)


def apply_with(
    session: Session,
    manifest_or_plan: ManifestSource | Plan,
    variables: Mapping[str, str] | None,
    var_files: Sequence[Path],
    options: PlanOptions,
    hooks: ApplyHooks | None,
) -> Plan:
    """:func:`apply` through ``session``: ``manifest_or_plan``'s plan carried out, the lock taken beside the
    reads when the workload's is missing."""
    if isinstance(manifest_or_plan, Plan):
        execute(session, manifest_or_plan, hooks)
        return manifest_or_plan
    workload = load(manifest_or_plan, variables, var_files)
    with lock_ahead(session, workload) as ahead:
        chosen = plan_with(session, workload, options, ahead=ahead)
        execute(session, chosen, hooks, ahead=ahead)
    return chosen


def destroy_with(
    session: Session, workload: Workload, containers: bool, confirm_replace: bool, hooks: ApplyHooks | None
) -> Plan:
    """:func:`destroy` through ``session``: what the workload owns deleted, its lock's blob with it."""
    chosen = destroy_plan_with(session, workload, PlanOptions(confirm_replace=confirm_replace), containers)
    execute(session, chosen, hooks, remove_lock=True)
    return chosen


def plan(
    manifest: ManifestSource,
    *,
    variables: Mapping[str, str] | None = None,
    var_files: Sequence[Path] = (),
    target: str | Target | None = None,
    prune: bool = False,
    adopt: bool = False,
    confirm_replace: bool = False,
    rerun_failed: bool = False,
    rerun: Sequence[str] = (),
    announce: Announce = quiet,
) -> Plan:
    """The plan that would make live state match the manifest.

    ``rerun_failed`` runs again the tasks that failed with an unchanged definition; ``rerun`` takes globs of
    task ids to run again whatever their state (with the tasks downstream of them).
    """
    workload = load(manifest, variables, var_files)
    options = PlanOptions(prune, adopt, confirm_replace, rerun_failed, tuple(rerun))
    with open_session(target, announce) as session:
        return plan_with(session, workload, options)


def apply(
    manifest_or_plan: ManifestSource | Plan,
    *,
    variables: Mapping[str, str] | None = None,
    var_files: Sequence[Path] = (),
    target: str | Target | None = None,
    prune: bool = False,
    adopt: bool = False,
    confirm_replace: bool = False,
    rerun_failed: bool = False,
    rerun: Sequence[str] = (),
    hooks: ApplyHooks | None = None,
    announce: Announce = quiet,
) -> Plan:
    """Apply a plan from :func:`plan`, or plan a manifest and apply it. Returns the applied plan."""
    with open_session(target, announce) as session:
        return apply_with(
            session,
            manifest_or_plan,
            variables,
            var_files,
            PlanOptions(prune, adopt, confirm_replace, rerun_failed, tuple(rerun)),
            hooks,
        )


def destroy(
    manifest: ManifestSource,
    *,
    variables: Mapping[str, str] | None = None,
    var_files: Sequence[Path] = (),
    target: str | Target | None = None,
    containers: bool = False,
    confirm_replace: bool = False,
    hooks: ApplyHooks | None = None,
    announce: Announce = quiet,
) -> Plan:
    """Delete the job and pool the manifest owns (and its containers when asked); returns what was done."""
    workload = load(manifest, variables, var_files)
    with open_session(target, announce) as session:
        return destroy_with(session, workload, containers, confirm_replace, hooks)


def render_plan(plan: Plan) -> str:
    """The plan as text, as ``batchrun plan`` prints it."""
    return render_text(plan)


__all__ = ["Action", "Plan", "apply", "destroy", "load", "load_all", "plan", "render_plan"]
