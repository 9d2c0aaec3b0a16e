"""``authenticationTokenSettings``: a task that asks for a job token gets ``AZ_BATCH_AUTHENTICATION_TOKEN``
and can call the Batch API on its own job with it (here: add a task to its job), and on nothing else."""

from __future__ import annotations

import base64
import sys
from datetime import datetime, timedelta, timezone

from azure.batch import BatchClient

from batchrun.emulator.auth import job_of_token, job_token
from tests.emulator.conftest import Emulator, raw, vm, wait_until

POOL = "tok-pool"
JOB = "tok-job"

# Run by the task with the token from its environment: add a task to its own job, then try what it may not.
SCRIPT = """
import json, os, urllib.error, urllib.request
url, job = os.environ["AZ_BATCH_ACCOUNT_URL"], os.environ["AZ_BATCH_JOB_ID"]
token = os.environ["AZ_BATCH_AUTHENTICATION_TOKEN"]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path + "?api-version=2025-06-01", data=data, method=method)
    request.add_header("Authorization", "Bearer " + token)
    request.add_header("Content-Type", "application/json; odata=minimalmetadata")
    try:
        with urllib.request.urlopen(request) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
status, answer = call("POST", "/jobs/" + job + "/addtaskcollection",
                      {"value": [{"id": "added", "commandLine": "/bin/echo added by the token"}]})
print("add", status, answer["value"][0]["status"])
status, answer = call("GET", "/pools")
print("pools", status, answer["code"])
status, answer = call("GET", "/jobs/" + job + "-other")
print("other job", status, answer["code"])
"""


def _command() -> str:
    encoded = base64.b64encode(SCRIPT.encode()).decode()
    return f"{sys.executable} -c \"exec(__import__('base64').b64decode('{encoded}'))\""


def test_a_task_with_a_job_token_adds_to_its_own_job_and_nothing_else(
    emulator: Emulator, client: BatchClient
) -> None:
    pool = {
        "id": POOL,
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": vm(),
        "targetDedicatedNodes": 1,
    }
    assert raw(client, "POST", "/pools", pool).status_code == 201
    assert raw(client, "POST", "/jobs", {"id": JOB, "poolInfo": {"poolId": POOL}}).status_code == 201
    refused = raw(
        client,
        "POST",
        f"/jobs/{JOB}/tasks",
        {"id": "bad", "commandLine": "/bin/true", "authenticationTokenSettings": {"access": ["pool"]}},
    )
    assert refused.status_code == 400
    assert refused.json()["values"][0]["value"] == "authenticationTokenSettings.access"
    caller = {"id": "caller", "commandLine": _command(), "authenticationTokenSettings": {"access": ["job"]}}
    plain = {"id": "plain", "commandLine": "/bin/sh -c 'echo ${AZ_BATCH_AUTHENTICATION_TOKEN:-no token}'"}
    for body in (caller, plain):
        assert raw(client, "POST", f"/jobs/{JOB}/tasks", body).status_code == 201

    def completed(task_id: str) -> bool:
        answer = raw(client, "GET", f"/jobs/{JOB}/tasks/{task_id}")
        return answer.status_code == 200 and answer.json()["state"] == "completed"

    wait_until(lambda: completed("caller") and completed("added") and completed("plain"), what="the tasks")

    def stdout(task_id: str) -> str:
        return b"".join(client.download_task_file(JOB, task_id, "stdout.txt")).decode()

    assert stdout("caller").splitlines() == [
        "add 200 success",
        "pools 403 AuthorizationFailure",
        "other job 403 AuthorizationFailure",
    ]
    assert stdout("added").strip() == "added by the token"
    assert stdout("plain").strip() == "no token"  # only a task that asks gets one


def test_job_tokens_are_signed_scoped_and_expire() -> None:
    key = b"k" * 64
    moment = datetime(2026, 12, 2, tzinfo=timezone.utc)
    token = job_token(key, "job-a", moment)
    assert job_of_token(key, token, moment) == "job-a"
    assert job_of_token(b"x" * 64, token, moment) is None  # another account's key
    assert job_of_token(key, token.replace("bjt1.", "bjt1.e"), moment) is None  # tampered
    assert job_of_token(key, token, moment + timedelta(days=8)) is None  # expired
    assert job_of_token(key, "not-a-token", moment) is None
    assert (
        job_of_token(key, "bjt1.x.\u00e9", moment) is None
    )  # a header byte beyond ASCII: refused, not a crash
