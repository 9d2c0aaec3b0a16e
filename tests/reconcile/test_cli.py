"""The plan/apply/destroy commands: exit codes, approval, JSON, the request log, configuration errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from batchrun.plan.plan_json import plan_from_json
from tests.ctrl_c import WITH_CTRL_C
from tests.reconcile.proxy import FaultProxy

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchrun.local.target import LocalTarget

REPO = Path(__file__).resolve().parents[2]

HEADER_AND_POOL = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: {name}}}
pool:
  id: {name}-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 0
"""

MANIFEST = (
    HEADER_AND_POOL.format(name="cli-demo")
    + """\
storage:
  inputs:
    - {name: data, source: ./data, container: cli-demo-in}
job:
  id: cli-demo-job
  tasks:
    - id: t1
      commandLine: /bin/true
      inputs: [data]
"""
)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def through(batch_url: str, env: dict[str, str], local_target: LocalTarget) -> dict[str, str]:
    """``env`` with the local target named as an Azure one whose Batch endpoint is ``batch_url`` (a proxy)."""
    return dict(
        env,
        AZURE_BATCH_ENDPOINT=batch_url,
        AZURE_BATCH_ACCOUNT=local_target.account_name,
        AZURE_BATCH_ACCESS_KEY=local_target.account_key,
        AZURE_STORAGE_CONNECTION_STRING=local_target.connection_string,
    )


def test_plan_apply_destroy_through_the_cli(
    tmp_path: Path, local_target_env: dict[str, str], local_target: LocalTarget
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "input.txt").write_text("hello\n")
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(MANIFEST)

    changes = run(local_target_env, "plan", str(manifest), "--detailed-exitcode")
    assert changes.returncode == 2, changes.stderr
    assert "+ pool/cli-demo-pool will be created" in changes.stdout
    assert changes.stdout.rstrip().endswith("(0 unchanged).")

    as_json = run(local_target_env, "plan", str(manifest), "-o", "json")
    plan = plan_from_json(json.loads(as_json.stdout))
    assert {c.address for c in plan.changes} >= {
        "pool/cli-demo-pool",
        "job/cli-demo-job",
        "task/cli-demo-job/t1",
    }

    unapproved = run(local_target_env, "apply", str(manifest))
    assert unapproved.returncode == 1
    assert "--auto-approve" in unapproved.stderr and "Traceback" not in unapproved.stderr
    assert (
        run(local_target_env, "plan", str(manifest), "--detailed-exitcode").returncode == 2
    )  # nothing applied

    applied = run(local_target_env, "apply", str(manifest), "--auto-approve", "-v")
    assert applied.returncode == 0, applied.stderr
    assert "POST http://127.0.0.1" in applied.stderr  # the -v request log
    assert "sig=" not in applied.stderr.replace("sig=REDACTED", "")
    for secret in (local_target.account_key, local_target.storage_account_key, local_target.token):
        assert secret not in applied.stderr and secret not in applied.stdout

    assert run(local_target_env, "plan", str(manifest), "--detailed-exitcode").returncode == 0

    destroyed = run(local_target_env, "destroy", str(manifest), "--auto-approve", "--confirm-replace")
    assert destroyed.returncode == 0, destroyed.stderr
    assert "- pool/cli-demo-pool will be deleted" in destroyed.stdout
    after = run(local_target_env, "plan", str(manifest), "--detailed-exitcode")
    assert after.returncode == 2 and "+ job/cli-demo-job will be created" in after.stdout
    again = run(local_target_env, "destroy", str(manifest), "--auto-approve")
    assert again.returncode == 0 and "Nothing of this manifest is left to delete." in again.stdout
    assert "Live state matches" not in again.stdout and "Nothing to destroy." in again.stderr


def test_azure_target_without_configuration_names_the_missing_variables(tmp_path: Path) -> None:
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(MANIFEST)
    (tmp_path / "data").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env["BATCHRUN_HOME"] = str(tmp_path / "home")
    result = run(env, "plan", str(manifest), "--target", "azure")
    assert result.returncode == 1
    assert "AZURE_BATCH_ENDPOINT" in result.stderr and "AZURE_BATCH_ACCOUNT" in result.stderr
    assert "Traceback" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_target_fails_fast_with_a_clear_error_and_no_secret(tmp_path: Path) -> None:
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(MANIFEST)
    (tmp_path / "data").mkdir()
    port = _closed_port()
    key = "c2VjcmV0LWJhdGNoLWtleS1mb3ItdGVzdHM="
    storage_key = "c3RvcmFnZS1rZXktdGhhdC1tdXN0LW5vdC1sZWFr"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(
        BATCHRUN_HOME=str(tmp_path / "home"),
        AZURE_BATCH_ENDPOINT=f"http://127.0.0.1:{port}",
        AZURE_BATCH_ACCOUNT="acct",
        AZURE_BATCH_ACCESS_KEY=key,
        AZURE_STORAGE_CONNECTION_STRING=(
            f"DefaultEndpointsProtocol=http;AccountName=acct;AccountKey={storage_key};"
            f"BlobEndpoint=http://127.0.0.1:{port}/acct;"
        ),
    )
    for args in (("plan", str(manifest), "-v"), ("status", str(manifest))):  # storage, then Batch
        began = time.monotonic()
        result = run(env, *args)
        elapsed = time.monotonic() - began
        assert result.returncode == 1, (args, result.stderr)
        assert "cannot reach" in result.stderr or "Could not reach" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
        assert key not in result.stderr and storage_key not in result.stderr
        # The storage SDK's default retries kept a refused connection silent for ~85 s.
        assert elapsed < 40, (args, elapsed)


def test_exported_local_endpoint_still_means_the_local_target(
    tmp_path: Path, local_target_env: dict[str, str], local_target: LocalTarget
) -> None:
    # `batchrun local up` prints these exports for people's own SDK scripts; batchrun must stay on the full
    # local target (with its management plane for packages), not switch to a half-configured Azure one.
    manifest = tmp_path / "demo.yaml"
    manifest.write_text(MANIFEST)
    (tmp_path / "data").mkdir()
    env = dict(local_target_env)
    env["AZURE_BATCH_ENDPOINT"] = local_target.batch_url
    env["AZURE_BATCH_ACCOUNT"] = local_target.account_name
    env["AZURE_BATCH_ACCESS_KEY"] = local_target.account_key
    result = run(env, "plan", str(manifest))
    assert result.returncode == 0, result.stderr
    assert "Target: local" in result.stderr
    other = dict(env, AZURE_BATCH_ENDPOINT="https://elsewhere.example.batch.azure.com")
    elsewhere = run(other, "plan", str(manifest))
    assert elsewhere.returncode == 1
    assert "AZURE_STORAGE_CONNECTION_STRING" in elsewhere.stderr


def test_apply_wait_reports_the_job_outcome(tmp_path: Path, local_target_env: dict[str, str]) -> None:
    manifest = tmp_path / "wait.yaml"
    manifest.write_text(
        MANIFEST.replace("cli-demo", "cli-wait")
        .replace("targetDedicatedNodes: 0", "targetDedicatedNodes: 1")
        .replace("      inputs: [data]\n", "")
        .replace("  inputs:\n    - {name: data, source: ./data, container: cli-wait-in}\n", "")
        .replace("storage:\n", "")
        .replace("  id: cli-wait-job\n", "  id: cli-wait-job\n  onAllTasksComplete: terminatejob\n")
    )
    applied = run(local_target_env, "apply", str(manifest), "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "succeeded" in applied.stdout + applied.stderr
    destroyed = run(local_target_env, "destroy", str(manifest), "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stderr


def run_on_terminal(env: dict[str, str], answers: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a pseudo-terminal as stdin, typing ``answers`` (stdout/stderr still captured)."""
    import pty

    master, slave = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "batchrun", *args],
            env=env,
            cwd=REPO,
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(master, answers.encode())
        try:
            stdout, stderr = process.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    finally:
        os.close(master)
        os.close(slave)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_replacing_a_busy_pool_asks_on_a_terminal(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    import time

    manifest = tmp_path / "busy.yaml"
    text = (
        MANIFEST.replace("cli-demo", "cli-busy")
        .replace("targetDedicatedNodes: 0", "targetDedicatedNodes: 1")
        .replace("/bin/true", "/bin/sleep 60")
        .replace("      inputs: [data]\n", "")
        .replace("storage:\n  inputs:\n    - {name: data, source: ./data, container: cli-busy-in}\n", "")
    )
    manifest.write_text(text)
    assert run(local_target_env, "apply", str(manifest), "--auto-approve").returncode == 0
    deadline = time.monotonic() + 60
    while batch_client.get_task("cli-busy-job", "t1").state != "running":
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.5)
    manifest.write_text(text.replace("standard_d2s_v3", "standard_d4s_v3"))

    declined = run_on_terminal(local_target_env, "no\n", "apply", str(manifest))
    assert declined.returncode == 1 and "Nothing was changed" in declined.stderr
    assert "forces replacement" in declined.stdout and "Replace or delete these anyway?" in declined.stdout
    assert batch_client.get_pool("cli-busy-pool").vm_size.lower() == "standard_d2s_v3"

    accepted = run_on_terminal(local_target_env, "yes\nyes\n", "apply", str(manifest))
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert batch_client.get_pool("cli-busy-pool").vm_size.lower() == "standard_d4s_v3"
    assert (
        run(local_target_env, "destroy", str(manifest), "--auto-approve", "--confirm-replace").returncode == 0
    )


INTERRUPTED = (
    HEADER_AND_POOL.format(name="cli-sigint")
    + """\
job:
  id: cli-sigint-job
  onAllTasksComplete: terminatejob
  tasks:
    - {id: "t-${i}", foreach: {i: {range: [1, 4000]}}, commandLine: /bin/true}
"""
)


def interrupted(args: list[str], env: dict[str, str], marker: str, delay: float = 0.0) -> tuple[int, str]:
    """Run ``batchrun ARGS`` and press Ctrl-C (SIGINT) ``delay`` seconds after ``marker`` is printed; exit
    code and output."""
    process = subprocess.Popen(
        [sys.executable, "-c", WITH_CTRL_C, *args],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        seen = ""
        for line in process.stdout:
            seen += line
            if marker in line:
                time.sleep(delay)
                process.send_signal(signal.SIGINT)
                break
        rest, _ = process.communicate(timeout=120)
        return process.returncode, seen + rest
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ctrl_c_during_task_adds_is_reported_and_a_rerun_converges(
    tmp_path: Path, local_target_env: dict[str, str]
) -> None:
    path = tmp_path / "sigint.yaml"
    path.write_text(INTERRUPTED)
    # 40 add requests, 8 in flight: the first progress line comes early
    code, stderr = interrupted(["apply", str(path), "--auto-approve"], local_target_env, "tasks added")
    try:
        assert code == 130, stderr
        assert "Apply interrupted" in stderr and "batchrun apply" in stderr
        assert "Traceback" not in stderr and "Apply complete" not in stderr

        status = run(local_target_env, "status", str(path), "-o", "json")
        document = json.loads(status.stdout)
        assert document["inSync"] is False
        assert any("of the manifest's 4000 tasks" in reason for reason in document["differences"])

        again = run(local_target_env, "apply", str(path), "--auto-approve")
        assert again.returncode == 0, again.stderr
        assert "Apply complete" in again.stderr
        assert run(local_target_env, "plan", str(path), "--detailed-exitcode").returncode == 0
        status = run(local_target_env, "status", str(path), "-o", "json")
        assert json.loads(status.stdout)["inSync"] is True
    finally:
        run(local_target_env, "destroy", str(path), "--auto-approve", "--confirm-replace")


def test_ctrl_c_while_the_job_is_created_sends_no_task_and_a_rerun_converges(
    tmp_path: Path, local_target_env: dict[str, str], local_target: LocalTarget, batch_client: BatchClient
) -> None:
    # The first task request is made ready while the pool and the job are created; a Ctrl-C meanwhile must
    # keep it from leaving. The job's create is held at the proxy, so the Ctrl-C lands while it is in flight.
    path = tmp_path / "sigint-create.yaml"
    path.write_text(
        HEADER_AND_POOL.format(name="cli-create-sigint")
        + "job:\n  id: cli-create-sigint-job\n  tasks:\n"
        + '    - {id: "t-${i}", foreach: {i: {range: [1, 250]}}, commandLine: /bin/true}\n'
    )
    arrived: list[tuple[str, str]] = []

    def hold_the_job(method: str, url_path: str) -> Literal["pass"]:
        arrived.append((method, url_path))
        if (method, url_path) == ("POST", "/jobs"):
            time.sleep(2)  # forwarded after the Ctrl-C: a create in flight finishes
        return "pass"

    with FaultProxy(local_target.batch_url, hold_the_job) as proxy:
        env = through(proxy.url, local_target_env, local_target)
        try:
            # Half a second on, the task stage's threads wait for the creates: the job's is 1.5 s from done.
            code, output = interrupted(["apply", str(path), "--auto-approve"], env, "job.create ...", 0.5)
            assert code == 130, output
            assert "Apply interrupted" in output and "Traceback" not in output
            assert ("POST", "/jobs") in arrived
            assert not [p for _, p in arrived if p.endswith("/addtaskcollection")], "a task request left"
            assert not list(batch_client.list_tasks("cli-create-sigint-job"))  # the job is there, no task

            again = run(env, "apply", str(path), "--auto-approve")
            assert again.returncode == 0, again.stderr
            assert run(env, "plan", str(path), "--detailed-exitcode").returncode == 0
            assert len(list(batch_client.list_tasks("cli-create-sigint-job"))) == 250
        finally:
            run(local_target_env, "destroy", str(path), "--auto-approve", "--confirm-replace")


def test_target_hanging_up_mid_apply_says_a_rerun_finishes(
    tmp_path: Path, local_target_env: dict[str, str], local_target: LocalTarget
) -> None:
    path = tmp_path / "hangup.yaml"
    path.write_text(
        HEADER_AND_POOL.format(name="cli-hangup")
        + "job:\n  id: cli-hangup-job\n  tasks:\n    - {id: t1, commandLine: /bin/true}\n"
    )

    def hang_up_on_task_adds(method: str, path: str) -> Literal["pass", "lose", "hang_up"]:
        return "hang_up" if path.endswith("/addtaskcollection") else "pass"

    with FaultProxy(local_target.batch_url, hang_up_on_task_adds) as proxy:
        env = through(proxy.url, local_target_env, local_target)
        try:
            result = run(env, "apply", str(path), "--auto-approve")
            assert result.returncode == 1, result.stderr
            assert "Target: azure" in result.stderr and "Traceback" not in result.stderr
            assert "adding tasks to job/cli-hangup-job" in result.stderr
            assert "Apply stopped part-way; the steps done so far are kept" in result.stderr
            assert "Run `batchrun apply` again" in result.stderr
            for secret in (local_target.account_key, local_target.storage_account_key):
                assert secret not in result.stderr and secret not in result.stdout
        finally:
            run(local_target_env, "destroy", str(path), "--auto-approve", "--confirm-replace")


def test_ctrl_c_while_waiting_stops_watching_not_the_job(
    tmp_path: Path, local_target_env: dict[str, str]
) -> None:
    path = tmp_path / "waiting.yaml"
    path.write_text(
        HEADER_AND_POOL.format(name="cli-waiting").replace(
            "targetDedicatedNodes: 0", "targetDedicatedNodes: 1"
        )
        + "job:\n  id: cli-waiting-job\n  tasks:\n    - {id: slow, commandLine: /bin/sleep 60}\n"
    )
    try:
        assert run(local_target_env, "apply", str(path), "--auto-approve").returncode == 0
        code, output = interrupted(
            ["wait", str(path), "--poll-interval", "0.3"], local_target_env, "tasks 0/1"
        )
        assert code == 130, output
        assert "Stopped waiting; the job keeps running (`batchrun wait " in output
        assert "Traceback" not in output
        status = json.loads(run(local_target_env, "status", str(path), "-o", "json").stdout)
        assert status["job"]["state"] == "active" and status["job"]["tasks"]["completed"] == 0
    finally:
        run(local_target_env, "destroy", str(path), "--auto-approve", "--confirm-replace")
