"""The ``true`` row of ``bench/emulator_tasks.py`` with two checkouts' emulators side by side, in turn.

For a change to the emulator's task runs, measured against the code before it: start each checkout's emulator
(``python -m batchrun.emulator`` run from that checkout's folder imports its own ``batchrun``) with the same
Azurite, then run 500 x ``/bin/true`` on 4 slots on each, alternating which goes first, for ``--rounds``
rounds. Each round's CPU is read from ``/proc/PID/task/*/schedstat`` (nanoseconds, where ``stat`` counts
10 ms ticks): the busiest thread's (the supervisor's, which records the runs that end and starts the next
ones) and the whole process's, per task. Printed: each side's medians and the medians of the per-round ratios
of this checkout to the other (paired rounds share the machine's moment, which on a shared 2-core machine
moves the figures more than most changes do).

Run: ``git worktree add /tmp/before <commit>`` then
``.venv/bin/python bench/emulator_ab.py --against /tmp/before [--rounds 12]``
(``TMPDIR`` chooses where the state and the task folders go).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from emulator_harness import Emulator, make_pool, thread_nanoseconds  # noqa: E402
from emulator_tasks import run_on_emulator  # noqa: E402

from batchrun.local.azurite import start_azurite, stop_process  # noqa: E402

TASKS = 500


def measured_round(emulator: Emulator, job_id: str) -> tuple[float, float, float]:
    """Wall seconds, and microseconds of CPU a task of the busiest thread and of the whole process."""
    assert emulator.process is not None
    pid = emulator.process.pid
    before = thread_nanoseconds(pid)
    wall, _ = run_on_emulator(emulator, "pool4", job_id, ["/bin/true"], TASKS)
    after = thread_nanoseconds(pid)
    spent = [nanoseconds - before.get(thread, 0) for thread, nanoseconds in after.items()]
    return wall, max(spent) / TASKS / 1000, sum(spent) / TASKS / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", type=Path, required=True, help="the other checkout (a git worktree)")
    parser.add_argument("--rounds", type=int, default=12, help="alternated rounds of each side")
    arguments = parser.parse_args()
    other = arguments.against.resolve()
    if not (other / "batchrun" / "emulator").is_dir():
        parser.error(f"{other} holds no batchrun/emulator; give a checkout of this repository")
    checkouts = {"this checkout": REPO, "the other": other}
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in checkouts}
    with tempfile.TemporaryDirectory(prefix="batchrun-bench-") as folder:
        state = Path(folder)
        azurite, endpoint = start_azurite(tools, state / "azurite")
        emulators: dict[str, Emulator] = {}
        try:
            for index, (name, checkout) in enumerate(checkouts.items()):
                (state / f"run{index}").mkdir()
                emulator = Emulator(state / f"run{index}", endpoint, cap=16, checkout=checkout)
                emulators[name] = emulator
                emulator.start()
                make_pool(emulator.client(), "pool4", 4)
                run_on_emulator(emulator, "pool4", "warm", ["/bin/true"], 100)
            for number in range(arguments.rounds):
                order = list(checkouts) if number % 2 == 0 else list(reversed(checkouts))
                for name in order:
                    figures[name].append(measured_round(emulators[name], f"t{number}"))
        finally:
            for emulator in emulators.values():
                emulator.stop()
            stop_process(azurite)
    print(f"{TASKS} x /bin/true on 4 slots, medians of {arguments.rounds} alternated rounds:")
    for name, checkout in checkouts.items():
        wall, thread, process = (statistics.median(values) for values in zip(*figures[name], strict=True))
        print(
            f"  {name} ({checkout}): wall {wall:.3f} s, the busiest thread {thread:.0f} us a task, "
            f"the process {process:.0f} us a task"
        )
    pairs = list(zip(figures["this checkout"], figures["the other"], strict=True))
    ratios = [statistics.median(ours[k] / theirs[k] for ours, theirs in pairs) for k in range(3)]
    print(
        f"  this checkout / the other, paired by round: wall {ratios[0]:.3f}, the busiest thread "
        f"{ratios[1]:.3f}, the process {ratios[2]:.3f}"
    )


if __name__ == "__main__":
    main()
