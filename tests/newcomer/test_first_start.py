"""The first start of the local target is not silent (item 3) and its first stderr line names the target
(item 8): the target line comes first, then the Azurite install's progress, and an unreachable npm registry
fails soon with npm's words and the fix."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from batchrun.local import azurite
from tests.operate.cli import batchrun, batchrun_in_terminal, manifest


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # closed again: connections are refused


def _fresh_env(tmp_path: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AZURE_", "BATCHRUN_"))}
    env.update(
        BATCHRUN_HOME=str(tmp_path / "home"),
        BATCHRUN_TOOLS_DIR=str(tmp_path / "tools"),  # empty: Azurite must be installed
        npm_config_registry=f"http://127.0.0.1:{_closed_port()}/",
        npm_config_cache=str(tmp_path / "npm-cache"),  # nothing cached either
    )
    return env


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_first_start_names_the_target_then_shows_the_install_and_fails_soon_without_a_registry(
    tmp_path: Path, terminal: bool
) -> None:
    env = _fresh_env(tmp_path)
    path = manifest(
        tmp_path, "nc-first", "job:\n  id: nc-first-job\n  tasks: [{id: t, commandLine: /bin/true}]\n"
    )
    run = (batchrun_in_terminal if terminal else batchrun)(["status", str(path)], env, timeout=300)
    assert run.code == 1
    lines = (run.stdout if terminal else run.stderr).strip().splitlines()
    assert lines[0].startswith("Target: local, not running: starting it (emulator + Azurite) in ")
    assert lines[1].startswith(
        f"  Installing Azurite {azurite.AZURITE_VERSION} with npm into {tmp_path / 'tools'}"
    )
    text = "\n".join(lines)
    assert f"installing Azurite {azurite.AZURITE_VERSION} with npm failed" in text
    assert "check that the npm registry is reachable and run the command again" in text
    assert "npm error code ECONNREFUSED" in text and "    at " not in text  # npm's words, not its stack
    assert not (tmp_path / "tools" / f"azurite-{azurite.AZURITE_VERSION}").exists()


def test_a_long_install_says_it_is_still_at_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(azurite, "PROGRESS_SECONDS", 0.05)
    heard: list[float] = []
    code, output = azurite._run_npm(
        ["/bin/sh", "-c", "sleep 0.5; echo npm-said-this >&2; exit 3"], heard.append
    )
    assert code == 3 and "npm-said-this" in output
    assert heard and heard == sorted(heard)  # at least one "still installing" call, in time order
