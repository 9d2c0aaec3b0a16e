"""Exit codes of wait / apply --wait: task failure (with stderr shown), pool failure, timeout."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchrun.cli import exit_codes

from .cli import REPO, batchrun, manifest

FAILS = REPO / "workloads" / "fails.yaml"


def test_apply_wait_on_the_failing_workload_exits_tasks_failed_and_shows_its_stderr(
    local_target_env: dict[str, str],
) -> None:
    run = batchrun(["apply", str(FAILS), "--auto-approve", "--wait"], local_target_env, timeout=180)
    assert run.code == exit_codes.TASKS_FAILED, run.stdout + run.stderr
    assert re.search(r"Outcome\s+tasks_failed \(exit 3\)", run.stdout)
    flat = " ".join(run.stdout.split())  # the failure column folds: read it as one text
    assert "broken 3 FailureExitCode: The task exited with an exit code" in flat, run.stdout
    assert "broken: failing on purpose" in flat, run.stdout

    waited = batchrun(["wait", str(FAILS), "-o", "json", "--poll-interval", "0.3"], local_target_env)
    assert waited.code == exit_codes.TASKS_FAILED
    result = json.loads(waited.stdout)
    assert result["outcome"] == "tasks_failed" and result["tasks"]["failed"] == 1
    assert result["failedTasks"] == [
        {
            "id": "broken",
            "exitCode": 3,
            "failureCode": "FailureExitCode",
            "failureMessage": result["failedTasks"][0]["failureMessage"],
            "stderrTail": ["broken: failing on purpose"],
        }
    ]

    failed = batchrun(["logs", str(FAILS), "--failed"], local_target_env)
    assert failed.code == 0
    assert "==> task broken (exit 3, FailureExitCode): last 20 lines of stderr.txt <==" in failed.stdout
    assert "broken: failing on purpose" in failed.stdout
    document = json.loads(batchrun(["logs", str(FAILS), "--failed", "-o", "json"], local_target_env).stdout)
    assert document["failedTotal"] == 1 and document["tasks"][0]["lines"] == ["broken: failing on purpose"]


@pytest.fixture
def destroy_after(local_target_env: dict[str, str]) -> Iterator[list[Path]]:
    manifests: list[Path] = []
    yield manifests
    for path in manifests:
        batchrun(["destroy", str(path), "--auto-approve"], local_target_env)


def test_a_start_task_failing_on_every_node_exits_pool_failed(
    local_target_env: dict[str, str], tmp_path: Path, destroy_after: list[Path]
) -> None:
    path = manifest(
        tmp_path,
        "op-poolfail",
        "job:\n  id: op-poolfail-job\n  tasks:\n    - {id: a, commandLine: /bin/true}\n",
        pool_extra='  startTask: {commandLine: /bin/sh -c "exit 1", waitForSuccess: true}\n',
    )
    destroy_after.append(path)
    assert batchrun(["apply", str(path), "--auto-approve"], local_target_env).code == 0
    run = batchrun(["wait", str(path), "--poll-interval", "0.3", "--timeout", "60s"], local_target_env)
    assert run.code == exit_codes.POOL_FAILED, run.stdout + run.stderr
    assert "pool op-poolfail-pool cannot run tasks: nodes failed: 1 starttaskfailed" in run.stdout
    node_line = r"Failed node\s+\S+: starttaskfailed; start task exit code 1; FailureExitCode"
    assert re.search(node_line, run.stdout), run.stdout
    result = json.loads(batchrun(["wait", str(path), "-o", "json"], local_target_env).stdout)
    assert result["outcome"] == "pool_failed" and result["pool"]["nodes"]["byState"] == {"starttaskfailed": 1}
    [node] = result["failedNodes"]
    assert (node["state"], node["startTaskExitCode"]) == ("starttaskfailed", 1)
    assert node["startTaskFailure"].startswith("FailureExitCode: ")


def test_timeout_exits_timeout_while_the_job_keeps_running(
    local_target_env: dict[str, str], tmp_path: Path, destroy_after: list[Path]
) -> None:
    path = manifest(
        tmp_path,
        "op-slow",
        "job:\n  id: op-slow-job\n  tasks:\n    - {id: sleepy, commandLine: /bin/sleep 60}\n",
    )
    destroy_after.append(path)
    applied = batchrun(["apply", str(path), "--auto-approve", "--wait", "--timeout", "2s"], local_target_env)
    assert applied.code == exit_codes.TIMEOUT, applied.stdout + applied.stderr
    run = batchrun(
        ["wait", str(path), "--timeout", "2s", "--poll-interval", "0.5", "-o", "json"],
        local_target_env,
        timeout=60,
    )
    assert run.code == exit_codes.TIMEOUT
    result = json.loads(run.stdout)
    assert result["outcome"] == "timeout" and "--timeout 2s elapsed" in result["reason"]
    assert 2 <= result["elapsedSeconds"] < 10
    assert result["tasks"]["completed"] == 0


def test_logs_follow_prints_a_running_task_output_until_it_completes(
    local_target_env: dict[str, str], tmp_path: Path, destroy_after: list[Path]
) -> None:
    path = manifest(
        tmp_path,
        "op-follow",
        "job:\n  id: op-follow-job\n  tasks:\n"
        '    - {id: ticker, commandLine: /bin/sh -c "echo first; sleep 3; echo second"}\n',
    )
    destroy_after.append(path)
    assert batchrun(["apply", str(path), "--auto-approve"], local_target_env).code == 0
    run = batchrun(["logs", str(path), "ticker", "--follow"], local_target_env, timeout=60)
    assert (run.code, run.stdout) == (0, "first\nsecond\n"), run.stderr
