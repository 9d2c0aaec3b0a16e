"""The stored JSON text of a body: compact and in key order, as the standard library writes it for ASCII text,
and every value that the standard library takes still taken (orjson refuses a few)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from batchrun.emulator.store import decode, encode


@pytest.mark.parametrize(
    "body",
    [
        {"id": "t1", "state": "active", "constraints": {"maxTaskRetryCount": -1}, "_x": {"seq": 0}},
        {"z": 1, "a": [1, 2.5, None, True, False], "m": {}, "quote": 'say "hi" \\ there\n\t'},
        {"caf\u00e9": "\u00e9t\u00e9 \u2603 \U0001f600"},
    ],
)
def test_a_body_reads_back_as_it_was_written(body: dict[str, Any]) -> None:
    text = encode(body)
    assert decode(text) == body
    assert list(decode(text)) == list(body)  # key order kept
    assert json.loads(text) == body


def test_ascii_text_is_what_the_standard_library_writes() -> None:
    body = {"id": "t1", "commandLine": "/bin/sh -c 'echo \"x\"'", "n": 3, "f": 0.5, "l": [1, {"k": None}]}
    assert encode(body) == json.dumps(body, separators=(",", ":"))


def test_text_outside_ascii_is_written_as_itself() -> None:
    assert encode({"name": "caf\u00e9"}) == '{"name":"caf\u00e9"}'


def test_integers_past_64_bits_are_written_by_the_standard_library() -> None:
    # orjson refuses to write them (and would read them back as floats: the API refuses them, see
    # tests/emulator/test_validation.py).
    body = {"big": 2**70 + 1, "negative": -(2**65) - 1}
    assert json.loads(encode(body)) == body


def test_older_texts_with_what_orjson_refuses_still_read() -> None:
    assert math.isnan(decode('{"x":NaN}')["x"])
    with pytest.raises(ValueError):
        decode('{"x":')
