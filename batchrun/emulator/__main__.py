"""``python -m batchrun.emulator --config FILE``: run the local Batch service until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from batchrun.emulator.config import EmulatorConfig
from batchrun.emulator.server import EmulatorServer, write_discovery
from batchrun.errors import BatchrunError


def main(argv: list[str] | None = None) -> int:
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
        write_discovery(config.discovery_path, url)
        while not stop.wait(3600):
            pass
    finally:
        logging.getLogger("batchrun.emulator").info("stopping: running tasks are ended and requeued")
        server.stop()
        config.discovery_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
