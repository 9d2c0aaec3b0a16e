"""Options the README promises (item 8) and the small things of item 11, through the CLI, piped and on a
terminal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ctrl_c import WITH_CTRL_C
from tests.operate.cli import REPO, batchrun, batchrun_in_terminal, manifest

COMMANDS = ("validate", "render", "plan", "apply", "destroy", "wait", "status", "logs", "outputs")
LOCAL_COMMANDS = ("up", "down", "status", "reset")
TARGET_COMMANDS = ("plan", "apply", "destroy", "wait", "status", "logs", "outputs")


def _offline_env(home: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    env["BATCHRUN_HOME"] = str(home)
    return env


def test_every_command_takes_no_color_and_target_commands_take_v_and_target(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    for command in COMMANDS:
        help_text = batchrun([command, "--help"], env).stdout
        assert "--no-color" in help_text, command
        if command in TARGET_COMMANDS:
            assert "-v, --verbose" in help_text and "--target [local|azure]" in help_text, command
    for command in LOCAL_COMMANDS:
        assert "--no-color" in batchrun(["local", command, "--help"], env).stdout, command
    hello = str(REPO / "workloads" / "hello.yaml")
    assert batchrun(["validate", hello, "--no-color"], env).code == 0
    assert batchrun(["render", hello, "--no-color"], env).code == 0
    assert batchrun(["local", "status", "--no-color"], env).code == 0


def test_verbose_prints_redacted_request_lines_after_the_target_line(
    local_target_env: dict[str, str], tmp_path: Path
) -> None:
    body = "job:\n  id: nc-verbose-job\n  tasks: [{id: t, commandLine: /bin/true}]\n"
    path = manifest(tmp_path, "nc-verbose", body)
    run = batchrun(["status", str(path), "-v", "--no-color"], local_target_env)
    assert run.code == 0, run.stderr
    lines = run.stderr.splitlines()
    assert lines[0].startswith("Target: local (Batch account local at http://127.0.0.1:")
    assert any(line.startswith("GET http://127.0.0.1:") and "nc-verbose-pool" in line for line in lines)


def test_local_status_shows_where_the_logs_are(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    logs = tmp_path / "local" / "logs"
    piped = batchrun(["local", "status"], env)
    assert piped.code == 0 and f"Logs:               {logs}" in piped.stdout
    assert json.loads(batchrun(["local", "status", "-o", "json"], env).stdout)["logsDir"] == str(logs)
    terminal = batchrun_in_terminal(["local", "status"], env)
    assert str(logs) in terminal.stdout


def test_batchrun_alone_prints_the_help_and_succeeds(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    run = batchrun([], env)
    assert run.code == 0 and run.stderr == ""
    assert run.stdout.startswith("Usage: batchrun") and "Commands:" in run.stdout
    assert "_BATCHRUN_COMPLETE=bash_source" in run.stdout  # completion is mentioned where help is
    terminal = batchrun_in_terminal([], env)
    assert terminal.code == 0 and "Commands:" in terminal.stdout


def test_shell_completion_works_as_the_readme_says(tmp_path: Path) -> None:
    env = {**_offline_env(tmp_path), "_BATCHRUN_COMPLETE": "bash_source"}
    script = subprocess.run(
        [str(Path(sys.executable).parent / "batchrun")], env=env, capture_output=True, text=True, check=False
    )
    assert script.returncode == 0 and "complete " in script.stdout and "_batchrun_completion" in script.stdout


def test_local_reset_wants_yes_like_apply(tmp_path: Path) -> None:
    env = _offline_env(tmp_path)
    (tmp_path / "local").mkdir()
    marker = tmp_path / "local" / "kept.txt"
    marker.write_text("state")
    piped = batchrun(["local", "reset"], env)
    assert piped.code == 1 and "run again with --yes" in piped.stderr and marker.exists()
    said_y = batchrun_in_terminal(["local", "reset"], env, typed="y\n")
    assert "Only 'yes' is accepted" in said_y.stdout and "[y/N]" not in said_y.stdout
    assert said_y.code == 1 and marker.exists()
    said_yes = batchrun_in_terminal(["local", "reset"], env, typed="yes\n")
    assert said_yes.code == 0, said_yes.stdout
    assert "Local target reset" in said_yes.stdout and not marker.exists()


RUNNING = """
variables: {seconds: "300"}
job:
  id: nc-running-job
  tasks:
    - id: sleeper
      commandLine: /bin/sh -c "sleep ${seconds}"
"""


@pytest.fixture
def running(local_target_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    path = manifest(tmp_path, "nc-running", RUNNING)
    applied = batchrun(["apply", str(path), "--auto-approve", "--var", "seconds=300"], local_target_env)
    assert applied.code == 0, applied.stderr
    for _ in range(600):  # bounded polls until the task runs
        status = json.loads(batchrun(["status", str(path), "-o", "json"], local_target_env).stdout)
        if status["job"]["tasks"]["running"] == 1:
            break
        time.sleep(0.2)
    yield path
    batchrun(["destroy", str(path), "--auto-approve", "--confirm-replace"], local_target_env)


def test_blocked_destroy_says_nothing_was_deleted_and_interrupt_hints_keep_the_vars(
    running: Path, local_target_env: dict[str, str]
) -> None:
    blocked = batchrun(["destroy", str(running), "--auto-approve", "--var", "seconds=300"], local_target_env)
    assert blocked.code == 1
    assert "the plan has blocked changes, so nothing was deleted" in blocked.stderr
    assert "nothing was applied" not in blocked.stderr

    process = subprocess.Popen(
        [sys.executable, "-c", WITH_CTRL_C, "wait", str(running), "--var", "seconds=300"],
        env=local_target_env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()  # the first progress line: waiting is under way
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert f"`batchrun wait {running} --var seconds=300` watches it again" in err
