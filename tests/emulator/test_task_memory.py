"""How the emulator holds a job's tasks: as their stored JSON text once saved, but a task under way (running,
preparing) as its one live dict, since it is changed again when it ends."""

from __future__ import annotations

from pathlib import Path

from batchrun.emulator.model import JobTasks, Model
from batchrun.emulator.store import Store


def test_a_saved_task_is_held_as_its_text_unless_it_is_under_way(tmp_path: Path) -> None:
    model = Model(Store(tmp_path / "emulator.db"))
    model.tasks["job"] = tasks = JobTasks()
    for state in ("active", "running", "preparing", "completed"):
        task = {"id": f"t-{state}", "state": state, "commandLine": "/bin/true"}
        tasks.add(task)
        model.save_task("job", task)
        held = tasks.by_id.stored(task["id"])
        if state in ("running", "preparing"):
            assert held is task, f"a {state} task is decoded again when it ends"
        else:
            assert isinstance(held, str) and '"commandLine":"/bin/true"' in held.replace(" ", "")
