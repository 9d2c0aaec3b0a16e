"""Benchmark of the local Batch emulator, each figure side by side with its floor measured in the same run.

The emulator runs as its own process (``python -m batchrun.emulator``), so its CPU time (its own and that of
every process under it, from /proc: the task processes, the spawn server and the task processes the server
reaped) is reported apart from the client's. Rows (``--rows``, all by default):

``true``   500 x ``/bin/true`` on 4 slots (1 node x 4 slots), submission to last completion, against
           ``xargs -P 4`` running the same 500 programs (no shell on either side).
``sleep``  2,000 x ``sleep 0.05`` on 16 slots (1 node x 16 slots) against ``xargs -P 16``.
``list``   listing 10,000 tasks in pages of 1,000: the SDK's ``list_tasks``, raw signed GETs of the same
           pages, and a direct read of the same rows from the emulator's SQLite file (the floor).
``rss``    the emulator's resident memory holding 100,000 tasks right after a restart, next to the size of
           the tasks' JSON.

``true`` and ``sleep`` alternate the emulator, xargs and ``folders`` (in another order every round) and print
medians of ``--rounds`` rounds, wall time and CPU time side by side: the machine may be shared and busy (each
row also prints the CPU time the host took from this virtual machine while it ran, its ``steal``).
``folders`` is ``folders_floor.c`` (built as the emulator's native programs are; left out without a C
compiler): xargs' work plus the four inodes of Batch's layout that each task run makes (its folder, ``wd/``,
``stdout.txt``, ``stderr.txt``), made between ``fork`` and ``exec`` as the emulator's spawn server makes them.
The goal is against xargs; ``folders`` shows how much of the difference is the layout's and how much the
emulator's own.

Run: ``.venv/bin/python bench/emulator_tasks.py [--rows true,sleep] [--rounds 5]``
(starts Azurite and the emulator in a temp dir; ``TMPDIR`` chooses where).

Each task run creates its folder, ``wd/``, ``stdout.txt`` and ``stderr.txt`` (four new inodes; xargs creates
none). On ext4 without a journal (this machine's disk) an inode allocation skips the inodes freed in the last
30 seconds, scanning its block group from the start each time. Measured with ``folders``: 500 tasks run every
3.5 s after 14,000 inodes were deleted took 1.0-1.5 s of system CPU up to 27 s after the deletion, 0.15-0.3 s
from 30 s on. So the bench first measures a task's folders in its own folder (:func:`settled_folder_cost`)
and, while that costs over :data:`UNSETTLED_FACTOR` times the same on ``/dev/shm``, waits (at most
:data:`SETTLE_LIMIT` seconds), and prints what it found. Slow spells with nothing deleted come too, also in
the middle of the rows, where the probe cannot see them; ``folders`` shows them in the figures. ``TMPDIR`` on
a tmpfs takes the cost out.

The emulator's completions are polled with a raw ``taskcounts`` GET, at intervals that halve as the end
nears (:func:`wait_for_completions`): each poll costs the emulator about 1.4 ms of CPU, taken from the runs
it measures on this 2-core machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from azure.batch import BatchClient, models

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from emulator_harness import (  # noqa: E402
    API,
    TICK,
    Emulator,
    add_tasks,
    make_pool,
    signed,
)

from batchrun.emulator.node.native import find_or_build  # noqa: E402
from batchrun.local.azurite import start_azurite, stop_process  # noqa: E402

LIST_TASKS = 10_000
PAGE = 1_000
RSS_TASKS = 100_000


def run_on_emulator(
    emulator: Emulator, pool_id: str, job_id: str, words: list[str], count: int
) -> tuple[float, float]:
    """Wall and emulator CPU seconds from submitting ``count`` tasks to the last completion."""
    client = emulator.client()
    client.create_job(
        models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=pool_id))
    )
    command = " ".join(words)
    bodies: list[dict[str, object]] = [
        {"id": f"t{index:05d}", "commandLine": command} for index in range(count)
    ]
    cpu, own = emulator.cpu(), emulator.own_cpu()
    started = time.perf_counter()
    add_tasks(emulator.url, job_id, bodies, threads=2)
    wait_for_completions(emulator.url, job_id, count, started)
    wall = time.perf_counter() - started
    cpu = emulator.cpu() - cpu
    emulator.own.append(emulator.own_cpu() - own)
    counts = client.get_job_task_counts(job_id).task_counts
    assert counts.succeeded == count, counts
    return wall, cpu


def wait_for_completions(url: str, job_id: str, count: int, started: float) -> None:
    """Return once ``count`` tasks of the job have completed, seen a few ms after the last one.

    The observer is kept light: on this 2-core machine every poll's CPU (about 1.4 ms in the emulator and
    2 ms in an SDK client) is taken from the runs it measures. So each wait is half the time the completions
    so far say is left (at most 0.1 s, at least 2 ms): about 6 raw ``taskcounts`` GETs for 500 tasks of
    ``/bin/true``, where one every 20 ms and then every 2 ms near the end took about 25."""
    session = requests.Session()
    target = f"{url}/jobs/{job_id}/taskcounts?{API}"
    while (completed := signed(session, "GET", target).json()["taskCounts"]["completed"]) < count:
        elapsed = time.perf_counter() - started
        left = (count - completed) * elapsed / completed if completed else 0.02
        time.sleep(min(0.1, max(0.002, left / 2)))


def run_on_xargs(words: list[str], count: int, slots: int) -> tuple[float, float]:
    """Wall and CPU seconds (xargs and its children) of ``xargs -P slots`` running the same programs."""
    program, arguments = words[0], words[1:]
    if arguments:
        lines = ("\n".join(" ".join(arguments) for _ in range(count)) + "\n").encode()
        return timed_run(["xargs", "-P", str(slots), "-L", "1", program], lines)
    return timed_run(["xargs", "-P", str(slots), "-n", "1", "-0", program], b"\0" * count)


def build_folders_floor() -> Path | None:
    """``folders_floor.c`` built as the emulator's native programs are (:mod:`batchrun.emulator.node.native`,
    checked with a run of two tasks); None without a C compiler (the folders side is then left out)."""

    def works(program: Path) -> bool:
        with tempfile.TemporaryDirectory() as root:
            return subprocess.run([str(program), root, "2", "2", "true"], check=False).returncode == 0

    built = find_or_build("folders_floor", (HERE / "folders_floor.c").read_text(), works)
    if built is None:
        print("folders_floor.c could not be built (no C compiler?): the folders side is left out")
    return None if built is None else Path(built)


def run_on_folders_floor(
    program: Path, root: Path, words: list[str], count: int, slots: int
) -> tuple[float, float]:
    """Wall and CPU seconds of ``folders_floor``: the same programs, each in Batch's folders in ``root``."""
    root.mkdir(parents=True)
    return timed_run([str(program), str(root), str(count), str(slots), *words])


def timed_run(command: list[str], stdin: bytes | None = None) -> tuple[float, float]:
    """Wall seconds of ``command`` and the CPU seconds of it and every process under it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, input=stdin, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


Side = tuple[str, Callable[[int], tuple[float, float]]]


def stolen_seconds() -> float:
    """CPU seconds the host has taken from this virtual machine so far (``steal`` in /proc/stat; 0 where the
    kernel does not count it)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return int(fields[8]) / TICK if len(fields) > 8 else 0.0


def side_by_side(name: str, rounds: int, sides: list[Side], own: list[float]) -> None:
    """Run every side once a round, in another order every round, and print medians. ``sides``: the
    emulator, the floor of the row's goal, then floors shown for context."""
    results: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in sides}
    orders = list(itertools.permutations(sides))  # each side in each place, after each other side
    stolen = stolen_seconds()
    for round_number in range(rounds):
        for label, run in orders[round_number % len(orders)]:
            results[label].append(run(round_number))
    stolen = stolen_seconds() - stolen
    wall = {label: statistics.median(w for w, _ in values) for label, values in results.items()}
    cpu = {label: statistics.median(c for _, c in values) for label, values in results.items()}
    for label in results:
        runs = ", ".join(f"{w:.2f}" for w, _ in results[label])
        print(
            f"  {label:>9}: wall {wall[label]:.2f} s, CPU {cpu[label]:.2f} s "
            f"(median of {rounds}; walls {runs})"
        )
    ours, floor, *others = (label for label, _ in sides)
    context = "".join(
        f"; to {other}: wall {wall[ours] / wall[other]:.2f}x, CPU {cpu[ours] / cpu[other]:.2f}x"
        for other in others
    )
    print(
        f"  {name}: wall ratio {wall[ours] / wall[floor]:.2f}x, CPU ratio {cpu[ours] / cpu[floor]:.2f}x"
        f"{context}; of the emulator's CPU, its own process (without the task processes and the spawn "
        f"server) {statistics.median(own[-rounds:]):.2f} s; CPU the host took from this machine during the "
        f"row (steal): {stolen:.2f} s"
    )


def process_sides(
    emulator: Emulator, floor: Path | None, places: Path, row: str, slots: int, count: int, words: list[str]
) -> list[Side]:
    """The emulator, ``xargs -P slots``, and ``folders_floor`` when it could be built."""
    pool_id = f"pool{slots}"

    def ours(number: int) -> tuple[float, float]:
        return run_on_emulator(emulator, pool_id, f"{row}-{number}", words, count)

    def with_folders(number: int) -> tuple[float, float]:
        assert floor is not None
        return run_on_folders_floor(floor, places / f"{row}-{number}", words, count, slots)

    sides: list[Side] = [("emulator", ours), ("xargs", lambda _: run_on_xargs(words, count, slots))]
    return [*sides, ("folders", with_folders)] if floor is not None else sides


def bench_processes(emulator: Emulator, rows: list[str], rounds: int, floor: Path | None) -> None:
    """The ``true`` and ``sleep`` rows; ``floor``: the built ``folders_floor`` (a third side), or None."""
    client = emulator.client()
    places = emulator.state.parent / "folders-floor"
    for row, slots, count, words in (("true", 4, 500, ["/bin/true"]), ("sleep", 16, 2000, ["sleep", "0.05"])):
        if row not in rows:
            continue
        make_pool(client, f"pool{slots}", slots)
        print(f"{row}: {count:,} x {' '.join(words)} on {slots} slots vs xargs -P {slots}")
        side_by_side(
            row, rounds, process_sides(emulator, floor, places, row, slots, count, words), emulator.own
        )


def idle_job(client: BatchClient, job_id: str, tasks: list[tuple[str, str, int]]) -> list[dict[str, object]]:
    """A job on a pool that does not exist (its tasks are only stored) and the bodies of ``tasks``
    ((id, command line, index) triples) to add to it."""
    client.create_job(models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id="none")))
    return [
        {
            "id": task_id,
            "commandLine": command,
            "environmentSettings": [{"name": "INDEX", "value": str(index)}],
        }
        for task_id, command, index in tasks
    ]


def bench_listing(emulator: Emulator) -> None:
    print(f"list: {LIST_TASKS:,} tasks, pages of {PAGE:,}")
    client = emulator.client()
    bodies = idle_job(client, "list-job", [(f"task-{i:05d}", f"/bin/echo {i}", i) for i in range(LIST_TASKS)])
    started = time.perf_counter()
    add_tasks(emulator.url, "list-job", bodies)
    print(
        f"  submitted {LIST_TASKS:,} tasks (addtaskcollection, 100/request, 4 threads) "
        f"in {time.perf_counter() - started:.2f} s"
    )

    sdk_pages: list[float] = []
    page_start = time.perf_counter()
    count = 0
    for page in client.list_tasks("list-job", max_results=PAGE).by_page():
        count += sum(1 for _ in page)
        now = time.perf_counter()
        sdk_pages.append(now - page_start)
        page_start = now
    assert count == LIST_TASKS, count

    raw_pages: list[float] = []
    session = requests.Session()
    url: str | None = f"{emulator.url}/jobs/list-job/tasks?{API}&maxresults={PAGE}"
    raw_count = 0
    while url:
        page_start = time.perf_counter()
        body = signed(session, "GET", url).json()
        raw_pages.append(time.perf_counter() - page_start)
        raw_count += len(body["value"])
        url = body.get("odata.nextLink")
    assert raw_count == LIST_TASKS, raw_count

    store_pages: list[float] = []
    connection = sqlite3.connect(str(emulator.state / "emulator.db"))
    marker = ""
    while True:
        page_start = time.perf_counter()
        rows = connection.execute(
            "SELECT id, body FROM tasks WHERE parent = ? AND id > ? ORDER BY id LIMIT ?",
            ("list-job", marker, PAGE),
        ).fetchall()
        [json.loads(body) for _, body in rows]
        store_pages.append(time.perf_counter() - page_start)
        if len(rows) < PAGE:
            break
        marker = rows[-1][0]
    connection.close()
    store_pages = store_pages[: len(sdk_pages)]

    sdk, raw, store = (statistics.median(pages) for pages in (sdk_pages, raw_pages, store_pages))
    print(
        f"  per 1,000-task page (median of {len(sdk_pages)}): SDK list_tasks {sdk * 1000:.1f} ms, "
        f"raw HTTP {raw * 1000:.1f} ms, SQLite read + JSON decode {store * 1000:.1f} ms"
    )
    print(f"  ratios: SDK / raw HTTP = {sdk / raw:.2f}x, raw HTTP / store read = {raw / store:.2f}x")


def bench_rss(emulator: Emulator) -> None:
    print(f"rss: the emulator holding {RSS_TASKS:,} tasks, after a restart")
    client = emulator.client()
    bodies = idle_job(
        client, "rss-job", [(f"task-{i:06d}", f"/bin/sh -c 'echo {i}'", i) for i in range(RSS_TASKS)]
    )
    started = time.perf_counter()
    add_tasks(emulator.url, "rss-job", bodies)
    print(f"  submitted in {time.perf_counter() - started:.1f} s; RSS live: {emulator.rss_mib():.0f} MiB")
    emulator.stop()
    started = time.perf_counter()
    emulator.start()
    print(
        f"  restarted in {time.perf_counter() - started:.1f} s; "
        f"RSS after the restart: {emulator.rss_mib():.0f} MiB"
    )
    connection = sqlite3.connect(str(emulator.state / "emulator.db"))
    (json_bytes,) = connection.execute("SELECT SUM(LENGTH(body)) FROM tasks").fetchone()
    connection.close()
    print(f"  the tasks' stored JSON: {json_bytes / 2**20:.0f} MiB")


def folder_cost(folder: Path, count: int = 200) -> float:
    """Microseconds of CPU to create one task's folders here (folder, wd/, stdout.txt, stderr.txt), as the
    node runtime does for every task run. The folders stay (they go with ``folder``): deleting them would
    slow the next allocations down for 30 s."""
    root = Path(tempfile.mkdtemp(prefix="folder-cost-", dir=folder))
    started = time.process_time()
    for index in range(count):
        task = root / f"t{index:05d}"
        (task / "wd").mkdir(parents=True)
        for name in ("stdout.txt", "stderr.txt"):
            os.close(os.open(task / name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
    return (time.process_time() - started) / count * 1e6


# The bench's probe of a task's folders against the same on tmpfs: 1.5-2.8x on a settled disk, 3.2-5.4x in
# runs where the disk was slow for new inodes, 7-30x within 30 s of a mass deletion.
UNSETTLED_FACTOR = 3.0
SETTLE_LIMIT = 60.0
TMPFS = Path("/dev/shm")


def settled_folder_cost(folder: Path) -> str:
    """The cost of a task's folders in ``folder``, after waiting out recent deletions on its file system."""
    cost = folder_cost(folder)
    tmpfs = TMPFS.resolve()
    if folder.resolve().is_relative_to(tmpfs):
        return f"{cost:.0f} us of CPU"
    try:
        with tempfile.TemporaryDirectory(dir=tmpfs) as scratch:
            bar = UNSETTLED_FACTOR * folder_cost(Path(scratch))
    except OSError as error:  # no /dev/shm, or not writable there
        return f"{cost:.0f} us of CPU (not compared with tmpfs: {error.strerror})"
    first, started = cost, time.monotonic()
    while cost > bar and time.monotonic() - started < SETTLE_LIMIT:
        time.sleep(5)
        cost = folder_cost(folder)
    if first <= bar:
        return f"{cost:.0f} us of CPU (on tmpfs: {bar / UNSETTLED_FACTOR:.0f} us)"
    waited = time.monotonic() - started
    state = "settled" if cost <= bar else f"still over {UNSETTLED_FACTOR:.0f}x"
    return (
        f"{first:.0f} us of CPU at first, {cost:.0f} us after waiting {waited:.0f} s for recent deletions "
        f"to age past 30 s ({state}; on tmpfs: {bar / UNSETTLED_FACTOR:.0f} us)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", default="true,sleep,list,rss", help="comma-separated: true,sleep,list,rss")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds for true and sleep")
    arguments = parser.parse_args()
    rows = [row.strip() for row in arguments.rows.split(",") if row.strip()]
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="batchrun-bench-") as folder:
        state = Path(folder)
        print(f"creating one task's folders in {folder}: {settled_folder_cost(state)}", flush=True)
        azurite, endpoint = start_azurite(tools, state / "azurite")
        try:
            if "true" in rows or "sleep" in rows:
                floor = build_folders_floor()
                emulator = Emulator(_fresh(state / "run"), endpoint, cap=16)
                emulator.start()
                try:
                    bench_processes(emulator, rows, arguments.rounds, floor)
                finally:
                    emulator.stop()
            if "list" in rows:
                emulator = Emulator(_fresh(state / "list"), endpoint, cap=4)
                emulator.start()
                try:
                    bench_listing(emulator)
                finally:
                    emulator.stop()
            if "rss" in rows:
                emulator = Emulator(_fresh(state / "rss"), endpoint, cap=4)
                emulator.start()
                try:
                    bench_rss(emulator)
                finally:
                    emulator.stop()
        finally:
            stop_process(azurite)
    print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True)
    return folder


if __name__ == "__main__":
    main()
