"""``python -m batchrun.emulator``: configuration errors are clear, with exit code 1 and no traceback."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.emulator.conftest import ACCOUNT, KEY, REPO, TOKEN


def run_emulator(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchrun.emulator", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def valid_config(tmp_path: Path, port: int = 0) -> dict[str, object]:
    return {
        "state_dir": str(tmp_path / "state"),
        "host": "127.0.0.1",
        "port": port,
        "account_name": ACCOUNT,
        "account_key": KEY,
        "token": TOKEN,
        "subscription_id": "s",
        "resource_group": "r",
        "storage": {
            "blob_endpoint": "http://127.0.0.1:9/devstoreaccount1",
            "account_name": "devstoreaccount1",
            "account_key": KEY,
        },
    }


def test_missing_key_and_bad_json(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    incomplete = valid_config(tmp_path)
    del incomplete["storage"]
    config.write_text(json.dumps(incomplete))
    result = run_emulator(config)
    assert result.returncode == 1
    assert result.stderr.strip() == f"Error: {config}: 'storage' is missing; add it to the configuration file"
    config.write_text("{not json")
    result = run_emulator(config)
    assert result.returncode == 1 and f"{config}:1: invalid JSON" in result.stderr
    assert "Traceback" not in result.stderr
    bad_key = {**valid_config(tmp_path), "account_key": "not base64!"}
    config.write_text(json.dumps(bad_key))
    result = run_emulator(config)
    assert result.returncode == 1 and "'account_key' is not valid base64" in result.stderr
    assert "not base64!" not in result.stderr  # the key itself is never echoed


def test_busy_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        config = tmp_path / "config.json"
        config.write_text(json.dumps(valid_config(tmp_path, busy.getsockname()[1])))
        result = run_emulator(config)
    assert result.returncode == 1
    assert "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr
