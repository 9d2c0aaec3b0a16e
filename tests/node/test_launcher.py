"""The task launcher: built once per user, and a task process dies with the emulator whichever way its
parent-death signal was set (the native launcher, or setpriv where the launcher is not used)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from batchrun.emulator.node import launcher
from tests.node.processes import alive, wait_gone, written

REPO = Path(__file__).resolve().parents[2]
needs_compiler = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on this host")

# A stand-in for the emulator: runs one task process through the node runtime, prints its pid, waits forever.
EMULATOR = """
import sys, threading
from pathlib import Path
from batchrun.emulator.node.launcher import launcher_path
from batchrun.emulator.node.process import run_process
folder = Path(sys.argv[1])
print(launcher_path() or "none", flush=True)
run_process("/bin/sh -c 'echo $$ > pid; exec sleep 60'", folder, {"PATH": "/usr/bin:/bin"},
            folder / "out", folder / "err", threading.Event(), None)
"""


@needs_compiler
def test_the_launcher_is_built_into_a_private_cache_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("BATCHRUN_EMULATOR_LAUNCHER", raising=False)
    built = launcher._find_or_build()
    assert built is not None and Path(built).parent == tmp_path / "cache" / "batchrun"
    before = os.stat(built).st_mtime_ns
    assert launcher._find_or_build() == built and os.stat(built).st_mtime_ns == before  # not rebuilt
    assert sorted(path.name for path in Path(built).parent.iterdir()) == [
        Path(built).name
    ]  # no build leftovers
    done = subprocess.run(
        [built, str(os.getpid()), "/bin/sh", "-c", "echo $0 $1; exit 3", "a", "b"],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stdout) == (3, "a b\n")


@needs_compiler
def test_the_launcher_refuses_to_run_when_its_parent_is_already_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    built = launcher._find_or_build()
    assert built is not None
    marker = tmp_path / "ran"
    # Its parent is this test process, not pid 1: as if the emulator had died before prctl took effect.
    done = subprocess.run([built, "1", "/bin/sh", "-c", f"touch {marker}"])
    assert done.returncode == 137 and not marker.exists()


def test_a_group_or_world_writable_cache_is_not_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache" / "batchrun"
    cache.mkdir(parents=True)
    cache.chmod(0o777)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert launcher._find_or_build() is None
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("mode", ["launcher", "setpriv"])
def test_a_task_process_dies_when_the_emulator_is_killed(tmp_path: Path, mode: str) -> None:
    if mode == "launcher" and shutil.which("cc") is None:
        pytest.skip("no C compiler on this host")
    if mode == "setpriv" and shutil.which("setpriv") is None:
        pytest.skip("no setpriv on this host")
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("BATCHRUN_EMULATOR_LAUNCHER", None)
    if mode == "setpriv":
        env["BATCHRUN_EMULATOR_LAUNCHER"] = "setpriv"
    emulator = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, str(tmp_path)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert emulator.stdout is not None
        used = emulator.stdout.readline().strip()
        assert (used != "none") == (mode == "launcher"), used
        task_pid = int(written(tmp_path / "pid", "the task process did not start"))
        assert alive(task_pid)
        os.kill(emulator.pid, signal.SIGKILL)
        emulator.wait()
        wait_gone(task_pid, what="the task process outlived the emulator")
    finally:
        if emulator.poll() is None:
            emulator.kill()
            emulator.wait()


def test_a_task_process_runs_in_its_folder_and_inherits_no_descriptor_but_the_standard_streams(
    tmp_path: Path,
) -> None:
    from batchrun.emulator.node.process import run_process

    leaked = os.open(os.devnull, os.O_RDONLY)
    high = os.dup2(leaked, 200, inheritable=True)
    try:
        result = run_process(
            "/bin/sh -c 'pwd; ls /proc/$$/fd'",
            tmp_path,
            {"PATH": "/usr/bin:/bin"},
            tmp_path / "o",
            tmp_path / "e",
            threading.Event(),
            None,
        )
    finally:
        os.close(high)
        os.close(leaked)
    lines = (tmp_path / "o").read_text().split()
    assert result.exit_code == 0 and lines[0] == str(tmp_path)
    assert "200" not in lines[1:] and str(leaked) not in lines[1:], lines
