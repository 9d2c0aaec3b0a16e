"""wait, status, logs and outputs on a workload that succeeds: text, JSON, terminal and non-terminal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from .cli import Run, batchrun, batchrun_in_terminal, manifest

if TYPE_CHECKING:
    from azure.storage.blob import BlobServiceClient

    from batchrun.local.target import LocalTarget

ESCAPE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # any control character but tab and newline
COLOUR = re.compile(r"\x1b\[[0-9;]*(?:3[0-8]|9[0-7])[0-9;]*m")  # an SGR sequence setting a foreground colour

BODY = """
storage:
  outputs: {container: op-ok-out}
job:
  id: op-ok-job
  tasks:
    - id: t1
      commandLine: /bin/sh -c "echo out-one; echo err-one >&2; echo result > r1.txt"
      outputs: [{pattern: r1.txt, path: res/r1.txt}]
    - id: t2
      commandLine: /bin/sh -c "printf 'line1\\\\nline2\\\\nline3\\\\n'"
"""


@pytest.fixture(scope="module")
def ok_manifest(local_target_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = manifest(tmp_path_factory.mktemp("op-ok"), "op-ok", BODY)
    applied = batchrun(["apply", str(path), "--auto-approve"], local_target_env)
    assert applied.code == 0, applied.stderr
    waited = batchrun(["wait", str(path), "-o", "json", "--poll-interval", "0.3"], local_target_env)
    assert waited.code == 0, waited.stdout + waited.stderr
    yield path
    batchrun(["destroy", str(path), "--auto-approve", "--containers"], local_target_env)


def _no_controls(run: Run) -> None:
    assert not ESCAPE.search(run.stdout), repr(run.stdout[:500])


def test_wait_without_a_terminal_prints_plain_lines_and_a_summary(
    ok_manifest: Path, local_target_env: dict[str, str]
) -> None:
    run = batchrun(["wait", str(ok_manifest), "--poll-interval", "0.3"], local_target_env)
    assert run.code == 0
    assert "tasks 2/2 done (100%): 0 running, 0 active, 2 succeeded, 0 failed" in run.stdout
    assert "| pool op-ok-pool: 1 ready, 0 starting, 0 failed" in run.stdout
    assert re.search(r"Outcome\s+succeeded \(exit 0\)", run.stdout)
    assert run.stderr.startswith("Target: local")
    _no_controls(run)


def test_wait_json_is_one_document_with_the_documented_fields(
    ok_manifest: Path, local_target_env: dict[str, str]
) -> None:
    run = batchrun(["wait", str(ok_manifest), "-o", "json", "--poll-interval", "0.3"], local_target_env)
    assert run.code == 0
    result = json.loads(run.stdout)
    assert result["outcome"] == "succeeded" and result["exitCode"] == 0
    assert result["tasks"] == {
        "total": 2,
        "active": 0,
        "running": 0,
        "completed": 2,
        "succeeded": 2,
        "failed": 0,
    }
    assert result["job"]["id"] == "op-ok-job" and result["pool"]["nodes"]["ready"] == 1
    assert result["failedTasks"] == [] and result["failedTasksTruncated"] is False
    assert result["polls"] >= 2  # a verdict is confirmed by a second poll
    assert "tasks 2/2 done" in run.stderr  # progress goes to stderr, stdout stays JSON


def test_wait_on_a_terminal_draws_live_progress_in_colour_unless_asked_not_to(
    ok_manifest: Path, local_target_env: dict[str, str]
) -> None:
    coloured = batchrun_in_terminal(["wait", str(ok_manifest), "--poll-interval", "0.3"], local_target_env)
    assert coloured.code == 0
    assert "━" in coloured.stdout  # the progress bar
    assert COLOUR.search(coloured.stdout)
    assert "succeeded (exit 0)" in coloured.stdout
    for extra_args, extra_env in ((["--no-color"], {}), ([], {"NO_COLOR": "1"})):
        plain = batchrun_in_terminal(
            ["wait", str(ok_manifest), "--poll-interval", "0.3", *extra_args],
            {**local_target_env, **extra_env},
        )
        assert plain.code == 0 and "succeeded (exit 0)" in plain.stdout
        assert not COLOUR.search(plain.stdout), extra_args or extra_env


def test_status_shows_pool_job_counts_and_that_live_matches(
    ok_manifest: Path, local_target_env: dict[str, str]
) -> None:
    text = batchrun(["status", str(ok_manifest)], local_target_env)
    assert text.code == 0
    assert "live matches the manifest" in text.stdout
    assert re.search(r"Pool op-ok-pool\s+active, allocation steady, 1/1 nodes", text.stdout)
    assert re.search(r"Tasks\s+2 total: 0 active, 0 running, 2 succeeded, 0 failed", text.stdout)
    _no_controls(text)
    document = json.loads(batchrun(["status", str(ok_manifest), "-o", "json"], local_target_env).stdout)
    assert document["inSync"] is True and document["applied"] is True and document["differences"] == []
    assert document["liveDigest"] == document["manifestDigest"]
    assert document["job"]["tasks"]["succeeded"] == 2 and document["job"]["state"] == "active"
    assert document["pool"]["nodes"]["byState"] == {"idle": 1}
    assert document["pool"]["metadata"]["batchrun.workload"] == "op-ok"
    terminal = batchrun_in_terminal(["status", str(ok_manifest)], local_target_env)
    assert terminal.code == 0 and COLOUR.search(terminal.stdout)


def test_status_says_live_differs_when_the_manifest_changed(
    ok_manifest: Path, local_target_env: dict[str, str], tmp_path: Path
) -> None:
    changed = tmp_path / "op-ok.yaml"
    changed.write_text(ok_manifest.read_text().replace("echo out-one", "echo out-1"))
    document = json.loads(batchrun(["status", str(changed), "-o", "json"], local_target_env).stdout)
    assert document["inSync"] is False
    assert "different manifest" in document["differences"][0]
    # More tasks in a changed manifest is that change, not a hint of an interrupted apply.
    grown = tmp_path / "op-ok-grown.yaml"
    grown.write_text(
        ok_manifest.read_text().replace("  tasks:\n", "  tasks:\n    - {id: t9, commandLine: /bin/true}\n")
    )
    document = json.loads(batchrun(["status", str(grown), "-o", "json"], local_target_env).stdout)
    assert document["inSync"] is False
    assert not [reason for reason in document["differences"] if "interrupted" in reason], document[
        "differences"
    ]


def test_logs_prints_stdout_stderr_tails_and_json(
    ok_manifest: Path, local_target_env: dict[str, str]
) -> None:
    stdout = batchrun(["logs", str(ok_manifest), "t1"], local_target_env)
    assert (stdout.code, stdout.stdout) == (0, "out-one\n")
    assert batchrun(["logs", str(ok_manifest), "t1", "--stderr"], local_target_env).stdout == "err-one\n"
    empty = batchrun(["logs", str(ok_manifest), "t2", "--stderr"], local_target_env)
    assert (empty.code, empty.stdout) == (0, "")
    assert "task/op-ok-job/t2 wrote nothing to stderr.txt (state: completed)" in empty.stderr
    assert (
        batchrun(["logs", str(ok_manifest), "t2", "--tail", "2"], local_target_env).stdout == "line2\nline3\n"
    )
    followed = batchrun(["logs", str(ok_manifest), "t2", "--follow"], local_target_env, timeout=30)
    assert (followed.code, followed.stdout) == (0, "line1\nline2\nline3\n")  # completed task: ends at once
    document = json.loads(batchrun(["logs", str(ok_manifest), "t2", "-o", "json"], local_target_env).stdout)
    assert document["content"] == "line1\nline2\nline3\n"
    assert (document["state"], document["result"], document["exitCode"], document["size"]) == (
        "completed",
        "success",
        0,
        18,
    )
    terminal = batchrun_in_terminal(["logs", str(ok_manifest), "t2"], local_target_env)
    shown = terminal.stdout.replace("\r\n", "\n")  # a terminal shows stderr (the target line) and stdout
    assert (
        terminal.code == 0 and shown.startswith("Target: local") and shown.endswith("\nline1\nline2\nline3\n")
    )
    none_failed = batchrun(["logs", str(ok_manifest), "--failed"], local_target_env)
    assert none_failed.code == 0 and "No failed tasks in job/op-ok-job." in none_failed.stdout


def test_logs_refuses_bad_requests_with_a_clear_error(
    ok_manifest: Path, local_target_env: dict[str, str]
) -> None:
    unknown = batchrun(["logs", str(ok_manifest), "nope"], local_target_env)
    assert unknown.code == 1 and "task/op-ok-job/nope does not exist" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    both = batchrun(["logs", str(ok_manifest), "t1", "--failed"], local_target_env)
    assert both.code == 1 and "Give either a TASK id, --failed or --start-task" in both.stderr


def test_outputs_downloads_then_skips_unchanged_and_refuses_escaping_names(
    ok_manifest: Path, local_target_env: dict[str, str], blob_service: BlobServiceClient, tmp_path: Path
) -> None:
    target = tmp_path / "out"
    first = batchrun(["outputs", str(ok_manifest), "-d", str(target)], local_target_env)
    assert first.code == 0, first.stderr
    assert (target / "res" / "r1.txt").read_text() == "result\n"
    assert f"1 downloaded, 0 unchanged in {target}" in first.stdout
    blob_service.get_blob_client("op-ok-out", "a//double.txt").upload_blob(b"x", overwrite=True)
    try:
        second = json.loads(
            batchrun(["outputs", str(ok_manifest), "-d", str(target), "-o", "json"], local_target_env).stdout
        )
    finally:
        blob_service.get_blob_client("op-ok-out", "a//double.txt").delete_blob()
    assert (second["downloaded"], second["unchanged"], second["refused"]) == (0, 1, 1)
    assert not (target / "a" / "double.txt").exists()
    terminal = batchrun_in_terminal(["outputs", str(ok_manifest), "-d", str(target)], local_target_env)
    assert terminal.code == 0 and "0 downloaded, 1 unchanged in" in terminal.stdout
    (target / "res" / "r1.txt").write_text("edited locally\n")
    third = json.loads(
        batchrun(["outputs", str(ok_manifest), "-d", str(target), "-o", "json"], local_target_env).stdout
    )
    assert third["downloaded"] == 1 and (target / "res" / "r1.txt").read_text() == "result\n"


def test_outputs_without_content_md5_are_skipped_by_the_recorded_etag(
    ok_manifest: Path, local_target_env: dict[str, str], local_target: LocalTarget, tmp_path: Path
) -> None:
    from azure.storage.blob import BlobClient

    # Block uploads (here forced by tiny sizes) get no Content-MD5, like large task outputs.
    blob = BlobClient.from_connection_string(
        local_target.connection_string, "op-ok-out", "blocks.txt", max_single_put_size=4, max_block_size=4
    )
    blob.upload_blob(b"uploaded in blocks\n", overwrite=True)
    try:
        assert blob.get_blob_properties().content_settings.content_md5 is None
        target = tmp_path / "out"
        runs = [
            json.loads(
                batchrun(
                    ["outputs", str(ok_manifest), "-d", str(target), "-o", "json"], local_target_env
                ).stdout
            )
            for _ in range(2)
        ]
    finally:
        blob.delete_blob()
    actions = [{f["blob"]: f["action"] for f in run["files"]}["blocks.txt"] for run in runs]
    assert actions == ["downloaded", "unchanged"]
    assert (target / "blocks.txt").read_bytes() == b"uploaded in blocks\n"


def test_verbose_prints_each_request_in_one_redacted_line(
    ok_manifest: Path, local_target_env: dict[str, str], local_target: LocalTarget, tmp_path: Path
) -> None:
    run = batchrun(["status", str(ok_manifest), "-v"], local_target_env)
    assert run.code == 0
    lines = run.stderr.splitlines()
    assert any(
        re.fullmatch(r"GET http://127\.0\.0\.1:\d+/jobs/op-ok-job/taskcounts\?\S+ -> 200 \(\d+ ms\)", line)
        for line in lines
    ), run.stderr
    assert local_target.account_key not in run.stderr
    # Storage requests go through azure-storage-blob's own pipeline; they are logged too.
    downloads = batchrun(["outputs", str(ok_manifest), "-d", str(tmp_path / "out"), "-v"], local_target_env)
    assert downloads.code == 0
    assert re.search(r"^GET http://127\.0\.0\.1:\d+/devstoreaccount1/\S+ -> 20\d", downloads.stderr, re.M)
    assert local_target.storage_account_key not in downloads.stderr


def test_wait_on_a_manifest_never_applied_says_to_apply_first(
    local_target_env: dict[str, str], tmp_path: Path
) -> None:
    path = manifest(
        tmp_path, "op-never", "job:\n  id: op-never-job\n  tasks:\n    - {id: a, commandLine: /bin/true}\n"
    )
    run = batchrun(["wait", str(path)], local_target_env)
    assert run.code == 1
    assert "job/op-never-job does not exist" in run.stderr and "batchrun apply" in run.stderr
    assert "Traceback" not in run.stderr
