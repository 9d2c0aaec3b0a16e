"""A job's tasks made as they are read (TaskFactory) plan exactly as the same tasks in a tuple, each read a
few times, never held."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from batchrun.model import TaskFactory, TaskSpec
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.live import LiveState
from tests.plan.test_job_task_decisions import TakenFromDict, _mixed_live, job_of, live_for, make, workload


def _task(position: int) -> TaskSpec:
    return TaskSpec(f"t{position}", {"commandLine": "echo hi" if position != 1 else "echo changed"})


class Counted:
    def __init__(self) -> None:
        self.made = 0

    def __call__(self, position: int) -> TaskSpec:
        self.made += 1
        return _task(position)


def test_a_task_factory_reads_like_a_tuple() -> None:
    tasks = TaskFactory(4, _task)
    assert len(tasks) == 4 and list(tasks) == [_task(i) for i in range(4)]
    assert tasks[-1] == _task(3) and tasks[1:3] == (_task(1), _task(2))
    with pytest.raises(IndexError):
        tasks[4]


@pytest.mark.parametrize("job_state", ["active", "completed"])
def test_a_plan_of_a_task_factory_is_the_plan_of_the_same_tuple(job_state: str) -> None:
    """Each digest made as its task is decided, or as a new task's change is read, the plan is the same."""
    base = workload([], onAllTasksComplete="terminatejob")
    eager = replace(base, job=replace(job_of(base), tasks=tuple(_task(i) for i in range(3))))
    live = _mixed_live(
        replace(
            base,
            job=replace(
                job_of(base), tasks=tuple(TaskSpec(f"t{i}", {"commandLine": "echo hi"}) for i in range(3))
            ),
        ),
        job_state,
    )
    made = Counted()
    lazy = replace(base, job=replace(job_of(base), tasks=TaskFactory(3, made)))
    for state in (live, LiveState(), live_for(eager)):
        for options in (PlanOptions(), PlanOptions(prune=True)):
            made.made = 0
            # Live tasks taken as decided, as from a listing: the orphans are what is left, found without
            # an index of the manifest's ids.
            planned = make(lazy, replace(state, tasks=TakenFromDict(dict(state.tasks))), options)
            # The graph reads each task twice and the decisions once (twice for a replaced job); nothing
            # reads them all again per task (a plan of 100,000 tasks makes each a few times, holds none).
            assert made.made <= 4 * 3
            assert planned == make(eager, state, options)


def test_tasks_copy_and_pickle_with_their_shared_empty_input_paths() -> None:
    import copy
    import pickle

    from batchrun.model import NO_INPUT_PATHS

    task = _task(0)
    assert task.input_paths is NO_INPUT_PATHS and task.input_paths == {}
    assert copy.deepcopy(task) == task and copy.deepcopy(task).input_paths is NO_INPUT_PATHS
    assert pickle.loads(pickle.dumps(task)).input_paths is NO_INPUT_PATHS
