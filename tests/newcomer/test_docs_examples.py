"""The README and the guides, run as written (item 10, and the "done when" of the newcomer issue).

* A fresh clone with a fresh HOME runs the README quickstart (its batchrun steps; the venv is the suite's):
  the first stderr line names the target while it starts, the outputs land in the clone, `git status` stays
  clean. The README's other examples (the sample session, the CI steps, the Python API) run in the same place.
* Every flag the README's command table lists is one the command takes.
* The merge example of docs/manifest-guide.md runs and reads its upstream tasks' outputs.
* docs/manifest.md has what the issue found missing.

The fresh HOME starts its own local target; Azurite comes from the suite's tools folder (BATCHRUN_TOOLS_DIR),
so the test does not depend on the npm registry (installation progress is tested in test_first_start.py).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import tools_dir
from tests.operate.cli import REPO, batchrun, manifest

README = (REPO / "README.md").read_text()
RECONCILER = (REPO / "docs" / "reconciler.md").read_text()
GUIDE = (REPO / "docs" / "manifest-guide.md").read_text()


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def section(text: str, heading: str) -> str:
    """From ``heading`` to the next heading (lines starting with '#' inside code blocks are not headings)."""
    lines = text[text.index(heading) :].splitlines(keepends=True)
    kept = [lines[0]]
    fenced = False
    for line in lines[1:]:
        if line.startswith("```"):
            fenced = not fenced
        if line.startswith("#") and not fenced:
            break
        kept.append(line)
    return "".join(kept)


@dataclass(frozen=True)
class Clone:
    folder: Path
    env: dict[str, str]

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        """A README command line, with batchrun run from the clone by the suite's Python."""
        command = command.replace(".venv/bin/batchrun", "batchrun")
        command = re.sub(r"(?<![\w/-])batchrun ", f"{shlex.quote(sys.executable)} -m batchrun ", command)
        return subprocess.run(
            ["sh", "-c", command], cwd=self.folder, env=self.env, capture_output=True, text=True, check=False
        )

    def git_status(self) -> str:
        return subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=True,
        ).stdout


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clone]:
    base = tmp_path_factory.mktemp("fresh")
    folder = base / "batchrun"
    subprocess.run(["git", "clone", "-q", str(REPO), str(folder)], check=True)
    home = base / "home"
    home.mkdir()
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AZURE_", "BATCHRUN_", "PYTEST_", "COV_"))
    }
    env.update(HOME=str(home), BATCHRUN_TOOLS_DIR=str(tools_dir()))
    cloned = Clone(folder, env)
    try:
        yield cloned
    finally:
        cloned.run("batchrun local down")


def test_readme_quickstart_and_examples_in_a_fresh_clone_with_a_fresh_home(clone: Clone) -> None:
    quickstart = blocks(section(README, "## Quickstart"), "sh")[0].strip()
    steps = [step.strip() for step in quickstart.split("&&")]
    setup = [step for step in steps if step.startswith("python3 -m venv") or "pip install" in step]
    assert len(setup) == 2  # the venv and the install: the suite's own venv stands in for them
    ran = [clone.run(step) for step in steps if step not in setup]
    apply_run, outputs_run = ran
    assert apply_run.returncode == 0, apply_run.stdout + apply_run.stderr
    lines = apply_run.stderr.splitlines()
    home = clone.env["HOME"]
    assert lines[0] == (
        f"Target: local, not running: starting it (emulator + Azurite) in {home}/.batchrun/local ..."
    )
    assert lines[1].startswith("Target: local (Batch account local at http://127.0.0.1:")
    assert re.search(r"Outcome\s+succeeded \(exit 0\)", apply_run.stdout)
    assert outputs_run.returncode == 0, outputs_run.stderr
    assert (clone.folder / "hello-outputs").is_dir()
    assert clone.git_status() == ""

    # The sample session at the top of the README: what it shows is what the first apply printed.
    sample = blocks(README, "")[0]
    printed = apply_run.stdout + apply_run.stderr
    for line in sample.splitlines():
        if line.startswith(("$ ", "Target:", "[")) or "..." in line or not line.strip():
            continue
        if line == "No changes. Live state matches the manifest.":
            continue  # printed by the second command of the sample, checked below
        assert line in printed, line
    for command in [line[2:] for line in sample.splitlines() if line.startswith("$ ")][1:]:
        again = clone.run(command)
        assert again.returncode == 0, again.stdout + again.stderr
        assert "No changes. Live state matches the manifest." in again.stdout

    # The CI steps of the GitOps recipe that need no Azure account.
    recipe = blocks(section(README, "## GitOps recipe"), "yaml")[0]
    runs = [line.split("run: ", 1)[1] for line in recipe.splitlines() if "run: batchrun" in line]
    validate, drift = runs[0], runs[1]
    assert clone.run(validate).returncode == 0
    assert clone.run(drift).returncode == 0  # live matches: exit 0

    def python(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=clone.folder,
            env=clone.env,
            capture_output=True,
            text=True,
            check=False,
        )

    # The Python API examples: the functions, then one connection shared by several calls.
    for example in blocks(section(README, "## Python API"), "python")[:2]:
        api = python(example)
        assert api.returncode == 0, api.stderr
    # The reconciler guide's task factory, planned against the same target.
    planned = python(blocks(section(RECONCILER, "## Python API"), "python")[1])
    assert planned.returncode == 0, planned.stderr
    assert int(planned.stdout.split()[-1]) >= 1000  # the factory's tasks are new to the job
    assert clone.git_status() == ""


def _flags(usage: str) -> list[str]:
    return re.findall(r"(?<![\w-])(--[a-z][a-z-]*|-[a-z])\b", usage)


@pytest.mark.parametrize("doc", ["docs/operate.md", "docs/local-target.md"])
def test_command_lines_in_the_operating_docs_use_only_flags_the_commands_take(doc: str) -> None:
    text = (REPO / doc).read_text()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(REPO)}
    usages = re.findall(r"`batchrun ((?:local )?[a-z]+)([^`]*)`", text)
    usages += re.findall(r"^batchrun ((?:local )?[a-z]+)([^#\n]*)", text, flags=re.MULTILINE)
    assert usages
    for command, usage in usages:
        help_text = batchrun([*command.split(), "--help"], env).stdout
        assert help_text.startswith("Usage: "), command
        for flag in _flags(usage):
            assert flag in help_text, f"{doc}: batchrun {command} has no {flag}"


def test_readme_command_table_lists_only_flags_the_commands_take() -> None:
    table = section(README, "## Commands")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(REPO)}
    cells = [
        re.split(r"(?<!\\)\|", line)[1] for line in table.splitlines() if line.startswith("| `batchrun ")
    ]
    rows = [
        (cell.split()[0].strip("`"), cell)
        for cell in (cell.strip().removeprefix("`batchrun ") for cell in cells)
    ]
    assert len(rows) == 10
    for command, usage in rows:
        if command == "local":
            continue
        help_text = batchrun([command, "--help"], env).stdout
        for flag in _flags(usage):
            assert flag in help_text, f"batchrun {command} has no {flag}"


def test_manifest_guide_merge_example_reads_the_upstream_outputs(
    local_target_env: dict[str, str], tmp_path: Path
) -> None:
    example = blocks(section(GUIDE, "### A merge that reads"), "yaml")[0]
    example = example.replace("sweep-", "nc-guide-")
    path = manifest(tmp_path, "nc-guide", example)
    try:
        applied = batchrun(["apply", str(path), "--auto-approve", "--wait"], local_target_env)
        assert applied.code == 0, applied.stdout + applied.stderr
        fetched = batchrun(["outputs", str(path), "-d", str(tmp_path / "out")], local_target_env)
        assert fetched.code == 0, fetched.stderr
        assert (tmp_path / "out" / "all.txt").read_text() == "part 1\npart 2\npart 3\n"
    finally:
        batchrun(["destroy", str(path), "--auto-approve", "--containers"], local_target_env)


def test_manifest_reference_has_what_a_newcomer_looked_for() -> None:
    reference = (REPO / "docs" / "manifest.md").read_text()
    short_form = section(reference, "### Package ids (`packageShortForm`)")
    assert "applicationPackageReferences" in short_form and "Type: list of string" in short_form
    assert "| `outputs` | object with `container` |" in reference
    assert "| `outputs.container` | [containerName](#containername) | yes |" in reference
    depends = section(reference, "### Task dependencies (`dependsOn`)")
    for key in ("tasks", "ranges", "taskIds", "taskIdRanges"):
        row = next(line for line in depends.splitlines() if line.startswith(f"| `{key}` |"))
        assert not row.rstrip().endswith("|  |"), row  # a description, not an empty cell
