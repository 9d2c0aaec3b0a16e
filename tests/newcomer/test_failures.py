"""What a newcomer sees when things fail: the failed-task table keeps Batch's message (item 1), a failed start
task leads to its output (item 2), and `logs --failed` before any apply is an error (item 7).

Each runs the CLI as a user does, with stdout a pipe and on a terminal (script(1))."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operate.cli import batchrun, batchrun_in_terminal, manifest

FAILING = """
job:
  id: nc-fail-job
  onAllTasksComplete: terminatejob
  tasks:
    - id: no-such-program-task
      commandLine: ffmpeg -i in.mp4 out.mp4
    - id: says-why
      commandLine: /bin/sh -c "echo boom-on-stderr >&2; exit 3"
"""

START_TASK = """
  startTask:
    commandLine: '/bin/sh -c "echo installing-tools; echo package-foo-not-found >&2; exit 7"'
    waitForSuccess: true
"""

START_JOB = """
job:
  id: nc-start-job
  tasks:
    - id: t1
      commandLine: /bin/true
"""

MISSING_MESSAGE = "CommandProgramNotFound: The program 'ffmpeg'"


@pytest.fixture(scope="module")
def failed(local_target_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = manifest(tmp_path_factory.mktemp("nc-fail"), "nc-fail", FAILING)
    applied = batchrun(["apply", str(path), "--auto-approve", "--wait"], local_target_env)
    assert applied.code == 3, applied.stdout + applied.stderr
    yield path
    batchrun(["destroy", str(path), "--auto-approve"], local_target_env)


def test_failed_task_table_shows_the_whole_failure_message_piped(
    failed: Path, local_target_env: dict[str, str]
) -> None:
    run = batchrun(["wait", str(failed), "--poll-interval", "0.3"], local_target_env)
    assert run.code == 3
    flat = " ".join(run.stdout.split())  # the message column folds; read it as one text
    assert MISSING_MESSAGE in flat
    assert "use /bin/sh -c" in flat  # the fix Batch's message gives
    assert "(stderr empty)" in run.stdout  # the program never ran, so no stderr: said, not a bare "(empty)"
    assert "boom-on-stderr" in run.stdout and "FailureExitCode" in run.stdout
    assert "…" not in run.stdout and "CommandProgramNotFou…" not in run.stdout
    trailing = [line for line in run.stdout.splitlines() if line != line.rstrip()]
    assert not trailing, trailing  # piped tables carry no padding at line ends


def test_failed_task_table_shows_the_whole_failure_message_on_a_terminal(
    failed: Path, local_target_env: dict[str, str]
) -> None:
    run = batchrun_in_terminal(["wait", str(failed), "--poll-interval", "0.3"], local_target_env, columns=80)
    assert run.code == 3
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", run.stdout)
    flat = " ".join(plain.split())
    assert "CommandProgramNotFound:" in flat and "'ffmpeg'" in flat  # not cut at 80 columns
    assert "CommandProgramNotFou…" not in plain


def test_logs_failed_prints_the_failure_message_for_each_task(
    failed: Path, local_target_env: dict[str, str]
) -> None:
    run = batchrun(["logs", str(failed), "--failed"], local_target_env)
    assert run.code == 0, run.stderr
    assert MISSING_MESSAGE in run.stdout and "use /bin/sh -c" in run.stdout
    assert "(stderr.txt is empty)" in run.stdout
    assert "boom-on-stderr" in run.stdout
    terminal = batchrun_in_terminal(["logs", str(failed), "--failed"], local_target_env)
    assert MISSING_MESSAGE in terminal.stdout


def test_logs_failed_before_any_apply_says_the_job_does_not_exist(
    local_target_env: dict[str, str], tmp_path: Path
) -> None:
    body = "job:\n  id: nc-never-job\n  tasks: [{id: t, commandLine: /bin/true}]\n"
    path = manifest(tmp_path, "nc-never", body)
    run = batchrun(["logs", str(path), "--failed"], local_target_env)
    assert run.code == 1
    assert "job/nc-never-job does not exist on the target: apply the manifest first" in run.stderr
    assert "No failed tasks" not in run.stdout
    terminal = batchrun_in_terminal(["logs", str(path), "--failed"], local_target_env)
    assert terminal.code == 1 and "does not exist on the target" in terminal.stdout


@pytest.fixture(scope="module")
def start_failed(
    local_target_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    path = manifest(tmp_path_factory.mktemp("nc-start"), "nc-start", START_JOB, pool_extra=START_TASK)
    yield path
    batchrun(["destroy", str(path), "--auto-approve", "--confirm-replace"], local_target_env)


def test_a_failed_start_task_shows_its_output_after_wait_and_through_logs(
    start_failed: Path, local_target_env: dict[str, str]
) -> None:
    applied = batchrun(["apply", str(start_failed), "--auto-approve", "--wait"], local_target_env)
    assert applied.code == 4, applied.stdout + applied.stderr
    assert "last 10 lines of startup/stderr.txt" in applied.stdout
    assert "package-foo-not-found" in applied.stdout and "installing-tools" in applied.stdout
    assert f"batchrun logs {start_failed} --start-task" in applied.stdout

    stderr = batchrun(["logs", str(start_failed), "--start-task", "--stderr"], local_target_env)
    assert stderr.code == 0, stderr.stderr
    assert stderr.stdout == "package-foo-not-found\n"
    assert "startup/stderr.txt" in stderr.stderr
    stdout = batchrun(["logs", str(start_failed), "--start-task"], local_target_env)
    assert stdout.stdout == "installing-tools\n"
    document = json.loads(
        batchrun(["logs", str(start_failed), "--start-task", "-o", "json"], local_target_env).stdout
    )
    assert document["file"] == "startup/stdout.txt" and document["content"] == "installing-tools\n"
    assert document["pool"] == "nc-start-pool" and document["node"]

    terminal = batchrun_in_terminal(["wait", str(start_failed), "--poll-interval", "0.3"], local_target_env)
    assert terminal.code == 4
    assert "package-foo-not-found" in terminal.stdout


def test_logs_start_task_needs_a_failed_node_or_a_node_id(
    failed: Path, local_target_env: dict[str, str]
) -> None:
    run = batchrun(["logs", str(failed), "--start-task"], local_target_env)
    assert run.code == 1
    assert "no node of pool/nc-fail-pool has a failed start task; name a node with --node ID" in run.stderr
