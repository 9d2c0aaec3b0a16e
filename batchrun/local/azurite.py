"""Azurite, Microsoft's storage emulator: installation on first use and process start/stop.

Azurite is an npm package. It is installed once into ``<tools_dir>/azurite-<version>`` (the local state
folder's ``tools`` by default) and started as a child process serving the blob endpoint on loopback.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from batchrun.errors import LocalTargetError

# 3.35.0 is the newest Azurite that supports Node.js 20; newer ones declare node >= 21.
AZURITE_VERSION = "3.35.0"
# Azurite's well-known development account (public, documented by Microsoft; not a secret).
DEV_ACCOUNT_NAME = "devstoreaccount1"
DEV_ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteEndpoint(msgspec.Struct, frozen=True):
    host: str
    port: int
    account_name: str = DEV_ACCOUNT_NAME
    account_key: str = DEV_ACCOUNT_KEY

    @property
    def blob_url(self) -> str:
        return f"http://{self.host}:{self.port}/{self.account_name}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={self.account_name};AccountKey={self.account_key};"
            f"BlobEndpoint={self.blob_url};"
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


NODE_MISSING = (
    "Node.js and npm are needed for the local storage emulator (Azurite) but were not found on PATH; "
    "install Node.js 20 or newer (e.g. 'apt-get install nodejs npm') and run the command again"
)


def require_node() -> None:
    """Fail with the fix when Node.js is missing: Azurite's launcher needs it even once installed."""
    if shutil.which("node") is None:
        raise LocalTargetError(NODE_MISSING)


# npm's own defaults retry an unreachable registry for over a minute; two quick retries say the same sooner.
NPM_NETWORK_OPTIONS = ("--fetch-retries=2", "--fetch-retry-mintimeout=2000", "--fetch-retry-maxtimeout=10000")
PROGRESS_SECONDS = 10.0  # how often a running install says it is still at work


def ensure_installed(tools_dir: Path, announce: Callable[[str], None] | None = None) -> Path:
    """Install Azurite into ``tools_dir`` unless present; return the path of its ``azurite-blob`` launcher.

    Concurrent callers (parallel test workers, two terminals) are serialised with a file lock. ``announce``
    receives progress lines while npm installs (the first use only: about half a minute).
    """
    target = tools_dir / f"azurite-{AZURITE_VERSION}"
    launcher = target / "node_modules" / ".bin" / "azurite-blob"
    if launcher.exists():
        return launcher
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        raise LocalTargetError(NODE_MISSING)
    tools_dir.mkdir(parents=True, exist_ok=True)
    with open(tools_dir / ".azurite-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if launcher.exists():
            return launcher
        staging = tools_dir / f".azurite-{AZURITE_VERSION}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        say = announce or (lambda _line: None)
        say(f"  Installing Azurite {AZURITE_VERSION} with npm into {tools_dir} (first use only, ~30 s) ...")
        began = time.monotonic()
        returncode, errors = _run_npm(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                *NPM_NETWORK_OPTIONS,
                "--prefix",
                str(staging),
                f"azurite@{AZURITE_VERSION}",
            ],
            lambda seconds: say(f"  ... still installing Azurite ({seconds:.0f} s)"),
        )
        if returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join(_npm_summary(errors))
            raise LocalTargetError(
                f"installing Azurite {AZURITE_VERSION} with npm failed (exit {returncode}):\n{tail}\n"
                "check that the npm registry is reachable and run the command again"
            )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        say(f"  Azurite installed in {time.monotonic() - began:.0f} s.")
    return launcher


def _npm_summary(output: str, lines: int = 6) -> list[str]:
    """npm's own words without its stack trace and error-object dump: the code, the reason, the hints."""
    kept = [
        line
        for line in output.strip().splitlines()
        if line.strip() not in ("npm error", "npm error }") and not line.startswith("npm error  ")
    ]
    return kept[:lines] or output.strip().splitlines()[-lines:]


def _run_npm(command: list[str], still_running: Callable[[float], None]) -> tuple[int, str]:
    """Run npm with its output in a temporary file; call ``still_running`` every PROGRESS_SECONDS."""
    began = time.monotonic()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=output)
        try:
            while True:
                try:
                    returncode = process.wait(timeout=PROGRESS_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    still_running(time.monotonic() - began)
        except BaseException:
            process.kill()
            process.wait()
            raise
        output.seek(0)
        return returncode, output.read().decode("utf-8", errors="replace")


def azurite_command(launcher: Path, data_dir: Path, host: str, port: int) -> list[str]:
    return [
        str(launcher),
        "--blobHost",
        host,
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        "--silent",
        "--disableTelemetry",
        # azure-storage-blob sends an x-ms-version newer than Azurite 3.35 knows.
        "--skipApiVersionCheck",
    ]


def start_azurite(
    tools_dir: Path, data_dir: Path, host: str = "127.0.0.1", port: int = 0, log_path: Path | None = None
) -> tuple[subprocess.Popen[bytes], AzuriteEndpoint]:
    """Start Azurite's blob service and wait until it accepts connections."""
    require_node()
    launcher = ensure_installed(tools_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(host)
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        process = subprocess.Popen(
            azurite_command(launcher, data_dir, host, port),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    finally:
        if log_path:
            log.close()  # type: ignore[union-attr]
    endpoint = AzuriteEndpoint(host, port)
    wait_for_port(host, port, process, what="Azurite", timeout=30.0, log_path=log_path)
    return process, endpoint


def wait_for_port(
    host: str,
    port: int,
    process: subprocess.Popen[bytes] | None,
    what: str,
    timeout: float,
    log_path: Path | None = None,
) -> None:
    """Wait until ``host:port`` accepts TCP connections, failing fast if ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            hint = f"; see {log_path}" if log_path else ""
            raise LocalTargetError(f"{what} exited with code {process.returncode} while starting{hint}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    hint = f"; see {log_path}" if log_path else ""
    raise LocalTargetError(f"{what} did not start listening on {host}:{port} within {timeout:.0f} s{hint}")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate a child started in its own session, escalating to SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, 15)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, 9)
        except ProcessLookupError:
            return
        process.wait(timeout=timeout)
