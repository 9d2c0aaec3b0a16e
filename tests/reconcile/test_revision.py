"""The manifest's revision: its git commit (and +dirty when the manifest has changes), "" outside git, where
git is not started at all."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from batchrun.azure import ownership
from batchrun.azure.ownership import manifest_revision


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_manifest_in_git_has_its_commit_and_a_changed_one_is_dirty(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    _git(repo, "init", "-q")
    manifest = repo / "sub" / "m.yaml"
    manifest.write_text("a: 1\n")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "m")
    commit = _git(repo, "rev-parse", "HEAD")
    assert manifest_revision(manifest) == commit
    manifest.write_text("a: 2\n")
    assert manifest_revision(manifest) == f"{commit}+dirty"


def test_outside_git_the_revision_is_empty_and_git_is_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if any((parent / ".git").exists() for parent in tmp_path.parents):
        pytest.skip("the temporary folder lies inside a git repository")
    monkeypatch.delenv("GIT_DIR", raising=False)

    def no_git(*args: object, **kwargs: object) -> None:
        raise AssertionError("git was started for a manifest outside any repository")

    monkeypatch.setattr(ownership.subprocess, "run", no_git)
    assert manifest_revision(tmp_path / "m.yaml") == ""
    assert manifest_revision(Path("/nonexistent/folder/m.yaml")) == ""
