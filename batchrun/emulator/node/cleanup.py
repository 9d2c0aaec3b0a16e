"""Removing node folders when Batch would: a deleted task's folder, a deleted job's workitems, a deleted pool.

Batch deletes a task's files on the node when the task is deleted and a job's folders when the job is deleted;
without this a long-lived local target grows on disk forever. Callers make sure no process still runs in
what is removed. Every removal is guarded: nothing outside the emulator's ``nodes`` folder is ever touched.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

from batchrun.emulator.node.layout import safe_segment

_LOG = logging.getLogger("batchrun.emulator.node")


def remove_task_directories(nodes_dir: Path, job_id: str, task_id: str) -> None:
    """Remove the task's folder on every node (retries and requeues may have run it on several)."""
    for root in _node_roots(nodes_dir):
        _remove_inside(nodes_dir, root / "workitems" / safe_segment(job_id) / "job-1" / safe_segment(task_id))


def remove_job_directories(nodes_dir: Path, job_id: str) -> None:
    """Remove ``workitems/<job>`` (tasks, job preparation and release folders) on every node."""
    for root in _node_roots(nodes_dir):
        _remove_inside(nodes_dir, root / "workitems" / safe_segment(job_id))


def remove_pool_directory(nodes_dir: Path, pool_id: str) -> None:
    """Remove the root folders of all the pool's nodes."""
    _remove_inside(nodes_dir, nodes_dir / safe_segment(pool_id))


def _node_roots(nodes_dir: Path) -> Iterator[Path]:
    if not nodes_dir.is_dir():
        return
    for pool_dir in nodes_dir.iterdir():
        if pool_dir.is_dir() and not pool_dir.is_symlink():
            for root in pool_dir.iterdir():
                if root.is_dir() and not root.is_symlink():
                    yield root


def _remove_inside(nodes_dir: Path, path: Path) -> None:
    # resolve() follows symlinks: a link planted by a task cannot lead the removal out of the nodes folder.
    base = nodes_dir.resolve()
    if not path.exists() and not path.is_symlink():
        return
    target = path.resolve() if not path.is_symlink() else path.parent.resolve() / path.name
    if target == base or not target.is_relative_to(base):
        _LOG.warning("not removing %s: it is outside the emulator's nodes folder %s", path, base)
        return
    if path.is_symlink():
        path.unlink()  # the link only, never what it points to
        return
    shutil.rmtree(target, onerror=_log_failure)


def _log_failure(function: object, path: str, error: object) -> None:
    # A file a task made unremovable must not break the delete; it is reported and left behind.
    _LOG.warning("could not remove %s: %s", path, error[1] if isinstance(error, tuple) else error)


def wipe_node(nodes_dir: Path, pool_id: str, node_id: str) -> None:
    """Empty a node's folders, as a reimage gives the node a fresh disk."""
    _remove_inside(nodes_dir, nodes_dir / safe_segment(pool_id) / safe_segment(node_id))
