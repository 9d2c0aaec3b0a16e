"""What the node runtime tests look up about real processes: alive or not, their parent, a file they write."""

from __future__ import annotations

import time
from pathlib import Path


def _stat_fields(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command's name (which may hold spaces and parentheses)."""
    with open(f"/proc/{pid}/stat") as status:
        return status.read().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        return _stat_fields(pid)[0] != "Z"
    except FileNotFoundError:
        return False


def parent_of(pid: int) -> int:
    return int(_stat_fields(pid)[1])


def written(path: Path, what: str, timeout: float = 60) -> str:
    """The text of ``path`` once a process has written it (fails naming ``what`` after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return path.read_text().strip()


def wait_gone(*pids: int, what: str, timeout: float = 30) -> None:
    """Wait until none of ``pids`` is alive (fails naming ``what`` after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
