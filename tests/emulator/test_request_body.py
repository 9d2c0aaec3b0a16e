"""A request body reads the same whichever decoder reads it (orjson where it reads the text as the standard
library does, the standard library elsewhere), its nesting bounded at 64 levels with or without nulls."""

from __future__ import annotations

from typing import Any

import pytest

from batchrun.emulator.api.request_body import parse_body
from batchrun.emulator.errors import BatchApiError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            b'{"a": 1, "b": [1.5, "x", true, false, -0], "c": {}}',
            {"a": 1, "b": [1.5, "x", True, False, 0], "c": {}},
        ),
        ('{"a": "\u00e9"}'.encode("utf-16"), {"a": "\u00e9"}),  # orjson reads UTF-8 only
        (b'\xef\xbb\xbf{"bom": 1}', {"bom": 1}),
        (b'{"s": "\\ud800"}', {"s": "\ud800"}),  # a lone surrogate: orjson refuses it
        # Past 64 bits orjson would make floats of these; the API then refuses them by name.
        (b'{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
        (b'{"n": 18446744073709551616, "m": -9223372036854775809}', {"n": 2**64, "m": -(2**63) - 1}),
        (b'{"n": 1234567890123456789, "m": -9223372036854775808}', {"n": 1234567890123456789, "m": -(2**63)}),
        (b'{"a": null, "b": [null, {"c": null, "d": 1}]}', {"b": [None, {"d": 1}]}),
    ],
)
def test_a_body_reads_as_the_standard_library_reads_it(text: bytes, expected: Any) -> None:
    body = parse_body(text)
    assert body == expected
    assert [type(value) for value in body.values()] == [type(value) for value in expected.values()]


@pytest.mark.parametrize("nulls", [False, True])
@pytest.mark.parametrize("levels", [64, 65])
def test_the_nesting_limit_holds_with_and_without_nulls(levels: int, nulls: bool) -> None:
    inner = levels - 1  # the body's own object is the first level
    text = b'{"x": ' + (b"null, " if nulls else b"1, ") + b'"m": ' + b"[" * inner + b"]" * inner + b"}"
    if levels <= 64:
        assert "m" in parse_body(text)
        return
    with pytest.raises(BatchApiError) as refused:
        parse_body(text)
    assert f"nested {levels} levels deep; at most 64" in refused.value.message
