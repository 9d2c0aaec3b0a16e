"""The reconciler bench's floors: the same work as batchrun's on the wire, through the SDK's pipeline with
plain JSON bodies (used by ``bench/reconcile.py``), and the emulator's request counters."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from batchrun.model import Workload  # noqa: E402
from batchrun.plan.bodies import task_body  # noqa: E402
from batchrun.plan.build import contents_of  # noqa: E402
from batchrun.plan.task_identity import task_graph  # noqa: E402

THREADS = 8


def requests_snapshot(client: Any) -> dict[str, Any]:
    from azure.core.rest import HttpRequest

    response = client.send_request(HttpRequest("GET", "/_emulator/requests"))
    response.raise_for_status()
    data: dict[str, Any] = response.json()
    return data


def reset_requests(client: Any) -> None:
    from azure.core.rest import HttpRequest

    client.send_request(HttpRequest("POST", "/_emulator/requests/reset")).raise_for_status()


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


def raw_create(client: Any, wl: Workload, suffix: str, logs_url: str) -> tuple[float, float]:
    """The floor: the pool and the job created, then addtaskcollection with plain JSON bodies, 100 per
    request, THREADS requests at a time. The bodies are the ones batchrun sends for the same tasks: the
    definition, the digest setting and the failure-logs ``outputFiles`` entry. Returns wall and CPU time."""
    from concurrent.futures import ThreadPoolExecutor

    from batchrun.azure.rest import post_json

    assert wl.job is not None and wl.pool is not None
    pool_id, job_id = f"{wl.pool.id}{suffix}", f"{wl.job.id}{suffix}"
    started, cpu = time.perf_counter(), time.process_time()
    post_json(client, "/pools", {"id": pool_id, **wl.pool.properties})
    post_json(client, "/jobs", {"id": job_id, "poolInfo": {"poolId": pool_id}})
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
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(
            pool.map(lambda c: post_json(client, f"/jobs/{job_id}/addtaskcollection", {"value": c}), chunks)
        )
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert all(item["status"] == "success" for a in answers for item in a["value"])
    return wall, cpu


def raw_list(client: Any, job_id: str) -> tuple[float, float, int]:
    """The floor: the same pages a no-change plan reads ($select, 1,000 per page), as plain JSON, one page
    after the other through the SDK's pipeline, each body parsed once (streamed: the pipeline's own parse,
    made for the SDK's models, is left out)."""
    from azure.core.rest import HttpRequest

    started, cpu = time.perf_counter(), time.process_time()
    query = {
        "api-version": str(client._config.api_version),
        "maxresults": "1000",
        "$select": "id,state,environmentSettings,constraints,executionInfo",
    }
    request: HttpRequest | None = HttpRequest("GET", f"/jobs/{job_id}/tasks", params=query)
    count = 0
    while request is not None:
        response = client.send_request(request, stream=True)
        response.raise_for_status()
        page = json.loads(response.read())
        count += len(page.get("value") or ())
        link = page.get("odata.nextLink")
        request = HttpRequest("GET", link) if link else None
    return time.perf_counter() - started, time.process_time() - cpu, count
