"""`batchrun render` shows the desired state without write-only values (passwords, keys)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.manifest.conftest import HEADER, POOL

SECRET = "Hunter2-render-secret"


def test_render_masks_passwords_in_yaml_and_json(write: Callable[[str], Path]) -> None:
    path = write(
        HEADER
        + POOL
        + f"  userAccounts: [{{name: runner, password: {SECRET}}}]\n"
        + "job:\n  id: j\n  tasks: [{id: a, commandLine: /bin/true}]\n"
    )
    for output in ("yaml", "json"):
        run = subprocess.run(
            [sys.executable, "-m", "batchrun", "render", str(path), "-o", output],
            capture_output=True,
            text=True,
            check=False,
        )
        assert run.returncode == 0, run.stderr
        assert SECRET not in run.stdout + run.stderr
        assert "(sensitive)" in run.stdout
