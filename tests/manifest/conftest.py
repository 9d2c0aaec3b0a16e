"""Helpers for manifest tests: write a manifest into a temporary folder and check the problems it yields."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from batchrun.errors import Diagnostic, ManifestError
from batchrun.manifest import load_workload

POOL = """\
pool:
  id: p1
  vmSize: standard_d2s_v3
  targetDedicatedNodes: 1
"""

HEADER = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: t}
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    """Write a manifest (dedented) as tmp/manifest.yaml and return its path."""

    def _write(text: str, name: str = "manifest.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return _write


def problems_of(path: Path, **kwargs: object) -> list[Diagnostic]:
    with pytest.raises(ManifestError) as caught:
        load_workload(path, **kwargs)  # type: ignore[arg-type]
    return caught.value.diagnostics


def find(diagnostics: list[Diagnostic], fragment: str) -> Diagnostic:
    """The diagnostic whose text contains ``fragment``; fails listing them all when none does."""
    for diagnostic in diagnostics:
        if fragment in str(diagnostic):
            return diagnostic
    raise AssertionError(f"no diagnostic contains {fragment!r}:\n" + "\n".join(map(str, diagnostics)))
