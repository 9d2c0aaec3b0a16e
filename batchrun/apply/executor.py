"""Carry out a Plan: walk its operations stage by stage and make each call. Nothing here decides anything.

Within a stage, operations keep the plan's order; task deletes and task adds are batched (parallel requests,
100 tasks per add request). Task bodies get their storage URLs here: the plan names inputs and the outputs
container, and this module signs one SAS URL per container for the whole apply.

An interrupted apply leaves a state the next plan reads and converges from: every call is idempotent
(409 on create is checked against the live resource, 404 on delete is success).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from functools import partial
from typing import Any
from urllib.parse import quote

from batchrun.apply.hooks import ApplyHooks, SilentHooks
from batchrun.azure.clients import Clients
from batchrun.azure.packages import set_default_version, upload_package
from batchrun.azure.parallel import Gate
from batchrun.azure.results import forget_results, logs_prefix, save_results
from batchrun.azure.schedules import delete_schedule, put_schedule, schedule_body
from batchrun.azure.storage import SasSigner, create_container, delete_blobs, delete_container, upload_files
from batchrun.azure.write import BatchWriter
from batchrun.collector import collector_paused
from batchrun.errors import ApplyError
from batchrun.model.by_position import Joined
from batchrun.plan.actions import Change, Operation, Plan, Stage, TaskChanges, by_part, held
from batchrun.plan.decide_schedule import SAS_EXPIRY_KEY
from batchrun.plan.live import STATE_CONTAINER


class _Counter:
    """Thread-safe progress counter reporting through the hooks."""

    def __init__(self, report: Callable[[int, int], None], total: int) -> None:
        self._lock = threading.Lock()
        self._done = 0
        self._total = total
        self._report = report
        self._step = max(1, total // 20)

    def add(self, count: int) -> None:
        with self._lock:
            before = self._done
            self._done += count
            if self._done // self._step != before // self._step or self._done == self._total:
                self._report(self._done, self._total)


class Executor:
    def __init__(self, plan: Plan, clients: Clients, hooks: ApplyHooks | None = None, poll_seconds: int = 1):
        self.plan = plan
        self.clients = clients
        self.hooks: ApplyHooks = hooks or SilentHooks()
        self.writer = BatchWriter(clients.batch, plan.workload, poll_seconds=poll_seconds)
        self.poll_seconds = poll_seconds
        self.signer = SasSigner(
            clients.blob, clients.target, timedelta(seconds=plan.sas_expiry_seconds or 86400)
        )
        self._sas_cache: dict[tuple[str, str], str] = {}
        self._sas_lock = threading.Lock()
        self._bindings = {b.name: b for b in plan.inputs}

    def run(self) -> None:
        stages: dict[int, list[tuple[Change, Operation]]] = {}
        for change in held(self.plan.changes):  # plan order within a stage; a task kept does nothing
            for op in change.operations:
                stages.setdefault(int(op.stage), []).append((change, op))
        # The new tasks' changes are made in the task stage, each by the thread that sends its body.
        task_parts = [part for part in by_part(self.plan.changes) if isinstance(part, TaskChanges)]
        if any(part.new_tasks() for part in task_parts):
            stages.setdefault(int(Stage.TASKS), [])
        pool_with_job = _only(stages.get(int(Stage.POOL)), "pool.create") and _only(
            stages.get(int(Stage.JOB)), "job.create"
        )
        order = sorted(stages)
        # New tasks of the new job only (no constraints to update): their first request is made ready while
        # the pool and the job are created.
        adds_follow = (
            pool_with_job
            and order[order.index(Stage.JOB) + 1 :][:1] == [Stage.TASKS]
            and all(op.name == "task.add" for _change, op in stages[int(Stage.TASKS)])
        )
        for stage in order:
            in_stage = stages[stage]
            if stage == Stage.TASK_DELETE:
                self._delete_tasks(in_stage)
            elif stage == Stage.TASKS:
                if not adds_follow:  # else added with the creates
                    self._task_stage(in_stage, task_parts)
            elif pool_with_job and stage == Stage.POOL:
                continue  # created with the job
            elif pool_with_job and stage == Stage.JOB:
                if adds_follow:
                    self._created_while_adding(
                        stages[int(Stage.POOL)], in_stage, stages[int(Stage.TASKS)], task_parts
                    )
                else:
                    self._at_once(stages[int(Stage.POOL)], in_stage)
            else:
                for change, op in in_stage:
                    self._one(change.address, op)

    def _at_once(
        self, first: Sequence[tuple[Change, Operation]], second: Sequence[tuple[Change, Operation]]
    ) -> None:
        """The steps of ``first`` on a thread of their own while this one makes those of ``second``, then
        the first error of ``first``, else of ``second``, raised. A new pool and a new job are created so:
        Batch takes a job whose pool does not exist yet (it runs no task until the pool does), and the
        tasks are added once both are."""
        failed: list[BaseException] = []

        def steps() -> None:
            try:
                for change, op in first:
                    self._one(change.address, op)
            except BaseException as error:  # raised below, once the second steps are done
                failed.append(error)

        beside = threading.Thread(target=steps, name="batchrun-beside")
        beside.start()
        try:
            for change, op in second:
                self._one(change.address, op)
        except Exception as error:
            beside.join()
            if failed:
                raise failed[0] from error  # the first steps' error first
            raise
        finally:
            beside.join()  # a Ctrl-C here still lets the first steps' requests finish
        if failed:
            raise failed[0]

    def _created_while_adding(
        self,
        pools: Sequence[tuple[Change, Operation]],
        jobs: Sequence[tuple[Change, Operation]],
        tasks: Sequence[tuple[Change, Operation]],
        parts: Sequence[TaskChanges],
    ) -> None:
        """The pool and the job created as :meth:`_at_once` does, on threads of their own, while this one
        makes the task stage's first request ready (its threads started, its bodies made, encoded and
        signed: a few ms of Python's lock that would otherwise follow the creates). That request leaves once
        both are created, as Batch takes no task for a job that does not exist; when either failed, or on a
        Ctrl-C meanwhile, no task request leaves, and the creates' error is raised."""
        created = Gate()
        failed: list[BaseException] = []

        def create() -> None:
            try:
                self._at_once(pools, jobs)
            except BaseException as error:  # raised below, before the task stage's own
                failed.append(error)
                created.close()
            else:
                created.open()

        creating = threading.Thread(target=create, name="batchrun-create")
        creating.start()
        try:
            self._task_stage(tasks, parts, created)
        except BaseException:
            creating.join()  # a Ctrl-C here still lets the creates' requests finish
            if not failed:
                raise
        creating.join()
        if failed:
            raise failed[0]

    # -- single operations ----------------------------------------------------------------------------

    def _one(self, address: str, op: Operation) -> None:
        self.hooks.step_started(address, op.name)
        handler = self._handlers().get(op.name)
        if handler is None:
            raise ApplyError(
                f"{address}: the plan has an unknown operation {op.name!r}; make the plan again."
            )
        handler(dict(op.args))
        self.hooks.step_finished(address, op.name)

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        writer, blob = self.writer, self.clients.blob
        workload = self.plan.workload
        return {
            "storage.create_container": lambda a: create_container(blob, a["container"]),
            "storage.upload": lambda a: upload_files(
                blob, a["container"], a["files"], workload, hash_cache=a.get("hashCache")
            ),
            "storage.delete_blobs": lambda a: delete_blobs(blob, a["container"], a["blobs"]),
            "storage.delete_container": lambda a: delete_container(blob, a["container"]),
            "results.save": lambda a: self._save_results(a["job"]),
            "results.forget": lambda a: forget_results(blob, workload),
            "package.upload": lambda a: upload_package(self.clients, a),
            "package.set_default": lambda a: set_default_version(self.clients, a),
            "pool.create": lambda a: writer.create_pool(a["body"]),
            "pool.delete": lambda a: writer.delete_pool(a["id"]),
            "pool.wait_deleted": lambda a: writer.wait_pool_deleted(a["id"]),
            "pool.patch": lambda a: writer.patch_pool(a["id"], a["body"]),
            "pool.replace_properties": lambda a: writer.replace_pool_properties(a["id"], a["body"]),
            "pool.stop_resize": lambda a: writer.stop_resize(self._pool_id()),
            "pool.resize": lambda a: writer.resize(self._pool_id(), a),
            "pool.enable_autoscale": lambda a: writer.enable_autoscale(self._pool_id(), a),
            "pool.disable_autoscale": lambda a: writer.disable_autoscale(self._pool_id()),
            "pool.reboot_nodes": lambda a: writer.reboot_nodes(a["id"]),
            "job.create": lambda a: writer.create_job(a["body"]),
            "job.delete": lambda a: writer.delete_job(a["id"]),
            "job.wait_deleted": lambda a: writer.wait_job_deleted(a["id"]),
            "job.patch": lambda a: writer.patch_job(a["id"], a["body"]),
            "job.disable": lambda a: writer.disable_job(a["id"]),
            "job.enable": lambda a: writer.enable_job(a["id"]),
            "jobschedule.put": self._put_schedule,
            "jobschedule.delete": lambda a: delete_schedule(self.clients.batch, a["id"], self.poll_seconds),
            "task.update_constraints": lambda a: writer.update_constraints(
                a["job"], a["id"], a["constraints"]
            ),
        }

    def _put_schedule(self, args: dict[str, Any]) -> None:
        """The job schedule with the job manager task carrying the task bodies (SAS URLs minted now)."""
        body = args["body"]
        schedule_id = str(body["id"])
        tasks = [self.task_body(schedule_id, task) for task in args["tasks"]]
        expires = datetime.now(timezone.utc) + timedelta(seconds=self.plan.sas_expiry_seconds or 86400)
        marks = {SAS_EXPIRY_KEY: expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
        put_schedule(
            self.clients.batch, self.plan.workload, schedule_body(body, tasks, marks), args["create"]
        )

    def _save_results(self, job_id: str) -> None:
        changed = save_results(self.clients.batch, self.clients.blob, self.plan.workload, job_id)
        self.hooks.step_finished(f"job/{job_id}", f"recorded {changed} result(s)")

    def _pool_id(self) -> str:
        for change in self.plan.changes:
            if change.kind == "pool":
                return change.address.split("/", 1)[1]
        raise ApplyError("the plan resizes a pool it does not name; make the plan again.")

    # -- tasks ----------------------------------------------------------------------------------------

    def _delete_tasks(self, steps: Sequence[tuple[Change, Operation]]) -> None:
        by_job: dict[str, list[str]] = {}
        for _change, op in steps:
            by_job.setdefault(str(op.args["job"]), []).append(str(op.args["id"]))
        for job_id, ids in by_job.items():
            self.hooks.step_started(f"job/{job_id}", f"delete {len(ids)} task(s)")
            counter = _Counter(self._progress(job_id, "deleted"), len(ids))
            self.writer.delete_tasks(job_id, ids, counter.add)
            self.hooks.step_finished(f"job/{job_id}", f"delete {len(ids)} task(s)")

    def _progress(self, job_id: str, verb: str) -> Callable[[int, int], None]:
        def report(done: int, total: int) -> None:
            self.hooks.tasks_progress(job_id, verb, done, total)

        return report

    def _task_stage(
        self,
        steps: Sequence[tuple[Change, Operation]],
        parts: Sequence[TaskChanges],
        created: Gate | None = None,
    ) -> None:
        with collector_paused():  # a body per task, alive until sent: nothing for the collector to find
            self._add_and_update(steps, parts, created)

    def _add_and_update(
        self,
        steps: Sequence[tuple[Change, Operation]],
        parts: Sequence[TaskChanges],
        created: Gate | None = None,
    ) -> None:
        """The constraints updates one by one, then each job's adds: its tasks held whole, then its new
        tasks, whose changes are made as their requests are (``parts``: the jobs' task changes). With
        ``created`` (only adds, then), no request leaves before that gate opens."""
        held_adds: dict[str, list[Mapping[str, Any]]] = {}
        for change, op in steps:
            if op.name == "task.update_constraints":
                self._one(change.address, op)
            elif op.name == "task.add":
                job_id = change.address.split("/")[1]  # task/<job>/<task>
                held_adds.setdefault(job_id, []).append(op.args)
            else:
                raise ApplyError(
                    f"{change.address}: unknown task operation {op.name!r}; make the plan again."
                )
        new_adds = {part.job_id: adds for part in parts if (adds := part.new_task_adds())}
        self._sign_all()
        for job_id in dict.fromkeys([*held_adds, *new_adds]):
            adds = Joined((held_adds.get(job_id, ()), new_adds.get(job_id, ())))
            step = f"add {len(adds)} task(s)"

            def ready(stopped: threading.Event, job_id: str = job_id, step: str = step) -> None:
                if created is not None:
                    created.wait(stopped)
                self.hooks.step_started(f"job/{job_id}", step)  # after the job's own steps

            counter = _Counter(self._progress(job_id, "added"), len(adds))
            self.writer.add_tasks(job_id, adds, partial(self.task_body, job_id), counter.add, ready)
            self.hooks.step_finished(f"job/{job_id}", step)

    def _sign_all(self) -> None:
        """Every SAS URL a task body of the plan may need, signed before any body is sent: a signing error
        (say, no user delegation key) stops the apply before any task is added. The plan's inputs and
        outputs container are all signed, not just those the bodies name: a new task's body is made only
        as its request is, and a signature is made here, without a request."""
        self._sas(STATE_CONTAINER, "output")
        for name in sorted(self._bindings):
            self._sas(self._bindings[name].container, "input")
        if self.plan.outputs_container:
            self._sas(self.plan.outputs_container, "input")
            self._sas(self.plan.outputs_container, "output")

    def _sas(self, container: str, kind: str) -> str:
        key = (container, kind)
        with self._sas_lock:  # task bodies are made by the threads that send them: sign each URL once
            if key not in self._sas_cache:
                sign = self.signer.input_url if kind == "input" else self.signer.output_url
                self._sas_cache[key] = sign(container)
            return self._sas_cache[key]

    def task_body(self, job_id: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """The task body with resource files for its inputs and output files for its outputs (SAS URLs)."""
        body = dict(args["body"])
        inputs = args.get("inputs") or ()
        if inputs:
            files = list(body.get("resourceFiles") or ())
            some = args.get("inputPaths") or {}
            for name in inputs:
                binding = self._bindings.get(name)
                if binding is None:
                    raise ApplyError(f"task/{job_id}/{body['id']}: unknown input {name!r} in the plan.")
                container_url = self._sas(binding.container, "input")
                if name in some:  # just these files, each where the whole input would put it
                    files.extend(
                        {
                            "httpUrl": _blob_url(container_url, binding.prefix + path),
                            "filePath": binding.prefix + path,
                        }
                        for path in some[name]
                    )
                    continue
                entry: dict[str, Any] = {"storageContainerUrl": container_url}
                if binding.prefix:
                    entry["blobPrefix"] = binding.prefix
                files.append(entry)
            body["resourceFiles"] = files
        reads = args.get("readsOutputs") or ()
        if reads:  # what earlier tasks uploaded: the outputs container, read + list
            if not self.plan.outputs_container:
                raise ApplyError(
                    f"task/{job_id}/{body['id']}: reading outputs needs storage.outputs.container."
                )
            readable = self._sas(self.plan.outputs_container, "input")
            files = list(body.get("resourceFiles") or ())
            for prefix in reads:
                files.append({"storageContainerUrl": readable, **({"blobPrefix": prefix} if prefix else {})})
            body["resourceFiles"] = files
        outputs = args.get("outputs") or ()
        if outputs:
            if not self.plan.outputs_container:
                raise ApplyError(f"task/{job_id}/{body['id']}: outputs need storage.outputs.container.")
            url = self._sas(self.plan.outputs_container, "output")
            files = list(body.get("outputFiles") or ())
            for output in outputs:
                files.append(
                    {
                        "filePattern": output["pattern"],
                        "destination": {"container": {"containerUrl": url, "path": output["path"]}},
                        "uploadOptions": {"uploadCondition": output["uploadCondition"]},
                    }
                )
            body["outputFiles"] = files
        # A failed task's stdout/stderr is kept next to the record of results, so its logs stay readable
        # after its job is gone (a failure is carried over until it is rerun). Only failures: two blobs per
        # task would slow storage emulators down with every task (Azurite's cost per request grows with
        # the number of blobs it holds) for logs that matter far less.
        body["outputFiles"] = [
            *(body.get("outputFiles") or ()),
            {
                "filePattern": "../std*.txt",
                "destination": {
                    "container": {
                        "containerUrl": self._sas(STATE_CONTAINER, "output"),
                        "path": logs_prefix(self.plan.workload, str(body["id"])).rstrip("/"),
                    }
                },
                "uploadOptions": {"uploadCondition": "taskfailure"},
            },
        ]
        return body


def _only(steps: Sequence[tuple[Change, Operation]] | None, name: str) -> bool:
    """``steps`` are one or more operations called ``name``."""
    return bool(steps) and all(op.name == name for _change, op in steps or ())


def _blob_url(container_url: str, blob: str) -> str:
    """A blob's URL under a container SAS URL (the container SAS grants the blob too)."""
    base, _, query = container_url.partition("?")
    return f"{base}/{quote(blob)}" + (f"?{query}" if query else "")
