"""Running the batchrun CLI as a user would: a subprocess, stdout a pipe or a terminal (script(1))."""

from __future__ import annotations

import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

POOL = """
pool:
  id: {prefix}-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 1
  taskSlotsPerNode: 2
"""


def manifest(folder: Path, prefix: str, body: str, pool_extra: str = "") -> Path:
    """Write a workload manifest named ``prefix`` whose pool is ``<prefix>-pool``; ``body`` adds the rest."""
    text = f"apiVersion: batchrun/v1\nkind: Workload\nmetadata:\n  name: {prefix}\n"
    text += POOL.format(prefix=prefix) + pool_extra + body
    path = folder / f"{prefix}.yaml"
    path.write_text(text)
    return path


@dataclass(frozen=True)
class Run:
    code: int
    stdout: str
    stderr: str


def batchrun(args: list[str], env: dict[str, str], cwd: Path | None = None, timeout: float = 120) -> Run:
    """``batchrun ARGS`` with stdout and stderr as pipes (not a terminal)."""
    completed = subprocess.run(
        [sys.executable, "-m", "batchrun", *args],
        env=env,
        cwd=cwd or REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)


def batchrun_in_terminal(
    args: list[str],
    env: dict[str, str],
    cwd: Path | None = None,
    timeout: float = 120,
    typed: str | None = None,
    columns: int = 120,
) -> Run:
    """``batchrun ARGS`` on a pseudo-terminal (script(1)); stdout holds what the terminal showed (stdout and
    stderr, as a terminal mixes them). ``typed`` is what the user types at the terminal."""
    command = shlex.join([sys.executable, "-m", "batchrun", *args])
    completed = subprocess.run(
        ["script", "-q", "-e", "-c", command, "/dev/null"],
        env={**env, "TERM": "xterm-256color", "COLUMNS": str(columns)},
        cwd=cwd or REPO,
        input=typed,
        stdin=None if typed is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(completed.returncode, completed.stdout, completed.stderr)
