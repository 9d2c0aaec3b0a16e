"""Running one command line as a process group that dies with the emulator.

Batch does not run command lines through a shell: on Linux the line is split like a POSIX shell would split
words (``shlex``) and executed directly. The child gets its own process group (so ending the task ends
everything it started) and ``PR_SET_PDEATHSIG = SIGKILL`` (so it dies if the emulator process dies, even
by SIGKILL).

This module is the ``subprocess`` path: start tasks, job preparation and release tasks, and task runs where
the spawn server (:mod:`.spawn_server`, which starts the scheduler's task runs with one exec each) cannot be
had. The death signal is set by a small native launcher in front of the command (:mod:`.launcher`), or by
util-linux's ``setpriv --pdeathsig`` where the launcher cannot be built: a Python ``preexec_fn`` would force a
full fork of the (large, threaded) emulator process for every task, about 9 ms a spawn against 1 ms for the
vfork path ``subprocess`` takes without one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Literal

import msgspec

from batchrun.emulator.node.launcher import launcher_path
from batchrun.emulator.node.model import Cancellation

_PR_SET_PDEATHSIG = 1
_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_LIBC = ctypes.CDLL(None, use_errno=True)
_PRCTL = _LIBC.prctl
# Seconds between SIGTERM and SIGKILL when a task is ended.
TERMINATE_GRACE = 1.0
_POLL_INTERVAL = 0.05

# shlex.split (POSIX mode, no comments) splits words at spaces, tabs, CR and LF and interprets only quotes and
# backslashes: a line without those splits the same with one regular expression.
_WORD = re.compile(r"[^ \t\r\n]+")
_QUOTING = re.compile(r"['\"\\]")

EndReason = Literal["exited", "cancelled", "timeout"]


class ProcessResult(msgspec.Struct, frozen=True):
    exit_code: int
    reason: EndReason


class LaunchError(Exception):
    """The command could not be started: ``code`` is CommandProgramNotFound or CommandLaunchFailed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def split_command_line(command_line: str) -> list[str]:
    if not _QUOTING.search(command_line):  # nothing for shlex to interpret: its words are the plain ones
        words = _WORD.findall(command_line)
        if not words:
            raise LaunchError("CommandLaunchFailed", "The command line is empty")
        return words
    try:
        words = shlex.split(command_line, posix=True)
    except ValueError as error:
        raise LaunchError("CommandLaunchFailed", f"The command line cannot be parsed: {error}") from None
    if not words:
        raise LaunchError("CommandLaunchFailed", "The command line is empty")
    return words


def resolve_program(program: str, env: Mapping[str, str], working_dir: Path) -> str:
    """The path of the program a command line starts, searched on the task's PATH like exec does."""
    if "/" in program:
        candidate = program if os.path.isabs(program) else os.path.join(working_dir, program)
        try:
            mode = os.stat(candidate).st_mode
        except (OSError, ValueError):  # as os.path.exists: whatever cannot be stat'ed is not there
            raise program_not_found(program) from None
        if stat.S_ISDIR(mode) or not os.access(candidate, os.X_OK):
            raise LaunchError("CommandLaunchFailed", f"The program '{program}' is not executable")
        return candidate
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise program_not_found(program)
    return found


def program_not_found(program: str) -> LaunchError:
    return LaunchError(
        "CommandProgramNotFound",
        f"The program '{program}' in the task's command line was not found on the node "
        "(command lines do not run in a shell; use /bin/sh -c '...' for shell features)",
    )


@cache
def _setpriv() -> str | None:
    """util-linux's setpriv, when it can set a parent-death signal on this host."""
    return shutil.which("setpriv")


def _child_setup(parent_pid: int) -> Callable[[], None]:
    def setup() -> None:
        # Runs in the child between fork and exec: only async-signal-safe work here.
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(137)

    return setup


def run_process(
    command_line: str,
    working_dir: Path,
    env: Mapping[str, str],
    stdout_path: Path,
    stderr_path: Path,
    cancel: Cancellation,
    time_limit: float | None,
) -> ProcessResult:
    """Run ``command_line`` to its end, streaming output to files; kill its group on cancel or time limit."""
    process = spawn_process(command_line, working_dir, env, stdout_path, stderr_path)
    return wait_process(process, cancel, time_limit)


def spawn_process(
    command_line: str,
    working_dir: Path,
    env: Mapping[str, str],
    stdout_path: Path,
    stderr_path: Path,
) -> subprocess.Popen[bytes]:
    """Start ``command_line`` in its own process group with its output going to the two files."""
    return spawn_words(split_command_line(command_line), working_dir, env, stdout_path, stderr_path)


def spawn_words(
    words: list[str],
    working_dir: Path,
    env: Mapping[str, str],
    stdout_path: Path,
    stderr_path: Path,
) -> subprocess.Popen[bytes]:
    """Start the command ``words`` (a split command line) as :func:`spawn_process` does."""
    program = resolve_program(words[0], env, working_dir)
    launcher = launcher_path()
    setpriv = None if launcher is not None else _setpriv()
    child_setup = None
    if launcher is not None:
        argv = [launcher, str(os.getpid()), program, *words[1:]]
    elif setpriv is not None:
        argv = [setpriv, "--pdeathsig", "KILL", "--", program, *words[1:]]
    else:
        argv = [program, *words[1:]]
        child_setup = _child_setup(os.getpid())
    # Plain descriptors, not file objects: each io.open also costs an fstat, an isatty ioctl and an lseek.
    stdout = os.open(stdout_path, _OUTPUT_FLAGS, 0o666)
    try:
        stderr = os.open(stderr_path, _OUTPUT_FLAGS, 0o666)
        try:
            return subprocess.Popen(
                argv,
                cwd=working_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=child_setup,
                close_fds=True,
            )
        except OSError as error:
            raise launch_error(words[0], error) from None
        finally:
            os.close(stderr)
    finally:
        os.close(stdout)


def launch_error(program: str, error: OSError) -> LaunchError:
    """What a failed start of ``program`` (an error of ``fork``, ``chdir`` or ``exec``) is reported as."""
    if isinstance(error, FileNotFoundError):
        return program_not_found(program)
    if isinstance(error, PermissionError):
        return LaunchError("CommandLaunchFailed", f"The program '{program}' is not executable")
    return LaunchError("CommandLaunchFailed", f"Starting '{program}' failed: {error.strerror}")


def wait_process(
    process: subprocess.Popen[bytes], cancel: Cancellation, time_limit: float | None
) -> ProcessResult:
    """Wait in this thread for ``process`` to end; end its group on cancel or after ``time_limit`` seconds
    (start tasks and job preparation/release tasks; task runs are watched by :mod:`.supervisor`)."""
    deadline = None if time_limit is None else time.monotonic() + time_limit
    pidfd = open_pidfd(process.pid)
    try:
        while True:
            if process.poll() is not None:
                return ProcessResult(exit_code(process.returncode), "exited")
            if cancel.is_set():
                return ProcessResult(_end(process), "cancelled")
            if deadline is not None and time.monotonic() >= deadline:
                return ProcessResult(_end(process), "timeout")
            wait = (
                _POLL_INTERVAL
                if deadline is None
                else max(0.0, min(_POLL_INTERVAL, deadline - time.monotonic()))
            )
            if pidfd is not None:
                select.select([pidfd], [], [], wait)  # wakes at once when the child exits
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=wait)
    finally:
        if pidfd is not None:
            os.close(pidfd)


def open_pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
        return fd
    except OSError:
        return None


def _end(process: subprocess.Popen[bytes]) -> int:
    """SIGTERM the group, then SIGKILL what is left after a short grace period."""
    signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=TERMINATE_GRACE)
    signal_group(process.pid, signal.SIGKILL)  # also reaps children that ignored SIGTERM
    process.wait()
    return exit_code(process.returncode)


def signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def exit_code(returncode: int) -> int:
    # A process killed by a signal reports 128 + signal number, as a shell shows it.
    return 128 - returncode if returncode < 0 else returncode
