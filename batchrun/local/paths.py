"""Where the local target keeps its state (see docs/local-target.md for the layout)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec


def default_home() -> Path:
    """The state folder: ``$BATCHRUN_HOME``, else ``~/.batchrun``."""
    value = os.environ.get("BATCHRUN_HOME")
    return Path(value).expanduser() if value else Path.home() / ".batchrun"


def default_tools_dir(home: Path) -> Path:
    """Where Azurite is installed: ``$BATCHRUN_TOOLS_DIR``, else ``<home>/tools``."""
    value = os.environ.get("BATCHRUN_TOOLS_DIR")
    return Path(value).expanduser() if value else home / "tools"


class LocalPaths(msgspec.Struct, frozen=True):
    home: Path

    @property
    def state_dir(self) -> Path:
        return self.home / "local"

    @property
    def target_file(self) -> Path:
        return self.state_dir / "target.json"

    @property
    def credentials_file(self) -> Path:
        return self.state_dir / "credentials.json"

    @property
    def emulator_config_file(self) -> Path:
        return self.state_dir / "emulator-config.json"

    @property
    def discovery_file(self) -> Path:
        return self.state_dir / "emulator.json"

    @property
    def nodes_dir(self) -> Path:
        return self.state_dir / "nodes"

    @property
    def azurite_dir(self) -> Path:
        return self.state_dir / "azurite"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def lock_file(self) -> Path:
        return self.home / ".local-target.lock"
