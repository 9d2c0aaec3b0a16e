"""Every bench command the docs give names a script that exists and options it takes (the benches themselves
take minutes: their figures are in docs/benchmarks.md, not in tests)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMAND = re.compile(r"`(?:\.venv/bin/python )?(bench/[a-z_]+\.py)((?: --?[a-z-]+(?: [^\s`-][^\s`]*)?)*)`")


def _documented() -> dict[str, set[str]]:
    """Script -> the options the docs pass it, from every `bench/...` command quoted in README and docs/."""
    found: dict[str, set[str]] = {}
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for script, arguments in COMMAND.findall(page.read_text(encoding="utf-8")):
            found.setdefault(script, set()).update(re.findall(r"(--[a-z-]+)", arguments))
    return found


DOCUMENTED = _documented()


def test_the_docs_quote_the_benches() -> None:
    assert {"bench/reconcile.py", "bench/manifest_sweep.py", "bench/startup.py"} <= set(DOCUMENTED)


@pytest.mark.parametrize("script", sorted(DOCUMENTED))
def test_a_documented_bench_command_takes_its_options(script: str) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / script), "--help"], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert done.returncode == 0, done.stderr
    taken = set(re.findall(r"(--[a-z-]+)", done.stdout))
    assert DOCUMENTED[script] <= taken, f"{script}: the docs pass {sorted(DOCUMENTED[script] - taken)}"
