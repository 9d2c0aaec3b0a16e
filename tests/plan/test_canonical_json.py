"""The canonical JSON every digest hashes: sorted keys, no spaces, non-ASCII kept, anything else as its
str(); the C encoder made once writes exactly what json.dumps with those options writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchrun.plan import bodies
from batchrun.plan.bodies import canonical_json

VALUES: list[Any] = [
    {"commandLine": "/bin/echo 1", "constraints": {"maxTaskRetryCount": 1}},
    {"b": [1, 2.5, None, True, False, "é ü 漢"], "a": {"z": float("inf"), "y": -0.0}},
    ["x", {"k": Path("/tmp/a")}, 10**30],
    "a string \u2028 with a line separator",
    None,
    1.5,
    {},
    [],
]


def _reference(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


@pytest.mark.parametrize("value", VALUES)
def test_canonical_json_is_json_dumps_with_sorted_keys_and_no_spaces(value: Any) -> None:
    assert canonical_json(value) == _reference(value)


def test_without_the_c_encoder_the_encoding_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    made = [canonical_json(value) for value in VALUES]
    monkeypatch.setattr(bodies, "_C_CANONICAL", None)
    assert [canonical_json(value) for value in VALUES] == made
