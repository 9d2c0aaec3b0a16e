"""Detached daemon processes: started so they outlive the starting command, found again by pid, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from batchrun.errors import LocalTargetError

# The background job becomes a child of init (no zombie in the starting process) in the session and process
# group of this short-lived shell, so stopping it means signalling that group.
_LAUNCHER = '"$@" </dev/null >>"$0" 2>&1 &\necho $!'


def spawn_detached(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, int]:
    """Start ``argv`` detached from this process (new session, output appended to ``log_path``).

    Returns (pid, process group id).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    shell = subprocess.Popen(
        ["/bin/sh", "-c", _LAUNCHER, str(log_path), *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=dict(env) if env is not None else None,
        cwd=cwd,
    )
    out, err = shell.communicate(timeout=30)
    if shell.returncode != 0 or not out.strip().isdigit():
        raise LocalTargetError(
            f"could not start {Path(argv[0]).name} in the background: {err.decode(errors='replace').strip()}"
        )
    return int(out.strip()), shell.pid


def is_alive(pid: int, marker: str = "") -> bool:
    """True when ``pid`` runs (not a zombie) and, if ``marker`` is given, its command line contains it."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
        if marker:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                return marker in handle.read().replace(b"\0", b" ").decode(errors="replace")
        return True
    except (OSError, IndexError):
        return False


def stop_daemon(pid: int, pgid: int, marker: str, timeout: float = 10.0) -> bool:
    """SIGTERM the daemon's process group, SIGKILL it after ``timeout``; False when it was not running."""
    if not is_alive(pid, marker):
        return False
    _signal(pgid, pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_alive(pid):
        _signal(pgid, pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    elif pgid > 0:
        # Children of the daemon (node processes of Azurite) that ignored SIGTERM.
        _signal(pgid, 0, signal.SIGKILL)
    return True


def _signal(pgid: int, pid: int, signum: int) -> None:
    if pgid > 0:
        try:
            os.killpg(pgid, signum)
            return
        except (ProcessLookupError, PermissionError):
            pass
    if pid > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
