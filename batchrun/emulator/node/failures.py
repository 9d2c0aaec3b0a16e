"""failureInfo bodies in Batch's REST shape, with the codes the Batch service uses.

Codes come from Batch's TaskSchedulingErrorCodes / TaskFailureInformationCodes and the task error docs:
resource file errors (BlobNotFound, BlobAccessDenied, BlobDownloadMiscError, ResourceFileCreateFailed...),
launch errors (CommandProgramNotFound, CommandLaunchFailed), ApplicationPackageError, FileUploadMiscError,
FailureExitCode for a non-zero exit, TaskEnded when the service ends the task (terminate, maxWallClockTime).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from batchrun.emulator.node.model import FailureInfo
from batchrun.redact import redact

USER_ERROR = "usererror"
SERVER_ERROR = "servererror"


def failure_info(
    category: str, code: str, message: str, details: Mapping[str, str] | None = None
) -> FailureInfo:
    return {
        "category": category,
        "code": code,
        "message": redact(message),
        "details": [{"name": name, "value": redact(value)} for name, value in (details or {}).items()],
    }


def exit_code_failure(exit_code: int) -> FailureInfo:
    return failure_info(
        USER_ERROR,
        "FailureExitCode",
        "The task exited with an exit code representing a failure",
        {"Message": f"The task process exited with an unexpected exit code ({exit_code})"},
    )


def wall_clock_failure(limit: str) -> FailureInfo:
    # Batch docs: the task is marked completed with failureInfo { category: ServerError, code: TaskEnded }.
    return failure_info(
        SERVER_ERROR,
        "TaskEnded",
        "The task was ended because it exceeded its maximum wall clock time",
        {"MaxWallClockTime": limit},
    )


def ended_failure() -> FailureInfo:
    return failure_info(USER_ERROR, "TaskEnded", "Task Was Ended by User Request")


def unsupported_on_host_failure(reason: str) -> FailureInfo:
    """The failureInfo for a task this host cannot run (a Windows pool's cmd.exe, containerSettings, ...).

    ``reason`` says what cannot run and what to do instead, e.g. "Windows pools cannot run on the local
    target; use a Linux image or run against Azure Batch".
    """
    return failure_info(
        USER_ERROR, "CommandLaunchFailed", f"The task cannot run on the local target: {reason}"
    )


def record_unrunnable(directory: Path, reason: str) -> None:
    """Leave the task's folder as a node does for a task that could not start: stdout.txt empty, the reason
    in stderr.txt (so ``logs`` and the file APIs show why)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "stdout.txt").touch()
        (directory / "stderr.txt").write_text(reason + "\n", encoding="utf-8")
    except OSError:
        pass  # the failureInfo still says why; the folder is a courtesy
