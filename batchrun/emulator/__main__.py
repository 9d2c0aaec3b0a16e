"""``python -m batchrun.emulator --config FILE``: run the local Batch service until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from batchrun.emulator.config import EmulatorConfig
from batchrun.emulator.server import EmulatorServer, write_discovery
from batchrun.errors import BatchrunError

STOP_CHECK_SECONDS = 0.2


def main(argv: list[str] | None = None, on_start: Callable[[EmulatorServer], None] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; ``on_start`` receives the server once it serves (an embedding daemon)."""
    parser = argparse.ArgumentParser(prog="python -m batchrun.emulator", description=__doc__)
    parser.add_argument("--config", required=True, type=Path, help="JSON configuration file")
    arguments = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        config = EmulatorConfig.load(arguments.config)
        server = EmulatorServer(config)
        url = server.start()
    except BatchrunError as error:
        print(f"Error: {error}", file=sys.stderr)
        return error.exit_code
    try:
        if on_start is not None:
            on_start(server)
        write_discovery(config.discovery_path, url)
        # A signal is taken by any thread, but Python runs its handler in the main thread, when that thread
        # next runs Python: a main thread asleep for an hour slept through a SIGTERM another thread took.
        while not stop.wait(STOP_CHECK_SECONDS):
            pass
    finally:
        logging.getLogger("batchrun.emulator").info("stopping: running tasks are ended and requeued")
        server.stop()
        config.discovery_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
