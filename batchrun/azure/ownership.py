"""Ownership marks: who created a pool or job (metadata) and which revision of the manifest did.

The revision is the git commit of the repository holding the manifest, with ``+dirty`` appended when the
manifest file itself has uncommitted changes (other files of the repository do not matter: they do not change
what the manifest asks for). Outside git the revision is empty and no ``batchrun.revision`` item is written.
The manifest's labels are recorded as ``batchrun.labels`` (compact JSON).
"""

from __future__ import annotations

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


def manifest_revision(manifest: Path) -> str:
    """``<commit>`` or ``<commit>+dirty`` of the manifest's git repository; "" outside git."""
    folder = manifest.resolve().parent
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
