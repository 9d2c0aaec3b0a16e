"""``run_task``: one task on one simulated node, from resource files to output files.

A run is prepared (:func:`prepare_task`: node and task folders, environment, packages, resource files, the
command's words), then started: through ``subprocess`` (:func:`spawn_task`, then waited for by the caller) or
by the spawn server (:mod:`.spawn_server`: :func:`spawn_request` encodes the start; the server creates the
task's folders itself when the preparation left them to it), and finished (:func:`finish_task`: outcome and
output files). :func:`launch_failed` turns a failure the server reports into the outcome a failed
``subprocess`` start would have given.
"""

from __future__ import annotations

import errno as errno_codes
import logging
import os
import subprocess
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from batchrun.emulator.node.environment import task_environment
from batchrun.emulator.node.failures import (
    SERVER_ERROR,
    USER_ERROR,
    ended_failure,
    exit_code_failure,
    failure_info,
    unsupported_on_host_failure,
    wall_clock_failure,
)
from batchrun.emulator.node.layout import launch_folder, prepare_node, prepare_task_directory
from batchrun.emulator.node.limits import wall_clock_limit
from batchrun.emulator.node.model import (
    Cancellation,
    FailureInfo,
    FailureStage,
    NodeIdentity,
    StorageAccess,
    TaskLaunch,
    TaskOutcome,
)
from batchrun.emulator.node.outputs import upload_outputs
from batchrun.emulator.node.packages import PackageError, install_packages
from batchrun.emulator.node.process import (
    LaunchError,
    ProcessResult,
    launch_error,
    program_not_found,
    spawn_words,
    split_command_line,
    wait_process,
)
from batchrun.emulator.node.resources import ResourceFileError, download_resource_files
from batchrun.emulator.node.spawn_server import (
    FOLDER,
    NOT_EXECUTABLE,
    NOT_FOUND,
    STDERR,
    STDOUT,
    WORKING,
    SpawnFailure,
    SpawnRequest,
)
from batchrun.emulator.node.spawn_server import spawn_request as encode_request
from batchrun.emulator.node.storage_needs import listed, outputs_of, waits_on_storage
from batchrun.emulator.node.upload_journal import RunRecorder, UploadJournal
from batchrun.redact import redact

_LOG = logging.getLogger(__name__)


class PreparedTask(msgspec.Struct, frozen=True):
    """A run ready to start: its command's words and environment, and what :func:`finish_task` needs."""

    launch: TaskLaunch
    storage: StorageAccess | None
    journal: UploadJournal | None
    start: datetime
    folder: str  # the task's folder, as text (see task_dir)
    env: Mapping[str, str]
    limit_text: str
    time_limit: float | None
    words: list[str]
    folders_made: bool  # False: whoever starts the process creates the task's folders first

    @property
    def task_dir(self) -> Path:
        return Path(self.folder)

    @property
    def uploads(self) -> bool:
        """True when finishing uploads output files (it then waits on storage)."""
        return bool(outputs_of(self.launch))


class StartedTask(msgspec.Struct, frozen=True):
    """A run whose process was started through ``subprocess``."""

    process: subprocess.Popen[bytes]
    task: PreparedTask


def run_task(
    identity: NodeIdentity,
    launch: TaskLaunch,
    storage: StorageAccess | None,
    cancel: Cancellation,
    journal: UploadJournal | None = None,
) -> TaskOutcome:
    """Run ``launch`` on the node and report how it ended. Blocks; setting ``cancel`` ends the process group.

    Never raises for anything the task or its inputs did wrong: those become ``failure_info``. Output uploads
    storage acknowledged are recorded in ``journal`` (for a check after a storage crash).
    """
    started = start_task(identity, launch, storage, cancel, journal)
    if isinstance(started, TaskOutcome):
        return started
    return finish_task(started.task, wait_process(started.process, cancel, started.task.time_limit))


def start_task(
    identity: NodeIdentity,
    launch: TaskLaunch,
    storage: StorageAccess | None,
    cancel: Cancellation,
    journal: UploadJournal | None = None,
) -> StartedTask | TaskOutcome:
    """Prepare the node and start the process of ``launch``; the outcome instead when it cannot start.

    Never raises (see :func:`run_task`); the process is left to the caller to wait for.
    """
    prepared = prepare_task(identity, launch, storage, cancel, journal)
    return prepared if isinstance(prepared, TaskOutcome) else spawn_task(prepared)


def prepare_task(
    identity: NodeIdentity,
    launch: TaskLaunch,
    storage: StorageAccess | None,
    cancel: Cancellation,
    journal: UploadJournal | None = None,
    leave_folders: bool = False,
    node_laid_out: bool = False,
) -> PreparedTask | TaskOutcome:
    """Everything before the start of the process of ``launch``; the outcome instead when it cannot start.

    ``leave_folders``: the task's folders are left to the spawn server when nothing needs them before the
    start (no resource files, no packages); they are made here all the same when the run fails before it.
    ``node_laid_out``: the node's folders are known to be there (not looked for again).
    Never raises (see :func:`run_task`).
    """
    start = _now()
    folder: str | None = None
    leave = leave_folders and not launch.packages and not waits_on_storage(launch)
    try:
        if not node_laid_out:
            prepare_node(identity)
        folder = launch_folder(identity, launch)
        if not leave:
            prepare_task_directory(folder)
        prepared = _prepare(identity, launch, storage, cancel, start, journal, folder, not leave)
    except Exception as error:
        prepared = _runtime_error(launch, start, error)
    if leave and folder is not None and isinstance(prepared, TaskOutcome):
        try:  # the folders exist whatever happens to the run, as when they are made first
            prepare_task_directory(folder)
        except OSError as error:
            return _runtime_error(launch, start, error)
    return prepared


def spawn_task(task: PreparedTask) -> StartedTask | TaskOutcome:
    """Start the prepared run through ``subprocess`` (never raises)."""
    try:
        if not task.folders_made:
            prepare_task_directory(task.folder)
        task_dir = task.task_dir
        out, err = task_dir / "stdout.txt", task_dir / "stderr.txt"
        process = spawn_words(task.words, task_dir / "wd", task.env, out, err)
    except LaunchError as error:
        return _failed(task.start, None, failure_info(USER_ERROR, error.code, str(error)), "preprocessing")
    except Exception as error:
        return _runtime_error(task.launch, task.start, error)
    return StartedTask(process, task)


def spawn_request(task: PreparedTask) -> SpawnRequest:
    """The spawn server's request that starts the prepared run (raises ValueError as ``subprocess`` would)."""
    folder = task.folder
    return encode_request(
        task.words,
        task.env,
        f"{folder}/wd",
        f"{folder}/stdout.txt",
        f"{folder}/stderr.txt",
        None if task.folders_made else folder,
    )


def launch_failed(task: PreparedTask, failure: SpawnFailure | Exception) -> TaskOutcome:
    """The outcome of a run the spawn server could not start: what the same failure of a ``subprocess``
    start gives (:func:`spawn_task`)."""
    program = task.words[0]
    if isinstance(failure, Exception):
        return _runtime_error(task.launch, task.start, failure)
    if failure.stage == NOT_FOUND:
        error: LaunchError = program_not_found(program)
    elif failure.stage == NOT_EXECUTABLE:
        error = LaunchError("CommandLaunchFailed", f"The program '{program}' is not executable")
    elif failure.stage in _FILE_STAGES:
        folder = task.folder
        path = folder if failure.stage == FOLDER else os.path.join(folder, _FILE_STAGES[failure.stage])
        code = failure.error or errno_codes.EIO
        return _runtime_error(task.launch, task.start, OSError(code, os.strerror(code), path))
    else:
        code = failure.error or errno_codes.EIO
        error = launch_error(program, OSError(code, os.strerror(code)))
    return _failed(task.start, None, failure_info(USER_ERROR, error.code, str(error)), "preprocessing")


_FILE_STAGES = {FOLDER: "", WORKING: "wd", STDOUT: "stdout.txt", STDERR: "stderr.txt"}


def finish_task(task: PreparedTask, result: ProcessResult) -> TaskOutcome:
    """The outcome of a run whose process ended with ``result``, after its output files (never raises)."""
    try:
        return _finish(task, result)
    except Exception as error:
        return _runtime_error(task.launch, task.start, error)


def _runtime_error(launch: TaskLaunch, start: datetime, error: Exception) -> TaskOutcome:
    _LOG.error("node runtime error for %s/%s", launch.job_id, launch.task_id, exc_info=error)
    info = failure_info(
        SERVER_ERROR, "NodeRuntimeError", f"The local node could not run the task: {redact(str(error))}"
    )
    return _failed(start, None, info, "preprocessing")


def _prepare(
    identity: NodeIdentity,
    launch: TaskLaunch,
    storage: StorageAccess | None,
    cancel: Cancellation,
    start: datetime,
    journal: UploadJournal | None,
    folder: str,
    folders_made: bool,
) -> PreparedTask | TaskOutcome:
    spec = launch.spec
    if spec.get("containerSettings"):
        return _failed(
            start,
            None,
            unsupported_on_host_failure(
                "containerSettings need a container engine, which the local target does not drive; remove "
                "containerSettings (the command then runs directly on this machine) or run against "
                "Azure Batch"
            ),
            "preprocessing",
        )
    command_line = spec.get("commandLine")
    if not isinstance(command_line, str) or not command_line.strip():
        return _failed(
            start,
            None,
            failure_info(USER_ERROR, "CommandLaunchFailed", "The command line is empty"),
            "preprocessing",
        )

    try:
        package_dirs = install_packages(identity, launch.packages, storage, spec)
    except PackageError as error:
        return _failed(start, None, error.info, "preprocessing")
    env = task_environment(identity, launch, folder, package_dirs)

    try:
        resource_files = listed(spec.get("resourceFiles"))
        if resource_files:
            download_resource_files(resource_files, Path(folder, "wd"), storage)
        multi_instance = spec.get("multiInstanceSettings")
        if multi_instance and launch.kind == "task" and isinstance(multi_instance, Mapping):
            download_resource_files(listed(multi_instance.get("commonResourceFiles")), Path(folder), storage)
    except ResourceFileError as error:
        return _failed(start, None, error.info, "preprocessing")

    if cancel.is_set():
        return _failed(start, None, ended_failure(), "execution")
    limit_text, limit = wall_clock_limit(launch)
    try:
        words = split_command_line(command_line)
    except LaunchError as error:
        return _failed(start, None, failure_info(USER_ERROR, error.code, str(error)), "preprocessing")
    return PreparedTask(launch, storage, journal, start, folder, env, limit_text, limit, words, folders_made)


def _finish(started: PreparedTask, result: ProcessResult) -> TaskOutcome:
    info: FailureInfo | None = None
    stage: FailureStage | None = None
    if result.reason == "timeout":
        info, stage = wall_clock_failure(started.limit_text), "execution"
    elif result.reason == "cancelled":
        info, stage = ended_failure(), "execution"
    elif result.exit_code != 0:
        info, stage = exit_code_failure(result.exit_code), "execution"

    outputs = outputs_of(started.launch)
    if outputs:
        launch, task_dir = started.launch, started.task_dir
        recorder = None
        if started.journal is not None:
            recorder = RunRecorder(started.journal, launch.job_id, launch.task_id, started.start, task_dir)
        report = upload_outputs(
            outputs,
            task_dir / "wd",
            task_dir,
            started.env,
            succeeded=info is None,
            storage=started.storage,
            recorder=recorder,
        )
        if report.failure is not None and info is None:
            info, stage = report.failure, "fileupload"
    return TaskOutcome(
        exit_code=result.exit_code,
        failure_info=info,
        start_time=started.start,
        end_time=_now(),
        result="success" if info is None else "failure",
        failure_stage=stage,
    )


def _failed(start: datetime, exit_code: int | None, info: FailureInfo, stage: FailureStage) -> TaskOutcome:
    return TaskOutcome(
        exit_code=exit_code,
        failure_info=info,
        start_time=start,
        end_time=_now(),
        result="failure",
        failure_stage=stage,
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


__all__ = [
    "PreparedTask",
    "StartedTask",
    "finish_task",
    "launch_failed",
    "prepare_task",
    "run_task",
    "spawn_request",
    "spawn_task",
    "start_task",
]
