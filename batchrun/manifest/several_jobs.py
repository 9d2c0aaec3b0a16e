"""``jobs:``: a workload with several jobs on its pool.

Each entry of ``jobs`` is loaded as the ``job`` of the same manifest (:class:`JobView`: the document seen with
that entry as its ``job``, every position and message still pointing at ``jobs[N]``), so a job in ``jobs``
means exactly what it means as ``job``. The results are then put together: the storage, packages and pool
once, the jobs in order. Across the jobs, ids are unique, and so are task ids: a task id names one task of the
workload (the record of results, ``logs`` and ``--rerun`` go by task id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from msgspec.structs import replace

from batchrun.errors import Diagnostic, ManifestError
from batchrun.manifest.load import Document, PathKey, format_path
from batchrun.model import Workload, task_ids


class JobView(Document):
    """The manifest seen with ``jobs[index]`` as its ``job``; positions and paths name ``jobs[index]``."""

    index: int = 0

    def real(self, path: PathKey) -> PathKey:
        return ("jobs", self.index, *path[1:]) if path[:1] == ("job",) else path

    def position(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        return super().position(self.real(path), key=key)

    def diagnostic(self, path: PathKey, message: str, hint: str = "", *, key: bool = False) -> Diagnostic:
        line, column = self.position(path, key=key)
        return Diagnostic(self.file, line, column, message, format_path(self.real(path)), hint)


def job_view(document: Document, index: int) -> JobView:
    data = {key: value for key, value in document.data.items() if key != "jobs"}
    data["job"] = document.data["jobs"][index]
    prefix = ("jobs", index)
    plain = {
        ("job", *path[2:]) if path[:2] == prefix else path: text
        for path, text in document.plain_scalars.items()
    }
    return JobView(
        file=document.file,
        path=document.path,
        data=data,
        value_positions=document.value_positions,
        key_positions=document.key_positions,
        plain_scalars=plain,
        index=index,
    )


def _shape_problems(document: Document) -> list[Diagnostic]:
    data = document.data
    jobs = data.get("jobs")
    if "job" in data:
        return [
            document.diagnostic(
                ("jobs",),
                "the manifest has both `job` and `jobs`",
                "keep one: `job` for one job, or move it into the `jobs` list",
                key=True,
            )
        ]
    if "schedule" in data:
        return [
            document.diagnostic(
                ("schedule",),
                "a schedule runs one job, and the manifest has `jobs`",
                "use `job` for a scheduled workload (one job per run)",
                key=True,
            )
        ]
    if not isinstance(jobs, list) or not jobs:
        return [
            document.diagnostic(("jobs",), "`jobs` must be a list of one or more jobs", "write jobs: [...]")
        ]
    wrong = [index for index, job in enumerate(jobs) if not isinstance(job, dict)]
    return [
        document.diagnostic(("jobs", index), "each entry of `jobs` is a job (a mapping with an `id`)")
        for index in wrong
    ]


def _clash_problems(document: Document, loaded: Sequence[tuple[int, Workload]]) -> list[Diagnostic]:
    problems: list[Diagnostic] = []
    jobs: dict[str, int] = {}
    tasks: dict[str, tuple[int, str]] = {}
    for index, workload in loaded:
        job = workload.job
        if job is None:
            continue
        first = jobs.setdefault(job.id.lower(), index)
        if first != index:
            problems.append(
                document.diagnostic(
                    ("jobs", index, "id"),
                    f"job id {job.id!r} is also the id of jobs[{first}] (ids are compared "
                    "case-insensitively)",
                    "give each job its own id",
                )
            )
        for task_id in task_ids(job.tasks):
            owner = tasks.setdefault(task_id.lower(), (index, job.id))
            if owner[0] != index:
                problems.append(
                    document.diagnostic(
                        ("jobs", index, "tasks"),
                        f"task id {task_id!r} is also a task of job {owner[1]!r}: task ids are unique across "
                        "a workload's jobs (results, logs and --rerun go by task id)",
                        "give the tasks of each job their own ids (e.g. a prefix per job)",
                    )
                )
                break  # one line per job is enough to show the clash
    return problems


def load_jobs(
    document: Document,
    load_one: Callable[[Document], Workload],
    digest_of: Callable[[Workload], str],
    max_tasks: int,
) -> Workload:
    """The workload of a manifest with ``jobs``: each entry loaded by ``load_one`` as the ``job``."""
    problems = _shape_problems(document)
    if problems:
        raise ManifestError(problems)
    loaded: list[tuple[int, Workload]] = []
    for index in range(len(document.data["jobs"])):
        try:
            loaded.append((index, load_one(job_view(document, index))))
        except ManifestError as error:
            problems.extend(error.diagnostics)
    if problems:
        # Problems outside the jobs (storage, pool, variables) are found once per job: report them once.
        raise ManifestError(list(dict.fromkeys(problems)))
    problems = _clash_problems(document, loaded)
    total = sum(len(w.job.tasks) for _, w in loaded if w.job is not None)
    if total > max_tasks:
        problems.append(
            document.diagnostic(
                ("jobs",),
                f"the jobs expand to {total:,} tasks in all, more than the limit of {max_tasks:,}",
                "reduce the factory axes, or raise the limit with --max-tasks N (or BATCHRUN_MAX_TASKS)",
            )
        )
    if problems:
        raise ManifestError(problems)
    first = loaded[0][1]
    jobs: list[Any] = [w.job for _, w in loaded]
    workload = replace(first, job=jobs[0], more_jobs=tuple(jobs[1:]))
    return replace(workload, digest=digest_of(workload))
