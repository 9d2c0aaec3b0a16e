"""The committed schema and reference documentation are what their generators produce."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from batchrun.manifest.docgen import generate

ROOT = Path(__file__).resolve().parents[2]


def test_docs_manifest_md_is_up_to_date() -> None:
    committed = (ROOT / "docs" / "manifest.md").read_text(encoding="utf-8")
    assert committed == generate(), "regenerate: python -m batchrun.manifest.docgen > docs/manifest.md"


def test_schema_file_is_up_to_date_with_its_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "schemas"))  # the generator imports its sibling modules
    spec = importlib.util.spec_from_file_location("build_schema", ROOT / "schemas" / "build_schema.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = json.loads((ROOT / "schemas" / "manifest.schema.json").read_text(encoding="utf-8"))
    assert committed == module.build(), "regenerate: python schemas/build_schema.py"
