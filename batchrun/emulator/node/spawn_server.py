"""A native spawn server: one long-lived small program that starts every task process for the emulator.

Starting a task through ``subprocess`` costs the emulator a ``Popen`` and two ``exec`` calls per task (the
native launcher that sets the parent-death signal, then the command) plus a pidfd to wait on. The spawn
server (``spawn_server.c``, built like the launcher: :mod:`.native`) does the whole start in C with one
``fork`` a task: the child creates the task's folder, ``wd/``, ``stdout.txt`` and ``stderr.txt`` (as
:func:`.layout.prepare_task_directory`), looks the program up on the task's ``PATH`` (as
:func:`.process.resolve_program`), opens the output files, takes its own session and
``PR_SET_PDEATHSIG = SIGKILL`` relative to the server, then makes ONE ``exec``, of the command itself;
children start side by side (a ``CLONE_VFORK`` start, measured, made the folders' creation serial). The
server is the tasks' parent: it reaps them and reports exits over its socket, batched, so one thread of the
emulator (:class:`.supervisor.ProcessSupervisor`) waits on that one socket instead of a pidfd per task.

Dying together: the server has ``PR_SET_PDEATHSIG = SIGKILL`` relative to the emulator thread that started it
(and exits at once if the emulator is already gone); every task has it relative to the server. A SIGKILL of
the emulator kills the server, which kills every task. Process groups are signalled by the emulator directly,
as before (a task's pid is its group's id).

Launch failures come back as a stage and an ``errno`` (:class:`SpawnFailure`) and become the same failures
as a ``subprocess`` start would have (:func:`.runner.launch_failed`).

``BATCHRUN_EMULATOR_LAUNCHER=launcher`` skips the server (tasks start through ``subprocess`` and the exec
launcher); ``BATCHRUN_EMULATOR_LAUNCHER=setpriv`` skips both. Without a C compiler the ``subprocess`` path is
used, unchanged.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from batchrun.emulator.node.native import find_or_build

# Reply kinds and failure stages: the enums of spawn_server.c.
STARTED, FAILED, EXITED = 1, 2, 3
NOT_FOUND, NOT_EXECUTABLE, FOLDER, WORKING, STDOUT, STDERR, START, REQUEST = range(1, 9)
GONE = 100  # the server ended before it answered (not a stage of the C program)
MAKE_FOLDERS, SEARCH = 1, 2

_HEADER = struct.Struct("=IIIII")  # size of the rest, id, flags, argc, envc
_RECORD = struct.Struct("=IIii")  # kind, id, a, b
_SOURCE = Path(__file__).with_name("spawn_server.c")
_lock = threading.Lock()
_built: list[str | None] = []  # memo of this process's one attempt: [] not tried yet, [path or None] tried


class SpawnFailure(msgspec.Struct, frozen=True):
    """Why the server started nothing: ``stage`` (a constant above) and an ``errno`` (0 for none)."""

    stage: int
    error: int


class SpawnRequest(msgspec.Struct, frozen=True):
    """One task start, encoded for the server (without its id)."""

    flags: int
    argc: int
    envc: int
    strings: bytes

    def frame(self, ident: int) -> bytes:
        return _HEADER.pack(16 + len(self.strings), ident, self.flags, self.argc, self.envc) + self.strings


def spawn_request(
    argv: Sequence[str],
    env: Mapping[str, str],
    working_dir: str,
    stdout_path: str,
    stderr_path: str,
    task_dir: str | None,
) -> SpawnRequest:
    """A request to run ``argv`` (``argv[0]`` as written in the command line) with exactly ``env``, in
    ``working_dir``; ``task_dir`` given: create the task's folders and output files first.

    Raises ValueError where ``subprocess`` would: a NUL byte in an argument, a name or a value, or ``=`` in a
    variable's name."""
    program = argv[0]
    search = "/" not in program
    flags = (MAKE_FOLDERS if task_dir is not None else 0) | (SEARCH if search else 0)
    items = [f"{name}={value}" for name, value in env.items()]
    for name in env:
        if "=" in name:
            raise ValueError("illegal environment variable name")
    texts = [
        working_dir,
        stdout_path,
        stderr_path,
        env.get("PATH", os.defpath) if search else "",
        task_dir or "",
        *argv,
        *items,
    ]
    strings = os.fsencode("\0".join(texts)) + b"\0"  # one encoding, as os.fsencode of each
    if strings.count(0) != len(texts):
        raise ValueError("embedded null byte")
    return SpawnRequest(flags, len(argv), len(items), strings)


def server_path() -> str | None:
    """The server's path, building it on the first call of the process; None when it cannot be had."""
    with _lock:
        if not _built:
            skip = os.environ.get("BATCHRUN_EMULATOR_LAUNCHER") in ("launcher", "setpriv")
            _built.append(None if skip else _find_or_build())
        return _built[0]


def _find_or_build() -> str | None:
    try:
        source = _SOURCE.read_text()
    except OSError:
        return None
    return find_or_build("spawn-server", source, _works)


class SpawnedProcess:
    """A process started by the spawn server: its pid once started (0 before), its returncode once reaped
    (as ``Popen.returncode``: negative for a signal)."""

    __slots__ = ("pid", "returncode")

    def __init__(self) -> None:
        self.pid = 0
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


class SpawnServer:
    """The emulator's end of a running server. Start it from a thread that lives as long as it is used:
    the server's parent-death signal follows that thread. :meth:`send` from any thread; :meth:`receive`
    from one."""

    def __init__(self, process: subprocess.Popen[bytes], channel: socket.socket) -> None:
        self.process = process
        self._channel = channel
        self._send_lock = threading.Lock()
        self._pending = b""

    @classmethod
    def start(cls, path: str) -> SpawnServer:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            process = subprocess.Popen(
                [path, str(os.getpid()), str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                close_fds=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        return cls(process, ours)

    def fileno(self) -> int:
        return self._channel.fileno()

    def send(self, data: bytes) -> None:
        """Queue ``data`` to the server (all of it; waits while its socket buffer is full)."""
        with self._send_lock:
            view = memoryview(data)
            while view:
                try:
                    sent = self._channel.send(view)
                except BlockingIOError:
                    _wait_writable(self._channel)
                    continue
                view = view[sent:]

    def receive(self) -> list[tuple[int, int, int, int]] | None:
        """The records that came with one read (perhaps none); None once the server has ended.

        One read a call: the caller's epoll (level-triggered) says when more is there."""
        try:
            chunk = self._channel.recv(65536)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError:
            chunk = b""
        if not chunk:
            return None
        data = self._pending + chunk if self._pending else chunk
        whole = len(data) - len(data) % _RECORD.size
        self._pending = data[whole:]
        return list(_RECORD.iter_unpack(data[:whole] if whole < len(data) else data))

    def close(self, timeout: float = 10.0) -> None:
        """Close the socket: the server exits and the tasks it still runs die with it."""
        self._channel.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _wait_writable(channel: socket.socket) -> None:
    select.select([], [channel], [], 1.0)


def _works(path: Path) -> bool:
    """A fresh build starts a program, reports its pid, and reports its exit status."""
    try:
        server = SpawnServer.start(str(path))
    except OSError:
        return False
    try:
        request = spawn_request(["/bin/sh", "-c", "exit 7"], {}, "/", os.devnull, os.devnull, None)
        server.send(request.frame(5))
        kinds: dict[int, int] = {}
        deadline = time.monotonic() + 30
        while EXITED not in kinds and time.monotonic() < deadline:
            _wait_readable(server)
            records = server.receive()
            if records is None:
                return False
            kinds.update((kind, a) for kind, ident, a, _ in records if ident == 5)
        return kinds.get(STARTED, 0) > 0 and os.waitstatus_to_exitcode(kinds.get(EXITED, 0)) == 7
    finally:
        server.close()


def _wait_readable(server: SpawnServer) -> None:
    select.select([server], [], [], 1.0)
