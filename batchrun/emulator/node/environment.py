"""The environment of a task process: host basics, the job's and task's settings, then Batch's AZ_BATCH_* set.

Order (later wins): a few host variables so programs and /bin/sh work (PATH, HOME, LANG, ...), the job's
``commonEnvironmentSettings``, the task's ``environmentSettings``, application package variables, and the
AZ_BATCH_* variables that the Batch node agent owns.
"""

from __future__ import annotations

import getpass
import os
import re
from collections.abc import Mapping, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import msgspec

from batchrun.emulator.node.layout import JOB_PREPARATION_DIR, job_folder, start_task_folder
from batchrun.emulator.node.model import EnvironmentSettings, NodeIdentity, TaskLaunch

HOST_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "LOGNAME", "SHELL", "TERM")
_PACKAGE_NAME_CHARS = re.compile(r"[.\-#]")


def settings_to_mapping(settings: EnvironmentSettings | None) -> dict[str, str]:
    """``[{"name", "value"}]`` (REST shape) or a mapping, as a dict; a missing value is the empty string."""
    if not settings:
        return {}
    if not isinstance(settings, list) and isinstance(settings, Mapping):
        return {str(name): str(value) for name, value in settings.items()}
    result: dict[str, str] = {}
    for item in settings:
        name = item.get("name")
        if isinstance(name, str) and name:
            value = item.get("value")
            result[name] = "" if value is None else str(value)
    return result


def package_variable_names(application_id: str, version: str | None) -> list[str]:
    """Names Batch gives the variable pointing at an extracted package on Linux.

    Linux replaces ``.``, ``-`` and ``#`` with ``_``. Microsoft's docs disagree on the case (the application
    packages page keeps the application id's case, the environment variables page shows lowercase), so both
    spellings are set when they differ: scripts written for either convention work.
    """
    suffix = application_id if version is None else f"{application_id}_{version}"
    exact = "AZ_BATCH_APP_PACKAGE_" + _PACKAGE_NAME_CHARS.sub("_", suffix)
    lower = "AZ_BATCH_APP_PACKAGE_" + _PACKAGE_NAME_CHARS.sub("_", suffix.lower())
    return [exact] if exact == lower else [exact, lower]


def user_identity_name(spec: Mapping[str, Any], kind: str) -> str:
    """AZ_BATCH_TASK_USER_IDENTITY: ``PoolNonAdmin``, ``TaskAdmin``, ... or the named user account."""
    identity = spec.get("userIdentity") or {}
    if isinstance(identity, (dict, Mapping)):
        if identity.get("username"):
            return str(identity["username"])
        auto = identity.get("autoUser") or {}
        if isinstance(auto, (dict, Mapping)):
            scope = str(auto.get("scope") or "pool")  # Batch's default scope is pool
            elevation = str(auto.get("elevationLevel") or "nonadmin")
            return ("Pool" if scope == "pool" else "Task") + ("Admin" if elevation == "admin" else "NonAdmin")
    return "PoolNonAdmin"


def task_environment(
    identity: NodeIdentity,
    launch: TaskLaunch,
    task_dir: str | Path,
    package_dirs: Sequence[tuple[str, str | None, Path]],
    host: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The full environment of the process of ``launch``. ``package_dirs``: (application id, version or None
    for the default-version form, extracted folder). ``host``: the host's variables (the emulator's own
    environment when not given)."""
    node = node_environment(identity) if host is None else _node_environment(identity, host)
    env = dict(node.host)
    if launch.kind != "starttask":
        env.update(settings_to_mapping(launch.job_environment))
    env.update(settings_to_mapping(launch.spec.get("environmentSettings")))
    for application_id, version, folder in package_dirs:
        for name in package_variable_names(application_id, version):
            env[name] = str(folder)

    # Plain string joins: this runs for every task, and pathlib's objects cost more than the joins they do.
    task_folder = os.fspath(task_dir)
    env.update(node.batch)
    env["AZ_BATCH_TASK_DIR"] = task_folder
    env["AZ_BATCH_TASK_WORKING_DIR"] = f"{task_folder}/wd"
    env["AZ_BATCH_TASK_USER_IDENTITY"] = user_identity_name(launch.spec, launch.kind)
    if launch.kind != "starttask":
        env["AZ_BATCH_JOB_ID"] = launch.job_id
        env["AZ_BATCH_TASK_ID"] = launch.task_id
        prep_dir = f"{job_folder(identity, launch.job_id)}/{JOB_PREPARATION_DIR}"
        # Set for every task of a job that has a preparation task, which has then run on this node first.
        prepared = launch.job_prepared if launch.job_prepared is not None else os.path.isdir(prep_dir)
        if launch.kind == "jobpreparation" or prepared:
            env["AZ_BATCH_JOB_PREP_DIR"] = prep_dir
            env["AZ_BATCH_JOB_PREP_WORKING_DIR"] = f"{prep_dir}/wd"
    if launch.authentication_token is not None:
        env["AZ_BATCH_AUTHENTICATION_TOKEN"] = launch.authentication_token
    if launch.kind == "task" and launch.spec.get("multiInstanceSettings") and launch.node_ips:
        ips = list(launch.node_ips)
        env["AZ_BATCH_IS_CURRENT_NODE_MASTER"] = "true"
        env["AZ_BATCH_MASTER_NODE"] = ips[0]
        env["AZ_BATCH_HOST_LIST"] = ",".join(ips)
        env["AZ_BATCH_NODE_LIST"] = ";".join(ips)
        env["AZ_BATCH_TASK_SHARED_DIR"] = task_folder
    return env


class NodeEnvironment(msgspec.Struct, frozen=True):
    """What every task of one node gets alike: the host's basics (first, so that settings override them) and
    the node's AZ_BATCH_* variables (last: the node agent owns them)."""

    host: tuple[tuple[str, str], ...]
    batch: tuple[tuple[str, str], ...]


@lru_cache(maxsize=1024)
def node_environment(identity: NodeIdentity) -> NodeEnvironment:
    """The node's part of every task environment, from the emulator's own environment, made at the node's
    first task: like a Batch node's, it does not change under the tasks (and reading the host's variables and
    joining the node's folders cost more than the rest of a task's environment)."""
    return _node_environment(identity, os.environ)


def _node_environment(identity: NodeIdentity, host: Mapping[str, str]) -> NodeEnvironment:
    basics = {name: host[name] for name in HOST_VARIABLES if name in host}
    basics.setdefault("PATH", os.defpath)
    root = identity.folder
    startup = start_task_folder(identity)
    batch = {
        "AZ_BATCH_ACCOUNT_NAME": identity.account_name,
        "AZ_BATCH_ACCOUNT_URL": identity.account_url,
        "AZ_BATCH_POOL_ID": identity.pool_id,
        "AZ_BATCH_NODE_ID": identity.node_id,
        "AZ_BATCH_NODE_IS_DEDICATED": "true" if identity.is_dedicated else "false",
        "AZ_BATCH_NODE_ROOT_DIR": root,
        "AZ_BATCH_NODE_SHARED_DIR": os.path.join(root, "shared"),
        "AZ_BATCH_NODE_STARTUP_DIR": startup,
        "AZ_BATCH_NODE_STARTUP_WORKING_DIR": os.path.join(startup, "wd"),
        "AZ_BATCH_NODE_MOUNTS_DIR": os.path.join(root, "fsmounts"),
        "AZ_BATCH_TASK_USER": _host_user(),
    }
    return NodeEnvironment(tuple(basics.items()), tuple(batch.items()))


@cache
def _host_user() -> str:
    """The user the emulator (and so every task process) runs as; it cannot change while it runs."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
