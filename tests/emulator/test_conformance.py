"""Wire conformance: the official REST samples' requests are accepted, responses have the samples' shapes and
deserialize into the SDK's models, and status/error codes follow Batch."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.batch.models import _models as sdk_models
from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.rest import HttpRequest

from tests.emulator.conftest import Emulator, raw, vm, wait_until

SAMPLES = Path("/work/shared/batch-api-examples")


def sample(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SAMPLES / f"{name}.json").read_text())
    return data


def sample_body(name: str) -> Any:
    return next(iter(sample(name)["responses"].values())).get("body")


def rest_names(model: type) -> set[str]:
    with contextlib.suppress(TypeError):
        model()
    return {field._rest_name for field in model._attr_to_rest_field.values()}


def assert_shape(ours: Any, golden: Any, where: str = "$") -> None:
    """Same JSON types for every key both have, recursively (lists: compared on their first items)."""
    if isinstance(golden, dict):
        assert isinstance(ours, dict), f"{where}: expected an object"
        for key in ours.keys() & golden.keys():
            assert_shape(ours[key], golden[key], f"{where}.{key}")
    elif isinstance(golden, list):
        assert isinstance(ours, list), f"{where}: expected a list"
        if ours and golden:
            assert_shape(ours[0], golden[0], f"{where}[0]")
    elif isinstance(golden, bool):
        assert isinstance(ours, bool), f"{where}: expected a boolean, got {ours!r}"
    elif isinstance(golden, (int, float)):
        assert isinstance(ours, (int, float)) and not isinstance(ours, bool), f"{where}: expected a number"
    elif isinstance(golden, str):
        assert isinstance(ours, str), f"{where}: expected a string, got {ours!r}"


def assert_known_fields(body: dict[str, Any], model: type, where: str = "$") -> None:
    # odata.metadata leads every recorded body; certificateReferences is in every recorded pool (azure-batch
    # 15.1 no longer models either).
    unknown = set(body) - rest_names(model) - {"odata.metadata", "certificateReferences"}
    assert not unknown, f"{where}: fields the SDK model {model.__name__} does not know: {unknown}"


@pytest.fixture(scope="module")
def finished(client: BatchClient) -> dict[str, Any]:
    """A pool with one node, a job and one completed task that wrote a file in wd."""
    assert (
        raw(
            client,
            "POST",
            "/pools",
            {
                "id": "cf-pool",
                "vmSize": "standard_d2",
                "virtualMachineConfiguration": vm(),
                "targetDedicatedNodes": 1,
                "startTask": {"commandLine": "/bin/true"},
            },
        ).status_code
        == 201
    )
    assert (
        raw(client, "POST", "/jobs", {"id": "cf-job", "poolInfo": {"poolId": "cf-pool"}}).status_code == 201
    )
    assert (
        raw(
            client,
            "POST",
            "/jobs/cf-job/tasks",
            {
                "id": "cf-task",
                "commandLine": "/bin/sh -c 'mkdir -p sub; printf 0123456789 > \"sub/a b.txt\"; echo out'",
            },
        ).status_code
        == 201
    )
    wait_until(
        lambda: client.get_task("cf-job", "cf-task").state == models.BatchTaskState.COMPLETED,
        60,
        "the conformance task",
    )
    return {"pool": "cf-pool", "job": "cf-job", "task": "cf-task"}


# ---- official request bodies are accepted
def test_sample_pool_create_request_is_accepted(client: BatchClient) -> None:
    body = sample("Pools_CreatePool_VirtualMachineConfigurationWithExtensions")["parameters"]["pool"]
    body = {**body, "targetDedicatedNodes": 1, "targetLowPriorityNodes": 0}
    response = raw(client, "POST", "/pools", body)
    assert response.status_code == 201
    assert response.headers["ETag"] and response.headers["Last-Modified"]
    assert response.headers["DataServiceId"].endswith("/pools/pool2")
    # Recorded real responses carry Location on 201 (test_batch_job_schedules, test_batch_jobs).
    assert response.headers["Location"] == response.headers["DataServiceId"]
    pool = raw(client, "GET", "/pools/pool2").json()
    assert pool["virtualMachineConfiguration"]["extensions"][0]["name"] == "batchextension1"
    client.begin_delete_pool("pool2", polling_interval=0).result()


def test_sample_pool_operations(client: BatchClient, finished: dict[str, Any]) -> None:
    body = sample("Pools_ReplacePoolProperties")["parameters"]["pool"]
    assert raw(client, "POST", "/pools/cf-pool/updateproperties", body).status_code == 204
    assert client.get_pool("cf-pool").start_task.command_line == "/bin/bash -c 'echo start task'"
    resize = sample("Pools_ResizePool")["parameters"]["resizeOptions"]
    assert raw(client, "POST", "/pools/cf-pool/resize", resize).status_code == 202
    wait_until(
        lambda: client.get_pool("cf-pool").allocation_state == models.AllocationState.STEADY, 30, "steady"
    )


def test_sample_job_and_task_requests(client: BatchClient, finished: dict[str, Any]) -> None:
    job = sample("Jobs_CreateJob_Complex")["parameters"]["job"]
    # The whole sample, auto pool and job manager task included, is accepted.
    response = raw(client, "POST", "/jobs", {**job, "id": "jobIdAuto"})
    assert response.status_code == 201, response.text()
    auto_job = client.get_job("jobIdAuto")
    assert auto_job.execution_info.pool_id.startswith("mypool_")
    assert client.get_pool(auto_job.execution_info.pool_id).target_dedicated_nodes == 3
    assert client.get_task("jobIdAuto", "taskId").command_line == "myprogram.exe"
    client.begin_delete_job("jobIdAuto", polling_interval=0).result()
    without_manager = {key: value for key, value in job.items() if key != "jobManagerTask"}
    without_manager["poolInfo"] = {"poolId": "cf-pool"}
    without_manager.pop("jobPreparationTask", None)
    without_manager.pop("jobReleaseTask", None)
    assert raw(client, "POST", "/jobs", without_manager).status_code == 201
    update = sample("Jobs_UpdateJob")["parameters"]["job"]
    update = {**update, "poolInfo": {"poolId": "cf-pool"}}
    assert raw(client, "PATCH", "/jobs/jobId", update).status_code == 200
    assert client.get_job("jobId").priority == 100
    task = sample("Tasks_CreateTask_Basic")["parameters"]["task"]
    assert raw(client, "POST", "/jobs/jobId/tasks", task).status_code == 201
    collection = sample("Tasks_CreateTaskCollection_Complex")["parameters"]["taskCollection"]
    response = raw(client, "POST", "/jobs/jobId/addtaskcollection", collection)
    assert response.status_code == 200
    results = {entry["taskId"]: entry for entry in response.json()["value"]}
    assert results["simple3"]["status"] == "success"
    assert_shape(results["simple3"], sample_body("Tasks_CreateTaskCollection_Complex")["value"][0])
    assert set(results["simple3"]) == set(sample_body("Tasks_CreateTaskCollection_Complex")["value"][0])
    # Multi-instance tasks cannot be emulated on one machine: a per-task client error naming the property.
    assert results["complex1"]["status"] == "clienterror"
    assert results["complex1"]["error"]["code"] == "UnsupportedProperty"
    client.begin_terminate_job(
        "jobId", sdk_models.BatchJobTerminateOptions(termination_reason="done"), polling_interval=0
    ).result()
    assert client.get_job("jobId").execution_info.termination_reason == "done"


def test_sample_enable_autoscale(client: BatchClient) -> None:
    assert (
        raw(
            client, "POST", "/pools", {"id": "cf-auto", "vmSize": "s", "virtualMachineConfiguration": vm()}
        ).status_code
        == 201
    )
    body = sample("Pools_EnablePoolAutoscale")["parameters"]["enableAutoScaleOptions"]
    assert raw(client, "POST", "/pools/cf-auto/enableautoscale", body).status_code == 200
    pool = client.get_pool("cf-auto")
    assert pool.enable_auto_scale is True
    assert pool.auto_scale_run is not None and "$TargetDedicatedNodes=0" in pool.auto_scale_run.results


# ---- response shapes match the samples and the SDK models
def test_pool_shapes(client: BatchClient, finished: dict[str, Any]) -> None:
    body = raw(client, "GET", "/pools/cf-pool").json()
    golden = sample_body("Pools_GetPool_Basic")
    assert_shape(body, golden)
    assert_known_fields(body, sdk_models.BatchPool)
    missing = set(golden) - set(body)
    assert missing <= set(), f"fields of the sample the emulator does not return: {missing}"
    listed = raw(client, "GET", "/pools").json()
    assert_shape(listed, sample_body("Pools_ListPools_Basic"))
    pool = client.get_pool("cf-pool")
    assert pool.id == "cf-pool" and pool.state == models.BatchPoolState.ACTIVE


def test_node_shapes(client: BatchClient, finished: dict[str, Any]) -> None:
    listed = raw(client, "GET", "/pools/cf-pool/nodes").json()
    assert_shape(listed, sample_body("Nodes_ListNodes"))
    node_id = listed["value"][0]["id"]
    body = raw(client, "GET", f"/pools/cf-pool/nodes/{node_id}").json()
    golden = sample_body("Nodes_GetNode")
    assert_shape(body, golden)
    assert_known_fields(body, sdk_models.BatchNode)
    assert set(golden) - set(body) == set()
    assert client.get_node("cf-pool", node_id).state in (
        models.BatchNodeState.IDLE,
        models.BatchNodeState.RUNNING,
    )


def test_job_shapes(client: BatchClient, finished: dict[str, Any]) -> None:
    body = raw(client, "GET", "/jobs/cf-job").json()
    golden = sample_body("Jobs_GetJob")
    assert_shape(body, golden)
    assert_known_fields(body, sdk_models.BatchJob)
    # previousState* and endTime appear only after a transition / completion.
    assert set(golden) - set(body) <= {"previousState", "previousStateTransitionTime"}
    counts = raw(client, "GET", "/jobs/cf-job/taskcounts").json()
    assert set(counts) == {"taskCounts", "taskSlotCounts"}
    assert set(counts["taskCounts"]) == rest_names(sdk_models.BatchTaskCounts)


def test_task_shapes(client: BatchClient, finished: dict[str, Any]) -> None:
    listed = raw(client, "GET", "/jobs/cf-job/tasks").json()
    golden = sample_body("Tasks_ListTasks")
    assert_shape(listed, golden)
    body = listed["value"][0]
    assert_known_fields(body, sdk_models.BatchTask)
    assert set(golden["value"][0]) - set(body) <= {"userIdentity"}
    assert_known_fields(body["executionInfo"], sdk_models.BatchTaskExecutionInfo)
    assert_known_fields(body["nodeInfo"], sdk_models.BatchNodeInfo)
    task = client.get_task("cf-job", "cf-task")
    assert task.execution_info.result == models.BatchTaskExecutionResult.SUCCESS


def test_task_file_shapes_and_range(client: BatchClient, finished: dict[str, Any]) -> None:
    listed = raw(client, "GET", "/jobs/cf-job/tasks/cf-task/files?recursive=true").json()
    assert_shape(listed, sample_body("Tasks_ListTaskFiles"))
    names = {entry["name"] for entry in listed["value"]}
    assert "wd/sub/a b.txt" in names
    entry = next(entry for entry in listed["value"] if entry["name"] == "wd/sub/a b.txt")
    assert entry["properties"]["contentLength"] == "10"
    top = {entry["name"] for entry in raw(client, "GET", "/jobs/cf-job/tasks/cf-task/files").json()["value"]}
    assert top == {"stdout.txt", "stderr.txt", "wd"}
    head = raw(client, "HEAD", "/jobs/cf-job/tasks/cf-task/files/wd%2Fsub%2Fa%20b.txt")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == "10"
    assert head.headers["ocp-batch-file-isdirectory"] == "false"
    assert {"ocp-creation-time", "ocp-batch-file-url", "ocp-batch-file-mode", "last-modified"} <= {
        name.lower() for name in head.headers
    }
    part = b"".join(client.download_task_file("cf-job", "cf-task", "wd/sub/a b.txt", ocp_range="bytes=2-5"))
    assert part == b"2345"
    with pytest.raises(ResourceNotFoundError):
        b"".join(client.download_task_file("cf-job", "cf-task", "wd/missing.txt"))
    assert raw(client, "GET", "/jobs/cf-job/tasks/cf-task/files/..%2F..%2F..%2Fshared").status_code == 404


def test_subtasks_and_applications(client: BatchClient, finished: dict[str, Any]) -> None:
    assert raw(client, "GET", "/jobs/cf-job/tasks/cf-task/subtasksinfo").json() == {"value": []}
    assert list(client.list_subtasks("cf-job", "cf-task")) == []
    assert list(client.list_applications()) == []
    with pytest.raises(ResourceNotFoundError):
        client.get_application("nope")


# ---- status and error codes
def error_of(response: Any) -> tuple[int, str]:
    body = response.json()
    assert set(body) <= {"odata.metadata", "code", "message", "values"}
    assert body["message"]["lang"] == "en-US" and body["message"]["value"]
    return response.status_code, body["code"]


def test_not_found_and_exists_codes(client: BatchClient, finished: dict[str, Any]) -> None:
    assert error_of(raw(client, "GET", "/pools/none")) == (404, "PoolNotFound")
    assert error_of(raw(client, "GET", "/jobs/none")) == (404, "JobNotFound")
    assert error_of(raw(client, "GET", "/jobs/cf-job/tasks/none")) == (404, "TaskNotFound")
    assert error_of(raw(client, "GET", "/pools/cf-pool/nodes/none")) == (404, "NodeNotFound")
    assert error_of(
        raw(client, "POST", "/pools", {"id": "cf-pool", "vmSize": "s", "virtualMachineConfiguration": vm()})
    ) == (409, "PoolExists")
    assert error_of(raw(client, "POST", "/jobs", {"id": "cf-job", "poolInfo": {"poolId": "x"}})) == (
        409,
        "JobExists",
    )
    assert error_of(raw(client, "POST", "/jobs/cf-job/tasks", {"id": "cf-task", "commandLine": "x"})) == (
        409,
        "TaskExists",
    )
    with pytest.raises(ResourceNotFoundError):
        client.pool_exists("none")  # the SDK raises on 404 rather than returning False
    assert client.pool_exists("cf-pool") is True
    with pytest.raises(ResourceExistsError):
        client.create_job(
            models.BatchJobCreateOptions(id="cf-job", pool_info=models.BatchPoolInfo(pool_id="x"))
        )


def test_validation_errors_name_the_property(client: BatchClient, finished: dict[str, Any]) -> None:
    response = raw(client, "POST", "/jobs", {"id": "v1", "poolInfo": {"poolId": "p"}, "colour": "blue"})
    assert error_of(response) == (400, "UnsupportedProperty")
    assert {"key": "PropertyName", "value": "colour"} in response.json()["values"]
    response = raw(client, "POST", "/jobs/cf-job/tasks", {"id": "v2"})
    assert error_of(response) == (400, "MissingRequiredProperty")
    assert {"key": "PropertyName", "value": "commandLine"} in response.json()["values"]
    assert error_of(raw(client, "POST", "/jobs/cf-job/tasks", {"id": "bad id!", "commandLine": "x"})) == (
        400,
        "InvalidPropertyValue",
    )
    response = raw(
        client,
        "POST",
        "/jobs/cf-job/tasks",
        {"id": "v3", "commandLine": "x", "dependsOn": {"taskIds": ["cf-task"]}},
    )
    assert error_of(response) == (400, "TaskDependenciesNotSpecifiedOnJob")
    response = raw(
        client,
        "POST",
        "/jobs/cf-job/addtaskcollection",
        {"value": [{"id": f"many{i}", "commandLine": "x"} for i in range(101)]},
    )
    assert error_of(response) == (413, "RequestBodyTooLarge")
    assert error_of(raw(client, "POST", "/jobs", b"{not json")) == (400, "InvalidRequestBody")
    with pytest.raises(HttpResponseError) as raised:
        client.create_task(
            "cf-job", models.BatchTaskCreateOptions(id="v4", command_line="x", required_slots=0)
        )
    assert raised.value.status_code == 400


def test_addtaskcollection_reports_task_exists_as_clienterror(
    client: BatchClient, finished: dict[str, Any]
) -> None:
    response = raw(
        client,
        "POST",
        "/jobs/cf-job/addtaskcollection",
        {"value": [{"id": "cf-task", "commandLine": "x"}, {"id": "cf-new", "commandLine": "/bin/true"}]},
    )
    results = {entry["taskId"]: entry for entry in response.json()["value"]}
    assert results["cf-task"]["status"] == "clienterror"
    assert results["cf-task"]["error"]["code"] == "TaskExists"
    assert results["cf-new"]["status"] == "success"
    # create_tasks treats TaskExists as success, so re-submitting is idempotent.
    again = client.create_tasks(
        "cf-job", [models.BatchTaskCreateOptions(id="cf-new", command_line="/bin/true")]
    )
    assert again.result_values[0].status == models.BatchTaskAddStatus.CLIENT_ERROR


def test_immutable_pool_property_on_non_empty_pool(client: BatchClient, finished: dict[str, Any]) -> None:
    response = raw(client, "PATCH", "/pools/cf-pool", {"vmSize": "standard_d64"})
    assert response.status_code == 409
    assert {"key": "PropertyName", "value": "vmSize"} in response.json()["values"]
    assert (
        raw(client, "PATCH", "/pools/cf-pool", {"metadata": [{"name": "a", "value": "b"}]}).status_code == 200
    )
    assert client.get_pool("cf-pool").metadata[0].name == "a"


def test_resize_conflicts_and_job_rules(client: BatchClient, finished: dict[str, Any]) -> None:
    # Its own autoscaled pool: under xdist the module's tests may run on different workers (own emulators).
    autoscaled = {
        "id": "cf-resize-auto",
        "vmSize": "s",
        "virtualMachineConfiguration": vm(),
        "enableAutoScale": True,
        "autoScaleFormula": "$TargetDedicatedNodes = 0;",
    }
    assert raw(client, "POST", "/pools", autoscaled).status_code == 201
    resize = raw(client, "POST", "/pools/cf-resize-auto/resize", {"targetDedicatedNodes": 1})
    assert error_of(resize) == (409, "AutoScalingEnabled")
    response = raw(
        client,
        "POST",
        "/jobs",
        {"id": "rules", "poolInfo": {"poolId": "cf-pool"}, "onAllTasksComplete": "noaction"},
    )
    assert response.status_code == 201
    assert (
        raw(client, "POST", "/jobs/rules/tasks", {"id": "a", "commandLine": "/bin/sleep 30"}).status_code
        == 201
    )
    assert raw(client, "PATCH", "/jobs/rules", {"onAllTasksComplete": "terminatejob"}).status_code == 200
    assert error_of(raw(client, "PATCH", "/jobs/rules", {"onAllTasksComplete": "noaction"})) == (
        400,
        "InvalidPropertyValue",
    )
    assert error_of(raw(client, "PATCH", "/jobs/rules", {"poolInfo": {"poolId": "other"}}))[0] == 409
    assert error_of(
        raw(
            client,
            "POST",
            "/jobs/rules/tasks",
            {"id": "b", "commandLine": "x", "exitConditions": {"default": {"jobAction": "terminate"}}},
        )
    ) == (400, "InvalidPropertyValue")
    assert raw(client, "DELETE", "/jobs/rules").status_code == 202
    wait_until(lambda: raw(client, "GET", "/jobs/rules").status_code == 404, 30, "the job to be deleted")


def test_etags_and_conditional_requests(client: BatchClient, finished: dict[str, Any]) -> None:
    response = raw(client, "GET", "/jobs/cf-job")
    etag = response.headers["ETag"]
    assert response.json()["eTag"] == etag
    assert raw(client, "GET", "/jobs/cf-job", headers={"If-None-Match": f'"{etag}"'}).status_code == 304
    assert (
        raw(client, "PATCH", "/jobs/cf-job", {"priority": 5}, headers={"If-Match": '"0x1"'}).status_code
        == 412
    )
    assert (
        raw(client, "PATCH", "/jobs/cf-job", {"priority": 5}, headers={"If-Match": f'"{etag}"'}).status_code
        == 200
    )
    assert raw(client, "GET", "/jobs/cf-job").headers["ETag"] != etag
    with pytest.raises(ResourceModifiedError):
        client.update_job(
            "cf-job",
            models.BatchJobUpdateOptions(priority=6),
            etag=etag,
            match_condition=MatchConditions.IfNotModified,
        )


def test_paging_select_and_filters(client: BatchClient, finished: dict[str, Any]) -> None:
    client.create_job(
        models.BatchJobCreateOptions(id="paging", pool_info=models.BatchPoolInfo(pool_id="nowhere"))
    )
    client.create_tasks(
        "paging", [models.BatchTaskCreateOptions(id=f"p{index:02d}", command_line="x") for index in range(25)]
    )
    first = raw(client, "GET", "/jobs/paging/tasks?maxresults=10").json()
    assert len(first["value"]) == 10 and "odata.nextLink" in first
    assert [task.id for task in client.list_tasks("paging", max_results=10)] == [
        f"p{i:02d}" for i in range(25)
    ]
    selected = raw(client, "GET", "/jobs/paging/tasks?$select=id,state&maxresults=2").json()["value"]
    assert selected == [{"id": "p00", "state": "active"}, {"id": "p01", "state": "active"}]
    found = [
        task.id for task in client.list_tasks("paging", filter="startswith(id,'p1') and state eq 'active'")
    ]
    assert found == [f"p1{i}" for i in range(10)]
    either = [task.id for task in client.list_tasks("paging", filter="id eq 'p01' or id eq 'p22'")]
    assert either == ["p01", "p22"]
    succeeded = {t.id for t in client.list_tasks("cf-job", filter="executionInfo/result eq 'success'")}
    assert "cf-task" in succeeded and "p00" not in succeeded
    response = raw(client, "GET", "/jobs/paging/tasks?$filter=commandLine%20gt%20'x'")
    assert error_of(response) == (400, "InvalidQueryParameterValue")
    assert "commandLine" in json.dumps(response.json()["values"])
    assert error_of(raw(client, "GET", "/jobs/paging/tasks?maxresults=1001")) == (
        400,
        "InvalidQueryParameterValue",
    )
    jobs = [job.id for job in client.list_jobs(filter="state eq 'active' and startswith(id, 'pag')")]
    assert jobs == ["paging"]


def test_older_api_versions_accepted_unknown_rejected(client: BatchClient, finished: dict[str, Any]) -> None:
    for version in ("2024-02-01.19.0", "2024-07-01.20.0"):
        response = client.send_request(HttpRequest("GET", f"/pools/cf-pool?api-version={version}"))
        assert response.status_code == 200
    try:
        response = client.send_request(HttpRequest("GET", "/pools/cf-pool?api-version=1999-01-01"))
    except HttpResponseError as error:
        response = error.response
    assert error_of(response) == (400, "InvalidQueryParameterValue")


def test_request_accounting(emulator: Emulator, client: BatchClient, finished: dict[str, Any]) -> None:
    assert client.send_request(HttpRequest("POST", "/_emulator/requests/reset")).status_code == 204
    client.get_job_task_counts("cf-job")
    client.get_job_task_counts("cf-job")
    raw(client, "PATCH", "/jobs/cf-job", {"priority": 1})
    counts = client.send_request(HttpRequest("GET", "/_emulator/requests")).json()
    assert counts == {
        "total": 3,
        "writes": 1,
        "by_route": {"GET /jobs/{jobId}/taskcounts": 2, "PATCH /jobs/{jobId}": 1},
    }
    status = client.send_request(HttpRequest("GET", "/_emulator/status")).json()
    assert status["maxRunningTasks"] == emulator.config.max_running_tasks


def test_replace_job_resets_omitted_properties(client: BatchClient, finished: dict[str, Any]) -> None:
    client.create_job(
        models.BatchJobCreateOptions(
            id="put-job",
            pool_info=models.BatchPoolInfo(pool_id="cf-pool"),
            priority=300,
            max_parallel_tasks=2,
            metadata=[models.BatchMetadataItem(name="owner", value="me")],
        )
    )
    job = client.get_job("put-job")
    job.priority = 7
    job.metadata = None
    job.max_parallel_tasks = None
    client.replace_job("put-job", job)
    replaced = client.get_job("put-job")
    assert replaced.priority == 7
    assert replaced.max_parallel_tasks == -1  # omitted in a PUT means reset to the default
    assert not replaced.metadata
    assert replaced.etag != job.etag


def test_sdk_file_properties(client: BatchClient, finished: dict[str, Any]) -> None:
    properties = client.get_task_file_properties("cf-job", "cf-task", "stdout.txt")
    assert properties.content_length == len("out\n")
    assert properties.is_directory is False
    assert properties.url.endswith("/files/stdout.txt")
    assert properties.creation_time is not None and properties.last_modified is not None
    assert properties.file_mode.startswith("0")
