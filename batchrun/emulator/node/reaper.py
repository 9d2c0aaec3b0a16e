"""Killing task processes left over from an emulator that died.

The direct child of a task dies with the emulator (PR_SET_PDEATHSIG), but programs it started may survive.
Every task process carries ``AZ_BATCH_NODE_ROOT_DIR`` in its environment, which identifies it without any pid
file: before a restarted emulator runs tasks again, :func:`reap_orphans` kills every process of this user
whose node root lies under the emulator's ``nodes`` folder.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

_MARKER = b"AZ_BATCH_NODE_ROOT_DIR="


def find_orphans(nodes_dir: Path) -> list[int]:
    """Pids of live processes whose AZ_BATCH_NODE_ROOT_DIR is inside ``nodes_dir``."""
    prefix = os.fsencode(str(nodes_dir.resolve())) + b"/"
    own = os.getpid()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                environ = handle.read()
        except OSError:  # gone, or another user's process
            continue
        for item in environ.split(b"\0"):
            if item.startswith(_MARKER) and (item[len(_MARKER) :] + b"/").startswith(prefix):
                found.append(int(entry))
                break
    return found


def reap_orphans(nodes_dir: Path) -> int:
    """SIGKILL leftover task processes (and their process groups) under ``nodes_dir``; returns how many."""
    pids = find_orphans(nodes_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
