"""Batch writes: REST bodies from the plan -> SDK calls, each made safe to repeat.

* A create answered 409 (possibly after the SDK retried a request that had in fact succeeded) is checked
  against what is live: it is fine when the resource is this workload's, an error otherwise.
* Deletes treat 404 as done and wait until the resource is really gone (a pool or job being deleted keeps
  its id until then).
* Tasks are added 100 per ``addtaskcollection`` request, requests in parallel; per-task ``servererror`` is
  resubmitted, ``TaskExists`` is accepted when the live task has the same digest, a body too large is split.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec
from azure.batch import BatchClient
from azure.batch import models as batch_models
from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError

from batchrun.azure.failures import error_code, status_of, translate, translated
from batchrun.azure.parallel import prompt_thread_switches, run_parallel
from batchrun.azure.rest import list_json, metadata_of, post_json
from batchrun.errors import ApplyError
from batchrun.plan.live import DIGEST_KEY, WORKLOAD_KEY, task_digest_of

T = TypeVar("T")

TASKS_PER_REQUEST = 100
TASK_THREADS = 8
SERVER_ERROR_RETRIES = 5
WAIT_TIMEOUT_SECONDS = 30 * 60


class BatchWriter(msgspec.Struct):
    batch: BatchClient
    workload: str
    poll_seconds: int = 1
    wait_timeout: float = WAIT_TIMEOUT_SECONDS

    # -- waiting ---------------------------------------------------------------------------------------

    def _finish(self, what: str, poller: Any) -> None:
        """Wait for an SDK long-running operation (it polls every ``poll_seconds``)."""
        poller.result(timeout=self.wait_timeout)
        if not poller.done():
            raise ApplyError(
                f"{what} did not finish within {self.wait_timeout:.0f} s; run apply again later."
            )

    def _wait(self, what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + self.wait_timeout
        while not done():
            if time.monotonic() > deadline:
                raise ApplyError(
                    f"{what} did not finish within {self.wait_timeout:.0f} s; run apply again later."
                )
            time.sleep(self.poll_seconds)

    def _pool_gone(self, pool_id: str) -> bool:
        try:
            self.batch.get_pool(pool_id, select=["id", "state"])
        except ResourceNotFoundError:
            return True
        return False

    def _job_gone(self, job_id: str) -> bool:
        try:
            self.batch.get_job(job_id, select=["id", "state"])
        except ResourceNotFoundError:
            return True
        return False

    def _pool_steady(self, pool_id: str) -> bool:
        pool = self.batch.get_pool(pool_id, select=["id", "allocationState"]).as_dict()
        return str(pool.get("allocationState", "steady")).lower() == "steady"

    def _job_state_is(self, job_id: str, states: tuple[str, ...]) -> bool:
        job = self.batch.get_job(job_id, select=["id", "state"]).as_dict()
        return str(job.get("state", "")).lower() in states

    def _is_ours(self, live: Mapping[str, Any], body: Mapping[str, Any]) -> bool:
        """A create answered 409 is done when the live resource is this workload's with this manifest's
        digest (a lost response of our own create), and a conflict otherwise."""
        have, want = metadata_of(live.get("metadata")), metadata_of(body.get("metadata"))
        return have.get(WORKLOAD_KEY) == self.workload and have.get(DIGEST_KEY) == want.get(DIGEST_KEY)

    # -- pool ------------------------------------------------------------------------------------------

    def create_pool(self, body: Mapping[str, Any]) -> None:
        pool_id = str(body["id"])
        with translated(f"creating pool/{pool_id}"):
            try:
                post_json(self.batch, "/pools", body)  # plain JSON: the model costs CPU, adds nothing
            except ResourceExistsError:
                live = self.batch.get_pool(pool_id, select=["id", "metadata"]).as_dict()
                if not self._is_ours(live, body):
                    raise ApplyError(
                        f"pool/{pool_id}: a pool with this id appeared that this apply did not create "
                        "(another manifest or another apply); run plan again to see it."
                    ) from None

    def delete_pool(self, pool_id: str) -> None:
        with translated(f"deleting pool/{pool_id}"):
            try:
                poller = self.batch.begin_delete_pool(pool_id, polling_interval=self.poll_seconds)
            except ResourceNotFoundError:
                return
            self._finish(f"deleting pool/{pool_id}", poller)

    def wait_pool_deleted(self, pool_id: str) -> None:
        with translated(f"waiting for pool/{pool_id} to be deleted"):
            self._wait(f"deleting pool/{pool_id}", lambda: self._pool_gone(pool_id))

    def patch_pool(self, pool_id: str, body: Mapping[str, Any]) -> None:
        with translated(f"updating pool/{pool_id}"):
            self.batch.update_pool(pool_id, batch_models.BatchPoolUpdateOptions(dict(body)))

    def replace_pool_properties(self, pool_id: str, body: Mapping[str, Any]) -> None:
        """POST updateproperties: the only call that removes a start task (an omitted one is removed)."""
        with translated(f"updating pool/{pool_id}"):
            self.batch.replace_pool_properties(pool_id, batch_models.BatchPoolReplaceOptions(dict(body)))

    def reboot_nodes(self, pool_id: str) -> None:
        """Reboot every node that can be rebooted, each once its running tasks finish (no new task starts on
        it meanwhile), so it boots with the pool's current start task and application packages."""
        restartable = ("idle", "running", "starttaskfailed", "unusable", "offline")
        with translated(f"rebooting the nodes of pool/{pool_id}"):
            nodes = [
                node.id
                for node in self.batch.list_nodes(pool_id, select=["id", "state"])
                if str(getattr(node.state, "value", node.state)).lower() in restartable
            ]
            for node_id in nodes:
                # The request is what matters; apply does not wait for the reboot (it may wait for long
                # tasks), so the poller is left to itself.
                with suppress(ResourceNotFoundError):  # the node left the pool meanwhile
                    self.batch.begin_reboot_node(
                        pool_id,
                        node_id,
                        {"nodeRebootOption": "taskcompletion"},  # type: ignore[arg-type]
                        polling_interval=self.poll_seconds,
                    )

    def stop_resize(self, pool_id: str) -> None:
        with translated(f"stopping the resize of pool/{pool_id}"):
            try:
                poller = self.batch.begin_stop_pool_resize(pool_id, polling_interval=self.poll_seconds)
            except ResourceExistsError:
                pass  # 409: not resizing any more
            else:
                self._finish(f"stopping the resize of pool/{pool_id}", poller)
            self._wait(f"stopping the resize of pool/{pool_id}", lambda: self._pool_steady(pool_id))

    def resize(self, pool_id: str, args: Mapping[str, Any]) -> None:
        with translated(f"resizing pool/{pool_id}"):
            self._wait(
                f"pool/{pool_id} to reach a steady allocation state", lambda: self._pool_steady(pool_id)
            )
            options = batch_models.BatchPoolResizeOptions(dict(args))
            poller = self.batch.begin_resize_pool(pool_id, options, polling_interval=self.poll_seconds)
            self._finish(f"resizing pool/{pool_id}", poller)

    def enable_autoscale(self, pool_id: str, args: Mapping[str, Any]) -> None:
        with translated(f"enabling autoscale on pool/{pool_id}"):
            self._wait(
                f"pool/{pool_id} to reach a steady allocation state", lambda: self._pool_steady(pool_id)
            )
            self.batch.enable_pool_auto_scale(
                pool_id, batch_models.BatchPoolEnableAutoScaleOptions(dict(args))
            )

    def disable_autoscale(self, pool_id: str) -> None:
        with translated(f"disabling autoscale on pool/{pool_id}"):
            self.batch.disable_pool_auto_scale(pool_id)

    # -- job -------------------------------------------------------------------------------------------

    def create_job(self, body: Mapping[str, Any]) -> None:
        job_id = str(body["id"])
        with translated(f"creating job/{job_id}"):
            try:
                post_json(self.batch, "/jobs", body)
            except ResourceExistsError:
                live = self.batch.get_job(job_id, select=["id", "metadata"]).as_dict()
                if not self._is_ours(live, body):
                    raise ApplyError(
                        f"job/{job_id}: a job with this id appeared that this apply did not create "
                        "(another manifest or another apply); run plan again to see it."
                    ) from None

    def delete_job(self, job_id: str) -> None:
        with translated(f"deleting job/{job_id}"):
            try:
                poller = self.batch.begin_delete_job(job_id, polling_interval=self.poll_seconds)
            except ResourceNotFoundError:
                return
            self._finish(f"deleting job/{job_id}", poller)

    def wait_job_deleted(self, job_id: str) -> None:
        with translated(f"waiting for job/{job_id} to be deleted"):
            self._wait(f"deleting job/{job_id}", lambda: self._job_gone(job_id))

    def patch_job(self, job_id: str, body: Mapping[str, Any]) -> None:
        with translated(f"updating job/{job_id}"):
            self.batch.update_job(job_id, batch_models.BatchJobUpdateOptions(dict(body)))

    def disable_job(self, job_id: str) -> None:
        with translated(f"disabling job/{job_id}"):
            options = batch_models.BatchJobDisableOptions({"disableTasks": "requeue"})
            try:
                poller = self.batch.begin_disable_job(job_id, options, polling_interval=self.poll_seconds)
                self._finish(f"disabling job/{job_id}", poller)
            except ResourceExistsError as error:
                if "disabl" not in str(error).lower():
                    raise
            self._wait(f"disabling job/{job_id}", lambda: self._job_state_is(job_id, ("disabled",)))

    def enable_job(self, job_id: str) -> None:
        with translated(f"enabling job/{job_id}"):
            try:
                poller = self.batch.begin_enable_job(job_id, polling_interval=self.poll_seconds)
                self._finish(f"enabling job/{job_id}", poller)
            except ResourceExistsError as error:
                if "enabl" not in str(error).lower() and "active" not in str(error).lower():
                    raise
            self._wait(f"enabling job/{job_id}", lambda: self._job_state_is(job_id, ("active",)))

    # -- tasks -----------------------------------------------------------------------------------------

    def delete_tasks(self, job_id: str, task_ids: Sequence[str], progress: Callable[[int], None]) -> None:
        def delete(task_id: str) -> None:
            with translated(f"deleting task/{job_id}/{task_id}"), suppress(ResourceNotFoundError):
                self.batch.delete_task(job_id, task_id)
            progress(1)

        run_parallel(delete, task_ids, TASK_THREADS)

    def update_constraints(self, job_id: str, task_id: str, constraints: Mapping[str, Any]) -> None:
        with translated(f"updating the constraints of task/{job_id}/{task_id}"):
            self.batch.replace_task(
                job_id, task_id, batch_models.BatchTask({"constraints": dict(constraints)})
            )

    def add_tasks(
        self,
        job_id: str,
        tasks: Sequence[T],
        body_of: Callable[[T], Mapping[str, Any]],
        progress: Callable[[int], None],
        ready: Callable[[threading.Event], None] | None = None,
    ) -> None:
        """Add the bodies of ``tasks`` 100 per request with parallel requests; raise ApplyError naming failed
        tasks. Each request's bodies are made by the thread that sends it, so the first request leaves
        without waiting for every body (``tasks`` may make each as it is read: a plan's new tasks).

        One request at a time is made ready: its bodies made, encoded and signed while the other threads
        wait, the next request's only once it is on its way (the pipeline's request hook). Under Python's
        lock, the first requests then leave one after another as soon as each is ready, instead of together
        once most are (the service idle meanwhile); a request made ready leaves within 1 ms of the next
        one's making beginning (the switch interval).

        ``ready`` is called once, when the first request is ready to leave, before it does: it may wait (a
        job still being created; given the event set at a first error or Ctrl-C, to give up on) or raise,
        and then nothing is sent."""
        chunks = [
            range(i, min(i + TASKS_PER_REQUEST, len(tasks))) for i in range(0, len(tasks), TASKS_PER_REQUEST)
        ]
        stop = threading.Event()
        first = _Once(ready, stop)
        if not chunks:
            first()
            return
        making = threading.Lock()

        def add(chunk: range) -> list[str]:
            making.acquire()
            holding = [True]

            def release() -> None:
                if holding:
                    holding.clear()
                    making.release()

            def sending() -> None:
                try:
                    first()
                finally:
                    release()

            try:
                first.raise_if_failed()  # a first request that may not leave: no more bodies are made
                bodies = list(map(body_of, tasks[chunk.start : chunk.stop]))
                return self._add_chunk(job_id, bodies, progress, sending)
            finally:
                release()

        with prompt_thread_switches():
            results = run_parallel(add, chunks, TASK_THREADS, stop)
        failures = [failure for result in results for failure in result]
        if failures:
            shown = "\n  ".join(failures[:10])
            more = f"\n  ... and {len(failures) - 10} more" if len(failures) > 10 else ""
            raise ApplyError(
                f"{len(failures)} task(s) of job/{job_id} could not be added:\n  {shown}{more}\n"
                "Fix the manifest and run apply again; tasks already added are kept."
            )

    def _add_chunk(
        self,
        job_id: str,
        chunk: Sequence[Mapping[str, Any]],
        progress: Callable[[int], None],
        sending: Callable[[], None] | None = None,
    ) -> list[str]:
        """Add ``chunk``, retrying what the service failed; ``sending``: called as each request leaves."""
        pending = list(chunk)
        failures: list[str] = []
        for attempt in range(SERVER_ERROR_RETRIES + 1):
            if not pending:
                break
            if attempt:
                time.sleep(min(2**attempt * 0.5, 10))
            by_id = {str(body["id"]).lower(): body for body in pending}
            try:
                # Plain JSON both ways through the SDK's pipeline: its models cost ~3 ms of CPU per
                # 100-task request and answer (a third of a second per 10,000 tasks).
                path = f"/jobs/{quote(job_id, safe='')}/addtaskcollection"
                result = post_json(self.batch, path, {"value": list(pending)}, sending)
            except AzureError as error:
                # Batch takes at most 1 MB per request: large tasks go in smaller groups.
                if error_code(error) == "RequestBodyTooLarge" and len(pending) > 1:
                    half = len(pending) // 2
                    return self._add_chunk(job_id, pending[:half], progress) + self._add_chunk(
                        job_id, pending[half:], progress
                    )
                raise translate(error, f"adding tasks to job/{job_id}") from error
            retry: list[Mapping[str, Any]] = []
            existing: list[Mapping[str, Any]] = []
            added = 0  # reported once per answer
            for item in result.get("value") or []:  # mapping access: as_dict() is slow per chunk
                task_id = str(item.get("taskId", ""))
                status = str(item.get("status", "")).lower()
                code = str((item.get("error") or {}).get("code", ""))
                body = by_id.get(task_id.lower())
                if body is None:
                    continue
                if status == "success":
                    added += 1
                elif status == "servererror":
                    retry.append(body)
                elif code == "TaskExists":
                    existing.append(body)
                else:
                    message = str(((item.get("error") or {}).get("message") or {}).get("value", ""))
                    failures.append(f"task/{job_id}/{task_id}: {code} {message}".strip())
            if existing:
                same = self._same_tasks(job_id, existing)
                for body in existing:
                    if str(body["id"]).lower() in same:
                        added += 1
                    else:
                        failures.append(
                            f"task/{job_id}/{body['id']}: TaskExists: a task with this id exists with "
                            "another definition (added meanwhile by someone else); run plan again to see it"
                        )
            if added:
                progress(added)
            pending = retry
        failures.extend(f"task/{job_id}/{body['id']}: server error after retries" for body in pending)
        return failures

    def _same_tasks(self, job_id: str, bodies: Sequence[Mapping[str, Any]]) -> set[str]:
        """Lower-cased ids of ``bodies`` whose live task is the one we meant to add (same digest): TaskExists
        answers are success for those. One list request per chunk (filtered by id, selecting only the
        digest), never one GET per task; any error is a batchrun error, never a traceback."""
        wanted = {str(body["id"]).lower(): task_digest_of(body.get("environmentSettings")) for body in bodies}
        clauses = " or ".join(f"id eq '{body['id']}'" for body in bodies)
        path = f"/jobs/{quote(job_id, safe='')}/tasks"
        select = {"$select": "id,environmentSettings"}
        with translated(f"checking the {len(bodies)} task(s) of job/{job_id} that already exist"):
            try:
                live = list(list_json(self.batch, path, {**select, "$filter": clauses}))
            except HttpResponseError as error:
                if status_of(error) != 400:
                    raise
                # A service that refuses this filter: read the job's tasks (ids and digests only) instead.
                live = [
                    task for task in list_json(self.batch, path, select) if str(task["id"]).lower() in wanted
                ]
            found = {
                str(task["id"]).lower(): task_digest_of(task.get("environmentSettings")) for task in live
            }
        return {task_id for task_id, digest in wanted.items() if digest and found.get(task_id) == digest}


class _Once:
    """``ready(stop)`` called by the first caller only (the others wait for it); its error raised again to
    every later caller. Without ``ready``: nothing."""

    def __init__(self, ready: Callable[[threading.Event], None] | None, stop: threading.Event) -> None:
        self._ready, self._stop = ready, stop
        self._lock = threading.Lock()
        self._done = ready is None
        self._error: BaseException | None = None

    def __call__(self) -> None:
        if self._done:
            return
        with self._lock:
            if not self._done and self._error is None and self._ready is not None:
                try:
                    self._ready(self._stop)
                except BaseException as error:
                    self._error = error
                    raise
                self._done = True
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error
