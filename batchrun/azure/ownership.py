"""Ownership marks: who created a pool or job (metadata) and which revision of the manifest did.

The revision is the git commit of the repository holding the manifest, with ``+dirty`` appended when the
manifest file itself has uncommitted changes (other files of the repository do not matter: they do not change
what the manifest asks for). Outside git the revision is empty and no ``batchrun.revision`` item is written.
The manifest's labels are recorded as ``batchrun.labels`` (compact JSON).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from batchrun.model import Workload
from batchrun.plan.bodies import Ownership

GIT_TIMEOUT_SECONDS = 10


def _git(folder: Path, *args: str) -> str | None:
    try:
        completed = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.stdout.strip() if completed.returncode == 0 else None


def _may_be_in_a_repository(folder: Path) -> bool:
    """Whether git could find a repository for ``folder``: a ``.git`` in it or above it, or ``GIT_DIR`` set.
    Outside one, git is not started at all (a process, and git's own CPU beside the apply's)."""
    if os.environ.get("GIT_DIR"):
        return True
    return any((parent / ".git").exists() for parent in (folder, *folder.parents))


def manifest_revision(manifest: Path) -> str:
    """``<commit>`` or ``<commit>+dirty`` of the manifest's git repository; "" outside git."""
    folder = manifest.resolve().parent
    if not _may_be_in_a_repository(folder):
        return ""
    commit = _git(folder, "rev-parse", "HEAD")
    if not commit:
        return ""
    status = _git(folder, "status", "--porcelain", "--", manifest.resolve().name)
    return f"{commit}+dirty" if status else commit


def ownership_of(workload: Workload) -> Ownership:
    return Ownership(
        workload=workload.name,
        digest=workload.digest,
        revision=manifest_revision(workload.manifest_path),
        labels=tuple(sorted(workload.labels.items())),
    )
