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
* Closing Azurite's loss window for task outputs: Azurite acknowledges a blob before its index (saved every
  :data:`AZURITE_AUTOSAVE_SECONDS`) holds it, so a crash forgets the blobs of the last few seconds. When
  Azurite is found dead, the emulator is told that writes acknowledged since :data:`LOSS_WINDOW_SECONDS`
  before are in doubt (:func:`batchrun.emulator.scheduler.storage_recovery.storage_lost`); once Azurite serves
  again, the output uploads of that window are checked and the lost ones uploaded again from the nodes' task
  folders, in a thread of their own so that supervision goes on.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import logging.handlers
import threading
import time
from pathlib import Path

from batchrun.emulator.__main__ import main as emulator_main
from batchrun.emulator.scheduler.storage_recovery import StorageLoss, storage_lost
from batchrun.emulator.server import EmulatorServer
from batchrun.errors import LocalTargetError
from batchrun.local.azurite import azurite_command, wait_for_port
from batchrun.local.daemons import azurite_alive, read_record, write_record
from batchrun.local.paths import LocalPaths
from batchrun.local.processes import daemon_environment, spawn_detached, start_time

LOG_BYTES = 10 * 1024 * 1024
LOG_FILES = 3
CHECK_SECONDS = 1.0
# Azurite 3.35 saves its blob index (LokiJS) every 5 s and has no option to save sooner.
AZURITE_AUTOSAVE_SECONDS = 5.0
# Writes acknowledged this long before Azurite last saved its index file (or before it was found dead, when
# that is earlier) are checked again: the autosave interval, the check interval, and margin for a slow save
# of a large index and a busy machine. A stalled Azurite that has not saved for long widens the window.
LOSS_WINDOW_SECONDS = 15.0
AZURITE_INDEX_FILE = "__azurite_db_blob__.json"  # LokiJS's blob and container index, rewritten at each save
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


def loss_window_start(azurite_dir: Path, found_dead: float) -> float:
    """From when (``time.time()``) Azurite's acknowledged writes may be lost, for a crash noticed at
    ``found_dead``: :data:`LOSS_WINDOW_SECONDS` before its index file was last saved, or before ``found_dead``
    when that is earlier (no index file yet, or one written since)."""
    try:
        saved = (azurite_dir / AZURITE_INDEX_FILE).stat().st_mtime
    except OSError:
        saved = found_dead
    return min(found_dead, saved) - LOSS_WINDOW_SECONDS


class AzuriteSupervisor:
    """Restarts Azurite when it dies, while this daemon runs, and has the emulator repair what it lost."""

    def __init__(self, paths: LocalPaths, launcher: Path) -> None:
        self.paths = paths
        self.launcher = launcher
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="azurite-supervisor", daemon=True)
        self.restarts = 0
        self.emulator: EmulatorServer | None = None
        self._loss: StorageLoss | None = None  # a crash noticed, its restart not done yet
        self._recoveries: list[threading.Thread] = []

    def attach(self, emulator: EmulatorServer) -> None:
        """The emulator whose task outputs are checked after a restart (once it serves)."""
        self.emulator = emulator

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        for recovery in self._recoveries:
            recovery.join(timeout=5)
        if self._loss is not None:
            self._loss.release()
            self._loss = None

    def _watch(self) -> None:
        while not self.stopping.wait(CHECK_SECONDS):
            entry = read_record(self.paths).get("azurite", {})
            if not entry.get("pid"):  # stopped on purpose (local down): nothing to repair
                if self._loss is not None:
                    self._loss.release()
                    self._loss = None
                continue
            if azurite_alive(self.paths, entry):
                if self._loss is not None:  # started again by `local up` meanwhile
                    self._recover()
                continue
            self._notice_loss(time.time())
            try:
                restarted = self._restart()
            except (OSError, LocalTargetError) as error:
                _LOG.error("Azurite could not be restarted: %s; trying again", error)
                continue
            if restarted:
                self._recover()

    def _notice_loss(self, found_dead: float) -> None:
        """Tell the emulator (once per crash) that Azurite's recent writes are in doubt."""
        scheduler = self.emulator.scheduler if self.emulator is not None else None
        if self._loss is None and scheduler is not None:
            self._loss = storage_lost(scheduler, loss_window_start(self.paths.azurite_dir, found_dead))

    def _recover(self) -> None:
        loss, self._loss = self._loss, None
        if loss is None:
            return

        def run() -> None:
            try:
                report = loss.recover()
            except Exception:  # a bug here must not end supervision
                _LOG.exception("checking task outputs after Azurite's restart failed")
                return
            log = _LOG.error if report.lost or report.pending_packages else _LOG.warning
            log("task outputs after Azurite's restart: %s", report.summary())

        self._recoveries = [thread for thread in self._recoveries if thread.is_alive()]
        thread = threading.Thread(target=run, name="azurite-recovery", daemon=True)
        self._recoveries.append(thread)
        thread.start()

    def _restart(self) -> bool:
        """Start Azurite again; False when it was not this supervisor's to restart (now)."""
        with open(self.paths.lock_file, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # local up/down/reset is at work: it decides what runs
            try:
                record = read_record(self.paths)
                entry = record.get("azurite", {})
                if self.stopping.is_set() or not entry.get("pid"):
                    return False
                if azurite_alive(self.paths, entry):
                    return True  # started by someone else meanwhile: what it lost is checked all the same
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
                return True
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
        return emulator_main(["--config", str(arguments.config)], on_start=supervisor.attach)
    finally:
        supervisor.stop()


if __name__ == "__main__":
    raise SystemExit(main())
