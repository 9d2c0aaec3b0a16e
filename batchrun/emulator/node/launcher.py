"""A tiny native launcher that gives a task process its parent-death signal, built once per machine.

A task process must die with the emulator, even when the emulator is killed with SIGKILL:
``prctl(PR_SET_PDEATHSIG, SIGKILL)`` has to run in the child between ``fork`` and ``exec``. Python can only
do that with a ``preexec_fn``, which forces a full ``fork`` of the emulator (about 9 ms a task). util-linux's
``setpriv --pdeathsig`` does it in an extra program, at about 1.2 ms of CPU a spawn (it loads libcap-ng and
parses its options). The launcher below is the same step at the cost of one small static ``exec``, and it also
closes the window ``setpriv`` leaves open: if the emulator died before ``prctl`` took effect, the launcher
notices (its parent is no longer the emulator) and exits 137 instead of running the command orphaned.

It also does what ``subprocess`` would otherwise do in the child: it changes to the task's working folder and
closes every inherited descriptor but 0, 1 and 2. So the emulator starts it with ``os.posix_spawn`` (a
``vfork``-style clone, the standard streams opened as file actions, a new session), without ``subprocess``'s
Python-side work. If a step fails before the program runs, the launcher writes the step and ``errno`` to a
descriptor it was given (close-on-exec, so the emulator reads end-of-file once the program runs) and exits
127: the emulator reports a program that cannot be started as ``subprocess`` would have raised it.

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

# argv: launcher <parent pid> <error fd> <working folder> <program> [args...]
# On any failure before the program runs, the launcher writes "<step> <errno>" (step: prctl, chdir or exec) to
# <error fd> and exits 127; that fd is close-on-exec, so the parent reads end-of-file once the program runs.
SOURCE = r"""
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static int report(int fd, const char *step) {
    char text[64];
    int length = snprintf(text, sizeof text, "%s %d", step, errno);
    if (length > 0) (void)!write(fd, text, (size_t)length);
    _exit(127);
}

/* Every descriptor but 0, 1, 2 and keep is closed, as subprocess's close_fds does. */
static void close_others(int keep) {
#ifdef SYS_close_range
    if (keep < 3) {
        if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0) return;
    } else if (syscall(SYS_close_range, 3U, (unsigned)keep - 1U, 0U) == 0
               && syscall(SYS_close_range, (unsigned)keep + 1U, ~0U, 0U) == 0) {
        return;
    }
#endif
    DIR *folder = opendir("/proc/self/fd");
    if (folder == NULL) {
        long top = sysconf(_SC_OPEN_MAX);
        for (int fd = 3; fd < (top > 0 && top < 65536 ? top : 65536); fd++) if (fd != keep) close(fd);
        return;
    }
    int own = dirfd(folder);
    struct dirent *entry;
    while ((entry = readdir(folder)) != NULL) {
        int fd = atoi(entry->d_name);
        if (fd >= 3 && fd != keep && fd != own) close(fd);
    }
    closedir(folder);
}

int main(int argc, char **argv) {
    if (argc < 5) return 127;
    pid_t parent = (pid_t)strtol(argv[1], NULL, 10);
    int errors = (int)strtol(argv[2], NULL, 10);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) report(errors, "prctl");
    if (getppid() != parent) _exit(137); /* the emulator died before prctl took effect */
    if (chdir(argv[3]) != 0) report(errors, "chdir");
    close_others(errors);
    if (fcntl(errors, F_SETFD, FD_CLOEXEC) != 0) report(errors, "exec");
    execv(argv[4], argv + 4);
    report(errors, "exec");
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
    """The built launcher runs a program in the folder given and passes its exit code through."""
    read_end, write_end = os.pipe()
    try:
        done = subprocess.run(
            [
                str(launcher),
                str(os.getpid()),
                str(write_end),
                "/",
                "/bin/sh",
                "-c",
                'test "$PWD" = / && exit 7',
            ],
            capture_output=True,
            timeout=30,
            pass_fds=(write_end,),
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    finally:
        os.close(write_end)
        os.close(read_end)
    return done.returncode == 7
