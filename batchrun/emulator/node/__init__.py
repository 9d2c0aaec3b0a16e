"""The simulated compute node: runs one task on one node with Batch's layout, environment and file handling.

The contract with the emulator service is in docs/architecture.md ("Emulator <-> node runtime contract").
Besides the contract names this package exports ``launch_directory`` (folders of start/prep/release tasks),
``unsupported_on_host_failure`` (the failureInfo for work this host cannot run) and ``reap_orphans``
(kill task processes left by a previous emulator process before running tasks again) and the ``remove_*``
functions (delete the folders of deleted tasks, jobs and pools, as Batch does).
"""

from __future__ import annotations

from batchrun.emulator.node.agent_log import append_agent_log, service_log_files
from batchrun.emulator.node.cleanup import (
    remove_job_directories,
    remove_pool_directory,
    remove_task_directories,
    wipe_node,
)
from batchrun.emulator.node.failures import unsupported_on_host_failure
from batchrun.emulator.node.layout import launch_directory, node_root, prepare_node, task_directory
from batchrun.emulator.node.model import (
    NodeIdentity,
    PackageBlob,
    StorageAccess,
    TaskLaunch,
    TaskOutcome,
)
from batchrun.emulator.node.reaper import reap_orphans
from batchrun.emulator.node.runner import run_task

__all__ = [
    "NodeIdentity",
    "PackageBlob",
    "StorageAccess",
    "TaskLaunch",
    "TaskOutcome",
    "append_agent_log",
    "launch_directory",
    "node_root",
    "prepare_node",
    "reap_orphans",
    "remove_job_directories",
    "remove_pool_directory",
    "remove_task_directories",
    "run_task",
    "service_log_files",
    "task_directory",
    "unsupported_on_host_failure",
    "wipe_node",
]
