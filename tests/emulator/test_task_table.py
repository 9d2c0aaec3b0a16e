"""The emulator's in-memory tasks: held as their stored JSON text until used, reloaded from the store in
creation order with the same counters, one live dict per task while it changes."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from batchrun.emulator.model import JobTasks, Model, transition
from batchrun.emulator.store import Store, StoreUnreadable, Table


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
