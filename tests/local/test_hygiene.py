"""Local target hygiene, each through the real CLI and real daemons in a fresh BATCHRUN_HOME.

* The daemons start with a minimal environment: tokens and secrets of the starting shell are not in
  ``/proc/<pid>/environ``.
* BATCHRUN_HOME and the state folder are 0700, their files 0600; so are the logs.
* The emulator's log rotates and the storage SDK logs at WARNING.
* Stopping never signals a process that is not the daemon: a recycled pid (other start time) and a process
  group the daemon left are left alone.
* Azurite is supervised: SIGKILLed, it is started again on the same port, with the blobs it had saved.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchrun.local.target import stop
from tests.conftest import tools_dir

SECRETS = {"GITHUB_TOKEN": "ghp_notarealtoken123", "AZURE_CLIENT_SECRET": "not-a-real-secret-456"}


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "home"
    try:
        yield folder
    finally:
        stop(folder)


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    env.update(SECRETS, BATCHRUN_HOME=str(home), BATCHRUN_TOOLS_DIR=str(tools_dir()))
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args], env=env, capture_output=True, text=True, timeout=180
    )


def record(home: Path) -> dict[str, dict[str, int]]:
    data: dict[str, dict[str, int]] = json.loads((home / "local" / "target.json").read_text())
    return data


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def test_daemons_start_with_a_minimal_environment_and_private_files(home: Path) -> None:
    assert cli(home, "local", "up").returncode == 0
    daemons = record(home)
    for name in ("emulator", "azurite"):
        env = environ(daemons[name]["pid"])
        for variable, value in SECRETS.items():
            assert variable not in env and value not in env.values(), (name, sorted(env))
        assert "PATH" in env
    state = home / "local"
    for folder in (home, state, state / "logs", state / "azurite", state / "nodes"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "emulator.db" for p in files) and any(p.name == "emulator.log" for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_emulator_log_rotates_and_storage_requests_log_at_warning(tmp_path: Path) -> None:
    log = tmp_path / "emulator.log"
    script = (
        "import logging, sys\n"
        "from pathlib import Path\n"
        "import batchrun.local.emulator_daemon as daemon\n"
        "daemon.LOG_BYTES = 2000\n"
        "daemon.configure_logging(Path(sys.argv[1]))\n"
        "logging.getLogger('azure.core.pipeline.policies.http_logging_policy').info('Request URL: secret')\n"
        "for i in range(200):\n"
        "    logging.getLogger('batchrun.emulator').info('line %d', i)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(log)], check=True, timeout=60)
    rotated = sorted(p.name for p in tmp_path.iterdir())
    assert rotated == ["emulator.log", "emulator.log.1", "emulator.log.2", "emulator.log.3"]
    assert all(p.stat().st_size <= 2200 for p in tmp_path.iterdir())
    assert not any("Request URL" in p.read_text() for p in tmp_path.iterdir())


def decoy(marker: Path) -> subprocess.Popen[bytes]:
    """An unrelated process whose command line holds ``marker`` (what the old substring check matched)."""
    return subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(300)", str(marker)], start_new_session=True
    )


def test_stop_never_kills_a_process_that_is_not_the_daemon(home: Path) -> None:
    state = home / "local"
    (state / "azurite").mkdir(parents=True)
    recycled = decoy(state / "azurite")  # a pid the record names, but another process (other start time)
    other_group = decoy(state / "azurite")  # a process group the record names, not the daemon's
    try:
        record_text = {
            "host": "127.0.0.1",
            "azurite": {"pid": recycled.pid, "pgid": recycled.pid, "port": 1, "start_time": 1},
            "emulator": {"pid": other_group.pid, "pgid": other_group.pid, "port": 2, "start_time": 1},
        }
        (state / "target.json").write_text(json.dumps(record_text))
        result = cli(home, "local", "down")
        assert result.returncode == 0, result.stderr
        assert recycled.poll() is None and other_group.poll() is None  # both still running
    finally:
        for process in (recycled, other_group):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_killed_azurite_is_restarted_with_its_saved_blobs(home: Path) -> None:
    from azure.storage.blob import BlobServiceClient

    from batchrun.local.target import running_target

    assert cli(home, "local", "up").returncode == 0
    target = running_target(home)
    assert target is not None
    with BlobServiceClient.from_connection_string(target.connection_string) as service:
        service.create_container("kept")
        service.get_blob_client("kept", "before.txt").upload_blob(b"saved")
        time.sleep(6)  # Azurite saves its blob index every 5 s: this blob is past its loss window
        before = record(home)["azurite"]
        os.kill(before["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 60
        while record(home)["azurite"]["pid"] == before["pid"] and time.monotonic() < deadline:
            time.sleep(0.2)
        after = record(home)["azurite"]
        assert after["pid"] != before["pid"] and after["port"] == before["port"]
        status = cli(home, "local", "status", "-o", "json")
        assert json.loads(status.stdout)["running"] is True, status.stdout
        assert service.get_blob_client("kept", "before.txt").download_blob().readall() == b"saved"
        service.get_blob_client("kept", "after.txt").upload_blob(b"new")  # it serves writes again
    log = home / "local" / "logs" / "emulator.log"
    # The supervisor records the new Azurite, then logs the restart once its checks are done.
    deadline = time.monotonic() + 60
    while "Azurite restarted" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "Azurite restarted" in log.read_text()
