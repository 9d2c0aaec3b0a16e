"""Running one command line as a process group that dies with the emulator.

Batch does not run command lines through a shell: on Linux the line is split like a POSIX shell would split
words (``shlex``) and executed directly. The child gets its own process group (so ending the task ends
everything it started) and ``PR_SET_PDEATHSIG = SIGKILL`` (so it dies if the emulator process dies, even
by SIGKILL).

The death signal is set by a small native launcher in front of the command (:mod:`.launcher`), started with
``os.posix_spawn`` (it also changes folder and closes inherited descriptors, so ``subprocess`` is not needed),
or by util-linux's ``setpriv --pdeathsig`` through ``subprocess`` where the launcher cannot be built: a Python
``preexec_fn`` would force a full fork of the (large, threaded) emulator process for every task, about 9 ms a
spawn against 1 ms for the vfork path ``subprocess`` takes without one.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from batchrun.emulator.node.launcher import launcher_path

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)
_PRCTL = _LIBC.prctl
# Seconds between SIGTERM and SIGKILL when a task is ended.
TERMINATE_GRACE = 1.0
_POLL_INTERVAL = 0.05

EndReason = Literal["exited", "cancelled", "timeout"]


@dataclass(frozen=True)
class ProcessResult:
    exit_code: int
    reason: EndReason


class LaunchError(Exception):
    """The command could not be started: ``code`` is CommandProgramNotFound or CommandLaunchFailed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def split_command_line(command_line: str) -> list[str]:
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
        candidate = program if os.path.isabs(program) else str(working_dir / program)
        if not os.path.exists(candidate):
            raise _program_not_found(program)
        if os.path.isdir(candidate) or not os.access(candidate, os.X_OK):
            raise LaunchError("CommandLaunchFailed", f"The program '{program}' is not executable")
        return candidate
    found = shutil.which(program, path=env.get("PATH", os.defpath))
    if found is None:
        raise _program_not_found(program)
    return found


def _program_not_found(program: str) -> LaunchError:
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
    cancel: threading.Event,
    time_limit: float | None,
) -> ProcessResult:
    """Run ``command_line`` to its end, streaming output to files; kill its group on cancel or time limit."""
    words = split_command_line(command_line)
    program = resolve_program(words[0], env, working_dir)
    launcher = launcher_path()
    if launcher is not None:
        child: _Process = _spawn(launcher, program, words, working_dir, env, stdout_path, stderr_path)
        return _wait(child, cancel, time_limit)
    setpriv = _setpriv()
    child_setup = None
    if setpriv is not None:
        argv = [setpriv, "--pdeathsig", "KILL", "--", program, *words[1:]]
    else:
        argv = [program, *words[1:]]
        child_setup = _child_setup(os.getpid())
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        try:
            process = subprocess.Popen(
                argv,
                cwd=working_dir,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
                preexec_fn=child_setup,
                close_fds=True,
            )
        except OSError as error:
            raise _launch_error(words[0], error.errno or 0) from None
    return _wait(process, cancel, time_limit)


def _launch_error(program: str, number: int) -> LaunchError:
    if number == errno.ENOENT:
        return _program_not_found(program)
    if number in (errno.EACCES, errno.EPERM):
        return LaunchError("CommandLaunchFailed", f"The program '{program}' is not executable")
    return LaunchError("CommandLaunchFailed", f"Starting '{program}' failed: {os.strerror(number)}")


_OUTPUT_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC


def _spawn(
    launcher: str,
    program: str,
    words: list[str],
    working_dir: Path,
    env: Mapping[str, str],
    stdout_path: Path,
    stderr_path: Path,
) -> _Process:
    """Start the program through the native launcher with ``posix_spawn``; raises LaunchError like Popen."""
    read_end, write_end = os.pipe()  # both close-on-exec; the launcher gets write_end by number
    try:
        os.set_inheritable(write_end, True)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.fspath(stdout_path), _OUTPUT_FLAGS, 0o666),
            (os.POSIX_SPAWN_OPEN, 2, os.fspath(stderr_path), _OUTPUT_FLAGS, 0o666),
        ]
        argv = [launcher, str(os.getpid()), str(write_end), os.fspath(working_dir), program, *words[1:]]
        try:
            pid = os.posix_spawn(launcher, argv, env, file_actions=actions, setsid=True)
        except OSError as error:
            raise _launch_error(words[0], error.errno or 0) from None
        os.close(write_end)
        write_end = -1
        report = _read_all(read_end)  # end-of-file once the program runs (or the launcher ends)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    child = _Process(pid)
    if report:
        child.wait()
        _step, _, number = report.decode(errors="replace").partition(" ")
        raise _launch_error(words[0], int(number) if number.isdigit() else 0)
    return child


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 256):
        chunks.append(chunk)
    return b"".join(chunks)


class _Process:
    """A child started with ``posix_spawn``: the part of ``Popen``'s interface :func:`_wait` uses."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            if self.returncode is None:
                _, status = os.waitpid(self.pid, 0)
                self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode
        deadline = time.monotonic() + timeout
        while (code := self.poll()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(min(left, 0.01))
        return code


def _wait(
    process: _Process | subprocess.Popen[bytes], cancel: threading.Event, time_limit: float | None
) -> ProcessResult:
    deadline = None if time_limit is None else time.monotonic() + time_limit
    pidfd = _open_pidfd(process.pid)
    try:
        while True:
            if (code := process.poll()) is not None:
                return ProcessResult(_exit_code(code), "exited")
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


def _open_pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
        return fd
    except OSError:
        return None


def _end(process: _Process | subprocess.Popen[bytes]) -> int:
    """SIGTERM the group, then SIGKILL what is left after a short grace period."""
    _signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=TERMINATE_GRACE)
    _signal_group(process.pid, signal.SIGKILL)  # also reaps children that ignored SIGTERM
    return _exit_code(process.wait())


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def _exit_code(returncode: int) -> int:
    # A process killed by a signal reports 128 + signal number, as a shell shows it.
    return 128 - returncode if returncode < 0 else returncode
