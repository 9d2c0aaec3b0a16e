"""Which properties and metadata items batchrun itself set on a pool or job (metadata ``batchrun.keys``).

Each write records the top-level properties of the body batchrun sent and the names of the manifest's own
metadata items. The next plan reads it back, so a property or item the manifest used to set and no longer
sets is reverted (removed, or set back to Batch's default), while what someone else set on the resource
(properties batchrun never set, metadata items it never wrote) is kept and shown, not wiped.

A resource without the record (adopted, or written by an older batchrun) is treated as if batchrun had set
only what the manifest sets now: nothing is reverted on its account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

KEYS_KEY = "batchrun.keys"
NOT_RECORDED = frozenset({"id", "metadata"})


class Applied(msgspec.Struct, frozen=True):
    """What batchrun set on a resource last time: top-level property names and metadata item names."""

    keys: frozenset[str]
    metadata: frozenset[str]


def applied_of(body: Mapping[str, Any], user_metadata_names: Sequence[str]) -> Applied:
    return Applied(
        frozenset(k for k in body if k not in NOT_RECORDED), frozenset(str(n) for n in user_metadata_names)
    )


def applied_record(applied: Applied) -> str:
    """The ``batchrun.keys`` metadata value (compact JSON, sorted so equal sets give equal text)."""
    return json.dumps(
        {"keys": sorted(applied.keys), "metadata": sorted(applied.metadata)}, separators=(",", ":")
    )


def read_applied(metadata: Mapping[str, str]) -> Applied | None:
    """The record on a live resource, or None when there is none (or it cannot be read)."""
    text = metadata.get(KEYS_KEY)
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    keys, names = data.get("keys"), data.get("metadata")
    if not isinstance(keys, list) or not isinstance(names, list):
        return None
    return Applied(frozenset(str(k) for k in keys), frozenset(str(n) for n in names))
