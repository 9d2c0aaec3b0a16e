"""The local target: the emulator daemon + Azurite, started on loopback under a state folder.

``start``/``ensure_running`` give a :class:`LocalTarget` (endpoints and credentials); ``stop``, ``status`` and
``reset`` manage the daemons. Every lifecycle operation holds ``<home>/.local-target.lock``, so two processes
calling ``ensure_running`` at once start one target, not two.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import msgspec

from batchrun.errors import LocalTargetError
from batchrun.local.azurite import (
    DEV_ACCOUNT_KEY,
    DEV_ACCOUNT_NAME,
    azurite_command,
    ensure_installed,
    require_node,
    wait_for_port,
)
from batchrun.local.credentials import load_or_create, write_private
from batchrun.local.daemons import (
    azurite_alive,
    emulator_alive,
    emulator_marker,
    listening,
    port_of,
    read_record,
    reuse_port,
    started_at,
    wait_for_discovery,
    write_record,
)
from batchrun.local.paths import LocalPaths, default_home, default_tools_dir
from batchrun.local.processes import daemon_environment, spawn_detached, start_time, stop_daemon
from batchrun.redact import repr_without

ACCOUNT_NAME = "local"
SUBSCRIPTION_ID = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "local"
EMULATOR_DAEMON = (
    "batchrun.local.emulator_daemon"  # the emulator, plus its log rotation and Azurite's supervision
)

__all__ = [
    "LocalStatus",
    "LocalTarget",
    "default_home",
    "ensure_running",
    "reset",
    "running_target",
    "start",
    "status",
    "stop",
]


class LocalTarget(msgspec.Struct, frozen=True):
    """How to reach a running local target. ``repr`` never shows a key or the token."""

    home: Path
    batch_url: str
    account_name: str
    account_key: str
    blob_endpoint: str
    storage_account_name: str
    storage_account_key: str
    token: str
    subscription_id: str = SUBSCRIPTION_ID
    resource_group: str = RESOURCE_GROUP
    batch_account_name: str = ACCOUNT_NAME

    def __repr__(self) -> str:
        return repr_without(self, "account_key", "storage_account_key", "token")

    @property
    def connection_string(self) -> str:
        """The storage connection string (Azurite's blob endpoint)."""
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.storage_account_name};"
            f"AccountKey={self.storage_account_key};BlobEndpoint={self.blob_endpoint};"
        )


class LocalStatus(msgspec.Struct, frozen=True):
    """What ``batchrun local status`` shows (no secrets)."""

    home: Path
    running: bool
    emulator_running: bool
    azurite_running: bool
    batch_url: str | None
    blob_endpoint: str | None
    account_name: str
    storage_account_name: str
    emulator_pid: int | None
    azurite_pid: int | None
    max_running_tasks: int | None
    started_at: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "home": str(self.home),
            "running": self.running,
            "emulatorRunning": self.emulator_running,
            "azuriteRunning": self.azurite_running,
            "batchUrl": self.batch_url,
            "blobEndpoint": self.blob_endpoint,
            "accountName": self.account_name,
            "storageAccountName": self.storage_account_name,
            "emulatorPid": self.emulator_pid,
            "azuritePid": self.azurite_pid,
            "maxRunningTasks": self.max_running_tasks,
            "startedAt": self.started_at,
        }


def start(
    home: Path,
    host: str = "127.0.0.1",
    tools_dir: Path | None = None,
    announce: Callable[[str], None] | None = None,
) -> LocalTarget:
    """Start the local target under ``home`` (or return the running one); ``announce`` hears progress."""
    with _lifecycle_lock(home, tools_dir):
        return _start_locked(LocalPaths(home), host, tools_dir, announce)


@contextmanager
def _folder_errors(home: Path, tools_dir: Path | None = None) -> Iterator[None]:
    """A state or tools folder that cannot be created or written (a file in the way, no permission, disk full)
    is a configuration problem: name the folder and the variable that moves it, not a traceback."""
    try:
        yield
    except OSError as error:
        if not error.filename:  # not about a path (e.g. a socket): no folder to blame
            raise LocalTargetError(f"the local target could not be started or stopped: {error}") from error
        where = Path(error.filename)
        tools = tools_dir or default_tools_dir(home)
        variable, now = (
            ("BATCHRUN_TOOLS_DIR", tools) if where.is_relative_to(tools) else ("BATCHRUN_HOME", home)
        )
        problem = "a file is in the way" if isinstance(error, (FileExistsError, NotADirectoryError)) else None
        raise LocalTargetError(
            f"the local target cannot use {where}: {problem or error.strerror or error}; "
            f"set {variable} to a writable folder (now {now})"
        ) from error


def ensure_running(home: Path, announce: Callable[[str], None], tools_dir: Path | None = None) -> LocalTarget:
    """The running local target; started first (and announced in one line) when it is not running."""
    paths = LocalPaths(home)
    running = _running_target(paths)
    if running is not None:
        return running
    with _lifecycle_lock(home, tools_dir):
        running = _running_target(paths)
        if running is not None:
            return running
        # The first line on stderr names the target, also when it has to be started first.
        announce(f"Target: local, not running: starting it (emulator + Azurite) in {paths.state_dir} ...")
        return _start_locked(paths, "127.0.0.1", tools_dir, announce)


def running_target(home: Path) -> LocalTarget | None:
    """The running local target, or None; never starts anything."""
    return _running_target(LocalPaths(home))


def stop(home: Path) -> bool:
    """Stop the emulator and Azurite; True when something was running."""
    with _lifecycle_lock(home):
        return _stop_locked(LocalPaths(home))


def status(home: Path) -> LocalStatus:
    paths = LocalPaths(home)
    record = read_record(paths)
    emulator = record.get("emulator", {})
    azurite = record.get("azurite", {})
    emulator_up = emulator_alive(paths, emulator)
    azurite_up = azurite_alive(paths, azurite)
    running = emulator_up and azurite_up and listening(record.get("host", "127.0.0.1"), emulator.get("port"))
    return LocalStatus(
        home=home,
        running=running,
        emulator_running=emulator_up,
        azurite_running=azurite_up,
        batch_url=record.get("batch_url") if emulator_up else None,
        blob_endpoint=record.get("blob_endpoint") if azurite_up else None,
        account_name=str(record.get("account_name", ACCOUNT_NAME)),
        storage_account_name=str(record.get("storage_account_name", DEV_ACCOUNT_NAME)),
        emulator_pid=emulator.get("pid") if emulator_up else None,
        azurite_pid=azurite.get("pid") if azurite_up else None,
        max_running_tasks=record.get("max_running_tasks"),
        started_at=record.get("started_at") if running else None,
    )


def reset(home: Path) -> None:
    """Stop the target and delete its state (pools, jobs, tasks, blobs, node folders, logs).

    The tools folder and the credentials are kept, so Azurite is not reinstalled and the account key users
    configured stays valid.
    """
    with _lifecycle_lock(home):
        paths = LocalPaths(home)
        _stop_locked(paths)
        if not paths.state_dir.exists():
            return
        for entry in paths.state_dir.iterdir():
            if entry == paths.credentials_file:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def max_running_tasks() -> int:
    """The local concurrency cap: ``$BATCHRUN_LOCAL_SLOTS``, else twice the CPU count."""
    value = os.environ.get("BATCHRUN_LOCAL_SLOTS", "").strip()
    if value:
        if not value.isdigit() or int(value) < 1:
            raise LocalTargetError(
                f"BATCHRUN_LOCAL_SLOTS={value!r} is not a positive whole number; set it to e.g. 4 or unset it"
            )
        return int(value)
    return max(2, (os.cpu_count() or 1) * 2)


# --- internals -------------------------------------------------------------------------------------------


@contextmanager
def _lifecycle_lock(home: Path, tools_dir: Path | None = None) -> Iterator[None]:
    with _folder_errors(home, tools_dir):
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(LocalPaths(home).lock_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _start_locked(
    paths: LocalPaths, host: str, tools_dir: Path | None, announce: Callable[[str], None] | None = None
) -> LocalTarget:
    running = _running_target(paths)
    if running is not None:
        return running
    require_node()
    slots = max_running_tasks()
    launcher = ensure_installed(tools_dir or default_tools_dir(paths.home), announce)
    _stop_locked(paths)  # whatever half of a previous target is still alive
    for folder in (paths.state_dir, paths.logs_dir, paths.azurite_dir, paths.nodes_dir):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    _make_private(paths)
    credentials = load_or_create(paths.credentials_file)
    previous = read_record(paths)
    azurite_port = reuse_port(host, previous.get("azurite", {}).get("port"))
    emulator_port = reuse_port(host, previous.get("emulator", {}).get("port"), avoid=azurite_port)
    blob_endpoint = f"http://{host}:{azurite_port}/{DEV_ACCOUNT_NAME}"

    # Task processes of a previous emulator that died must not keep writing into node folders.
    _reap_orphans(paths.nodes_dir)
    azurite_log = paths.logs_dir / "azurite.log"
    azurite_pid, azurite_pgid = spawn_detached(
        azurite_command(launcher, paths.azurite_dir, host, azurite_port),
        azurite_log,
        env=daemon_environment(),
    )
    config = {
        "state_dir": str(paths.state_dir),
        "host": host,
        "port": emulator_port,
        "account_name": ACCOUNT_NAME,
        "account_key": credentials.account_key,
        "token": credentials.token,
        "subscription_id": SUBSCRIPTION_ID,
        "resource_group": RESOURCE_GROUP,
        "storage": {
            "blob_endpoint": blob_endpoint,
            "account_name": DEV_ACCOUNT_NAME,
            "account_key": DEV_ACCOUNT_KEY,
        },
        "max_running_tasks": slots,
    }
    write_private(paths.emulator_config_file, json.dumps(config, indent=2))
    paths.discovery_file.unlink(missing_ok=True)
    record: dict[str, Any] = {
        "host": host,
        "account_name": ACCOUNT_NAME,
        "storage_account_name": DEV_ACCOUNT_NAME,
        "blob_endpoint": blob_endpoint,
        "max_running_tasks": slots,
        "azurite": {
            "pid": azurite_pid,
            "pgid": azurite_pgid,
            "port": azurite_port,
            "start_time": start_time(azurite_pid),
        },
        "emulator": {"port": emulator_port},
    }
    write_record(paths, record)  # so that 'stop' finds Azurite even if the emulator fails to start
    try:
        # Azurite is ready in under a second; the emulator only needs storage once work arrives.
        emulator_pid, emulator_pgid = spawn_detached(
            [
                *(sys.executable, "-m", EMULATOR_DAEMON, "--config", str(paths.emulator_config_file)),
                *("--home", str(paths.home), "--azurite", str(launcher)),
            ],
            paths.logs_dir / "emulator.out",
            env=daemon_environment(),
            cwd=paths.state_dir,
        )
        record["emulator"] = {
            "pid": emulator_pid,
            "pgid": emulator_pgid,
            "port": emulator_port,
            "start_time": start_time(emulator_pid),
        }
        write_record(paths, record)
        wait_for_port(host, azurite_port, None, what="Azurite", timeout=30.0, log_path=azurite_log)
        url = wait_for_discovery(paths, emulator_pid, (credentials.account_key, credentials.token))
    except BaseException:
        _stop_locked(paths)
        raise
    record["batch_url"] = url
    record["emulator"]["port"] = port_of(url, emulator_port)
    record["started_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_record(paths, record)
    return _target(paths, record, credentials.account_key, credentials.token)


def _make_private(paths: LocalPaths) -> None:
    """The state folder and its top folders 0700, the files directly in them 0600: they hold SAS URLs in
    the database, task output and logs. (Daemons run with umask 077, so what they write is private too.)"""
    for folder in (paths.state_dir, paths.logs_dir, paths.azurite_dir, paths.nodes_dir):
        os.chmod(folder, 0o700)
        for entry in folder.iterdir():
            if entry.is_file() and not entry.is_symlink():
                os.chmod(entry, 0o600)


def _stop_locked(paths: LocalPaths) -> bool:
    record = read_record(paths)
    emulator = record.get("emulator", {})
    azurite = record.get("azurite", {})
    stopped = False
    if emulator.get("pid"):
        stopped |= stop_daemon(
            int(emulator["pid"]),
            int(emulator.get("pgid", 0)),
            emulator_marker(paths),
            started=started_at(emulator),
        )
    if azurite.get("pid"):
        stopped |= stop_daemon(
            int(azurite["pid"]),
            int(azurite.get("pgid", 0)),
            str(paths.azurite_dir),
            started=started_at(azurite),
        )
    if paths.nodes_dir.exists():
        _reap_orphans(paths.nodes_dir)
    if record:
        # Keep the ports so the next start reuses them and URLs stay stable; drop what is no longer true.
        kept = {key: value for key, value in record.items() if key not in ("batch_url", "started_at")}
        kept["emulator"] = {"port": emulator.get("port")} if emulator.get("port") else {}
        kept["azurite"] = {"port": azurite.get("port")} if azurite.get("port") else {}
        write_record(paths, kept)
    paths.discovery_file.unlink(missing_ok=True)
    return stopped


def _reap_orphans(nodes_dir: Path) -> None:
    # Imported here: finding a running target (every command) needs none of the emulator's node code.
    from batchrun.emulator.node import reap_orphans

    reap_orphans(nodes_dir)


def _running_target(paths: LocalPaths) -> LocalTarget | None:
    record = read_record(paths)
    if not record.get("batch_url"):
        return None
    if not (
        emulator_alive(paths, record.get("emulator", {})) and azurite_alive(paths, record.get("azurite", {}))
    ):
        return None
    if not listening(record.get("host", "127.0.0.1"), record.get("emulator", {}).get("port")):
        return None
    credentials = load_or_create(paths.credentials_file)
    return _target(paths, record, credentials.account_key, credentials.token)


def _target(paths: LocalPaths, record: dict[str, Any], account_key: str, token: str) -> LocalTarget:
    return LocalTarget(
        home=paths.home,
        batch_url=str(record["batch_url"]),
        account_name=ACCOUNT_NAME,
        account_key=account_key,
        blob_endpoint=str(record["blob_endpoint"]),
        storage_account_name=DEV_ACCOUNT_NAME,
        storage_account_key=DEV_ACCOUNT_KEY,
        token=token,
    )
