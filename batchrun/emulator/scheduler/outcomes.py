"""What a finished task means for its job: retries, exit conditions, dependency actions, job actions."""

from __future__ import annotations

from typing import Any

import msgspec

from batchrun.emulator.model import Body, JobTasks, internal, transition
from batchrun.emulator.node.failures import ended_failure


class ExitDecision(msgspec.Struct, frozen=True):
    job_action: str  # none | disable | terminate
    dependency_action: str  # satisfy | block


def should_retry(task: Body, failure_info: dict[str, Any] | None, stage: str | None) -> bool:
    """Batch retries only a non-zero exit of the command itself, up to maxTaskRetryCount (-1 = no limit)."""
    if failure_info is None or stage != "execution" or failure_info.get("code") != "FailureExitCode":
        return False
    limit = int(task.get("constraints", {}).get("maxTaskRetryCount", 0))
    retries = int(task.get("executionInfo", {}).get("retryCount", 0))
    return limit == -1 or retries < limit


def _options_for_exit_code(conditions: dict[str, Any], exit_code: int) -> dict[str, Any] | None:
    for mapping in conditions.get("exitCodes") or []:
        if mapping.get("code") == exit_code:
            options: dict[str, Any] = mapping.get("exitOptions") or {}
            return options
    for mapping in conditions.get("exitCodeRanges") or []:
        if int(mapping.get("start", 0)) <= exit_code <= int(mapping.get("end", -1)):
            options = mapping.get("exitOptions") or {}
            return options
    return None


def exit_decision(task: Body, succeeded: bool, exit_code: int | None, stage: str | None) -> ExitDecision:
    conditions: dict[str, Any] = task.get("exitConditions") or {}
    options: dict[str, Any] | None = None
    if not succeeded and stage == "preprocessing":
        options = conditions.get("preProcessingError")
    elif not succeeded and stage == "fileupload":
        # An exit code listed in exitCodes/exitCodeRanges takes precedence over fileUploadError
        # (ExitConditions.fileUploadError in the SDK and REST docs).
        if exit_code is not None:
            options = _options_for_exit_code(conditions, exit_code)
        if options is None:
            options = conditions.get("fileUploadError")
    elif exit_code is not None:
        options = _options_for_exit_code(conditions, exit_code)
    if options is None and not succeeded:
        options = conditions.get("default")
    options = options or {}
    return ExitDecision(
        job_action=str(options.get("jobAction") or ("none" if succeeded else "terminate")),
        dependency_action=str(options.get("dependencyAction") or ("satisfy" if succeeded else "block")),
    )


def dependency_ids(job_tasks: JobTasks, task: Body) -> list[str]:
    depends: dict[str, Any] = task.get("dependsOn") or {}
    ids = list(depends.get("taskIds") or [])
    for id_range in depends.get("taskIdRanges") or []:
        start, end = int(id_range.get("start", 0)), int(id_range.get("end", -1))
        if end - start < len(job_tasks.by_id):
            for number in range(start, end + 1):
                ids.extend(job_tasks.numeric.get(number, ()))
        else:
            ids.extend(
                task_id
                for number, names in job_tasks.numeric.items()
                if start <= number <= end
                for task_id in names
            )
    return ids


def dependencies_ready(job_tasks: JobTasks, task: Body) -> bool:
    """True when every task this one depends on completed and its dependencyAction is satisfy."""
    if not task.get("dependsOn"):
        return True
    for task_id in dependency_ids(job_tasks, task):
        dependency = job_tasks.find(task_id, keep=False)  # ids are case-insensitive, in dependsOn too
        if dependency is None or dependency["state"] != "completed":
            return False
        if internal(dependency).get("dependencyAction", "satisfy") != "satisfy":
            return False
    return True


def end_unrun_task(job_tasks: JobTasks, task: Body, moment: str) -> None:
    """Complete a task that is not running as ended by request: failureInfo TaskEnded, dependents blocked."""
    job_tasks.begin_change(task)
    info = task.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
    info.update({"endTime": moment, "result": "failure", "failureInfo": ended_failure()})
    transition(task, "completed", moment)
    job_tasks.end_change(task)
    internal(task)["dependencyAction"] = "block"
