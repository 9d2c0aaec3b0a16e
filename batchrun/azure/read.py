"""Live state: Batch's answers -> :mod:`batchrun.plan.live` data. Nothing SDK-typed is returned.

Batch is read as plain JSON through the SDK's pipeline (:mod:`batchrun.azure.rest`): a model built for an
answer only to be turned back into the same dict cost about 0.7 ms of CPU per read. Tasks are read with
``$select`` in 1,000-task pages and reduced at once to ``LiveTask`` tuples, so memory stays bounded at 100,000
tasks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from contextlib import contextmanager, nullcontext
from typing import Any, Protocol
from urllib.parse import quote

from azure.batch import BatchClient
from azure.core.exceptions import ResourceNotFoundError

from batchrun.azure.arriving_tasks import ArrivingTasks, ListingStopped
from batchrun.azure.clients import Clients
from batchrun.azure.failures import translated
from batchrun.azure.packages import read_package
from batchrun.azure.parallel import calls_at_once, prompt_thread_switches
from batchrun.azure.rest import get_json, list_json, metadata_of
from batchrun.azure.results import read_record
from batchrun.azure.storage import container_exists, read_input
from batchrun.errors import TargetError
from batchrun.model import Workload
from batchrun.plan.live import (
    NODE_COUNTS,
    LiveJob,
    LiveJobState,
    LivePool,
    LiveSchedule,
    LiveState,
    LiveTask,
    PreparedInput,
    PreparedPackage,
    counted_nodes,
    task_digest_of,
)

TASK_PAGE_SIZE = 1000


class Existence(Protocol):
    """Which jobs and pools exist, as listings of the account found them (each answer waits for its
    listing): a job or pool not listed is not asked for, nor are a missing job's tasks."""

    def job_exists(self, job_id: str) -> bool: ...

    def pool_exists(self, pool_id: str) -> bool: ...


class _AllExist:
    """No listing to go by: every job and pool is asked for."""

    def job_exists(self, job_id: str) -> bool:
        return True

    def pool_exists(self, pool_id: str) -> bool:
        return True


_ALL_EXIST = _AllExist()  # stateless

READ_THREADS = 6  # independent reads of one plan at a time (a few per workload: pool, job, record, inputs)
TASK_FIELDS = ["id", "state", "environmentSettings", "constraints", "executionInfo"]


def read_pool(batch: BatchClient, pool_id: str) -> LivePool | None:
    with translated(f"reading pool/{pool_id}"):
        try:
            pool = get_json(batch, f"/pools/{quote(pool_id, safe='')}")
        except ResourceNotFoundError:
            return None
        running = 0
        if pool.get("state", "active") != "deleting" and _may_have_nodes(pool):
            nodes = f"/pools/{quote(pool_id, safe='')}/nodes"
            for node in list_json(batch, nodes, {"$select": "id,state"}, TASK_PAGE_SIZE):
                if str(node.get("state", "")).lower() == "running":
                    running += 1
    return LivePool(
        id=str(pool.get("id", pool_id)),
        properties=pool,
        metadata=metadata_of(pool.get("metadata")),
        state=str(pool.get("state", "active")),
        allocation_state=str(pool.get("allocationState", "steady")),
        running_nodes=running,
    )


def _may_have_nodes(pool: dict[str, Any]) -> bool:
    """Whether the pool may have nodes to list: it counts some, or its counts are not given, or it is
    resizing (nodes coming and going). A steady pool counting none has none: a request fewer on every plan
    of an idle pool (the pool's decisions take the same counts for "empty")."""
    if str(pool.get("allocationState", "steady")).lower() != "steady":
        return True
    if not all(isinstance(pool.get(key), int) for key in NODE_COUNTS):  # not given (or not as Batch does)
        return True
    return counted_nodes(pool) > 0


def _read_pool_if_listed(batch: BatchClient, pool_id: str, exists: Existence) -> LivePool | None:
    return read_pool(batch, pool_id) if exists.pool_exists(pool_id) else None


def read_job(batch: BatchClient, job_id: str) -> LiveJob | None:
    with translated(f"reading job/{job_id}"):
        try:
            job = get_json(batch, f"/jobs/{quote(job_id, safe='')}")
        except ResourceNotFoundError:
            return None
        active = running = 0
        state = str(job.get("state", "active"))
        if state not in ("deleting", "completed"):
            counts = get_json(batch, f"/jobs/{quote(job_id, safe='')}/taskcounts").get("taskCounts") or {}
            active, running = int(counts.get("active", 0)), int(counts.get("running", 0))
    return LiveJob(
        id=str(job.get("id", job_id)),
        properties=job,
        metadata=metadata_of(job.get("metadata")),
        state=state,
        pool_id=str((job.get("poolInfo") or {}).get("poolId", "")),
        active_tasks=active,
        running_tasks=running,
    )


def read_schedule(batch: BatchClient, schedule_id: str) -> LiveSchedule | None:
    with translated(f"reading jobschedule/{schedule_id}"):
        try:
            found = get_json(batch, f"/jobschedules/{quote(schedule_id, safe='')}")
        except ResourceNotFoundError:
            return None
    return LiveSchedule(
        id=str(found.get("id", schedule_id)),
        properties=found,
        metadata=metadata_of(found.get("metadata")),
        state=str(found.get("state", "active")),
    )


def list_tasks(
    batch: BatchClient,
    job_id: str,
    arrived: Callable[[dict[str, LiveTask]], None],
    stopped: Callable[[], bool] | None = None,
) -> bool:
    """The job's tasks by lower-cased id, reduced to (digest, state, constraints, result, exit code) and
    handed to ``arrived`` a page at a time. Once ``stopped()`` says so, the listing ends at its next page and
    returns False (what arrived is incomplete); a missing job returns True with no task. A job deleted after
    its first page raises TargetError: what was listed is not the job's tasks."""
    select = {"$select": ",".join(TASK_FIELDS)}
    # A job's tasks mostly share their state, result and constraints: one object for each value, not one per
    # task (a fifth of a 100,000-task plan's memory).
    shared: dict[Any, Any] = {}
    page: dict[str, LiveTask] = {}
    listed = 0
    deleted = False
    with translated(f"listing the tasks of job/{job_id}"):
        try:
            path = f"/jobs/{quote(job_id, safe='')}/tasks"
            for data in list_json(batch, path, select, TASK_PAGE_SIZE, stopped):
                listed += 1
                digest = task_digest_of(data.get("environmentSettings"))
                info = data.get("executionInfo") or {}
                state = str(data.get("state", ""))
                result = str(info.get("result") or "").lower()
                page[str(data["id"]).lower()] = LiveTask(
                    digest,
                    shared.setdefault(state, state),
                    _one_of(shared, data.get("constraints") or {}),
                    shared.setdefault(result, result),
                    info.get("exitCode"),
                )
                if len(page) == TASK_PAGE_SIZE:
                    arrived(page)
                    page = {}
        except ResourceNotFoundError:
            if not listed:
                return True
            deleted = True
    if deleted:
        raise TargetError(
            f"job/{job_id} was deleted while its tasks were being listed (after {listed} of them); "
            "make the plan again."
        )
    arrived(page)
    return stopped is None or not stopped()


def _one_of(shared: dict[Any, Any], constraints: dict[str, Any]) -> dict[str, Any]:
    """The first of the equal constraints seen, so equal ones are held once."""
    try:
        found: dict[str, Any] = shared.setdefault(tuple(constraints.items()), constraints)
    except TypeError:  # a value that cannot be a key: kept as it is
        return constraints
    return found


def read_task_bodies(batch: BatchClient, job_id: str, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Full REST bodies of a few tasks, by lower-cased id (for showing what changed)."""
    bodies: dict[str, dict[str, Any]] = {}
    for task_id in task_ids:
        with translated(f"reading task/{job_id}/{task_id}"):
            try:
                bodies[task_id.lower()] = dict(batch.get_task(job_id, task_id).as_dict())
            except ResourceNotFoundError:
                continue
    return bodies


class _JobRead:
    """A job and its task listing read at the same time: the listing does not wait for the job's answer, and
    the job's state is ready as soon as the job is read, its tasks arriving (:class:`ArrivingTasks`). The
    listing stops at its next page when the job turns out to be gone or being deleted, or when the plan
    stops."""

    def __init__(
        self,
        pool: Executor,
        batch: BatchClient,
        job_id: str,
        with_tasks: bool,
        stop: threading.Event,
        exists: Existence = _ALL_EXIST,
    ) -> None:
        self.gone = threading.Event()
        self.arriving = ArrivingTasks()
        self._exists = exists
        self.tasks = (  # first: the listing is the longest read
            pool.submit(self._list, batch, job_id, lambda: stop.is_set() or self.gone.is_set())
            if with_tasks
            else None
        )
        self.job = pool.submit(self._read, batch, job_id)
        self.job.add_done_callback(self._stop_when_gone)

    def _read(self, batch: BatchClient, job_id: str) -> LiveJob | None:
        return read_job(batch, job_id) if self._exists.job_exists(job_id) else None

    def _list(self, batch: BatchClient, job_id: str, stopped: Callable[[], bool]) -> None:
        try:
            if not self._exists.job_exists(job_id):
                self.arriving.finish(None)  # a missing job has no tasks
                return
            whole = list_tasks(batch, job_id, self.arriving.arrived, stopped)
        except BaseException as error:
            self.arriving.finish(error)
            raise
        self.arriving.finish(None if whole else ListingStopped(f"the listing of job/{job_id} was stopped"))

    def _stop_when_gone(self, done: Future[LiveJob | None]) -> None:
        if done.exception() is not None or (job := done.result()) is None or job.state == "deleting":
            self.gone.set()

    def result(self) -> LiveJobState:
        job = self.job.result()
        if job is None or self.tasks is None or job.state == "deleting":
            return LiveJobState(job)
        return LiveJobState(job, self.arriving)


@contextmanager
def reading_live(
    clients: Clients,
    workload: Workload,
    inputs: Sequence[PreparedInput],
    packages: Sequence[PreparedPackage],
    with_tasks: bool = True,
    pool: Executor | None = None,
    exists: Existence | None = None,
) -> Iterator[Callable[[], LiveState]]:
    """Starts reading everything the manifest names, on ``pool`` when given (the caller's, which makes other
    reads beside: its threads are all started before the first read, see :mod:`batchrun.azure.parallel`).
    Inside the block, the function given waits for the reads and returns the live state with each job's
    tasks still arriving (:class:`ArrivingTasks`), so a plan made in the block decides the tasks already
    listed while the next pages are read.

    The reads are independent, so they are made at the same time (the record of results from storage while
    Batch lists the tasks, say): the plan waits for the slowest read, not for their sum. On an error or
    Ctrl-C the reads not started are dropped; the task listings end at their next page then, and at the end
    of the block.

    ``exists``: listings of the account's jobs and pools read on ``pool`` already (submitted before this
    block), which the reads of the manifest's jobs and pool wait for: what they do not list is missing, so a
    first apply does not ask for a job, its tasks and a pool that are not there (four reads, not seven)."""
    stop = threading.Event()
    own = calls_at_once(READ_THREADS, "batchrun-read") if pool is None else nullcontext(pool)
    with prompt_thread_switches(), own as reads:
        try:
            yield _read_all(
                reads, stop, clients, workload, inputs, packages, with_tasks, exists or _ALL_EXIST
            )
        finally:
            stop.set()


def read_live_without_tasks(clients: Clients, workload: Workload) -> LiveState:
    """The pool, jobs, schedule and containers the manifest names, as they are now, without the jobs' tasks
    (what a destroy plan is made from)."""
    with reading_live(clients, workload, (), (), with_tasks=False) as settled:
        return settled()


def _read_all(
    pool: Executor,
    stop: threading.Event,
    clients: Clients,
    workload: Workload,
    inputs: Sequence[PreparedInput],
    packages: Sequence[PreparedPackage],
    with_tasks: bool,
    exists: Existence,
) -> Callable[[], LiveState]:
    """Starts every read; the function returned waits for them (the task listings aside) and gives the live
    state."""
    batch, blob = clients.batch, clients.blob
    # The longest reads first: the task listings, then the record of results.
    first = _JobRead(pool, batch, workload.job.id, with_tasks, stop, exists) if workload.job else None
    more_jobs = {
        spec.id.lower(): _JobRead(pool, batch, spec.id, with_tasks, stop, exists)
        for spec in workload.more_jobs
    }
    record = pool.submit(read_record, blob, workload.name) if workload.job else None
    live_inputs = {p.name: pool.submit(read_input, blob, p, workload.name) for p in inputs}
    live_packages = {f"{p.id}@{p.version}": pool.submit(read_package, clients, p) for p in packages}
    pool_state = pool.submit(_read_pool_if_listed, batch, workload.pool.id, exists) if workload.pool else None
    schedule = (
        pool.submit(read_schedule, batch, workload.job.id) if workload.schedule and workload.job else None
    )
    outputs = pool.submit(container_exists, blob, workload.outputs.container) if workload.outputs else None

    def settled() -> LiveState:
        first_job = first.result() if first is not None else LiveJobState()
        stored = record.result() if record is not None else None
        return LiveState(
            results=stored.results if stored else {},
            state_container_exists=stored.container_exists if stored else True,
            inputs={name: future.result() for name, future in live_inputs.items()},
            packages={key: future.result() for key, future in live_packages.items()},
            pool=pool_state.result() if pool_state is not None else None,
            job=first_job.job,
            tasks=first_job.tasks,
            more_jobs={key: future.result() for key, future in more_jobs.items()},
            schedule=schedule.result() if schedule is not None else None,
            outputs_container_exists=outputs.result() if outputs is not None else True,
        )

    return settled
