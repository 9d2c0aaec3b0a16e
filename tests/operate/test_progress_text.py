"""Plain progress: rate limiting, line budget for a long 20,000-task run, no control characters; ETA; text."""

from __future__ import annotations

import io
import re
from pathlib import Path

from batchrun.cli.options import parse_duration
from batchrun.watch.outputs import local_path
from batchrun.watch.progress import EtaEstimator, ProgressView, format_duration
from batchrun.watch.render_plain import PlainProgressRenderer, progress_line
from batchrun.watch.snapshot import JobSnapshot, NodeSummary, PoolSnapshot, TaskCounts
from batchrun.watch.text import clean

JOB = JobSnapshot(id="j", exists=True, state="active", pool_id="p")
POOL = PoolSnapshot(
    id="p", exists=True, state="active", allocation_state="steady", current_nodes=4, target_nodes=4
)


def _view(elapsed: float, completed: int, total: int = 20_000) -> ProgressView:
    running = min(8, total - completed)
    counts = TaskCounts(
        active=total - completed - running, running=running, completed=completed, succeeded=completed
    )
    return ProgressView(
        elapsed=elapsed, job=JOB, counts=counts, pool=POOL, nodes=NodeSummary({"running": 4}), eta=None
    )


def test_a_ten_hour_twenty_thousand_task_run_prints_under_200_lines() -> None:
    stream = io.StringIO()
    renderer = PlainProgressRenderer(stream, min_interval=5.0)
    duration = 10 * 3600
    last = None
    for second in range(0, duration + 1, 2):  # a poll every 2 s, progress on every poll
        last = _view(float(second), completed=min(20_000, second * 20_000 // duration))
        renderer.update(last)
    renderer.close(last)
    lines = stream.getvalue().splitlines()
    assert 20 < len(lines) < 200
    assert lines[-1].split("] ", 1)[1].startswith("tasks 20000/20000 done (100%)")
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", stream.getvalue())


def test_nothing_is_printed_when_nothing_changed() -> None:
    stream = io.StringIO()
    renderer = PlainProgressRenderer(stream, min_interval=0.0)
    for second in range(100):
        renderer.update(_view(float(second), completed=10))
    renderer.close(_view(100.0, completed=10))
    assert len(stream.getvalue().splitlines()) == 1


def test_progress_line_names_pool_nodes_tasks_and_eta() -> None:
    view = ProgressView(
        elapsed=65,
        job=JOB,
        counts=TaskCounts(active=1, running=2, completed=7, succeeded=6, failed=1),
        pool=POOL,
        nodes=NodeSummary({"idle": 1, "running": 2, "starting": 1}),
        eta=30,
    )
    assert progress_line(view) == (
        "[1m05s] tasks 7/10 done (70%): 2 running, 1 active, 6 succeeded, 1 failed "
        "| pool p: 3 ready, 1 starting, 0 failed | ETA 30s"
    )


def test_eta_follows_the_completion_rate() -> None:
    eta = EtaEstimator(window_seconds=60)
    assert eta.observe(0, 0, 100) is None
    assert eta.observe(10, 10, 100) == 90.0  # 1 task/s, 90 left
    assert eta.observe(20, 10, 100) == 180.0  # slowed to 0.5 task/s
    assert eta.observe(30, 100, 100) == 0.0


def test_durations_format_and_parse() -> None:
    assert [format_duration(s) for s in (None, 7, 125, 3723)] == ["-", "7s", "2m05s", "1h02m03s"]
    assert [parse_duration(t) for t in ("90", "90s", "15m", "1h30m", "2.5s")] == [90, 90, 900, 5400, 2.5]
    assert parse_duration("soon") is None and parse_duration("") is None


def test_clean_removes_escape_sequences_controls_and_secrets() -> None:
    dirty = "\x1b[31mred\x1b[0m\rline\x07 https://a.blob.core.windows.net/c?sv=1&sig=abcDEF123%3D\tend"
    assert clean(dirty) == "redline https://a.blob.core.windows.net/c?sv=1&sig=REDACTED\tend"


def test_blob_names_that_leave_the_folder_are_refused(tmp_path: Path) -> None:
    assert local_path(tmp_path, "a/b.txt") == tmp_path / "a" / "b.txt"
    for name in ("../x", "a/../../x", "/etc/passwd", "dir/", "a//b", ".batchrun-outputs.json"):
        assert local_path(tmp_path, name) is None, name
