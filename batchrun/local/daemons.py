"""The local target's daemons as seen from outside: their record in ``target.json`` (pids, ports, endpoints;
no secrets), whether each is alive and listening, which ports to use, and the emulator's start-up handshake
(it writes its URL to ``emulator.json`` once it listens)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from batchrun.errors import LocalTargetError
from batchrun.local.azurite import free_port
from batchrun.local.credentials import write_private
from batchrun.local.paths import LocalPaths
from batchrun.local.processes import is_alive
from batchrun.redact import redact

START_TIMEOUT = 60.0


def emulator_marker(paths: LocalPaths) -> str:
    return str(paths.emulator_config_file)


def started_at(entry: dict[str, Any]) -> int | None:
    """The start time recorded for a daemon (``/proc`` clock ticks), None in records that predate it."""
    value = entry.get("start_time")
    return int(value) if isinstance(value, int) else None


def emulator_alive(paths: LocalPaths, entry: dict[str, Any]) -> bool:
    pid = int(entry.get("pid") or 0)
    return pid > 0 and is_alive(pid, emulator_marker(paths), started_at(entry))


def azurite_alive(paths: LocalPaths, entry: dict[str, Any]) -> bool:
    pid = int(entry.get("pid") or 0)
    return pid > 0 and is_alive(pid, str(paths.azurite_dir), started_at(entry))


def listening(host: str, port: object) -> bool:
    if not isinstance(port, int) or port <= 0:
        return False
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def reuse_port(host: str, previous: object, avoid: int = 0) -> int:
    if isinstance(previous, int) and previous > 0 and previous != avoid:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            # Like the servers themselves (Node and asyncio set SO_REUSEADDR): a port whose old connections
            # linger in TIME_WAIT is free to listen on again.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, previous))
                return previous
            except OSError:
                pass
    while True:
        port = free_port(host)
        if port != avoid:
            return port


def wait_for_discovery(paths: LocalPaths, pid: int, secrets: tuple[str, ...]) -> str:
    log = paths.logs_dir / "emulator.out"  # what the daemon prints outside logging: a start-up error
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if paths.discovery_file.exists():
            try:
                data = json.loads(paths.discovery_file.read_text())
            except ValueError:
                data = {}  # being written
            if data.get("pid") == pid and data.get("url"):
                return str(data["url"])
        if not is_alive(pid):
            raise LocalTargetError(
                f"the local Batch emulator exited while starting; last lines of {log}:\n{tail(log, secrets)}"
            )
        time.sleep(0.02)
    raise LocalTargetError(f"the local Batch emulator did not start within {START_TIMEOUT:.0f} s; see {log}")


def port_of(url: str, default: int) -> int:
    try:
        return int(url.rsplit(":", 1)[1].split("/", 1)[0])
    except (IndexError, ValueError):
        return default


def tail(path: Path, secrets: tuple[str, ...], lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return redact("\n".join(text.strip().splitlines()[-lines:]), *secrets)


def read_record(paths: LocalPaths) -> dict[str, Any]:
    try:
        data = json.loads(paths.target_file.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_record(paths: LocalPaths, record: dict[str, Any]) -> None:
    paths.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(paths.target_file, json.dumps(record, indent=2))
