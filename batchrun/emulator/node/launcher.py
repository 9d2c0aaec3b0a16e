"""A tiny native launcher that gives a task process its parent-death signal, built once per machine.

A task process must die with the emulator, even when the emulator is killed with SIGKILL:
``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has to run in the child between ``fork`` and ``exec``. Python can only
do that with a ``preexec_fn``, which forces a full ``fork`` of the emulator (about 9 ms a task). util-linux's
``setpriv --pdeathsig`` does it in an extra program, at about 1.2 ms of CPU a spawn (it loads libcap-ng and
parses its options). The launcher below is the same step at the cost of one small static ``exec``, and it also
closes the window ``setpriv`` leaves open: if the emulator died before ``prctl`` took effect, the launcher
notices (its parent is no longer the emulator) and exits 137 instead of running the command orphaned.

It is compiled with the host's C compiler (``cc``) on first use into a per-user cache folder
(``$XDG_CACHE_HOME/batchrun`` or ``~/.cache/batchrun``, writable by this user only), named after a hash of
its source, and reused from then on (:mod:`.native`). Without a compiler (or if the build fails) the node
runtime uses ``setpriv``, then a ``preexec_fn``. ``BATCHRUN_EMULATOR_LAUNCHER=setpriv`` skips the launcher
(and the spawn server). The scheduler's task runs start through the spawn server (:mod:`.spawn_server`) where
it can be built; the launcher serves the other starts and the runs where it cannot.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from batchrun.emulator.node.native import find_or_build

# argv: launcher <parent pid> <program> [args...]
SOURCE = r"""
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 3) return 127;
    pid_t parent = (pid_t)strtol(argv[1], NULL, 10);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) return 127;
    if (getppid() != parent) _exit(137); /* the emulator died before prctl took effect */
    execv(argv[2], argv + 2);
    return 127;
}
"""
_lock = threading.Lock()
_built: list[str | None] = []  # memo of this process's one attempt: [] not tried yet, [path or None] tried


def launcher_path() -> str | None:
    """The launcher's path, building it on the first call of the process; None when it cannot be had."""
    with _lock:
        if not _built:
            skip = os.environ.get("BATCHRUN_EMULATOR_LAUNCHER") == "setpriv"
            _built.append(None if skip else _find_or_build())
        return _built[0]


def _find_or_build() -> str | None:
    return find_or_build("task-launcher", SOURCE, _works)


def _works(launcher: Path) -> bool:
    """The built launcher runs a program and passes its exit code through."""
    try:
        done = subprocess.run(
            [str(launcher), str(os.getpid()), "/bin/sh", "-c", "exit 7"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 7
