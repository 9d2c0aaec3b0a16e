"""``python -m batchrun.local.emulator_daemon``: the local target's emulator daemon, which also supervises
Azurite.

It runs the emulator (:mod:`batchrun.emulator`) in this process with two things the bare emulator does not
do, because they are the local target's business, not Batch's:

* Logging to ``logs/emulator.log`` through a rotating handler (:data:`LOG_BYTES` per file, :data:`LOG_FILES`
  old files kept); the storage SDK and HTTP client libraries log at WARNING, not one line per request.
  Whatever is printed outside logging (a crash's traceback) goes to ``logs/emulator.out``.
* Azurite supervision: every :data:`CHECK_SECONDS` it checks that the Azurite recorded in ``target.json`` is
  alive (same pid and start time); when it is not, it starts Azurite again on the same port and data folder
  and records it, under the lifecycle lock so that ``batchrun local stop`` never races a restart.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import logging.handlers
import threading
from pathlib import Path

from batchrun.emulator.__main__ import main as emulator_main
from batchrun.errors import LocalTargetError
from batchrun.local.azurite import azurite_command, wait_for_port
from batchrun.local.daemons import azurite_alive, read_record, write_record
from batchrun.local.paths import LocalPaths
from batchrun.local.processes import daemon_environment, spawn_detached, start_time

LOG_BYTES = 10 * 1024 * 1024
LOG_FILES = 3
CHECK_SECONDS = 1.0
QUIET_LOGGERS = ("azure", "urllib3", "uvicorn.access")

_LOG = logging.getLogger("batchrun.local.supervisor")


def configure_logging(log_file: Path) -> None:
    handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=LOG_BYTES, backupCount=LOG_FILES)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)  # the emulator's own basicConfig then leaves logging as set here
    root.setLevel(logging.INFO)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


class AzuriteSupervisor:
    """Restarts Azurite when it dies, while this daemon runs."""

    def __init__(self, paths: LocalPaths, launcher: Path) -> None:
        self.paths = paths
        self.launcher = launcher
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="azurite-supervisor", daemon=True)
        self.restarts = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)

    def _watch(self) -> None:
        while not self.stopping.wait(CHECK_SECONDS):
            entry = read_record(self.paths).get("azurite", {})
            if entry.get("pid") and not azurite_alive(self.paths, entry):
                try:
                    self._restart()
                except (OSError, LocalTargetError) as error:
                    _LOG.error("Azurite could not be restarted: %s; trying again", error)

    def _restart(self) -> None:
        with open(self.paths.lock_file, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # local up/down/reset is at work: it decides what runs
            try:
                record = read_record(self.paths)
                entry = record.get("azurite", {})
                if self.stopping.is_set() or not entry.get("pid") or azurite_alive(self.paths, entry):
                    return
                host, port = str(record.get("host", "127.0.0.1")), int(entry["port"])
                _LOG.warning(
                    "Azurite (pid %s) is not running; starting it again on port %s", entry["pid"], port
                )
                log = self.paths.logs_dir / "azurite.log"
                pid, pgid = spawn_detached(
                    azurite_command(self.launcher, self.paths.azurite_dir, host, port),
                    log,
                    env=daemon_environment(),
                )
                record["azurite"] = {"pid": pid, "pgid": pgid, "port": port, "start_time": start_time(pid)}
                write_record(self.paths, record)
                wait_for_port(host, port, None, what="Azurite", timeout=30.0, log_path=log)
                self.restarts += 1
                _LOG.warning("Azurite restarted (pid %s)", pid)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m batchrun.local.emulator_daemon", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="the emulator's configuration file")
    parser.add_argument("--home", required=True, type=Path, help="the local target's BATCHRUN_HOME")
    parser.add_argument("--azurite", required=True, type=Path, help="Azurite's azurite-blob launcher")
    arguments = parser.parse_args(argv)
    paths = LocalPaths(arguments.home)
    configure_logging(paths.logs_dir / "emulator.log")
    supervisor = AzuriteSupervisor(paths, arguments.azurite)
    supervisor.start()
    try:
        return emulator_main(["--config", str(arguments.config)])
    finally:
        supervisor.stop()


if __name__ == "__main__":
    raise SystemExit(main())
