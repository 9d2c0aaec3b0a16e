"""Detached daemon processes: started so they outlive the starting command, found again by pid, stopped.

A daemon is started with a minimal environment (:func:`daemon_environment`: no tokens or cloud secrets of
the starting shell reach it, nor the tasks it runs) and umask 077 (what it writes is its user's only). It is
found again by pid *and* start time (``/proc/<pid>/stat``), so a recycled pid is never taken for it, and its
process group is signalled only while the daemon is still that group's member.
"""

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
_LAUNCHER = 'umask 077\n"$@" </dev/null >>"$0" 2>&1 &\necho $!'

# What a daemon keeps of the starting environment: where programs and the user's files are, the locale,
# Python's module path. Everything else (GITHUB_TOKEN, AZURE_CLIENT_SECRET, ...) stays behind.
_KEPT = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PYTHONPATH")


def daemon_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a daemon starts with: the few variables of :data:`_KEPT` and the locale's ``LC_*``."""
    source = os.environ if source is None else source
    env = {name: value for name, value in source.items() if name in _KEPT or name.startswith("LC_")}
    env.setdefault("PATH", os.defpath)
    return env


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


def start_time(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, ``/proc/<pid>/stat`` field 22), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[19])  # fields after the command name start at field 3
    except (OSError, IndexError, ValueError):
        return None


def is_alive(pid: int, marker: str = "", started: int | None = None) -> bool:
    """True when ``pid`` runs (not a zombie) and is the process meant: started at ``started`` when given,
    else (records written before start times were kept) its command line contains ``marker``."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return False
        if started is not None and int(fields[19]) != started:
            return False
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read()
        if not command:  # a process on its way out (its memory is gone already) is not running
            return False
        if started is None and marker:
            return marker in command.replace(b"\0", b" ").decode(errors="replace")
        return True
    except (OSError, IndexError, ValueError):
        return False


def _own_group(pid: int, pgid: int) -> int:
    """``pgid`` when ``pid`` still belongs to that process group, else 0 (signal the pid alone)."""
    try:
        return pgid if pgid > 0 and os.getpgid(pid) == pgid else 0
    except OSError:
        return 0


def stop_daemon(pid: int, pgid: int, marker: str, timeout: float = 10.0, started: int | None = None) -> bool:
    """SIGTERM the daemon's process group, SIGKILL it after ``timeout``; False when it was not running.

    Nothing is signalled unless ``pid`` is the daemon (start time, or marker for old records), and its group
    only while the daemon is a member of it: a recycled pid or group id is never killed."""
    if not is_alive(pid, marker, started):
        return False
    pgid = _own_group(pid, pgid)
    _signal(pgid, pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while is_alive(pid, started=started) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_alive(pid, started=started):
        _signal(pgid, pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while is_alive(pid, started=started) and time.monotonic() < deadline:
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
