"""A plan holds each new task (nothing of it live or recorded) as a number: its digest and body are made once,
by the thread that sends its request, not before the pool is created. The bodies sent are the ones an eager
plan would have held, so the next plan finds every task current."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from msgspec.structs import replace

import batchrun
from batchrun.errors import BatchrunError
from batchrun.model import JobSpec, PoolSpec, TaskFactory, TaskSpec, Workload
from batchrun.plan import task_identity
from batchrun.plan.actions import Action, held, new_task_count
from batchrun.plan.live import TASK_DIGEST_ENV
from tests.reconcile.proxy import IMAGE, Decision, FaultProxy

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchrun.target import Target

COUNT = 250


def test_a_fresh_apply_makes_each_new_task_body_once_on_the_thread_that_sends_it(
    target: Target, batch_client: BatchClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: Counter[str] = Counter()  # the thread that made a task, by kind of thread
    digests: Counter[str] = Counter()

    def kind() -> str:
        return threading.current_thread().name.rstrip("0123456789").rstrip("-_")

    def task(position: int) -> TaskSpec:
        made[kind()] += 1
        return TaskSpec(f"nt-{position:04d}", {"commandLine": f"/bin/echo {position}"})

    digest_of = task_identity._Digests.of

    def counted(self: task_identity._Digests, spec: TaskSpec, up: str = task_identity.NOTHING) -> str:
        digests[kind()] += 1
        return digest_of(self, spec, up)

    monkeypatch.setattr(task_identity._Digests, "of", counted)
    workload = Workload(
        name="newtasks",
        manifest_path=Path("/nonexistent/newtasks.yaml"),
        digest="newtasks",
        pool=PoolSpec("newtasks-pool", {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}),
        job=JobSpec("newtasks-job", {"poolInfo": {"poolId": "newtasks-pool"}}, TaskFactory(COUNT, task)),
    )
    try:
        plan = batchrun.plan(workload, target=target)
        planned = made["MainThread"]  # the tasks a plan reads (each decided once)
        # Decided without a digest or a change each: counted, not made.
        assert set(made) == {"MainThread"} and not digests
        created = sum(1 for c in held(plan.changes) if c.action is Action.CREATE)  # the pool, the job...
        assert new_task_count(plan.changes) == COUNT and plan.counts()["create"] == COUNT + created
        assert plan.has_changes and not plan.blocked
        assert all(c.kind != "task" for c in held(plan.changes))
        made.clear()
        applied = batchrun.apply(workload, target=target)
        assert made["MainThread"] == planned  # the apply's own plan, and nothing more before the adds
        assert made["batchrun-call"] == COUNT and digests == {"batchrun-call": COUNT}, (made, digests)
        # The bodies sent carry the digests an eager plan holds: nothing is left to do.
        assert not batchrun.plan(workload, target=target).has_changes
        sent = {
            t.id: next(e.value for e in t.environment_settings or () if e.name == TASK_DIGEST_ENV)
            for t in batch_client.list_tasks("newtasks-job", select=["id", "environmentSettings"])
        }
        changes = [c for c in applied.changes if c.kind == "task"]
        assert len(sent) == COUNT and all(c.action is Action.CREATE for c in changes)
        for change in changes:  # read back from the plan: made again, the same body
            body = change.operations[0].args["body"]
            assert sent[body["id"]] == body["environmentSettings"][-1]["value"]
    finally:
        batchrun.destroy(workload, target=target, confirm_replace=True)


def _fresh(name: str, pool: dict[str, object]) -> Workload:
    return Workload(
        name=name,
        manifest_path=Path(f"/nonexistent/{name}.yaml"),
        digest=name,
        pool=PoolSpec(f"{name}-pool", {"virtualMachineConfiguration": IMAGE, **pool}),
        job=JobSpec(
            f"{name}-job",
            {"poolInfo": {"poolId": f"{name}-pool"}},
            tuple(TaskSpec(f"t{i}", {"commandLine": "/bin/true"}) for i in range(3)),
        ),
    )


@pytest.mark.parametrize("held", ["/pools", "/jobs"])
def test_a_new_pool_and_its_new_job_are_created_at_once_and_the_tasks_after_both(
    target: Target, held: str
) -> None:
    arrived: list[tuple[float, str, str]] = []
    events: list[tuple[str, str, str]] = []

    class Recorded:
        def step_started(self, address: str, operation: str) -> None:
            events.append(("started", address, operation))

        def step_finished(self, address: str, operation: str) -> None:
            events.append(("finished", address, operation))

        def tasks_progress(self, job_id: str, verb: str, done: int, total: int) -> None:
            return None

    def hold(method: str, path: str) -> Decision:
        arrived.append((time.monotonic(), method, path))
        if (method, path) == ("POST", held):
            time.sleep(0.5)  # its answer comes late: the other create does not wait for it
        return "pass"

    workload = _fresh(f"atonce{held.strip('/')}", {"vmSize": "standard_d2s_v3"})
    try:
        with FaultProxy(target.batch_url, hold) as proxy:
            batchrun.apply(workload, target=replace(target, batch_url=proxy.url), hooks=Recorded())
        at = {(method, path): when for when, method, path in arrived}
        pool, job = at[("POST", "/pools")], at[("POST", "/jobs")]
        adds = [when for when, method, path in arrived if path.endswith("/addtaskcollection")]
        assert abs(job - pool) < 0.4, "one create waited for the other's answer"
        # The first task request is made ready meanwhile, but leaves only once both creates are answered.
        assert adds and min(adds) - at[("POST", held)] >= 0.5, "tasks were added before the creates ended"
        assert not batchrun.plan(workload, target=target).has_changes
        # The progress reported keeps the plan's order: the pool and the job created, then the tasks.
        job_id = f"{workload.name}-job"
        adding = events.index(("started", f"job/{job_id}", "add 3 task(s)"))
        assert events.index(("finished", f"pool/{workload.name}-pool", "pool.create")) < adding
        assert events.index(("finished", f"job/{job_id}", "job.create")) < adding
        assert events[-1] == ("finished", f"job/{job_id}", "add 3 task(s)")
    finally:
        batchrun.destroy(workload, target=target, confirm_replace=True)


def test_a_pool_refused_beside_its_job_fails_the_apply_and_the_next_apply_converges(
    target: Target, batch_client: BatchClient
) -> None:
    # Batch refuses a pool referencing a certificate it does not hold (the emulator holds none)
    certificate = {"thumbprint": "0" * 40, "thumbprintAlgorithm": "sha1"}
    refused = _fresh("refused", {"vmSize": "standard_d2s_v3", "certificateReferences": [certificate]})
    try:
        with pytest.raises(BatchrunError, match="refused-pool"):
            batchrun.apply(refused, target=target)
        jobs = {job.id for job in batch_client.list_jobs()}
        assert "refused-job" in jobs  # created beside the pool: kept, without tasks
        assert not list(batch_client.list_tasks("refused-job"))
        fixed = replace(
            refused,
            pool=PoolSpec(
                "refused-pool", {"virtualMachineConfiguration": IMAGE, "vmSize": "standard_d2s_v3"}
            ),
        )
        applied = batchrun.apply(fixed, target=target)
        assert applied.counts()["create"] == 4  # the pool and the three tasks; the job is there
        assert not batchrun.plan(fixed, target=target).has_changes
    finally:
        batchrun.destroy(refused, target=target, confirm_replace=True)
