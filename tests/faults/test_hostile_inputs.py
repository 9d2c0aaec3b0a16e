"""Hostile folders and manifests, through the real CLI in a subprocess with a capped data segment.

* Links and special files inside storage input and package folders are refused at validate (and at plan,
  when they appear after validation), naming the link and its target; nothing is followed or uploaded.
* Alias expansion is counted in characters, a 10^8 range is counted before it is expanded, a 50 MB
  command line fails at validate: each refused with ``RLIMIT_DATA`` at 300 MB, so a regression that
  materialises the expansion dies of MemoryError (and prints a traceback) instead of passing slowly.
* Package folders are zipped from disk in chunks: a 400 MB file zips under the same cap; setuid bits are
  dropped from the entries.
"""

from __future__ import annotations

import io
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from batchrun.errors import ManifestError
from batchrun.manifest.sources import source_problems
from batchrun.model import StorageInput

DATA_LIMIT = 300 * 1024 * 1024

HEADER = "apiVersion: batchrun/v1\nkind: Workload\nmetadata: {name: hostile}\n"
JOB = "job:\n  id: j\n  poolInfo: {poolId: p}\n  tasks:\n"


def capped() -> None:
    resource.setrlimit(resource.RLIMIT_DATA, (DATA_LIMIT, DATA_LIMIT))


def run(*args: str, cwd: Path, limit: bool = True) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    env["BATCHRUN_HOME"] = str(cwd / "home")
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        preexec_fn=capped if limit else None,
    )


def refused(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output and "MemoryError" not in output, output
    for fragment in fragments:
        assert fragment in output, output
    return output


@pytest.fixture
def hostile_folder(tmp_path: Path) -> Path:
    """``in/`` with a file, a link to /etc/passwd, a link to a secret next to it and a FIFO; ``pkg/`` with a
    link to a folder."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "ok.txt").write_text("fine\n")
    (tmp_path / "secret.json").write_text('{"key": "s3cr3t"}')
    (tmp_path / "in" / "passwd").symlink_to("/etc/passwd")
    (tmp_path / "in" / "sub").mkdir()
    (tmp_path / "in" / "sub" / "creds").symlink_to(tmp_path / "secret.json")
    os.mkfifo(tmp_path / "in" / "pipe")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "tool.sh").write_text("echo tool\n")
    (tmp_path / "pkg" / "etc").symlink_to("/etc")
    (tmp_path / "m.yaml").write_text(
        HEADER
        + "storage:\n  inputs: [{name: data, source: ./in, container: hostile-in}]\n"
        + 'packages: [{id: tools, version: "1.0", source: ./pkg}]\n'
        + JOB
        + "    - {id: t, commandLine: /bin/true, inputs: [data]}\n"
    )
    return tmp_path


def test_links_and_special_files_in_source_folders_are_refused_at_validate(hostile_folder: Path) -> None:
    output = refused(
        run("validate", "m.yaml", cwd=hostile_folder),
        "in/passwd is a symbolic link to /etc/passwd",
        f"in/sub/creds is a symbolic link to {hostile_folder / 'secret.json'}",
        "in/pipe is a FIFO",
        "pkg/etc is a symbolic link to /etc",
        "(at storage.inputs[0].source)",
        "(at packages[0].source)",
        "cp --dereference",
    )
    assert "ok.txt" not in output  # regular files are not reported


def test_files_axis_over_a_folder_with_a_link_is_refused(hostile_folder: Path) -> None:
    (hostile_folder / "pkg" / "etc").unlink()
    (hostile_folder / "f.yaml").write_text(
        HEADER
        + "storage:\n  inputs: [{name: data, source: ./in, container: hostile-in}]\n"
        + JOB
        + "    - {id: 't-${f.index}', foreach: {f: {files: data}}, commandLine: /bin/true}\n"
    )
    refused(run("validate", "f.yaml", cwd=hostile_folder), "axis 'f': ", "symbolic link to /etc/passwd")


def test_a_link_appearing_after_validation_is_refused_at_plan(tmp_path: Path) -> None:
    from batchrun.azure.packages import package_zip
    from batchrun.local_inputs import prepare_input

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("a")
    spec = StorageInput(name="data", source=tmp_path / "in", container="c")
    assert [f.blob for f in prepare_input(spec).files] == ["a.txt"]
    (tmp_path / "in" / "b").symlink_to("/etc/passwd")
    with pytest.raises(ManifestError, match=r"in/b is a symbolic link to /etc/passwd"):
        prepare_input(spec)
    with pytest.raises(ManifestError, match=r"in/b is a symbolic link"), package_zip(tmp_path / "in"):
        pass


def test_a_linked_source_path_itself_is_allowed(tmp_path: Path) -> None:
    # The path named in the manifest is reviewed with it; only what is inside is walked without links.
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert source_problems(tmp_path / "link") == []


def test_alias_expansion_is_counted_in_characters(tmp_path: Path) -> None:
    text = "x" * 100_000
    (tmp_path / "m.yaml").write_text(
        HEADER + f'variables: {{v: &a "{text}"}}\nlabels:\n' + "  - *a\n" * 100_000
    )
    refused(run("validate", "m.yaml", cwd=tmp_path), "characters of text", "use fewer aliases")


def test_a_huge_range_is_counted_before_it_is_expanded(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        HEADER
        + JOB
        + "    - id: t-${i}\n      foreach: {i: {range: [1, 100000000]}}\n      commandLine: echo ${i}\n"
    )
    refused(run("validate", "m.yaml", cwd=tmp_path), "expands to 100,000,000 tasks")


def test_a_job_that_would_expand_to_gigabytes_is_refused_before_expanding(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        HEADER
        + 'variables: {v: "'
        + "z" * 200_000
        + '"}\n'
        + JOB
        + "    - id: t-${i}\n      foreach: {i: {range: [1, 50000]}}\n      commandLine: echo ${v} ${i}\n"
    )
    refused(run("validate", "m.yaml", cwd=tmp_path), "would take up to", "once expanded")


def test_a_50_mb_command_line_fails_at_validate(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        HEADER + JOB + "    - id: t\n      commandLine: echo " + "y" * 50_000_000 + "\n"
    )
    refused(
        run("validate", "m.yaml", cwd=tmp_path),
        "the task body is 50,000,0",
        "over Batch's request limit",
        "commandLine 50,000,0",
        "(at job.tasks[0])",
    )


def test_one_long_task_of_a_factory_is_named(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(
        HEADER
        + JOB
        + "    - id: t-${n}\n      zip: true\n      foreach: {n: [a, b], v: [x, '"
        + "w" * 1_100_000
        + "']}\n      commandLine: echo ${v}\n"
    )
    refused(run("validate", "m.yaml", cwd=tmp_path), "task 't-b' is 1,1", "(at job.tasks[0])")


def test_package_folders_are_zipped_from_disk_without_setuid_bits(tmp_path: Path) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    with (folder / "big.bin").open("wb") as handle:
        handle.truncate(400 * 1024 * 1024)  # sparse: 400 MB of zeros, no disk used
    (folder / "run.sh").write_text("#!/bin/sh\necho run\n")
    (folder / "run.sh").chmod(0o6755)
    script = (
        "import sys, hashlib; from pathlib import Path; from batchrun.azure.packages import package_zip\n"
        "with package_zip(Path(sys.argv[1])) as (handle, digest):\n"
        "    print(digest.sha256, digest.size)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(folder)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        preexec_fn=capped,
    )
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    (folder / "big.bin").unlink()
    from batchrun.azure.packages import reproducible_zip

    archive = zipfile.ZipFile(io.BytesIO(reproducible_zip(folder)))
    mode = archive.getinfo("run.sh").external_attr >> 16
    assert mode == 0o100755  # setuid and setgid dropped, executable kept


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_an_unreadable_folder_is_reported_not_skipped(tmp_path: Path) -> None:
    (tmp_path / "in" / "locked").mkdir(parents=True)
    (tmp_path / "in" / "locked" / "a.txt").write_text("a")
    (tmp_path / "in" / "locked").chmod(0)
    try:
        problems = source_problems(tmp_path / "in")
    finally:
        (tmp_path / "in" / "locked").chmod(0o700)
    assert problems and "in/locked is a folder that cannot be read" in problems[0][0]
