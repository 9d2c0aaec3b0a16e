"""``jobs:``: several jobs on the workload's pool, each loaded exactly as ``job`` is, with problems pointing
at ``jobs[N]``; ids unique across the jobs, task ids too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from batchrun.manifest import load_workload, render_workload
from tests.manifest.conftest import HEADER, POOL, find, problems_of

TWO_JOBS = (
    HEADER
    + POOL
    + """\
jobs:
  - id: prep
    tasks:
      - {id: fetch, commandLine: /bin/true}
  - id: main
    maxParallelTasks: 2
    tasks:
      - id: part-${i}
        foreach: {i: {range: [1, 3]}}
        commandLine: echo ${i}
      - {id: merge, commandLine: /bin/true, dependsOn: {tasks: ["part-*"]}}
"""
)


def test_each_job_is_loaded_as_job_is(write: Callable[[str], Path]) -> None:
    workload = load_workload(write(TWO_JOBS))
    assert [job.id for job in workload.jobs] == ["prep", "main"]
    assert workload.job is not None and workload.job.id == "prep"
    prep, main = workload.jobs
    assert prep.properties["poolInfo"] == {"poolId": "p1"} == main.properties["poolInfo"]
    assert main.properties["maxParallelTasks"] == 2 and main.properties["usesTaskDependencies"] is True
    assert "usesTaskDependencies" not in prep.properties
    assert [t.id for t in main.tasks] == ["part-1", "part-2", "part-3", "merge"]
    assert workload.job_of_task("MERGE") is main and workload.job_of_task("nope") is None
    rendered = render_workload(workload)
    assert "\njobs:\n- id: prep\n" in rendered and "\n- id: main\n" in rendered


def test_one_entry_of_jobs_is_the_same_workload_as_job(write: Callable[[str], Path]) -> None:
    single = HEADER + POOL + "job:\n  id: only\n  tasks:\n    - {id: a, commandLine: /bin/true}\n"
    listed = HEADER + POOL + "jobs:\n  - id: only\n    tasks:\n      - {id: a, commandLine: /bin/true}\n"
    assert load_workload(write(single, "a.yaml")).digest == load_workload(write(listed, "b.yaml")).digest


def test_problems_point_at_their_entry_of_jobs(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + """\
jobs:
  - id: a
    tasks:
      - {id: t1, commandLine: /bin/true}
  - id: b
    tasks:
      - {id: t2, commandLine: /bin/true, bogus: 1}
      - {id: t3, commandLine: /bin/true, dependsOn: {tasks: [t1]}}
"""
    )
    bogus = find(problems_of(path), "unknown key 'bogus'")
    assert (bogus.line, bogus.path) == (14, "jobs[1].tasks[0].bogus")
    # A dependency names a task of the same job only (Batch has no dependencies across jobs).
    path.write_text(path.read_text().replace(", bogus: 1", ""))
    assert find(problems_of(path), "t1").path.startswith("jobs[1].tasks[1].dependsOn")


def test_ids_are_unique_across_the_jobs(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + """\
jobs:
  - id: a
    tasks:
      - {id: t1, commandLine: /bin/true}
  - id: A
    tasks:
      - {id: T1, commandLine: /bin/true}
"""
    )
    problems = problems_of(path)
    assert find(problems, "job id 'A' is also the id of jobs[0]").path == "jobs[1].id"
    clash = find(problems, "task id 'T1' is also a task of job 'a'")
    assert clash.path == "jobs[1].tasks" and clash.line == 14


def test_job_and_jobs_together_or_an_empty_list_are_refused(write: Callable[[str], Path]) -> None:
    both = write(HEADER + POOL + "job: {id: a, tasks: []}\njobs:\n  - {id: b, tasks: []}\n", "both.yaml")
    assert "both `job` and `jobs`" in find(problems_of(both), "both").message
    empty = write(HEADER + POOL + "jobs: []\n", "empty.yaml")
    assert find(problems_of(empty), "`jobs` must be a list of one or more jobs").path == "jobs"


def test_the_task_limit_counts_every_job(write: Callable[[str], Path]) -> None:
    path = write(TWO_JOBS)
    problem = find(problems_of(path, max_tasks=4), "the jobs expand to 5 tasks in all")
    assert problem.path == "jobs"


def test_a_schedule_runs_one_job(write: Callable[[str], Path]) -> None:
    scheduled = write(
        HEADER
        + POOL
        + "schedule: {recurrenceInterval: PT1H}\njob:\n  id: j\n  tasks: [{id: a, commandLine: x}]\n",
        "ok.yaml",
    )
    assert load_workload(scheduled).schedule == {"recurrenceInterval": "PT1H"}
    with_jobs = write(
        HEADER + POOL + "schedule: {recurrenceInterval: PT1H}\n" + TWO_JOBS.split(POOL)[1], "j.yaml"
    )
    assert (
        find(problems_of(with_jobs), "a schedule runs one job, and the manifest has `jobs`").path
        == "schedule"
    )
    no_job = write(HEADER + POOL + "schedule: {recurrenceInterval: PT1H}\n", "n.yaml")
    assert find(problems_of(no_job), "a schedule runs the manifest's job").path == "schedule"
    typo = write(HEADER + POOL + "schedule: {recurrence: PT1H}\njob: {id: j, tasks: []}\n", "t.yaml")
    assert "recurrence" in str(find(problems_of(typo), "recurrence"))


def test_a_scheduled_job_keeps_no_job_manager_of_its_own(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + "schedule: {recurrenceInterval: PT1H}\njob:\n  id: j\n"
        + "  jobManagerTask: {id: m, commandLine: x}\n  tasks: [{id: a, commandLine: x}]\n"
    )
    assert (
        find(problems_of(path), "a scheduled job's job manager task is batchrun's").path
        == "job.jobManagerTask"
    )
