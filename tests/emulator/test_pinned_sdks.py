"""Microsoft's samples' call sequences through the SDK versions they pin: the batch-python-quickstart with
azure-batch 11.0.0 (api-version 2021-06-01.14.0) and azure-batch-samples sample1, job prep/release and sample2
with azure-batch 12.0.0 (2022-01-01.15.0). Each SDK is installed once into a virtual environment cached in
pytest's cache folder (needs PyPI the first time); the scenarios are in ``sdk_scenarios/``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.emulator.conftest import ACCOUNT, KEY, Emulator

SCENARIOS = Path(__file__).parent / "sdk_scenarios"
PINS = {
    "11.0.0": ("azure-batch==11.0.0", "azure-storage-blob==12.8.1"),
    "12.0.0": ("azure-batch==12.0.0", "azure-storage-blob==12.8.1"),
}


def pinned_python(cache_root: Path, version: str) -> Path:
    """The interpreter of a virtual environment holding azure-batch ``version`` (built once, then reused)."""
    target = cache_root / f"azure-batch-{version}"
    python = target / "bin" / "python"
    if (target / ".ready").exists():
        return python
    building = cache_root / f".building-{uuid.uuid4().hex}"
    subprocess.run([sys.executable, "-m", "venv", str(building)], check=True, capture_output=True)
    installed = subprocess.run(
        [
            str(building / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            *PINS[version],
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if installed.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        pytest.skip(f"cannot install azure-batch {version} from PyPI: {installed.stderr.strip()[-300:]}")
    (building / ".ready").touch()
    try:
        building.rename(
            target
        )  # venvs use absolute paths: the interpreter is a symlink, scripts are not used
    except OSError:
        shutil.rmtree(building, ignore_errors=True)  # another worker finished first
    return python


@pytest.fixture(scope="module")
def cache_root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest's cache folder, kept between runs; a folder of this run when the cache is off
    (``-p no:cacheprovider``)."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("pinned-azure-batch")
    return Path(cache.mkdir("pinned-azure-batch"))


def run_scenario(python: Path, script: str, emulator: Emulator) -> str:
    storage = emulator.config.storage
    environment = {
        **os.environ,
        "BATCH_URL": emulator.url,
        "BATCH_ACCOUNT": ACCOUNT,
        "BATCH_KEY": KEY,
        "STORAGE_URL": storage.blob_endpoint.rstrip("/"),
        "STORAGE_ACCOUNT": storage.account_name,
        "STORAGE_KEY": storage.account_key,
        "TASK_PYTHON": sys.executable,
    }
    finished = subprocess.run(
        [str(python), str(SCENARIOS / script)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


@pytest.mark.pinned_sdk
def test_batch_python_quickstart_with_azure_batch_11(emulator: Emulator, cache_root: Path) -> None:
    output = run_scenario(pinned_python(cache_root, "11.0.0"), "quickstart_sdk11.py", emulator)
    for index in range(3):
        assert f"Task{index} on tvm-" in output and f"contents of file {index}" in output
    assert output.rstrip().endswith("cleaned up")


@pytest.mark.pinned_sdk
def test_azure_batch_samples_with_azure_batch_12(emulator: Emulator, cache_root: Path) -> None:
    output = run_scenario(pinned_python(cache_root, "12.0.0"), "samples_sdk12.py", emulator)
    assert "stdout.txt: Hello world from the Batch Hello world sample!" in output
    assert "stdout.txt: Hello world from the Batch Job prep and release sample!" in output
    assert "preparation: [" in output and "completed" in output.split("preparation: ", 1)[1].splitlines()[0]
    assert "simpletask.py listing files:" in output and "simple_task.py" in output
    assert output.rstrip().endswith("all samples done")
