"""Job schedules, auto pools and job manager tasks, through raw REST and the SDK."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from azure.batch import BatchClient

from batchrun.emulator.scheduler.schedules import first_run, next_due
from tests.emulator.conftest import raw, vm, wait_until


def auto_pool(lifetime: str, nodes: int = 1, keep_alive: bool = False) -> dict[str, Any]:
    return {
        "autoPoolSpecification": {
            "autoPoolIdPrefix": "auto",
            "poolLifetimeOption": lifetime,
            "keepAlive": keep_alive,
            "pool": {
                "vmSize": "standard_d2s_v3",
                "virtualMachineConfiguration": vm(),
                "targetDedicatedNodes": nodes,
            },
        }
    }


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_recorded_schedule_sequence(client: BatchClient) -> None:
    """The calls of test_batch_job_schedules, with the state each one leaves."""
    body = {
        "id": "sched-rec",
        "schedule": {"startWindow": "PT01H00M00S", "recurrenceInterval": "P1D"},
        "jobSpecification": {
            "poolInfo": {"poolId": "pool_id"},
            "constraints": {"maxTaskRetryCount": 2},
            "onAllTasksComplete": "terminatejob",
        },
    }
    created = raw(client, "POST", "/jobschedules", body)
    assert created.status_code == 201
    assert created.headers["Location"].endswith("/jobschedules/sched-rec")
    got = raw(client, "GET", "/jobschedules/sched-rec").json()
    assert got["odata.metadata"].endswith("$metadata#jobschedules/@Element")
    assert got["schedule"] == {"startWindow": "PT1H", "recurrenceInterval": "P1D"}
    assert got["jobSpecification"]["constraints"]["maxTaskRetryCount"] == 2
    assert got["executionInfo"]["recentJob"]["id"] == "sched-rec:job-1"  # the first job runs at creation
    next_run = datetime.fromisoformat(got["executionInfo"]["nextRunTime"].replace("Z", "+00:00"))
    assert next_run - datetime.fromisoformat(got["creationTime"].replace("Z", "+00:00")) == timedelta(days=1)
    assert [s.id for s in client.list_job_schedules()] == ["sched-rec"]
    assert client.job_schedule_exists("sched-rec")
    assert [job.id for job in client.list_jobs_from_schedule("sched-rec")] == ["sched-rec:job-1"]
    assert raw(client, "POST", "/jobschedules/sched-rec/disable").status_code == 204
    assert client.get_job_schedule("sched-rec").state == "disabled"
    assert raw(client, "POST", "/jobschedules/sched-rec/enable").status_code == 204
    put = {
        "schedule": {"recurrenceInterval": "PT10H00M00S"},
        "jobSpecification": {"poolInfo": {"poolId": "pool_id"}},
    }
    assert raw(client, "PUT", "/jobschedules/sched-rec", put).status_code == 200
    replaced = raw(client, "GET", "/jobschedules/sched-rec").json()
    assert replaced["schedule"] == {"recurrenceInterval": "PT10H"}
    assert replaced["jobSpecification"]["onAllTasksComplete"] == "noaction"
    patch = {"schedule": {"recurrenceInterval": "PT05H00M00S"}}
    assert raw(client, "PATCH", "/jobschedules/sched-rec", patch).status_code == 200
    assert raw(client, "GET", "/jobschedules/sched-rec").json()["schedule"]["recurrenceInterval"] == "PT5H"
    assert raw(client, "POST", "/jobschedules/sched-rec/terminate").status_code == 202
    wait_until(lambda: client.get_job_schedule("sched-rec").state == "completed", 30, "schedule completed")
    assert client.get_job("sched-rec:job-1").state == "completed"
    assert raw(client, "DELETE", "/jobschedules/sched-rec").status_code == 202
    wait_until(lambda: raw(client, "GET", "/jobschedules/sched-rec").status_code == 404, 30, "schedule gone")
    assert raw(client, "GET", "/jobs/sched-rec:job-1").status_code == 404  # its jobs go with it


def test_schedule_waits_for_do_not_run_until_and_runs_its_job_manager_on_an_auto_pool(
    client: BatchClient,
) -> None:
    start = datetime.now(timezone.utc) + timedelta(seconds=4)
    body = {
        "id": "sched-later",
        "schedule": {"doNotRunUntil": iso(start)},
        "jobSpecification": {
            "poolInfo": auto_pool("jobschedule"),
            "jobManagerTask": {"id": "manager", "commandLine": "/bin/sh -c 'echo managed'"},
        },
    }
    assert raw(client, "POST", "/jobschedules", body).status_code == 201
    schedule = raw(client, "GET", "/jobschedules/sched-later").json()
    assert "recentJob" not in schedule["executionInfo"]  # not before doNotRunUntil
    wait_until(lambda: raw(client, "GET", "/jobs/sched-later:job-1").status_code == 200, 30, "the first job")
    job = client.get_job("sched-later:job-1")
    assert job.creation_time >= start
    pool_id = job.execution_info.pool_id
    assert pool_id.startswith("auto_")
    wait_until(lambda: client.get_job("sched-later:job-1").state == "completed", 60, "job completed")
    assert client.get_job("sched-later:job-1").execution_info.termination_reason == "JMComplete"
    manager = client.get_task("sched-later:job-1", "manager")
    assert manager.execution_info.result == "success"
    # No recurrence: the schedule completes with its only job, and its auto pool goes with it.
    wait_until(lambda: client.get_job_schedule("sched-later").state == "completed", 30, "schedule completed")
    assert client.get_job_schedule("sched-later").execution_info.end_time is not None
    wait_until(lambda: raw(client, "GET", f"/pools/{pool_id}").status_code == 404, 60, "auto pool deleted")


def test_auto_pool_with_job_lifetime_and_keep_alive(client: BatchClient) -> None:
    job = {"id": "auto-job", "poolInfo": auto_pool("job"), "onAllTasksComplete": "terminatejob"}
    assert raw(client, "POST", "/jobs", job).status_code == 201
    got = raw(client, "GET", "/jobs/auto-job").json()
    spec = got["poolInfo"]["autoPoolSpecification"]
    assert spec["keepAlive"] is False and spec["pool"]["taskSlotsPerNode"] == 1
    assert got["state"] == "active"  # an empty terminatejob job is not ended at once (recorded)
    pool_id = got["executionInfo"]["poolId"]
    assert raw(client, "POST", "/jobs/auto-job/tasks", {"id": "t", "commandLine": "true"}).status_code == 201
    wait_until(lambda: client.get_job("auto-job").state == "completed", 60, "job completed")
    wait_until(lambda: raw(client, "GET", f"/pools/{pool_id}").status_code == 404, 60, "auto pool deleted")
    kept = {
        "id": "auto-kept",
        "poolInfo": auto_pool("job", keep_alive=True),
        "onAllTasksComplete": "terminatejob",
    }
    assert raw(client, "POST", "/jobs", kept).status_code == 201
    kept_pool = client.get_job("auto-kept").execution_info.pool_id
    raw(client, "POST", "/jobs/auto-kept/tasks", {"id": "t", "commandLine": "true"})
    wait_until(lambda: client.get_job("auto-kept").state == "completed", 60, "job completed")
    assert client.get_pool(kept_pool).state == "active"  # keepAlive: the pool outlives its job


def test_bad_auto_pool_specifications_name_the_property(client: BatchClient) -> None:
    for spec, name in (
        ({"poolLifetimeOption": "job"}, "poolInfo.autoPoolSpecification.pool"),
        ({"poolLifetimeOption": "forever", "pool": {}}, "poolInfo.autoPoolSpecification.poolLifetimeOption"),
        (
            {
                "poolLifetimeOption": "job",
                "pool": {"vmSize": "s", "cloudServiceConfiguration": {"osFamily": "5"}},
            },
            "poolInfo.autoPoolSpecification.pool.cloudServiceConfiguration",
        ),
        (
            {
                "poolLifetimeOption": "jobschedule",
                "pool": {"vmSize": "s", "virtualMachineConfiguration": vm()},
            },
            "poolInfo.autoPoolSpecification.poolLifetimeOption",
        ),
    ):
        response = raw(
            client, "POST", "/jobs", {"id": "bad-auto", "poolInfo": {"autoPoolSpecification": spec}}
        )
        assert response.status_code == 400, response.text()
        values = {item["key"]: item["value"] for item in response.json()["values"]}
        assert values["PropertyName"] == name


def test_recurrence_rules() -> None:
    created = datetime(2025, 1, 1, tzinfo=timezone.utc)
    later = {"schedule": {"doNotRunUntil": "2025-01-02T00:00:00Z", "recurrenceInterval": "PT12H"}}
    assert first_run(later, created) == datetime(2025, 1, 2, tzinfo=timezone.utc)
    assert next_due(later, datetime(2025, 1, 2, tzinfo=timezone.utc)) == datetime(
        2025, 1, 2, 12, tzinfo=timezone.utc
    )
    bounded = {"schedule": {"recurrenceInterval": "P1D", "doNotRunAfter": "2025-01-02T12:00:00Z"}}
    assert next_due(bounded, created) == datetime(2025, 1, 2, tzinfo=timezone.utc)
    assert next_due(bounded, datetime(2025, 1, 2, tzinfo=timezone.utc)) is None
    assert next_due({"schedule": {}}, created) is None


def test_an_exclusive_job_manager_has_its_node_to_itself(client: BatchClient) -> None:
    pool = {
        "id": "jm-pool",
        "vmSize": "s",
        "virtualMachineConfiguration": vm(),
        "targetDedicatedNodes": 1,
        "taskSlotsPerNode": 2,
    }
    assert raw(client, "POST", "/pools", pool).status_code == 201
    job = {
        "id": "jm-job",
        "poolInfo": {"poolId": "jm-pool"},
        "jobManagerTask": {
            "id": "manager",
            "commandLine": "/bin/sh -c 'sleep 1'",
            "killJobOnCompletion": False,
        },
    }
    assert raw(client, "POST", "/jobs", job).status_code == 201
    assert raw(client, "GET", "/jobs/jm-job").json()["jobManagerTask"]["runExclusive"] is True
    assert (
        raw(client, "POST", "/jobs/jm-job/tasks", {"id": "worker", "commandLine": "true"}).status_code == 201
    )
    wait_until(lambda: client.get_task("jm-job", "worker").state == "completed", 60, "worker done")
    manager = client.get_task("jm-job", "manager")
    worker = client.get_task("jm-job", "worker")
    assert manager.execution_info.end_time <= worker.execution_info.start_time  # never side by side
    assert client.get_job("jm-job").state == "active"  # killJobOnCompletion false: the job goes on
