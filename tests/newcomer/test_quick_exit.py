"""A finished command leaves the process at once (batchrun.cli.quick_exit): its output, exit code and exit
handlers intact, Python's teardown skipped; the interpreter's own exit whenever a thread still runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import atexit, sys, threading, time
from pathlib import Path
from batchrun.cli.quick_exit import exit_now

folder = Path(sys.argv[1])
code = None if sys.argv[2] == "none" else int(sys.argv[2]) if sys.argv[2].isdigit() else sys.argv[2]
thread_seconds = float(sys.argv[3])

class TornDown:  # freed by Python's teardown, when it runs
    def __del__(self) -> None:
        (folder / "torn-down").write_text("yes")

KEPT = TornDown()
atexit.register(lambda: (folder / "exit-handler").write_text("ran"))

def work() -> None:
    time.sleep(thread_seconds)
    (folder / "thread").write_text("done")

threading.Thread(target=work).start()
sys.stdout.write("the output, not yet flushed")
exit_now(code)
(folder / "returned").write_text("yes")
sys.exit(code)
"""


def _run(folder: Path, code: str, thread_seconds: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, str(folder), code, str(thread_seconds)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_finished_command_leaves_at_once_with_its_output_code_and_exit_handlers(tmp_path: Path) -> None:
    done = _run(tmp_path, "3", 0.0)  # its thread ends within the grace
    assert done.returncode == 3, done.stderr
    assert done.stdout == "the output, not yet flushed"
    assert (tmp_path / "exit-handler").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "done"
    assert not (tmp_path / "returned").exists()
    assert not (tmp_path / "torn-down").exists(), "Python's teardown ran"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert _run(plain, "none", 0.0).returncode == 0  # sys.exit() with no code: success


def test_a_thread_still_running_or_an_exit_message_keeps_the_interpreters_own_exit(tmp_path: Path) -> None:
    busy = _run(tmp_path, "0", 1.0)
    assert busy.returncode == 0, busy.stderr
    assert (tmp_path / "returned").exists() and (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "exit-handler").read_text() == "ran"
    assert busy.stdout == "the output, not yet flushed"
    assert (tmp_path / "torn-down").exists(), "the marker of Python's teardown does not work"
    message = tmp_path / "message"
    message.mkdir()
    said = _run(message, "no-such-manifest", 0.0)
    assert said.returncode == 1 and "no-such-manifest" in said.stderr
    assert (message / "returned").exists()


def test_a_command_run_under_a_profiler_exits_as_python_does_so_the_profile_is_written(
    tmp_path: Path,
) -> None:
    from tests.operate.cli import REPO

    written = tmp_path / "validate.prof"
    hello = str(REPO / "workloads" / "hello.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(written), "-m", "batchrun", "validate", hello],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert written.stat().st_size > 0
