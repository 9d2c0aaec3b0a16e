"""What the emulator's own process spends on each task run, next to the same bookkeeping written straight.

The ``true`` row of ``bench/emulator_tasks.py`` (500 x ``/bin/true`` on 4 slots) is paced by the emulator's
own process: its task processes and spawn server cost what ``folders_floor.c`` does. This bench splits that
process's CPU by thread (``/proc/PID/task/*/schedstat``, in nanoseconds, before and after each round: the
busiest thread records the runs that end and starts the next ones, the others serve the adds and the polls)
and runs, alternated with the rounds, the floor of the busiest thread's work: each task's stored JSON decoded,
marked running (its node info, a new ETag) and written with its node's row; its environment and spawn request
built and written to a socket; then marked completed and written again. Two tasks to a transaction (about how
the emulator batches the runs that end together with the starts that fill their slots), SQLite with the
emulator's schema and settings, orjson for the JSON. That side starts no process: the spawn server's work is
the other bench's.

Run: ``.venv/bin/python bench/task_bookkeeping.py [--rounds 8]`` (starts Azurite and the emulator in a temp
dir; ``TMPDIR`` chooses where).
"""

from __future__ import annotations

import argparse
import os
import socket
import sqlite3
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from emulator_harness import Emulator, make_pool, thread_nanoseconds  # noqa: E402
from emulator_tasks import run_on_emulator  # noqa: E402

from batchrun.emulator.timefmt import new_etag, now_iso  # noqa: E402
from batchrun.local.azurite import start_azurite, stop_process  # noqa: E402

TASKS = 500
PER_TRANSACTION = 2
HOST = {name: os.environ[name] for name in ("PATH", "HOME", "LANG") if name in os.environ}
NODE_VARIABLES = (
    "ACCOUNT_NAME",
    "ACCOUNT_URL",
    "POOL_ID",
    "NODE_ID",
    "NODE_IS_DEDICATED",
    "NODE_ROOT_DIR",
    "NODE_SHARED_DIR",
    "NODE_STARTUP_DIR",
    "NODE_STARTUP_WORKING_DIR",
    "NODE_MOUNTS_DIR",
    "TASK_USER",
)
HEADER = struct.Struct("<IIIII")


def emulator_round(emulator: Emulator, number: int) -> tuple[float, float]:
    """Microseconds of CPU a task of one ``true`` round: the busiest thread's, and the other threads'."""
    assert emulator.process is not None
    before = thread_nanoseconds(emulator.process.pid)
    run_on_emulator(emulator, "pool4", f"book-{number}", ["/bin/true"], TASKS)
    after = thread_nanoseconds(emulator.process.pid)
    spent = sorted((used - before.get(thread, 0) for thread, used in after.items()), reverse=True)
    scale = 1e-3 / TASKS
    return spent[0] * scale, sum(spent[1:]) * scale


def stored_tasks(count: int) -> dict[str, str]:
    """Tasks as the emulator stores them once added: their JSON texts by id."""
    texts = {}
    for index in range(count):
        moment = now_iso()
        task = {
            "id": f"t{index:05d}",
            "commandLine": "/bin/true",
            "creationTime": moment,
            "state": "active",
            "stateTransitionTime": moment,
            "constraints": {
                "maxWallClockTime": "P10675199DT2H48M5.4775807S",
                "retentionTime": "P7D",
                "maxTaskRetryCount": 0,
            },
            "requiredSlots": 1,
            "executionInfo": {"retryCount": 0, "requeueCount": 0},
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
            "eTag": new_etag(),
            "lastModified": moment,
            "_x": {"seq": index},
        }
        texts[task["id"]] = orjson.dumps(task).decode()
    return texts


def bookkeeping_round(folder: Path, number: int) -> float:
    """Microseconds of CPU a task of the straight-line bookkeeping for ``TASKS`` runs."""
    connection = sqlite3.connect(str(folder / f"book-{number}.db"), isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    for table in ("tasks", "nodes"):
        connection.execute(
            f"CREATE TABLE {table} (parent TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, "
            "PRIMARY KEY (parent, id)) WITHOUT ROWID"
        )
    texts: dict[str, str] = stored_tasks(TASKS)
    live: dict[str, dict[str, object]] = {}
    node: dict[str, object] = {"id": "n1", "state": "idle", "runningTasksCount": 0, "totalTasksRun": 0}
    node_url = "https://account.local/pools/pool4/nodes/n1"
    batch = {f"AZ_BATCH_{name}": f"/state/nodes/pool4/n1/{name.lower()}" for name in NODE_VARIABLES}
    sender, receiver = socket.socketpair()
    receiver.setblocking(False)
    insert = "INSERT OR REPLACE INTO {} (parent, id, body) VALUES (?, ?, ?)"
    started = time.process_time()
    for first in range(0, TASKS, PER_TRANSACTION):
        ids = [f"t{index:05d}" for index in range(first, min(first + PER_TRANSACTION, TASKS))]
        connection.execute("BEGIN")
        for task_id in ids:
            task = orjson.loads(texts[task_id])
            moment = now_iso()
            task["previousState"], task["previousStateTransitionTime"] = (
                task["state"],
                task["stateTransitionTime"],
            )
            task["state"], task["stateTransitionTime"] = "running", moment
            task["executionInfo"]["startTime"] = moment
            folder_text = f"workitems/job/job-1/{task_id}"
            task["nodeInfo"] = {
                "affinityId": "TVM:n1",
                "nodeUrl": node_url,
                "poolId": "pool4",
                "nodeId": "n1",
                "taskRootDirectory": folder_text,
                "taskRootDirectoryUrl": f"{node_url}/files/{folder_text}",
            }
            task["eTag"], task["lastModified"] = new_etag(), moment
            connection.execute(insert.format("tasks"), ("job", task_id, orjson.dumps(task).decode()))
            live[task_id] = task
        node["runningTasksCount"] = len(ids)
        connection.execute(insert.format("nodes"), ("pool4", "n1", orjson.dumps(node).decode()))
        connection.execute("COMMIT")
        for index, task_id in enumerate(ids):
            task_dir = f"/state/nodes/pool4/n1/workitems/job/job-1/{task_id}"
            env = dict(HOST)
            env.update(batch)
            env["AZ_BATCH_TASK_DIR"], env["AZ_BATCH_TASK_WORKING_DIR"] = task_dir, f"{task_dir}/wd"
            env["AZ_BATCH_JOB_ID"], env["AZ_BATCH_TASK_ID"] = "job", task_id
            words = ["/bin/true"]
            texts_out = [f"{task_dir}/wd", f"{task_dir}/stdout.txt", f"{task_dir}/stderr.txt", "", task_dir]
            items = [f"{name}={value}" for name, value in env.items()]
            strings = os.fsencode("\0".join([*texts_out, *words, *items])) + b"\0"
            sender.send(HEADER.pack(16 + len(strings), first + index, 0, len(words), len(items)) + strings)
        try:
            while receiver.recv(1 << 16):
                pass
        except BlockingIOError:
            pass
        connection.execute("BEGIN")
        for task_id in ids:
            task = live.pop(task_id)
            moment = now_iso()
            info = task["executionInfo"]
            assert isinstance(info, dict)
            info["endTime"], info["exitCode"], info["result"] = moment, 0, "success"
            task["previousState"], task["previousStateTransitionTime"] = (
                task["state"],
                task["stateTransitionTime"],
            )
            task["state"], task["stateTransitionTime"] = "completed", moment
            task["eTag"], task["lastModified"] = new_etag(), moment
            text = orjson.dumps(task).decode()
            connection.execute(insert.format("tasks"), ("job", task_id, text))
            texts[task_id] = text
        node["runningTasksCount"], node["totalTasksRun"] = 0, int(str(node["totalTasksRun"])) + len(ids)
        connection.execute(insert.format("nodes"), ("pool4", "n1", orjson.dumps(node).decode()))
        connection.execute("COMMIT")
    spent = time.process_time() - started
    sender.close()
    receiver.close()
    connection.close()
    return spent * 1e6 / TASKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="alternated rounds of each side")
    arguments = parser.parse_args()
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    print(f"machine: {os.cpu_count()} CPUs, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="batchrun-bench-") as folder:
        state = Path(folder)
        azurite, endpoint = start_azurite(tools, state / "azurite")
        try:
            (state / "run").mkdir()
            emulator = Emulator(state / "run", endpoint, cap=16)
            emulator.start()
            try:
                make_pool(emulator.client(), "pool4", 4)
                run_on_emulator(emulator, "pool4", "warm", ["/bin/true"], 100)
                busiest: list[float] = []
                others: list[float] = []
                straight: list[float] = []
                for number in range(arguments.rounds):
                    thread, rest = emulator_round(emulator, number)
                    busiest.append(thread)
                    others.append(rest)
                    straight.append(bookkeeping_round(state, number))
            finally:
                emulator.stop()
        finally:
            stop_process(azurite)
    thread, rest, floor = (statistics.median(values) for values in (busiest, others, straight))
    print(f"{TASKS} x /bin/true on 4 slots, CPU a task (median of {arguments.rounds} rounds):")
    print(f"  the emulator's busiest thread (records runs, starts the next): {thread:.0f} us")
    print(f"  its other threads (the adds, the polls, the scheduler's pass): {rest:.0f} us")
    print(
        f"  the same bookkeeping written straight: {floor:.0f} us (the busiest thread: {thread / floor:.1f}x)"
    )


if __name__ == "__main__":
    main()
