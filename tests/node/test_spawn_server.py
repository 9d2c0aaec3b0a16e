"""The spawn server starts task processes for the emulator: one exec per task, the task's folders made by it,
exits reported over its socket; launch failures become the same failures as a start through subprocess, and
the tasks die with the emulator (through the server) when the emulator is SIGKILLed."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchrun.emulator.node import NodeIdentity, TaskLaunch, TaskOutcome
from batchrun.emulator.node.model import CancelFlag, Cancellation
from batchrun.emulator.node.process import ProcessResult, wait_process
from batchrun.emulator.node.runner import (
    PreparedTask,
    finish_task,
    launch_failed,
    prepare_task,
    spawn_request,
    spawn_task,
)
from batchrun.emulator.node.spawn_server import (
    SpawnFailure,
    SpawnServer,
    server_path,
)
from batchrun.emulator.node.spawn_server import (
    spawn_request as encode,
)
from batchrun.emulator.node.supervisor import ProcessSupervisor
from tests.node.processes import parent_of, wait_gone, written

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on this host")


@pytest.fixture
def supervisor() -> Iterator[ProcessSupervisor]:
    found = ProcessSupervisor(name="test-spawns")
    assert found.spawns(), "the spawn server could not be built or started"
    yield found
    found.stop()


def _prepared(node: NodeIdentity, command: str, task_id: str = "t1", **spec: object) -> PreparedTask:
    launch = TaskLaunch("task", "job1", task_id, {"commandLine": command, **spec})
    prepared = prepare_task(node, launch, None, threading.Event(), leave_folders=True)
    assert isinstance(prepared, PreparedTask), prepared
    return prepared


def _through_server(
    supervisor: ProcessSupervisor,
    task: PreparedTask,
    cancel: Cancellation | None = None,
    pid: list[int] | None = None,
) -> TaskOutcome:
    """Run ``task`` through the spawn server to its outcome, as the emulator's scheduler does."""
    done: queue.Queue[TaskOutcome] = queue.Queue()

    def exited(result: ProcessResult) -> None:
        done.put(finish_task(task, result))

    def failed(failure: SpawnFailure) -> None:
        done.put(launch_failed(task, failure))

    event = cancel or threading.Event()
    assert supervisor.spawn(spawn_request(task), event, task.time_limit, exited, failed)
    return done.get(timeout=60)


def _through_subprocess(task: PreparedTask) -> TaskOutcome:
    started = spawn_task(task)
    if isinstance(started, TaskOutcome):
        return started
    return finish_task(task, wait_process(started.process, threading.Event(), task.time_limit))


def test_the_server_makes_the_task_folders_and_runs_the_command_with_one_exec(
    node: NodeIdentity, supervisor: ProcessSupervisor
) -> None:
    task = _prepared(
        node,
        'sh -c \'echo $0 "$ONLY"; echo oops >&2; pwd; cat /proc/$$/stat; ls /proc/$$/fd; '
        "cat /proc/$$/cmdline; exit 3' a",
        environmentSettings=[{"name": "ONLY", "value": "x y"}],
    )
    assert not task.task_dir.exists()  # left to the server
    outcome = _through_server(supervisor, task)
    assert outcome.exit_code == 3 and outcome.result == "failure"
    assert outcome.failure_info is not None and outcome.failure_info["code"] == "FailureExitCode"
    assert sorted(path.name for path in task.task_dir.iterdir()) == ["stderr.txt", "stdout.txt", "wd"]
    lines = (task.task_dir / "stdout.txt").read_text().splitlines()
    assert lines[0] == "a x y"  # the variable's value reaches the program intact
    assert lines[1] == str(task.task_dir / "wd")
    fields = lines[2].rsplit(")", 1)[1].split()
    pid, parent, group, session = int(lines[2].split()[0]), int(fields[1]), int(fields[2]), int(fields[3])
    assert group == pid and session == pid  # its own session and process group
    assert _is_server(parent) and parent != os.getpid()  # the server's child: no exec in between
    assert sorted(lines[3:-1]) == ["0", "1", "2"]  # nothing else inherited
    # argv[0] is the program's path, as the launcher gave it
    assert lines[-1].split("\0")[0] == shutil.which("sh")
    assert (task.task_dir / "stderr.txt").read_text() == "oops\n"


def test_exit_codes_signals_and_a_rerun_in_the_same_folder(
    node: NodeIdentity, supervisor: ProcessSupervisor
) -> None:
    assert _through_server(supervisor, _prepared(node, "/bin/true", "ok")).result == "success"
    killed = _through_server(supervisor, _prepared(node, "/bin/sh -c 'kill -9 $$'", "killed"))
    assert killed.exit_code == 128 + signal.SIGKILL
    first = _prepared(node, "/bin/sh -c 'echo first; echo first >&2'", "again")
    assert _through_server(supervisor, first).result == "success"
    (first.task_dir / "wd" / "left").write_text("kept")
    rerun = _prepared(node, "/bin/sh -c 'echo second'", "again")
    assert _through_server(supervisor, rerun).result == "success"
    assert (rerun.task_dir / "stdout.txt").read_text() == "second\n"  # truncated by the new run
    assert (rerun.task_dir / "stderr.txt").read_text() == ""
    assert (rerun.task_dir / "wd" / "left").read_text() == "kept"


@pytest.mark.parametrize(
    "command",
    [
        "no-such-program-anywhere",
        "/no/such/program",
        "./missing.sh",
        "./not-executable.sh",
        "./a-folder",
        "./no-shebang.bin",
        "/etc",
    ],
)
def test_launch_failures_are_the_same_as_through_subprocess(
    node: NodeIdentity, supervisor: ProcessSupervisor, command: str
) -> None:
    def task(task_id: str) -> PreparedTask:
        prepared = _prepared(node, command, task_id)
        wd = prepared.task_dir / "wd"
        wd.mkdir(parents=True)
        (wd / "not-executable.sh").write_text("#!/bin/sh\n")
        (wd / "a-folder").mkdir()
        (wd / "no-shebang.bin").write_bytes(b"\x7fELF not really")
        (wd / "no-shebang.bin").chmod(0o755)
        return prepared

    served = _through_server(supervisor, task("served"))
    direct = _through_subprocess(task("direct"))
    assert served.failure_info is not None and served.failure_info == direct.failure_info
    assert (served.exit_code, served.failure_stage) == (direct.exit_code, direct.failure_stage)


def test_a_folder_that_cannot_be_made_is_a_node_runtime_error(
    node: NodeIdentity, supervisor: ProcessSupervisor, tmp_path: Path
) -> None:
    task = _prepared(node, "/bin/true")
    task.task_dir.parent.mkdir(parents=True)
    task.task_dir.write_text("a file where the folder goes")
    outcome = _through_server(supervisor, task)
    assert outcome.failure_info is not None and outcome.failure_info["code"] == "NodeRuntimeError"
    assert "Not a directory" in outcome.failure_info["message"]


def test_cancelling_ends_the_process_group_and_a_time_limit_is_a_timeout(
    node: NodeIdentity, supervisor: ProcessSupervisor
) -> None:
    cancel = threading.Event()
    group = _prepared(node, "/bin/sh -c 'sleep 300 & echo $! > child; wait'", "group")
    ended: queue.Queue[TaskOutcome] = queue.Queue()
    thread = threading.Thread(target=lambda: ended.put(_through_server(supervisor, group, cancel)))
    thread.start()
    child = int(written(group.task_dir / "wd" / "child", "the task did not start"))
    cancel.set()
    outcome = ended.get(timeout=60)
    thread.join()
    assert (
        outcome.failure_info is not None
        and outcome.failure_info["message"] == "Task Was Ended by User Request"
    )
    assert outcome.exit_code == 128 + signal.SIGTERM
    wait_gone(child, what="a process of the cancelled task's group survived")

    slow = _prepared(node, "sleep 300", "slow", constraints={"maxWallClockTime": "PT0.3S"})
    outcome = _through_server(supervisor, slow)
    assert outcome.failure_info is not None and outcome.failure_info["code"] == "TaskEnded"
    assert outcome.failure_info["details"] == [{"name": "MaxWallClockTime", "value": "PT0.3S"}]


def test_when_the_server_dies_its_tasks_are_reported_killed_and_starts_fall_back(
    node: NodeIdentity,
) -> None:
    supervisor = ProcessSupervisor(name="test-server-death")
    try:
        assert supervisor.spawns()
        task = _prepared(node, "/bin/sh -c 'echo $$ > pid; exec sleep 300'")
        ended: queue.Queue[TaskOutcome] = queue.Queue()
        thread = threading.Thread(target=lambda: ended.put(_through_server(supervisor, task)))
        thread.start()
        task_pid = int(written(task.task_dir / "wd" / "pid", "the task did not start"))
        server = _server_of(task_pid)
        os.kill(server, signal.SIGKILL)
        outcome = ended.get(timeout=60)
        thread.join()
        assert outcome.exit_code == 128 + signal.SIGKILL
        wait_gone(task_pid, what="the task outlived its spawn server")
        assert not supervisor.spawns()  # later starts go through subprocess
        again = _prepared(node, "/bin/true", "after")
        assert not supervisor.spawn(spawn_request(again), threading.Event(), None, print, print)
    finally:
        supervisor.stop()


# A stand-in for the emulator: starts one task through the spawn server, prints its pid, waits forever.
EMULATOR = """
import sys, threading, time
from pathlib import Path
from batchrun.emulator.node.spawn_server import spawn_request
from batchrun.emulator.node.supervisor import ProcessSupervisor
folder = Path(sys.argv[1])
supervisor = ProcessSupervisor()
print("up" if supervisor.spawns() else "none", flush=True)
request = spawn_request(["/bin/sh", "-c", "echo $$ > pid; exec sleep 60"], {"PATH": "/usr/bin:/bin"},
                        str(folder), str(folder / "out"), str(folder / "err"), None)
supervisor.spawn(request, threading.Event(), None, print, print)
time.sleep(600)
"""


def test_a_task_process_and_the_server_die_when_the_emulator_is_killed(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("BATCHRUN_EMULATOR_LAUNCHER", None)
    emulator = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert emulator.stdout is not None
        assert emulator.stdout.readline().strip() == "up"
        task_pid = int(written(tmp_path / "pid", "the task process did not start"))
        server = _server_of(task_pid)
        assert parent_of(server) == emulator.pid
        os.kill(emulator.pid, signal.SIGKILL)
        emulator.wait()
        wait_gone(task_pid, server, what="the task process or the spawn server outlived the emulator")
    finally:
        if emulator.poll() is None:
            emulator.kill()
            emulator.wait()


def test_the_server_exits_at_once_when_its_emulator_is_already_gone(tmp_path: Path) -> None:
    path = server_path()
    assert path is not None
    # Its parent is this test process, not pid 1: as if the emulator had died before prctl took effect.
    done = subprocess.run([path, "1", "0"], stdin=subprocess.DEVNULL, timeout=30)
    assert done.returncode == 137


def test_a_request_subprocess_would_refuse_is_refused_before_the_server() -> None:
    with pytest.raises(ValueError, match="embedded null byte"):
        encode(["/bin/echo", "a\0b"], {}, "/", os.devnull, os.devnull, None)
    with pytest.raises(ValueError, match="illegal environment variable name"):
        encode(["/bin/echo"], {"A=B": "c"}, "/", os.devnull, os.devnull, None)
    server = SpawnServer.start(server_path() or "")
    server.close()
    assert server.process.returncode == 0  # closing its socket ends it


def _is_server(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as command:
        return b"spawn-server-" in command.read().split(b"\0")[0]


def _server_of(task_pid: int) -> int:
    server = parent_of(task_pid)
    assert _is_server(server)
    return server


@pytest.mark.parametrize("setting", ["launcher", "setpriv"])
def test_the_launcher_setting_keeps_task_starts_on_subprocess(setting: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), BATCHRUN_EMULATOR_LAUNCHER=setting)
    code = (
        "from batchrun.emulator.node.supervisor import ProcessSupervisor\n"
        "supervisor = ProcessSupervisor()\n"
        "print(supervisor.spawns())\n"
        "supervisor.stop()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


def test_a_cancel_is_acted_on_while_other_processes_keep_ending(
    node: NodeIdentity, supervisor: ProcessSupervisor
) -> None:
    """Ended processes are finished at the wake that reports them, without a pass over every watched one; that
    pass (cancel, deadline) still runs every CHECK_INTERVAL while ends keep waking the thread."""
    cancel = CancelFlag()
    long_run = _prepared(node, "sleep 300", "long")
    ended: queue.Queue[TaskOutcome] = queue.Queue()
    thread = threading.Thread(target=lambda: ended.put(_through_server(supervisor, long_run, cancel)))
    thread.start()
    short = [_prepared(node, "true", f"short{index}") for index in range(200)]
    stop = threading.Event()

    def keep_ending() -> None:  # a process ends every few milliseconds, each a wake of the supervisor
        for task in short:
            if stop.is_set():
                return
            _through_server(supervisor, task)

    churn = threading.Thread(target=keep_ending)
    churn.start()
    try:
        time.sleep(0.3)
        cancel.set()
        outcome = ended.get(timeout=5)
    finally:
        stop.set()
        churn.join()
        thread.join()
    assert outcome.failure_info is not None
    assert outcome.failure_info["message"] == "Task Was Ended by User Request"


def test_starts_asked_for_on_the_supervisor_thread_are_sent_before_it_waits(
    node: NodeIdentity, supervisor: ProcessSupervisor
) -> None:
    """The emulator makes the starts of a batch on the supervisor's thread; they go out in one write."""
    tasks = [_prepared(node, f"/bin/sh -c 'exit {index}'", f"batch{index}") for index in range(3)]
    done: queue.Queue[tuple[str, int | None]] = queue.Queue()

    def start_all() -> None:
        assert supervisor.on_thread()
        for task in tasks:

            def exited(result: ProcessResult, task: PreparedTask = task) -> None:
                done.put((task.launch.task_id, finish_task(task, result).exit_code))

            def failed(failure: SpawnFailure) -> None:
                done.put(("failed", failure.stage))

            assert supervisor.spawn(spawn_request(task), CancelFlag(), None, exited, failed)

    supervisor.call_soon(start_all)
    assert sorted(done.get(timeout=30) for _ in tasks) == [("batch0", 0), ("batch1", 1), ("batch2", 2)]
