"""Reconciler benchmark against a fresh local target, each figure side by side with the wire-level floor.

1. Fresh apply of N tasks (default 10,000) through the Python API, vs the same work on the wire: creating
   another pool and job, then ``addtaskcollection`` with plain JSON bodies (the bodies batchrun sends), 100
   per request, 8 requests at a time. Goal: within 1.1x (within 1.3x at 1,000 tasks, where start-up counts).
2. No-change plan of that job, vs reading the same ``$select`` pages as plain JSON. Goal: within 1.3x and
   under 30 requests.
3. With ``--rss``: peak RSS of a process making the no-change plan (the workload loaded from a manifest
   whose ``foreach`` makes the same tasks; built in Python with its tasks in a tuple; or from a
   ``TaskFactory``), vs a process listing the same tasks with the bare SDK (``list_tasks``, the same
   ``$select``). Goal: within 1.5x.

Next to each apply and its floor, the CPU time the emulator and Azurite spent meanwhile (from
``/proc/<pid>/stat``, in clock ticks of 10 ms, so means over the rounds): on two cores, their CPU and the
client's share the machine, and the requests batchrun makes beyond the floor's cost on every side.

With ``--connection``, each round also applies the same tasks (under other names) through one
``batchrun.connect()`` made before the rounds, whose clients and HTTP connections stay warm from round to
round as the floor's client does; a ``batchrun.apply`` call makes its own. Reported next to the floor, no
goal of its own.

With ``--storage-latency-ms N``, batchrun's storage requests (the record of results, the apply lock) pass a
loopback proxy that holds each one N ms before Azurite sees it, as a storage account some way off would; the
floor makes no storage request.

The pool has no nodes, so no task runs and the emulator only stores them. Usage:

    .venv/bin/python bench/reconcile.py [--tasks 10000] [--rounds 3] [--rss] [--connection]
        [--storage-latency-ms 0]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from msgspec.structs import replace

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emulator_harness import own_cpu_seconds  # noqa: E402
from reconcile_floor import (  # noqa: E402
    THREADS,
    failure_logs_url,
    raw_create,
    raw_list,
    requests_snapshot,
    reset_requests,
)

import batchrun  # noqa: E402
from batchrun.model import JobSpec, PoolSpec, TaskFactory, TaskSpec, Workload  # noqa: E402

IMAGE = {
    "imageReference": {
        "publisher": "canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    },
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}


def bench_task(position: int) -> TaskSpec:
    return TaskSpec(
        f"task-{position:06d}",
        {"commandLine": f"/bin/echo {position}", "constraints": {"maxTaskRetryCount": 1}},
    )


def manifest_text(wl: Workload) -> str:
    """The bench's workload as a manifest whose one ``foreach`` entry expands to the same tasks as
    :func:`bench_task` (the pool as the workload has it: YAML reads JSON as it is)."""
    assert wl.pool is not None and wl.job is not None
    entry = {
        "id": "task-${i:06d}",
        "foreach": {"i": {"range": [0, len(wl.job.tasks) - 1]}},
        "commandLine": "/bin/echo ${i}",
        "constraints": {"maxTaskRetryCount": 1},
    }
    document = {
        "apiVersion": "batchrun/v1",
        "kind": "Workload",
        "metadata": {"name": wl.name},
        "pool": {"id": wl.pool.id, **wl.pool.properties},
        "job": {"id": wl.job.id, "tasks": [entry]},
    }
    return json.dumps(document, indent=2)


def workload(name: str, count: int, factory: bool = False) -> Workload:
    """The bench's workload: its tasks in a tuple, or (``factory``) made as they are read."""
    tasks = TaskFactory(count, bench_task) if factory else tuple(map(bench_task, range(count)))
    return Workload(
        name=name,
        manifest_path=Path(tempfile.gettempdir()) / f"{name}.yaml",
        digest=name,
        pool=PoolSpec(
            f"{name}-pool",
            {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE, "targetDedicatedNodes": 0},
        ),
        job=JobSpec(f"{name}-job", {"poolInfo": {"poolId": f"{name}-pool"}}, tasks),
    )


def delayed(url: str, seconds: float) -> str:
    """``url`` behind a loopback TCP proxy that holds what the client sends ``seconds`` before passing it on
    (answers go straight back): each request arrives that much later."""
    upstream = urlsplit(url)
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(source: socket.socket, sink: socket.socket, hold: float) -> None:
        with source, sink:
            try:
                while data := source.recv(65536):
                    time.sleep(hold)
                    sink.sendall(data)
            except OSError:
                return
            finally:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)

    def accept() -> None:
        while True:
            client, _ = listener.accept()
            server = socket.create_connection((upstream.hostname or "127.0.0.1", upstream.port or 80))
            for end in (client, server):
                end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=pipe, args=(client, server, seconds), daemon=True).start()
            threading.Thread(target=pipe, args=(server, client, 0.0), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return url.replace(f":{upstream.port}", f":{listener.getsockname()[1]}", 1)


def timed(action: Any) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - started, time.process_time() - cpu


def services_cpu(pids: tuple[int | None, int | None], action: Any) -> tuple[float, float, float, float]:
    """``timed(action)`` and the CPU the emulator and Azurite (``pids``) used meanwhile."""
    before = [own_cpu_seconds(pid) for pid in pids]
    wall, cpu = timed(action)
    emulator, azurite = (own_cpu_seconds(pid) - start for pid, start in zip(pids, before, strict=True))
    return wall, cpu, emulator, azurite


def one_round(
    client: Any,
    target: Any,
    wl: Workload,
    logs_url: str,
    floor_first: bool,
    pids: tuple[int | None, int | None] = (None, None),
    connection: Any = None,
) -> dict[str, Any]:
    """One fresh apply and one no-change plan, each next to its floor, the floor first or second
    (alternated across rounds, so load changes hit both alike); everything is deleted after. With a
    ``connection`` (``batchrun.connect()``), another fresh apply through it right after the first, of the same
    tasks under other names."""
    assert wl.job is not None and wl.pool is not None
    job_id, count = wl.job.id, len(wl.job.tasks)
    found: dict[str, Any] = {}

    def floor_list() -> None:
        elapsed, cpu, listed = raw_list(client, job_id)
        assert listed == count
        found["list"] = (elapsed, cpu)

    def floor_create() -> None:
        def create() -> None:  # the floor's own figures: raw_create times what it does itself
            found["create"] = raw_create(client, wl, "-raw", logs_url)

        found["create_services"] = services_cpu(pids, create)[2:]

    if floor_first:
        floor_create()
    applied = services_cpu(pids, lambda: batchrun.apply(wl, target=target))
    found["apply"], found["apply_services"] = applied[:2], applied[2:]
    sibling = workload(f"{wl.name}c", count) if connection is not None else None
    if sibling is not None:
        found["shared"] = timed(lambda: connection.apply(sibling))
    if not floor_first:
        floor_create()
    if floor_first:
        floor_list()
    reset_requests(client)
    found["plan"] = timed(lambda: batchrun.plan(wl, target=target))
    found["requests"] = (requests_snapshot(client)["total"], 0.0)
    if not floor_first:
        floor_list()
    assert not batchrun.plan(wl, target=target).has_changes, "a fresh apply must converge"
    batchrun.destroy(replace(wl), target=target, confirm_replace=True)
    if sibling is not None:
        connection.destroy(sibling, confirm_replace=True)
    client.begin_delete_job(f"{job_id}-raw", polling_interval=1).result()
    client.begin_delete_pool(f"{wl.pool.id}-raw", polling_interval=1).result()
    return found


def child(mode: str, home: Path, name: str, count: int) -> None:
    """In a child process: the no-change plan of the workload, or the bare SDK listing of its tasks; prints
    the peak RSS in MiB."""
    from batchrun.local.target import running_target
    from batchrun.target import target_from_local

    local = running_target(home)
    assert local is not None, "the local target is not running"
    held = 0.0  # MiB the workload holds before the plan: a caller's tuple of tasks
    if mode in ("plan", "plan-factory", "plan-manifest"):
        before = memory_mib("VmRSS")
        if mode == "plan-manifest":
            wl = batchrun.load(home / f"{name}.yaml")
        else:
            wl = workload(name, count, factory=mode == "plan-factory")
        held = memory_mib("VmRSS") - before
        assert not batchrun.plan(wl, target=target_from_local(local)).has_changes
    else:  # the floor holds no workload: it only lists the job's tasks
        from azure.batch import BatchClient
        from azure.core.credentials import AzureNamedKeyCredential

        client = BatchClient(local.batch_url, AzureNamedKeyCredential(local.account_name, local.account_key))
        select = ["id", "state", "environmentSettings", "constraints", "executionInfo"]
        listed = client.list_tasks(f"{name}-job", select=select, max_results=1000)
        assert sum(1 for _ in listed) == count
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child would report its parent's peak.
    print(held, memory_mib("VmHWM"))


def memory_mib(field: str) -> float:
    """A memory figure of this process from ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in MiB."""
    status = Path("/proc/self/status").read_text(encoding="ascii")
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith(f"{field}:"))) / 1024


def peak_rss(home: Path, client: Any, target: Any, count: int, rounds: int) -> None:
    """Peak RSS of a no-change plan vs the bare SDK listing, each a fresh process, alternated, medians."""
    wl = workload("rss", count)
    batchrun.apply(wl, target=target)
    (home / f"{wl.name}.yaml").write_text(manifest_text(wl), encoding="utf-8")
    peaks: dict[str, list[float]] = {"plan": [], "plan-factory": [], "plan-manifest": [], "list": []}
    tuples: list[float] = []  # what the caller's tuple of tasks holds, before the plan
    for _ in range(rounds):
        for mode, into in peaks.items():
            command = [sys.executable, __file__, "--child", mode, str(home), wl.name, str(count)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            held, peak = map(float, done.stdout.split()[-2:])
            into.append(peak)
            if mode == "plan":
                tuples.append(held)
    theirs = statistics.median(peaks["list"])
    built = {
        "plan-manifest": "loading the manifest (one foreach entry)",
        "plan-factory": "building the workload, its tasks from a TaskFactory,",
        "plan": "building the workload, its tasks in a tuple,",
    }
    for mode, how in built.items():
        ours = statistics.median(peaks[mode])
        verdict = "goal <= 1.5x: " + ("OK" if ours / theirs <= 1.5 else "over the goal")
        if mode == "plan":  # the tasks are the caller's own objects, made before batchrun is called
            verdict = (
                f"no goal of its own: the caller's tuple holds {statistics.median(tuples):.0f} MiB before "
                "the plan; the goal is for the tasks batchrun makes, the two rows above"
            )
        print(
            f"peak RSS, no-change plan of {count:,} tasks (a process {how} and planning): {ours:.0f} MiB "
            f"vs the bare SDK listing them: {theirs:.0f} MiB -> {ours / theirs:.2f}x "
            f"({verdict})"
        )
    batchrun.destroy(wl, target=target, confirm_replace=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rss", action="store_true", help="measure peak RSS instead of time")
    parser.add_argument(
        "--connection",
        action="store_true",
        help="also apply through one batchrun.connect() made before the rounds (its clients warm, as the "
        "floor's are)",
    )
    parser.add_argument(
        "--storage-latency-ms", type=float, default=0.0, help="hold batchrun's storage requests this long"
    )
    parser.add_argument("--child", nargs=4, metavar=("MODE", "HOME", "NAME", "TASKS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, home_text, name, count = args.child
        child(mode, Path(home_text), name, int(count))
        return

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from batchrun.local.target import start, status, stop
    from batchrun.target import target_from_local

    home = Path(tempfile.mkdtemp(prefix="batchrun-bench-"))
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    local = start(home, tools_dir=tools)
    try:
        target = target_from_local(local)
        if args.storage_latency_ms:
            target = replace(target, blob_url=delayed(target.blob_url, args.storage_latency_ms / 1000))
        client = BatchClient(local.batch_url, AzureNamedKeyCredential(local.account_name, local.account_key))
        if args.rss:
            peak_rss(home, client, target, args.tasks, args.rounds)
            return
        logs_url = failure_logs_url(local)
        running = status(home)
        pids = (running.emulator_pid, running.azurite_pid)
        services: dict[str, list[tuple[float, float]]] = {"apply": [], "create": []}
        applies: list[tuple[float, float]] = []
        raws: list[tuple[float, float]] = []
        plans: list[tuple[float, float]] = []
        lists: list[tuple[float, float]] = []
        plan_requests: list[int] = []
        shared: list[tuple[float, float]] = []
        connection = batchrun.connect(target) if args.connection else None
        for round_number in range(args.rounds):
            wl = workload(f"bench{round_number}", args.tasks)
            measured = one_round(client, target, wl, logs_url, round_number % 2 == 0, pids, connection)
            if "shared" in measured:
                shared.append(measured["shared"])
            services["apply"].append(measured["apply_services"])
            services["create"].append(measured["create_services"])
            applies.append(measured["apply"])
            raws.append(measured["create"])
            plans.append(measured["plan"])
            lists.append(measured["list"])
            plan_requests.append(int(measured["requests"][0]))
            print(
                f"round {round_number + 1}: apply {measured['apply'][0]:.2f} s, "
                f"floor {measured['create'][0]:.2f} s; plan {measured['plan'][0]:.2f} s, "
                f"floor {measured['list'][0]:.2f} s",
                flush=True,
            )

        def show(
            label: str,
            ours: list[tuple[float, float]],
            base: list[tuple[float, float]],
            goal: float | None,
            no_goal: str = "no goal for this size or with storage latency",
        ) -> None:
            mine, theirs = statistics.median(w for w, _ in ours), statistics.median(w for w, _ in base)
            mine_cpu, theirs_cpu = (
                statistics.median(c for _, c in ours),
                statistics.median(c for _, c in base),
            )
            ratio = mine / theirs
            if goal is None:
                judged = no_goal
            else:
                judged = f"goal <= {goal}x: " + ("OK" if ratio <= goal else "over the goal")
            print(
                f"{label}: batchrun {mine:.2f} s (CPU {mine_cpu:.2f} s) vs floor {theirs:.2f} s "
                f"(CPU {theirs_cpu:.2f} s) -> {ratio:.2f}x ({judged})"
            )

        print(
            f"tasks: {args.tasks}, rounds: {args.rounds}, threads: {THREADS}, "
            f"load: {os.getloadavg()[0]:.1f}, storage latency: {args.storage_latency_ms:g} ms"
        )
        # The goals: the apply at 10,000 tasks and at 1,000 (start-up cost), the no-change plan at
        # 10,000 and 100,000; none with storage some way off (the floor makes no storage request).
        remote = bool(args.storage_latency_ms)
        apply_goal = None if remote else 1.1 if args.tasks >= 10_000 else 1.3
        plan_goal = 1.3 if args.tasks >= 10_000 and not remote else None
        show(
            "fresh apply vs creating the pool, the job and addtaskcollection with plain JSON (100/request, "
            "8 threads)",
            applies,
            raws,
            apply_goal,
        )
        if shared:
            show(
                "fresh apply through one batchrun.connect() made before the rounds vs the same floor",
                shared,
                raws,
                None,
                "no goal of its own: the goal is batchrun.apply's, above",
            )
        mean_ms = {
            side: [1000 * statistics.mean(row[i] for row in rows) for i in (0, 1)]
            for side, rows in services.items()
        }
        print(
            "CPU of the emulator / Azurite meanwhile (means): batchrun's apply "
            f"{mean_ms['apply'][0]:.1f} / {mean_ms['apply'][1]:.1f} ms, the floor "
            f"{mean_ms['create'][0]:.1f} / {mean_ms['create'][1]:.1f} ms"
        )
        show("no-change plan vs the same $select pages as plain JSON", plans, lists, plan_goal)
        print(f"no-change plan requests: {max(plan_requests)} (target < 30 at 10,000 tasks)")
        client.close()
        if connection is not None:
            connection.close()
    finally:
        stop(home)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
