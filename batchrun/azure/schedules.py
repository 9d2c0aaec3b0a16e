"""Writes of a scheduled workload's Batch job schedule, as plain JSON through the SDK's pipeline.

The schedule's body comes from the plan (:mod:`batchrun.plan.decide_schedule`); the job manager task that adds
the tasks to each run's job is put in here, with the task bodies the executor made (their SAS URLs are minted
at apply time and never part of the plan).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from azure.batch import BatchClient
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from batchrun.azure.failures import translated
from batchrun.azure.job_manager import manager_task
from batchrun.azure.rest import get_json, metadata_of, send_json
from batchrun.errors import ApplyError
from batchrun.plan.live import DIGEST_KEY, WORKLOAD_KEY

DELETE_WAIT_SECONDS = 300


def schedule_body(
    body: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]], extra_metadata: Mapping[str, str]
) -> dict[str, Any]:
    """The full job schedule body: the plan's, with the job manager task and batchrun's extra marks."""
    schedule_id = str(body["id"])
    full = dict(body)
    specification = dict(full["jobSpecification"])
    specification["jobManagerTask"] = manager_task(tasks, schedule_id)
    full["jobSpecification"] = specification
    full["metadata"] = [
        *full.get("metadata", ()),
        *({"name": k, "value": v} for k, v in extra_metadata.items()),
    ]
    return full


def put_schedule(batch: BatchClient, workload: str, body: Mapping[str, Any], create: bool) -> None:
    """Create the schedule, or replace its schedule, job specification and metadata (PUT)."""
    schedule_id = str(body["id"])
    path = f"/jobschedules/{quote(schedule_id, safe='')}"
    with translated(f"{'creating' if create else 'updating'} jobschedule/{schedule_id}"):
        if not create:
            send_json(batch, "PUT", path, {k: v for k, v in body.items() if k != "id"})
            return
        try:
            send_json(batch, "POST", "/jobschedules", body)
        except ResourceExistsError:
            live = metadata_of(get_json(batch, path).get("metadata"))
            wanted = metadata_of(body.get("metadata"))
            if live.get(WORKLOAD_KEY) != workload or live.get(DIGEST_KEY) != wanted.get(DIGEST_KEY):
                raise ApplyError(
                    f"jobschedule/{schedule_id}: a job schedule with this id appeared that this apply did "
                    "not create (another manifest or another apply); run plan again to see it."
                ) from None


def delete_schedule(batch: BatchClient, schedule_id: str, poll_seconds: float) -> None:
    """Delete the schedule (Batch deletes its jobs with it) and wait until it is gone."""
    with translated(f"deleting jobschedule/{schedule_id}"):
        try:
            poller = batch.begin_delete_job_schedule(schedule_id, polling_interval=max(1, int(poll_seconds)))
        except ResourceNotFoundError:
            return
        poller.result(timeout=DELETE_WAIT_SECONDS)
        if not poller.done():
            raise ApplyError(
                f"jobschedule/{schedule_id}: still deleting after {DELETE_WAIT_SECONDS} s; "
                "run apply again later."
            )
