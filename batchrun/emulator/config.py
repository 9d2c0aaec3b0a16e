"""Emulator configuration: the JSON file handed to ``python -m batchrun.emulator --config FILE``."""

from __future__ import annotations

import base64
import binascii
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import msgspec

from batchrun.errors import ConfigurationError


class StorageConfig(msgspec.Struct, frozen=True):
    """The storage account (Azurite locally) that backs auto-storage and application packages."""

    blob_endpoint: str
    account_name: str
    account_key: str


class EmulatorConfig(msgspec.Struct, frozen=True, dict=True):  # dict: for its cached properties
    state_dir: Path
    account_name: str
    account_key: str  # base64, as Azure hands it out
    token: str  # the one bearer token accepted on both planes
    subscription_id: str
    resource_group: str
    storage: StorageConfig
    host: str = "127.0.0.1"
    port: int = 0
    max_running_tasks: int = 0  # 0 = the CPU count

    @property
    def effective_max_running_tasks(self) -> int:
        return self.max_running_tasks if self.max_running_tasks > 0 else max(1, os.cpu_count() or 1)

    @property
    def db_path(self) -> Path:
        return self.state_dir / "emulator.db"

    @property
    def nodes_dir(self) -> Path:
        return self.state_dir / "nodes"

    @property
    def discovery_path(self) -> Path:
        return self.state_dir / "emulator.json"

    @cached_property
    def account_key_bytes(self) -> bytes:  # asked for at every task start
        return base64.b64decode(self.account_key)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "emulator config") -> EmulatorConfig:
        def need(mapping: dict[str, Any], key: str, kind: type, where: str) -> Any:
            if key not in mapping:
                raise ConfigurationError(
                    f"{source}: '{where}{key}' is missing; add it to the configuration file"
                )
            value = mapping[key]
            if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
                raise ConfigurationError(
                    f"{source}: '{where}{key}' must be a {kind.__name__}, got {type(value).__name__}"
                )
            return value

        storage = need(data, "storage", dict, "")
        config = cls(
            state_dir=Path(need(data, "state_dir", str, "")),
            host=data.get("host", "127.0.0.1"),
            port=int(data.get("port", 0)),
            account_name=need(data, "account_name", str, ""),
            account_key=need(data, "account_key", str, ""),
            token=need(data, "token", str, ""),
            subscription_id=need(data, "subscription_id", str, ""),
            resource_group=need(data, "resource_group", str, ""),
            storage=StorageConfig(
                blob_endpoint=need(storage, "blob_endpoint", str, "storage."),
                account_name=need(storage, "account_name", str, "storage."),
                account_key=need(storage, "account_key", str, "storage."),
            ),
            max_running_tasks=int(data.get("max_running_tasks", 0)),
        )
        try:
            base64.b64decode(config.account_key, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigurationError(
                f"{source}: 'account_key' is not valid base64; use a base64 key like Azure's"
            ) from None
        if not config.token:
            raise ConfigurationError(f"{source}: 'token' must not be empty")
        if config.max_running_tasks < 0:
            raise ConfigurationError(f"{source}: 'max_running_tasks' must be >= 0 (0 = number of CPUs)")
        return config

    @classmethod
    def load(cls, path: Path) -> EmulatorConfig:
        try:
            data = json.loads(path.read_text())
        except OSError as error:
            raise ConfigurationError(f"cannot read emulator config {path}: {error.strerror}") from None
        except json.JSONDecodeError as error:
            raise ConfigurationError(f"{path}:{error.lineno}: invalid JSON: {error.msg}") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path}: the configuration must be a JSON object")
        return cls.from_dict(data, str(path))
