"""The local target's lifecycle through the real CLI (subprocesses), the real emulator and Azurite."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batchrun.local.target import stop
from tests.conftest import tools_dir


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "home"
    try:
        yield folder
    finally:
        stop(folder)


def cli(
    home: Path, *args: str, path: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    env.update(BATCHRUN_HOME=str(home), BATCHRUN_TOOLS_DIR=str(tools_dir()))
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def status(home: Path) -> dict[str, object]:
    result = cli(home, "local", "status", "-o", "json")
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def listening_addresses(pid: int) -> set[str]:
    """Local addresses (hex ip:port from /proc/net/tcp*) of sockets listening in ``pid`` and its children."""
    pids = {pid} | _descendants(pid)
    inodes: set[str] = set()
    for each in pids:
        try:
            for fd in os.listdir(f"/proc/{each}/fd"):
                link = os.readlink(f"/proc/{each}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                    found.add(fields[1])
    return found


def _descendants(pid: int) -> set[int]:
    children: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == pid:
                children.add(int(entry))
                children |= _descendants(int(entry))
    return children


def test_up_status_down(home: Path) -> None:
    up = cli(home, "local", "up")
    assert up.returncode == 0, up.stderr
    assert "Local target started" in up.stdout
    state = status(home)
    assert state["running"] is True
    assert str(state["batchUrl"]).startswith("http://127.0.0.1:")
    assert str(state["blobEndpoint"]).startswith("http://127.0.0.1:")
    assert isinstance(state["maxRunningTasks"], int) and state["maxRunningTasks"] >= 1
    credentials = json.loads((home / "local" / "credentials.json").read_text())
    assert (home / "local" / "credentials.json").stat().st_mode & 0o777 == 0o600
    assert credentials["account_key"] in up.stdout  # 'up' prints what an SDK user needs
    assert credentials["account_key"] not in json.dumps(state)
    assert credentials["token"] not in up.stdout
    for log in (home / "local" / "logs").iterdir():
        assert credentials["account_key"] not in log.read_text(errors="replace")

    # Nothing listens on a non-loopback address.
    for pid in (int(str(state["emulatorPid"])), int(str(state["azuritePid"]))):
        addresses = listening_addresses(pid)
        assert addresses, f"pid {pid} listens nowhere"
        for address in addresses:
            ip = address.split(":")[0]
            assert ip in ("0100007F", "00000000000000000000000001000000"), address

    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    credential = AzureNamedKeyCredential("local", credentials["account_key"])
    with BatchClient(endpoint=str(state["batchUrl"]), credential=credential) as client:
        assert list(client.list_pools()) == []

    again = cli(home, "local", "up")
    assert again.returncode == 0 and "already running" in again.stdout
    assert str(state["batchUrl"]) in again.stdout

    down = cli(home, "local", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    assert status(home)["running"] is False
    for pid in (int(str(state["emulatorPid"])), int(str(state["azuritePid"]))):
        assert not _alive(pid)
    assert cli(home, "local", "down").stdout.startswith("Local target was not running")


def test_restart_keeps_state_and_urls(home: Path) -> None:
    from azure.batch import BatchClient, models
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.storage.blob import BlobServiceClient

    from batchrun.local.target import start

    target = start(home, tools_dir=tools_dir())
    credential = AzureNamedKeyCredential(target.account_name, target.account_key)
    with BatchClient(endpoint=target.batch_url, credential=credential) as client:
        job = models.BatchJobCreateOptions(id="kept", pool_info=models.BatchPoolInfo(pool_id="p"))
        client.create_job(job)
    with BlobServiceClient.from_connection_string(target.connection_string) as blobs:
        blobs.create_container("kept").upload_blob("a.txt", b"still here")
    assert cli(home, "local", "down").returncode == 0

    restarted = start(home, tools_dir=tools_dir())
    assert (restarted.batch_url, restarted.blob_endpoint) == (target.batch_url, target.blob_endpoint)
    assert restarted.account_key == target.account_key
    with BatchClient(endpoint=restarted.batch_url, credential=credential) as client:
        assert client.get_job("kept").id == "kept"
    with BlobServiceClient.from_connection_string(restarted.connection_string) as blobs:
        assert blobs.get_blob_client("kept", "a.txt").download_blob().readall() == b"still here"


def test_stale_pid_and_half_dead_target_are_restarted(home: Path) -> None:
    assert cli(home, "local", "up").returncode == 0
    before = status(home)
    os.kill(int(str(before["emulatorPid"])), signal.SIGKILL)
    time.sleep(0.2)
    after_kill = cli(home, "local", "status")
    assert "not healthy" in after_kill.stdout and "Azurite" in after_kill.stdout

    up = cli(home, "local", "up")
    assert up.returncode == 0, up.stderr
    now = status(home)
    assert now["running"] is True and now["emulatorPid"] != before["emulatorPid"]
    assert now["batchUrl"] == before["batchUrl"]
    assert not _alive(int(str(before["azuritePid"])))  # the old Azurite was replaced, not leaked

    # A recorded pid that now belongs to another program does not count as the emulator.
    record_file = home / "local" / "target.json"
    record = json.loads(record_file.read_text())
    assert cli(home, "local", "down").returncode == 0
    record["emulator"]["pid"] = os.getpid()
    record["azurite"]["pid"] = os.getpid()
    record["batch_url"] = "http://127.0.0.1:1"
    record_file.write_text(json.dumps(record))
    assert status(home)["running"] is False
    assert cli(home, "local", "down").stdout.startswith("Local target was not running")
    assert _alive(os.getpid())


def test_reset_wipes_state_but_keeps_credentials(home: Path) -> None:
    assert cli(home, "local", "up").returncode == 0
    key = json.loads((home / "local" / "credentials.json").read_text())["account_key"]
    reset = cli(home, "local", "reset", "--yes")
    assert reset.returncode == 0, reset.stderr
    assert sorted(path.name for path in (home / "local").iterdir()) == ["credentials.json"]
    assert status(home)["running"] is False
    assert json.loads((home / "local" / "credentials.json").read_text())["account_key"] == key


def test_concurrent_starts_make_one_target(home: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from batchrun.local.target import ensure_running; "
        f"t = ensure_running(Path({str(home)!r}), lambda line: None, tools_dir=Path({str(tools_dir())!r})); "
        "print(t.batch_url)"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) for _ in range(3)
    ]
    urls = {run.communicate(timeout=120)[0].strip() for run in runs}
    assert len(urls) == 1 and next(iter(urls)).startswith("http://127.0.0.1:")
    config = str(home / "local" / "emulator-config.json")
    emulators = [pid for pid in _all_pids() if config in _cmdline(pid)]
    assert len(emulators) == 1


def test_missing_node_gives_the_fix(home: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    result = cli(home, "local", "up", path=str(empty))
    assert result.returncode == 1
    assert "Node.js" in result.stderr and "install" in result.stderr
    assert "Traceback" not in result.stderr
    assert status(home)["running"] is False


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_state_or_tools_folder_blocked_by_a_file_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    for args in (("local", "up"), ("local", "down"), ("local", "reset", "--yes")):
        result = cli(blocker, *args)
        assert result.returncode == 1, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert f"cannot use {blocker}: a file is in the way; set BATCHRUN_HOME" in result.stderr
    env = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    env.update(BATCHRUN_HOME=str(tmp_path / "home"), BATCHRUN_TOOLS_DIR=str(blocker / "tools"))
    fresh = subprocess.run(
        [sys.executable, "-m", "batchrun", "local", "up"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert fresh.returncode == 1 and "Traceback" not in fresh.stderr
    assert "a file is in the way; set BATCHRUN_TOOLS_DIR" in fresh.stderr
