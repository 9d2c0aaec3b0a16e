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
its source, and reused from then on. Without a compiler (or if the build fails) the node runtime uses
``setpriv``, then a ``preexec_fn``. ``BATCHRUN_EMULATOR_LAUNCHER=setpriv`` skips the launcher.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
import threading
from pathlib import Path

_LOG = logging.getLogger(__name__)

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
_DIGEST = hashlib.sha256(SOURCE.encode()).hexdigest()[:16]
_BUILD_SECONDS = 120.0
_lock = threading.Lock()
_built: list[str | None] = []  # memo of this process's one attempt: [] not tried yet, [path or None] tried


def launcher_path() -> str | None:
    """The launcher's path, building it on the first call of the process; None when it cannot be had."""
    with _lock:
        if not _built:
            skip = os.environ.get("BATCHRUN_EMULATOR_LAUNCHER") == "setpriv"
            _built.append(None if skip else _find_or_build())
        return _built[0]


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "batchrun"


def _find_or_build() -> str | None:
    folder = cache_folder()
    target = folder / f"task-launcher-{_DIGEST}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(folder):
            _LOG.debug("not using %s for the task launcher: not a private folder of this user", folder)
            return None
        if _usable(target):
            return str(target)
        return _build(folder, target)
    except OSError as error:
        _LOG.debug("no task launcher: %s", error)
        return None


def _private(folder: Path) -> bool:
    """Only this user can write there (nobody else could swap the binary)."""
    info = folder.stat()
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _usable(path: Path) -> bool:
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        and os.access(path, os.X_OK)
    )


def _build(folder: Path, target: Path) -> str | None:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as work:
        source = Path(work) / "launcher.c"
        source.write_text(SOURCE)
        output = Path(work) / "launcher"
        # Static when the C library allows it (one exec, no dynamic loader); dynamic otherwise.
        for extra in (["-static"], []):
            command = [compiler, "-O2", *extra, "-o", str(output), str(source)]
            try:
                done = subprocess.run(command, capture_output=True, timeout=_BUILD_SECONDS, check=False)
            except (OSError, subprocess.TimeoutExpired) as error:
                _LOG.debug("building the task launcher failed: %s", error)
                return None
            if done.returncode == 0 and _works(output):
                output.chmod(0o755)
                os.replace(output, target)  # atomic: a concurrent build of the same source is identical
                return str(target)
    _LOG.debug("building the task launcher failed; using setpriv")
    return None


def _works(launcher: Path) -> bool:
    """The built launcher runs a program and passes its exit code through."""
    try:
        done = subprocess.run(
            [str(launcher), str(os.getpid()), "/bin/sh", "-c", "exit 7"], capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 7
