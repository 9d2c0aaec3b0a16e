"""Malformed request bodies get Batch-shaped 400s naming the property, never a 500 or a crashed node.

The table holds inputs that once reached the scheduler or the node runtime unchecked; the mutation test sends
wrong types and missing fields for every property of a full task and pool body.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest

from tests.emulator.conftest import raw, vm

POOL = "val-pool"
JOB = "val-job"
WRONG_VALUES: list[Any] = [7, "x", [], {"zz": 1}]  # null is "not specified", like a deletion


@pytest.fixture(scope="module")
def disabled_job(client: BatchClient) -> str:
    """A pool without nodes and a disabled job, so nothing created here ever runs."""
    assert (
        raw(
            client, "POST", "/pools", {"id": POOL, "vmSize": "s", "virtualMachineConfiguration": vm()}
        ).status_code
        == 201
    )
    job = {"id": JOB, "poolInfo": {"poolId": POOL}, "usesTaskDependencies": True, "priority": 5}
    assert raw(client, "POST", "/jobs", job).status_code == 201
    assert raw(client, "POST", f"/jobs/{JOB}/disable", {"disableTasks": "wait"}).status_code == 202
    return JOB


def full_task(task_id: str) -> dict[str, Any]:
    return {
        "id": task_id,
        "displayName": "d",
        "commandLine": "true",
        "exitConditions": {
            "exitCodes": [{"code": 1, "exitOptions": {"dependencyAction": "satisfy"}}],
            "exitCodeRanges": [{"start": 2, "end": 4, "exitOptions": {"dependencyAction": "block"}}],
            "default": {"dependencyAction": "block"},
        },
        "resourceFiles": [
            {"storageContainerUrl": "http://127.0.0.1:9/c", "blobPrefix": "a", "filePath": "d"}
        ],
        "outputFiles": [
            {
                "filePattern": "*.txt",
                "destination": {"container": {"containerUrl": "http://127.0.0.1:9/c", "path": "o"}},
                "uploadOptions": {"uploadCondition": "taskcompletion"},
            }
        ],
        "environmentSettings": [{"name": "E", "value": "v"}],
        "affinityInfo": {"affinityId": "a"},
        "constraints": {"maxWallClockTime": "PT1H", "retentionTime": "P1D", "maxTaskRetryCount": 1},
        "requiredSlots": 1,
        "userIdentity": {"autoUser": {"scope": "task", "elevationLevel": "nonadmin"}},
        "dependsOn": {"taskIds": ["a"], "taskIdRanges": [{"start": 1, "end": 3}]},
    }


def property_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (*prefix, key)
        yield from property_paths(item, (*prefix, key))


def mutated(body: dict[str, Any], path: tuple[Any, ...], value: Any, delete: bool) -> dict[str, Any]:
    result = copy.deepcopy(body)
    parent: Any = result
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return result


def error_values(response: Any) -> dict[str, str]:
    body = response.json()
    assert set(body) <= {"odata.metadata", "code", "message", "values"}, body
    return {entry["key"]: entry["value"] for entry in body.get("values", [])}


@pytest.mark.parametrize(
    ("path", "body", "property_name"),
    [
        ("/pools", {"taskSchedulingPolicy": {"nodeFillType": []}}, "taskSchedulingPolicy.nodeFillType"),
        (
            "/pools",
            {"startTask": {"commandLine": "true", "environmentSettings": [{"name": 5}]}},
            "startTask.environmentSettings[0].name",
        ),
        (
            "/pools",
            {"startTask": {"commandLine": "true", "maxTaskRetryCount": "two"}},
            "startTask.maxTaskRetryCount",
        ),
        (
            "/pools",
            {"startTask": {"commandLine": "true", "resourceFiles": [{"filePath": "f"}]}},
            "startTask.resourceFiles[0]",
        ),
        ("/pools", {"metadata": [{"name": "a", "value": 3}]}, "metadata[0].value"),
        ("/pools", {"enableAutoScale": True, "autoScaleFormula": 7}, "autoScaleFormula"),
        (
            "/pools",
            {
                "enableAutoScale": True,
                "autoScaleFormula": "$TargetDedicatedNodes=0;",
                "autoScaleEvaluationInterval": "P99999999D",
            },
            "autoScaleEvaluationInterval",
        ),
    ],
)
def test_bad_pool_properties(
    client: BatchClient, path: str, body: dict[str, Any], property_name: str
) -> None:
    pool = {"id": "val-bad", "vmSize": "s", "virtualMachineConfiguration": vm(), **body}
    response = raw(client, "POST", path, pool)
    assert response.status_code == 400, response.text()
    assert error_values(response)["PropertyName"] == property_name
    assert raw(client, "GET", "/pools/val-bad").status_code == 404  # nothing half-created


@pytest.mark.parametrize(
    ("change", "property_name"),
    [
        ({"exitConditions": {"exitCodes": 5}}, "exitConditions.exitCodes"),
        ({"exitConditions": {"exitCodes": [{"code": 1}]}}, "exitConditions.exitCodes[0].exitOptions"),
        ({"dependsOn": {"taskIdRanges": True}}, "dependsOn.taskIdRanges"),
        (
            {"outputFiles": [{"filePattern": "*", "destination": {"container": {"containerUrl": "u"}}}]},
            "outputFiles[0].uploadOptions",
        ),
        ({"constraints": {"maxWallClockTime": 5}}, "constraints.maxWallClockTime"),
        ({"userIdentity": {"autoUser": {"scope": "galaxy"}}}, "userIdentity.autoUser.scope"),
        ({"resourceFiles": [{"httpUrl": "http://127.0.0.1:9/f"}]}, "resourceFiles[0].filePath"),
        (
            {"applicationPackageReferences": [{"version": "1"}]},
            "applicationPackageReferences[0].applicationId",
        ),
    ],
)
def test_bad_task_properties(
    client: BatchClient, disabled_job: str, change: dict[str, Any], property_name: str
) -> None:
    task = {"id": "val-bad", "commandLine": "true", **change}
    response = raw(client, "POST", f"/jobs/{disabled_job}/tasks", task)
    assert response.status_code == 400, response.text()
    assert error_values(response)["PropertyName"] == property_name
    collection = raw(client, "POST", f"/jobs/{disabled_job}/addtaskcollection", {"value": [task]})
    assert collection.status_code == 200
    result = collection.json()["value"][0]
    assert result["status"] == "clienterror"
    assert {"key": "PropertyName", "value": property_name} in result["error"]["values"]


def test_job_preparation_task_is_checked_like_a_task(client: BatchClient) -> None:
    job = {
        "id": "val-prep",
        "poolInfo": {"poolId": POOL},
        "jobPreparationTask": {"commandLine": "true", "environmentSettings": {"A": "b"}},
    }
    response = raw(client, "POST", "/jobs", job)
    assert response.status_code == 400
    assert error_values(response)["PropertyName"] == "jobPreparationTask.environmentSettings"


def test_null_means_not_specified(client: BatchClient, disabled_job: str) -> None:
    # A null priority once reached the dispatcher's sort and stopped scheduling with a TypeError.
    assert raw(client, "PATCH", f"/jobs/{disabled_job}", {"priority": None}).status_code == 200
    assert raw(client, "GET", f"/jobs/{disabled_job}").json()["priority"] == 5


def test_mutated_task_bodies_never_fail_on_the_server(client: BatchClient, disabled_job: str) -> None:
    template = full_task("val-template")
    statuses: set[int] = set()
    for number, path in enumerate(property_paths(template)):
        for index, value in enumerate([*WRONG_VALUES, "delete"]):
            task = mutated(template, path, value, delete=value == "delete")
            if path != ("id",):
                task["id"] = f"val-{number}-{index}"
            response = raw(client, "POST", f"/jobs/{disabled_job}/tasks", task)
            statuses.add(response.status_code)
            assert response.status_code < 500, (path, value, response.text())
            if response.status_code == 400:
                assert error_values(response), (path, value)
    assert {201, 400} <= statuses


def test_mutated_pool_bodies_never_fail_on_the_server(client: BatchClient) -> None:
    template = {
        "id": "val-template",
        "vmSize": "s",
        "virtualMachineConfiguration": vm(),
        "taskSlotsPerNode": 2,
        "taskSchedulingPolicy": {"nodeFillType": "pack"},
        "startTask": {
            "commandLine": "true",
            "waitForSuccess": True,
            "maxTaskRetryCount": 1,
            "environmentSettings": [{"name": "A", "value": "b"}],
            "resourceFiles": [{"httpUrl": "http://127.0.0.1:9/f", "filePath": "f"}],
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "admin"}},
        },
        "metadata": [{"name": "m", "value": "v"}],
    }
    for number, path in enumerate(property_paths(template)):
        for index, value in enumerate([*WRONG_VALUES, "delete"]):
            pool = mutated(template, path, value, delete=value == "delete")
            if path != ("id",):
                pool["id"] = f"val-pool-{number}-{index}"
            response = raw(client, "POST", "/pools", pool)
            assert response.status_code < 500, (path, value, response.text())
            if response.status_code == 201:
                patch = raw(
                    client, "PATCH", f"/pools/{pool['id']}", {k: v for k, v in pool.items() if k != "id"}
                )
                assert patch.status_code < 500, (path, value, patch.text())


def test_numbers_and_booleans_written_as_strings_are_stored_as_json_values(client: BatchClient) -> None:
    """The az CLI sends every number as a string; Batch's OData reader converts it to the property's type."""
    pool = {
        "id": "val-strings",
        "vmSize": "s",
        "virtualMachineConfiguration": vm(),
        "targetDedicatedNodes": "0",
        "taskSlotsPerNode": "2",
        "enableInterNodeCommunication": "false",
    }
    assert raw(client, "POST", "/pools", pool).status_code == 201
    stored = raw(client, "GET", "/pools/val-strings").json()
    assert stored["taskSlotsPerNode"] == 2 and stored["targetDedicatedNodes"] == 0
    assert stored["enableInterNodeCommunication"] is False
    resize = {"targetDedicatedNodes": "1", "targetLowPriorityNodes": "0"}
    assert raw(client, "POST", "/pools/val-strings/resize", resize).status_code == 202
    assert raw(client, "GET", "/pools/val-strings").json()["targetDedicatedNodes"] == 1
    assert (
        raw(client, "POST", "/pools/val-strings/resize", {"targetDedicatedNodes": "one"}).status_code == 400
    )


def test_older_api_versions_and_their_body_shapes(client: BatchClient) -> None:
    """azure-batch 14.x sends certificateReferences (empty) on pool add and update_properties; cloud service
    pools are retired; every api-version an SDK since 11.0 sends is served."""

    def call(method: str, path: str, version: str, body: Any = None) -> Any:
        request = HttpRequest(method, f"{path}?api-version={version}", json=body)
        try:
            return client.send_request(request)
        except HttpResponseError as error:
            return error.response

    pool = {"id": "val-v19", "vmSize": "s", "virtualMachineConfiguration": vm(), "certificateReferences": []}
    assert call("POST", "/pools", "2024-02-01.19.0", pool).status_code == 201
    assert call("GET", "/pools/val-v19", "2024-02-01.19.0").json()["certificateReferences"] == []
    assert "certificateReferences" not in call("GET", "/pools/val-v19", "2025-06-01").json()
    update = {"applicationPackageReferences": [], "metadata": [], "certificateReferences": []}
    assert call("POST", "/pools/val-v19/updateproperties", "2024-02-01.19.0", update).status_code == 204
    with_certificate = {
        **pool,
        "id": "val-cert",
        "certificateReferences": [{"thumbprint": "ab", "thumbprintAlgorithm": "sha1"}],
    }
    response = call("POST", "/pools", "2024-02-01.19.0", with_certificate)
    assert response.status_code == 400 and error_values(response)["PropertyName"] == "certificateReferences"
    cloud = {"id": "val-cloud", "vmSize": "s", "cloudServiceConfiguration": {"osFamily": "5"}}
    response = call("POST", "/pools", "2021-06-01.14.0", cloud)
    assert (
        response.status_code == 400 and error_values(response)["PropertyName"] == "cloudServiceConfiguration"
    )
    for version in ("2021-06-01.14.0", "2022-01-01.15.0", "2022-10-01.16.0", "2023-05-01.17.0"):
        assert call("GET", "/pools", version).status_code == 200
    response = call("GET", "/pools", "2020-03-01.11.0")
    assert response.status_code == 400 and response.json()["code"] == "InvalidQueryParameterValue"


def test_the_job_manager_task_takes_defaults_without_changing_the_job(client: BatchClient) -> None:
    # The task is built from the job's own jobManagerTask and takes the parts it is built from: it must get
    # a copy, or Batch's defaults filled into the task would show up in the job as well.
    manager = {
        "id": "val-manager-task",
        "commandLine": "true",
        "userIdentity": {"autoUser": {"elevationLevel": "admin"}},
    }
    job = {"id": "val-manager", "poolInfo": {"poolId": "val-no-such-pool"}, "jobManagerTask": manager}
    assert raw(client, "POST", "/jobs", job).status_code == 201
    stored = raw(client, "GET", "/jobs/val-manager").json()["jobManagerTask"]
    assert stored["userIdentity"] == {"autoUser": {"elevationLevel": "admin"}}
    task = raw(client, "GET", "/jobs/val-manager/tasks/val-manager-task").json()
    assert task["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}


@pytest.mark.parametrize(
    ("text", "property_name"),
    [
        # Written as JSON text: Python's JSON encoder would write them the same way.
        ('"requiredSlots": 18446744073709551617', "requiredSlots"),
        ('"exitConditions": {"exitCodes": [{"code": 123456789012345678901, "exitOptions": {}}]}', "code"),
        (
            '"exitConditions": {"exitCodeRanges": '
            '[{"start": -9223372036854775809, "end": 0, "exitOptions": {}}]}',
            "start",
        ),
    ],
)
def test_integers_past_64_bits_are_refused_naming_the_property(
    client: BatchClient, disabled_job: str, text: str, property_name: str
) -> None:
    body = f'{{"id": "val-big", "commandLine": "true", {text}}}'.encode()
    response = raw(client, "POST", f"/jobs/{disabled_job}/tasks", body)
    assert response.status_code == 400, response.text()
    assert error_values(response)["PropertyName"].endswith(property_name)
    assert raw(client, "GET", f"/jobs/{disabled_job}/tasks/val-big").status_code == 404
