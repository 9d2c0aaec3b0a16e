"""Task processes on a simulated node: layout, environment, output streams, exit codes, ending, orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from batchrun.emulator.node import NodeIdentity, reap_orphans, task_directory
from batchrun.emulator.node.layout import launch_directory, launch_folder, task_folder
from batchrun.emulator.node.model import TaskLaunch
from tests.node.conftest import run
from tests.node.processes import alive


def read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_layout_env_and_streams(node: NodeIdentity) -> None:
    for name in ("applications", "fsmounts", "shared", "startup", "volatile", "workitems"):
        assert (node.root / name).is_dir()
    outcome = run(
        node,
        {
            "commandLine": "/bin/sh -c 'env; echo oops >&2'",
            "environmentSettings": [{"name": "SHARED", "value": "task"}, {"name": "ONLY_TASK", "value": "t"}],
        },
        job_environment=[{"name": "SHARED", "value": "job"}, {"name": "ONLY_JOB", "value": "j"}],
    )
    assert outcome.result == "success" and outcome.exit_code == 0 and outcome.failure_info is None
    task_dir = task_directory(node, "job1", "task1")
    assert task_dir == node.root / "workitems" / "job1" / "job-1" / "task1"
    env = read_env(task_dir / "stdout.txt")
    assert (task_dir / "stderr.txt").read_text() == "oops\n"
    assert env["SHARED"] == "task" and env["ONLY_JOB"] == "j" and env["ONLY_TASK"] == "t"
    assert env["AZ_BATCH_JOB_ID"] == "job1" and env["AZ_BATCH_TASK_ID"] == "task1"
    assert env["AZ_BATCH_POOL_ID"] == "pool1" and env["AZ_BATCH_NODE_ID"] == "tvm-1"
    assert env["AZ_BATCH_NODE_IS_DEDICATED"] == "true"
    assert env["AZ_BATCH_TASK_DIR"] == str(task_dir)
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(task_dir / "wd")
    assert env["AZ_BATCH_NODE_SHARED_DIR"] == str(node.root / "shared")
    assert env["AZ_BATCH_NODE_STARTUP_DIR"] == str(node.root / "startup")
    assert env["AZ_BATCH_NODE_MOUNTS_DIR"] == str(node.root / "fsmounts")
    assert env["PWD"] == str(task_dir / "wd")
    assert "AZ_BATCH_JOB_PREP_DIR" not in env


def test_start_task_and_job_preparation(node: NodeIdentity) -> None:
    start = run(node, {"commandLine": "/usr/bin/env"}, kind="starttask", job_id="", task_id="")
    assert start.result == "success"
    env = read_env(node.root / "startup" / "stdout.txt")
    assert "AZ_BATCH_JOB_ID" not in env and "AZ_BATCH_TASK_ID" not in env
    assert env["AZ_BATCH_TASK_WORKING_DIR"] == str(node.root / "startup" / "wd")

    prep = run(
        node,
        {"id": "jobpreparation", "commandLine": "/bin/sh -c 'echo ready > prep.txt'"},
        kind="jobpreparation",
        task_id="jobpreparation",
    )
    assert prep.result == "success"
    prep_dir = node.root / "workitems" / "job1" / "job-1" / "jobpreparation"
    assert (prep_dir / "wd" / "prep.txt").read_text() == "ready\n"
    run(node, {"commandLine": "/usr/bin/env"})
    env = read_env(task_directory(node, "job1", "task1") / "stdout.txt")
    assert env["AZ_BATCH_JOB_PREP_DIR"] == str(prep_dir)
    assert env["AZ_BATCH_JOB_PREP_WORKING_DIR"] == str(prep_dir / "wd")
    release = TaskLaunch("jobrelease", "job1", "jobrelease", {"commandLine": "true"})
    assert launch_directory(node, release) == node.root / "workitems" / "job1" / "job-1" / "jobrelease"


def test_a_launch_folder_is_the_text_of_its_joined_path_for_every_kind(tmp_path: Path) -> None:
    # Joined as text for every task (cheaper than Path and os.path.join): the same folders, as text.
    node = NodeIdentity(tmp_path / "nodes" / "pool-1" / "tvm-1", "acct", "https://acct", "pool-1", "tvm-1")
    job = node.root / "workitems" / "job-A" / "job-1"
    cases = {
        "task": job / "task-7",
        "jobpreparation": job / "jobpreparation",
        "jobrelease": job / "jobrelease",
        "starttask": node.root / "startup",
    }
    for kind, expected in cases.items():
        launch = TaskLaunch(kind, "job-A", "task-7", {"commandLine": "true"})  # type: ignore[arg-type]
        assert launch_folder(node, launch) == os.path.join(*expected.parts)
        assert launch_directory(node, launch) == expected
    assert task_folder(node, "job-A", "task-7") == str(job / "task-7")
    for bad in ("..", "a/b", ""):
        with pytest.raises(ValueError):
            task_folder(node, "job-A", bad)
        with pytest.raises(ValueError):
            launch_folder(node, TaskLaunch("task", bad, "t", {}))


def test_command_line_is_split_not_shell_interpreted(node: NodeIdentity) -> None:
    outcome = run(node, {"commandLine": "/bin/echo 'a  b' $HOME \"c d\""})
    assert outcome.result == "success"
    assert (task_directory(node, "job1", "task1") / "stdout.txt").read_text() == "a  b $HOME c d\n"


def test_nonzero_exit_is_failure_exit_code(node: NodeIdentity) -> None:
    outcome = run(node, {"commandLine": "/bin/sh -c 'exit 7'"})
    assert outcome.exit_code == 7 and outcome.result == "failure"
    assert outcome.failure_info is not None
    assert outcome.failure_info["code"] == "FailureExitCode"
    assert outcome.failure_info["category"] == "usererror"
    assert outcome.failure_stage == "execution"


def test_missing_program_is_a_failure_not_a_crash(node: NodeIdentity) -> None:
    outcome = run(node, {"commandLine": "no-such-program-xyz --flag"})
    assert outcome.exit_code is None and outcome.result == "failure"
    assert outcome.failure_info is not None
    assert outcome.failure_info["code"] == "CommandProgramNotFound"
    assert "no-such-program-xyz" in outcome.failure_info["message"]
    assert outcome.failure_stage == "preprocessing"


def test_wall_clock_limit_kills_the_process_group(node: NodeIdentity, tmp_path: Path) -> None:
    marker = tmp_path / "survivor"
    began = time.monotonic()
    outcome = run(
        node,
        {
            "commandLine": f"/bin/sh -c 'sleep 30 & sleep 1.5; touch {marker}; wait'",
            "constraints": {"maxWallClockTime": "PT1S"},
        },
    )
    assert time.monotonic() - began < 5
    assert outcome.result == "failure" and outcome.exit_code is not None and outcome.exit_code > 128
    assert outcome.failure_info is not None and outcome.failure_info["code"] == "TaskEnded"
    time.sleep(1.0)
    assert not marker.exists()  # the whole group died, not only the shell


def test_cancel_ends_the_task(node: NodeIdentity) -> None:
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    began = time.monotonic()
    outcome = run(node, {"commandLine": "sleep 30"}, cancel=cancel)
    assert time.monotonic() - began < 5
    assert outcome.result == "failure" and outcome.failure_info is not None
    assert outcome.failure_info["code"] == "TaskEnded"


def test_container_settings_fail_clearly(node: NodeIdentity) -> None:
    outcome = run(node, {"commandLine": "true", "containerSettings": {"imageName": "ubuntu"}})
    assert outcome.result == "failure" and outcome.exit_code is None
    assert outcome.failure_info is not None and "container" in outcome.failure_info["message"]


def test_task_dies_with_the_emulator_process(node: NodeIdentity, tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = textwrap.dedent(f"""
        import threading
        from pathlib import Path
        from batchrun.emulator.node import NodeIdentity, TaskLaunch, run_task
        node = NodeIdentity(Path({str(node.root)!r}), "local", "http://x", "pool1", "tvm-1", True)
        spec = {{"commandLine": "/bin/sh -c 'echo $$ > {pid_file}; exec sleep 60'"}}
        # run_task in a worker thread, as the emulator's scheduler does
        worker = threading.Thread(target=run_task, args=(node, TaskLaunch("task", "job1", "t", spec), None,
                                                         threading.Event()))
        worker.start()
        worker.join()
    """)
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 10
        while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(child)
    finally:
        parent.kill()
        parent.wait()


def test_reap_orphans_kills_leftover_task_processes(node: NodeIdentity) -> None:
    env = dict(os.environ, AZ_BATCH_NODE_ROOT_DIR=str(node.root))
    orphan = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        assert reap_orphans(node.root.parent.parent) == 1
        assert orphan.wait(timeout=5) == -signal.SIGKILL
        assert bystander.poll() is None
    finally:
        for process in (orphan, bystander):
            process.kill()
            process.wait()


def test_the_job_preparation_folder_is_named_as_the_scheduler_knows_it_ran(node: NodeIdentity) -> None:
    """A task launched by the scheduler says whether the job's preparation task ran on the node: that decides
    AZ_BATCH_JOB_PREP_DIR, not a look at the disk; a launch that does not say falls back to the folder."""
    from batchrun.emulator.node.environment import task_environment

    prep_dir = node.root / "workitems" / "job1" / "job-1" / "jobpreparation"
    task_dir = task_directory(node, "job1", "task1")
    for prepared, folder, expected in (
        (True, False, True),
        (False, True, False),
        (None, True, True),
        (None, False, False),
    ):
        if folder:
            prep_dir.mkdir(parents=True, exist_ok=True)
        elif prep_dir.exists():
            prep_dir.rmdir()
        launch = TaskLaunch("task", "job1", "task1", {"commandLine": "true"}, job_prepared=prepared)
        env = task_environment(node, launch, task_dir, ())
        assert ("AZ_BATCH_JOB_PREP_DIR" in env) is expected, (prepared, folder)
        if expected:
            assert env["AZ_BATCH_JOB_PREP_DIR"] == str(prep_dir)


def test_a_task_environment_takes_the_node_part_once_and_the_task_part_every_time(node: NodeIdentity) -> None:
    """The node's variables (host basics, AZ_BATCH_NODE_*) are made once per node; the task's own settings
    still override the host's, the node agent's variables still override the task's, and a host given
    explicitly is the one used."""
    from batchrun.emulator.node.environment import task_environment

    def launch(task_id: str, settings: list[dict[str, str]]) -> TaskLaunch:
        spec = {"commandLine": "true", "environmentSettings": settings}
        return TaskLaunch("task", "job1", task_id, spec, job_prepared=False)

    first = launch("task1", [{"name": "LANG", "value": "C.task"}, {"name": "AZ_BATCH_NODE_ID", "value": "x"}])
    second = launch("task2", [])
    env1 = task_environment(node, first, task_directory(node, "job1", "task1"), ())
    env2 = task_environment(node, second, task_directory(node, "job1", "task2"), ())
    assert env1["LANG"] == "C.task" and env2.get("LANG") == os.environ.get("LANG")
    assert env1["AZ_BATCH_NODE_ID"] == env2["AZ_BATCH_NODE_ID"] == node.node_id
    assert env1["AZ_BATCH_TASK_ID"] == "task1" and env2["AZ_BATCH_TASK_ID"] == "task2"
    assert env2["AZ_BATCH_TASK_DIR"] == str(task_directory(node, "job1", "task2"))
    assert env2["AZ_BATCH_NODE_SHARED_DIR"] == str(node.root / "shared")
    assert env2["PATH"] == os.environ.get("PATH", os.defpath)

    hosted = task_environment(node, second, task_directory(node, "job1", "task2"), (), host={"PATH": "/h"})
    assert hosted["PATH"] == "/h" and "HOME" not in hosted
    assert task_environment(node, second, task_directory(node, "job1", "task2"), (), host={})["PATH"] == (
        os.defpath
    )
