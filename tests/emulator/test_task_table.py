"""The emulator's in-memory tasks: held as their stored JSON text until used, reloaded from the store in
creation order with the same counters, one live dict per task while it changes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential

from batchrun.emulator.model import JobTasks, Model, transition
from batchrun.emulator.server import EmulatorServer
from batchrun.emulator.store import Store, StoreUnreadable, Table
from batchrun.local.azurite import AzuriteEndpoint
from tests.emulator.conftest import ACCOUNT, API, KEY, emulator_config, raw


def _task(model: Model, task_id: str, state: str = "active", **extra: object) -> dict[str, object]:
    task: dict[str, object] = {"id": task_id, "state": state, "_x": {"seq": model.next_sequence()}, **extra}
    return task


def _model(path: Path) -> Model:
    model = Model(Store(path / "emulator.db"))
    model.load()
    return model


def test_tasks_reload_in_creation_order_with_their_counters(tmp_path: Path) -> None:
    model = _model(tmp_path)
    model.jobs["job"] = {"id": "job", "state": "active"}
    model.save_job(model.jobs["job"])
    job_tasks = model.tasks["job"] = JobTasks()
    created = ["b", "Z-Upper", "10", "a", "2"]
    for task_id in created:
        task = _task(model, task_id, requiredSlots=2 if task_id == "a" else 1)
        job_tasks.add(task)
        model.save_task("job", task)
    done = job_tasks.by_id["10"]
    job_tasks.begin_change(done)
    transition(done, "completed")
    done["executionInfo"] = {"result": "success"}
    job_tasks.end_change(done)
    model.save_task("job", done)
    model.store.close()

    again = _model(tmp_path)
    reloaded = again.tasks["job"]
    assert list(reloaded.pending) == ["b", "Z-Upper", "a", "2"]  # creation order, not id order
    assert reloaded.sorted_ids == sorted(created)
    assert reloaded.counts == {"active": 4, "preparing": 0, "running": 0, "completed": 1}
    assert reloaded.slot_counts["active"] == 5 and reloaded.succeeded == [1, 1] and reloaded.failed == [0, 0]
    assert reloaded.numeric == {2: ["2"], 10: ["10"]}
    assert reloaded.known_id("z-upper") == "Z-Upper" and reloaded.known_id("nope") is None
    found = reloaded.find("z-UPPER")
    assert found is not None and found["id"] == "Z-Upper"
    assert [task_id for task_id, _ in reloaded.after("a")] == ["b"]
    assert next(again._sequence) == len(created)  # new tasks keep counting after the stored ones


def test_one_live_dict_per_task_until_it_is_saved(tmp_path: Path) -> None:
    model = _model(tmp_path)
    model.jobs["job"] = {"id": "job", "state": "active"}
    job_tasks = model.tasks["job"] = JobTasks()
    task = _task(model, "t1")
    job_tasks.add(task)
    model.save_task("job", task)

    live = job_tasks.by_id["t1"]
    assert job_tasks.find("T1") is live  # decoded once, kept while it is being changed
    peeked = job_tasks.by_id.peek("t1")
    assert peeked == live
    live["displayName"] = "changed"
    model.save_task("job", live)
    # Saved: memory holds the saved text again; a read decodes what the database holds.
    fresh = job_tasks.by_id.peek("t1")
    assert fresh is not live and fresh == live
    stored = sqlite3.connect(tmp_path / "emulator.db").execute("SELECT body FROM tasks").fetchone()[0]
    assert json.loads(stored) == fresh
    assert job_tasks.remove("t1") == fresh and "t1" not in job_tasks.by_id and not job_tasks.pending


def test_a_stored_task_that_is_not_an_object_is_an_unreadable_store(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.db")
    store.put(Table.JOBS, "", "job", {"id": "job", "state": "active"})
    store.close()
    with sqlite3.connect(tmp_path / "emulator.db") as connection:
        connection.execute("INSERT INTO tasks (parent, id, body) VALUES ('job', 't', '[1, 2]')")
    with pytest.raises(StoreUnreadable, match="tasks job/t"):
        _model(tmp_path)


def test_task_pages_written_from_stored_text_equal_the_rendered_tasks(
    tmp_path: Path, azurite: AzuriteEndpoint
) -> None:
    """A page without $filter or $select is written from the stored JSON texts: it must hold exactly what
    the rendered path (a $filter page) and single GETs return, before and after a restart."""
    config = emulator_config(tmp_path / "state", azurite)
    server = EmulatorServer(config)
    server.start()
    try:
        client = BatchClient(server.url, AzureNamedKeyCredential(ACCOUNT, KEY))
        assert (
            raw(
                client,
                "POST",
                "/jobs",
                {"id": "pages", "poolInfo": {"poolId": "none"}, "usesTaskDependencies": True},
            ).status_code
            == 201
        )
        tasks = [
            {"id": "b-1", "commandLine": "/bin/true", "displayName": 'caf\u00e9 "quoted" \\ back'},
            {"id": "A-2", "commandLine": "/bin/true", "environmentSettings": [{"name": "X", "value": "1"}]},
            {"id": "c-3", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["b-1"]}},
            {
                "id": "d-4",
                "commandLine": "/bin/true",
                "containerSettings": {
                    "imageName": "busybox",
                    "registry": {"registryServer": "r.example", "username": "u", "password": "Pw-Secret-9"},
                },
            },
        ]
        answer = raw(client, "POST", "/jobs/pages/addtaskcollection", {"value": tasks})
        assert answer.status_code == 200, answer.text()
        assert [item["status"] for item in answer.json()["value"]] == ["success"] * len(tasks)
        # A client change: the task is decoded, changed and saved again (its text is replaced).
        assert (
            raw(client, "PUT", "/jobs/pages/tasks/A-2", {"constraints": {"maxTaskRetryCount": 2}}).status_code
            == 200
        )

        def pages(query: str) -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            url: str | None = f"/jobs/pages/tasks?maxresults=3{query}"
            while url:
                body = raw(client, "GET", url).json()
                assert body["odata.metadata"] == f"{server.url}/$metadata#tasks"
                found.extend(body["value"])
                link = body.get("odata.nextLink")
                url = link[len(server.url) :].replace(f"&{API}", "") if link else None
            return found

        def check() -> None:
            written = pages("")
            rendered = pages("&$filter=state%20eq%20'active'")
            assert [task["id"] for task in written] == ["A-2", "b-1", "c-3", "d-4"]
            assert written == rendered
            for task in written:
                single = raw(client, "GET", f"/jobs/pages/tasks/{task['id']}").json()
                single.pop("odata.metadata")
                assert task == single
            assert "Pw-Secret-9" not in json.dumps(written) and "_x" not in json.dumps(written)
            assert written[0]["constraints"]["maxTaskRetryCount"] == 2
            assert written[1]["displayName"] == 'caf\u00e9 "quoted" \\ back'

        check()
        server.stop()
        server = EmulatorServer(config)
        server.start()
        client = BatchClient(server.url, AzureNamedKeyCredential(ACCOUNT, KEY))
        check()
    finally:
        server.stop()
