"""The folder layout of a simulated node, as on a Batch Linux node (AZ_BATCH_NODE_ROOT_DIR = ``root``).

root/applications/       extracted application packages
root/fsmounts/           mount points (AZ_BATCH_NODE_MOUNTS_DIR)
root/shared/             AZ_BATCH_NODE_SHARED_DIR
root/startup/            the start task: stdout.txt, stderr.txt, wd/
root/volatile/           node-agent scratch
root/workitems/<job>/job-1/<task>/          a task: stdout.txt, stderr.txt, wd/
root/workitems/<job>/job-1/jobpreparation/  the job preparation task (AZ_BATCH_JOB_PREP_DIR)
root/workitems/<job>/job-1/jobrelease/      the job release task
"""

from __future__ import annotations

import os
from pathlib import Path

from batchrun.emulator.node.model import NodeIdentity, TaskLaunch

ROOT_DIRECTORIES = ("applications", "fsmounts", "shared", "startup", "volatile", "workitems")
JOB_PREPARATION_DIR = "jobpreparation"
JOB_RELEASE_DIR = "jobrelease"


def node_root(nodes_dir: Path, pool_id: str, node_id: str) -> Path:
    """Where the node ``node_id`` of ``pool_id`` keeps its files under the emulator's ``nodes`` folder."""
    # One Path built from a joined string: each ``/`` would parse and build another Path (this runs per task).
    return Path(os.path.join(nodes_dir, safe_segment(pool_id), safe_segment(node_id)))


def prepare_node(identity: NodeIdentity) -> None:
    """Create the node's Batch folder layout (idempotent).

    The folders are made in order with ``workitems`` last, so once it exists the layout is complete and a
    task start costs one ``stat`` here instead of six ``mkdir`` calls (a wiped node has no root at all).
    """
    root = identity.folder
    if os.path.isdir(os.path.join(root, ROOT_DIRECTORIES[-1])):
        return
    for name in ROOT_DIRECTORIES:
        os.makedirs(os.path.join(root, name), exist_ok=True)


def prepare_task_directory(task_dir: str | Path) -> None:
    """Create the task's folder with ``wd/`` and empty ``stdout.txt``/``stderr.txt``.

    A new task costs two ``mkdir`` calls and two file creations (its job's folder exists after the first task
    of the job on the node). A rerun keeps the files (its process truncates them when it starts) and only
    touches them.
    """
    folder = os.fspath(task_dir)
    working_dir = os.path.join(folder, "wd")
    try:
        os.mkdir(folder)
    except FileNotFoundError:  # the first task of its job on this node
        os.makedirs(folder, exist_ok=True)
    except FileExistsError:
        os.makedirs(working_dir, exist_ok=True)
        for name in ("stdout.txt", "stderr.txt"):
            Path(folder, name).touch()
        return
    os.mkdir(working_dir)
    for name in ("stdout.txt", "stderr.txt"):  # a new folder: the files cannot exist yet
        os.close(os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))


def job_folder(identity: NodeIdentity, job_id: str) -> str:
    """The job's folder on the node, ``workitems/<job>/job-1``, as a plain string (joined for every task:
    an f-string of checked segments costs a twentieth of ``os.path.join`` and a Path's parsing)."""
    return f"{identity.folder}/workitems/{safe_segment(job_id)}/job-1"


def job_directory(identity: NodeIdentity, job_id: str) -> Path:
    return Path(job_folder(identity, job_id))


def task_folder(identity: NodeIdentity, job_id: str, task_id: str) -> str:
    """The task's folder as text (its stdout.txt, stderr.txt, wd/): ``workitems/<job>/job-1/<task>``."""
    return f"{job_folder(identity, job_id)}/{safe_segment(task_id)}"


def task_directory(identity: NodeIdentity, job_id: str, task_id: str) -> Path:
    return Path(task_folder(identity, job_id, task_id))


def start_task_folder(identity: NodeIdentity) -> str:
    return f"{identity.folder}/startup"


def launch_folder(identity: NodeIdentity, launch: TaskLaunch) -> str:
    """The folder of whatever ``launch`` runs, as text: a task, the start task, the job prep/release task."""
    if launch.kind == "starttask":
        return start_task_folder(identity)
    if launch.kind == "jobpreparation":
        return f"{job_folder(identity, launch.job_id)}/{JOB_PREPARATION_DIR}"
    if launch.kind == "jobrelease":
        return f"{job_folder(identity, launch.job_id)}/{JOB_RELEASE_DIR}"
    return task_folder(identity, launch.job_id, launch.task_id)


def launch_directory(identity: NodeIdentity, launch: TaskLaunch) -> Path:
    return Path(launch_folder(identity, launch))


def safe_segment(name: str) -> str:
    """``name`` as one folder name; raises ValueError for anything that could leave its parent folder."""
    # Batch ids are [A-Za-z0-9_-]; anything else (or a traversal attempt) must not leave the node root.
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise ValueError(f"invalid id for a node folder: {name!r}")
    return name
