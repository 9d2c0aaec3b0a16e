"""The house rules that tools can check: ruff-clean, ruff-formatted, mypy-strict, and no SDK leaks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKED = ["batchrun", "tests", "bench", "schemas"]
# The Python examples in the README and the guides are formatted as the code is (ruff reads Markdown's
# ```python blocks).
FORMATTED = [*CHECKED, "README.md", "docs"]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600, check=False
    )


def test_ruff_finds_nothing() -> None:
    result = run_tool("ruff", "check", *CHECKED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_code_is_ruff_formatted() -> None:
    result = run_tool("ruff", "format", "--check", *FORMATTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes_on_the_package(tmp_path: Path) -> None:
    result = run_tool("mypy", "--cache-dir", str(tmp_path / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr


IMPORT = re.compile(r"^\s*(?:from|import)\s+([\w.]+)", re.M)


def imports_of(path: Path) -> set[str]:
    return set(IMPORT.findall(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize(
    ("package", "forbidden", "why"),
    [
        (
            "emulator",
            ("batchrun.azure", "batchrun.plan", "batchrun.manifest", "batchrun.apply", "batchrun.watch"),
            "the emulator shares nothing with the client but the wire format",
        ),
        ("manifest", ("azure", "batchrun.azure", "batchrun.plan"), "loading a manifest needs no target"),
        ("plan", ("azure",), "decisions are pure: no SDK objects outside batchrun/azure"),
        ("model", ("azure", "batchrun.azure"), "the model is SDK-free"),
    ],
)
def test_package_boundaries(package: str, forbidden: tuple[str, ...], why: str) -> None:
    offenders = []
    for path in (REPO / "batchrun" / package).rglob("*.py"):
        for module in imports_of(path):
            if any(module == name or module.startswith(name + ".") for name in forbidden):
                offenders.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offenders, f"{why}:\n" + "\n".join(offenders)
