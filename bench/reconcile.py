"""Reconciler benchmark against a fresh local target, each figure side by side with the wire-level floor.

1. Fresh apply of N tasks (default 10,000) through the Python API, vs ``addtaskcollection`` with plain JSON
   bodies, 100 per request, 8 requests at a time, into another job. Goal: within 1.1x.
2. No-change plan of that job, vs reading the same ``$select`` pages as plain JSON. Goal: within 1.3x and
   under 30 requests; the peak RSS of the process is printed too.

The pool has no nodes, so no task runs and the emulator only stores them. Usage:

    .venv/bin/python bench/reconcile.py [--tasks 10000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import batchrun  # noqa: E402
from batchrun.model import JobSpec, PoolSpec, TaskSpec, Workload  # noqa: E402
from batchrun.plan.bodies import task_body  # noqa: E402
from batchrun.plan.build import contents_of  # noqa: E402
from batchrun.plan.task_identity import task_graph  # noqa: E402

THREADS = 8
IMAGE = {
    "imageReference": {
        "publisher": "canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    },
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}


def requests_snapshot(client: Any) -> dict[str, Any]:
    from azure.core.rest import HttpRequest

    response = client.send_request(HttpRequest("GET", "/_emulator/requests"))
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def reset_requests(client: Any) -> None:
    from azure.core.rest import HttpRequest

    client.send_request(HttpRequest("POST", "/_emulator/requests/reset")).raise_for_status()


def workload(name: str, count: int) -> Workload:
    tasks = tuple(
        TaskSpec(f"task-{i:06d}", {"commandLine": f"/bin/echo {i}", "constraints": {"maxTaskRetryCount": 1}})
        for i in range(count)
    )
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


def failure_logs_url(local: Any) -> str:
    """A write SAS of the state container, signed with the bare storage SDK: batchrun gives every task an
    ``outputFiles`` entry that keeps its stdout/stderr there if it fails, so the floor's bodies carry one
    too."""
    from datetime import datetime, timedelta, timezone

    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    expiry = datetime.now(timezone.utc) + timedelta(days=1)
    sas = generate_container_sas(
        local.storage_account_name,
        "batchrun-state",
        account_key=local.storage_account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=expiry,
    )
    return f"{local.blob_endpoint.rstrip('/')}/batchrun-state?{sas}"


def raw_create(client: Any, wl: Workload, job_id: str, logs_url: str) -> tuple[float, float]:
    """The floor: addtaskcollection with plain JSON bodies, 100 per request, THREADS requests at a time.

    The bodies are the ones batchrun sends for the same tasks: the definition, the digest setting and the
    failure-logs ``outputFiles`` entry."""
    from concurrent.futures import ThreadPoolExecutor

    from azure.batch import models

    from batchrun.azure.rest import post_json

    assert wl.job is not None and wl.pool is not None
    client.create_job(models.BatchJobCreateOptions({"id": job_id, "poolInfo": {"poolId": wl.pool.id}}))
    graph = task_graph(wl.job, {}, None, contents_of(wl, [], []))
    bodies = [task_body(t, graph.digests[t.id.lower()]) for t in wl.job.tasks]
    for body in bodies:
        body["outputFiles"] = [
            {
                "filePattern": "../std*.txt",
                "destination": {
                    "container": {"containerUrl": logs_url, "path": f"{wl.name}/logs/{body['id']}"}
                },
                "uploadOptions": {"uploadCondition": "taskfailure"},
            }
        ]
    chunks = [bodies[i : i + 100] for i in range(0, len(bodies), 100)]
    started = time.perf_counter()
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(
            pool.map(lambda c: post_json(client, f"/jobs/{job_id}/addtaskcollection", {"value": c}), chunks)
        )
    ended = time.perf_counter()
    assert all(item["status"] == "success" for a in answers for item in a["value"])
    return ended - started, 0.0


def raw_list(client: Any, job_id: str) -> tuple[float, int]:
    """The floor: the same pages a no-change plan reads ($select, 1,000 per page), as plain JSON."""
    from batchrun.azure.rest import list_json

    started = time.perf_counter()
    select = {"$select": "id,state,environmentSettings,constraints,executionInfo"}
    count = sum(1 for _ in list_json(client, f"/jobs/{job_id}/tasks", select))
    return time.perf_counter() - started, count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    from batchrun.local.target import start, stop
    from batchrun.target import target_from_local

    home = Path(tempfile.mkdtemp(prefix="batchrun-bench-"))
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    local = start(home, tools_dir=tools)
    try:
        target = target_from_local(local)
        client = BatchClient(local.batch_url, AzureNamedKeyCredential(local.account_name, local.account_key))
        logs_url = failure_logs_url(local)
        apply_times, raw_times, plan_times, list_times, plan_requests = [], [], [], [], []
        for round_number in range(args.rounds):
            wl = workload(f"bench{round_number}", args.tasks)
            raw_total, _ = raw_create(client, wl, f"bench{round_number}-raw", logs_url)
            raw_times.append(raw_total)

            started = time.perf_counter()
            batchrun.apply(wl, target=target)
            apply_times.append(time.perf_counter() - started)

            reset_requests(client)
            started = time.perf_counter()
            plan = batchrun.plan(wl, target=target)
            plan_times.append(time.perf_counter() - started)
            plan_requests.append(requests_snapshot(client)["total"])
            assert not plan.has_changes, "a fresh apply must converge"

            elapsed, count = raw_list(client, f"{wl.job.id}" if wl.job else "")
            assert count == args.tasks
            list_times.append(elapsed)
            batchrun.destroy(replace(wl), target=target, confirm_replace=True)
            client.begin_delete_job(f"bench{round_number}-raw", polling_interval=1).result()

        def show(label: str, ours: list[float], base: list[float], target_ratio: float) -> None:
            mine, theirs = statistics.median(ours), statistics.median(base)
            ratio = mine / theirs
            verdict = "OK" if ratio <= target_ratio else "over target"
            print(
                f"{label}: batchrun {mine:.2f} s vs baseline {theirs:.2f} s -> {ratio:.2f}x "
                f"(target <= {target_ratio}x: {verdict})"
            )

        print(f"tasks: {args.tasks}, rounds: {args.rounds}, threads: {THREADS}")
        show(
            "fresh apply vs addtaskcollection with plain JSON (100/request, 8 threads)",
            apply_times,
            raw_times,
            1.1,
        )
        show("no-change plan vs the same $select pages as plain JSON", plan_times, list_times, 1.3)
        print(f"no-change plan requests: {max(plan_requests)} (target < 30 at 10,000 tasks)")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak:.0f} MiB (holds the workload, plans and the raw SDK models)")
        client.close()
    finally:
        stop(home)
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
