"""Field-level comparison of a desired REST body with the live one, seeing only what the manifest sets.

Live resources carry computed fields and service defaults the manifest never wrote; those are not drift. So:

* only keys present in the desired body are compared (recursively, lists element by element);
* a key missing from the live body equals the desired value when that value is the service default;
* ISO-8601 durations compare by length (``PT15M`` == ``PT15M00S`` == ``PT900S``);
* enum-like fields and ``vmSize`` compare case-insensitively; ``1`` equals ``1.0``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from batchrun.model.durations import duration_seconds
from batchrun.plan.actions import FieldChange
from batchrun.plan.defaults import CASE_INSENSITIVE_KEYS, COMPUTED_KEYS, UNLIMITED_DURATION, normal_value
from batchrun.plan.secrets import SECRET_KEYS

# Service defaults, by the last one or two segments of a field path (list indices removed).
DEFAULTS: Mapping[str, Any] = {
    "constraints.maxTaskRetryCount": 0,
    "constraints.maxWallClockTime": UNLIMITED_DURATION,
    "constraints.retentionTime": "P7D",
    "startTask.maxTaskRetryCount": 0,
    "startTask.waitForSuccess": True,
    "taskSlotsPerNode": 1,
    "enableInterNodeCommunication": False,
    "targetDedicatedNodes": 0,
    "targetLowPriorityNodes": 0,
    "enableAutoScale": False,
    "resizeTimeout": "PT15M",
    "autoScaleEvaluationInterval": "PT15M",
    "taskSchedulingPolicy.nodeFillType": "spread",
    "priority": 0,
    "maxParallelTasks": -1,
    "allowTaskPreemption": False,
    "onAllTasksComplete": "noaction",
    "onTaskFailure": "noaction",
    "usesTaskDependencies": False,
    "requiredSlots": 1,
    "elevationLevel": "nonadmin",
    "scope": "pool",
}


def _default_for(path: str) -> Any:
    segments = [s for s in re.sub(r"\[\d+\]", "", path).split(".") if s]
    if len(segments) >= 2:
        two = ".".join(segments[-2:])
        if two in DEFAULTS:
            return DEFAULTS[two]
    return DEFAULTS.get(segments[-1], _NO_DEFAULT) if segments else _NO_DEFAULT


_NO_DEFAULT = object()
_MISSING = object()


def scalars_equal(key: str, desired: Any, live: Any) -> bool:
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live or (desired == live and type(desired) is type(live))
    if isinstance(desired, (int, float)) and isinstance(live, (int, float)):
        return float(desired) == float(live)
    if isinstance(desired, str) and isinstance(live, str):
        if desired == live:
            return True
        if desired.startswith("P") and live.startswith("P"):
            left, right = duration_seconds(desired), duration_seconds(live)
            if left is not None and right is not None:
                return abs(left - right) < 0.001
        if key in CASE_INSENSITIVE_KEYS:
            return desired.lower() == live.lower()
        return False
    return bool(desired == live)


def _key_of(path: str) -> str:
    last = path.rsplit(".", 1)[-1]
    return re.sub(r"\[\d+\]$", "", last)


def diff_subset(desired: Any, live: Any, path: str = "") -> list[FieldChange]:
    """Where ``live`` does not hold what ``desired`` sets; keys absent from ``desired`` are ignored, and so
    are write-only fields (Batch never returns them; see :mod:`batchrun.plan.secrets`)."""
    if _key_of(path) in SECRET_KEYS:
        return []
    if live is _MISSING or live is None:
        default = _default_for(path)
        if default is not _NO_DEFAULT and scalars_equal(_key_of(path), desired, default):
            return []
        if isinstance(desired, (Mapping, list, tuple)) and not desired:
            return []  # an empty list or object is what an absent one means
        if isinstance(desired, Mapping) and all(
            not diff_subset(value, _MISSING, f"{path}.{key}" if path else key)
            for key, value in desired.items()
        ):
            return []
        return [FieldChange(path, None, desired)]
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return [FieldChange(path, live, desired)]
        changes: list[FieldChange] = []
        for key, value in desired.items():
            child = f"{path}.{key}" if path else key
            changes.extend(diff_subset(value, live.get(key, _MISSING), child))
        return changes
    if isinstance(desired, Sequence) and not isinstance(desired, str):
        if not isinstance(live, Sequence) or isinstance(live, str) or len(live) != len(desired):
            return [FieldChange(path, live, desired)]
        for index, (want, have) in enumerate(zip(desired, live, strict=True)):
            if diff_subset(want, have, f"{path}[{index}]"):
                # Show a list as one change: element-wise paths of reordered lists would mislead.
                return [FieldChange(path, list(live), list(desired))]
        return []
    if scalars_equal(_key_of(path), desired, live):
        return []
    return [FieldChange(path, live, desired)]


REMOVED = "(removed)"  # the ``after`` of a property or item the manifest no longer sets


class PropertyDiff(msgspec.Struct, frozen=True):
    """One top-level property that differs. ``status``: ``changed`` (the manifest sets another value),
    ``removed`` (batchrun set it last time, the manifest no longer does: revert it) or ``kept`` (set by
    someone else, not in the manifest: left as it is, shown)."""

    key: str
    status: str
    fields: tuple[FieldChange, ...]


def _leaf_changes(path: str, want: Any, have: Any) -> list[FieldChange]:
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        changes: list[FieldChange] = []
        for key in [*want, *(k for k in have if k not in want)]:
            if want.get(key) != have.get(key):
                changes.extend(_leaf_changes(f"{path}.{key}", want.get(key), have.get(key)))
        return changes
    return [FieldChange(path, have, want)]


def diff_properties(
    kind: str,
    desired: Mapping[str, Any],
    live: Mapping[str, Any],
    applied: frozenset[str] | None,
    skip: frozenset[str] = frozenset(),
) -> list[PropertyDiff]:
    """Every top-level property where the normalised desired and live bodies differ (defaults, casing,
    durations, computed and write-only fields are no difference: :func:`batchrun.plan.defaults.normalise`).

    Properties in ``desired`` are compared in full, nested keys included. A live property the manifest does
    not set is ``removed`` when ``applied`` (what batchrun set last time) names it, else ``kept``; with no
    record (``applied`` None) nothing is reverted. ``skip`` names properties decided elsewhere."""
    ignored = COMPUTED_KEYS | skip | {"id", "metadata"}
    result: list[PropertyDiff] = []
    keys = [*desired, *(k for k in live if k not in desired)]
    for key in keys:
        if key in ignored:
            continue
        want = normal_value(kind, key, desired[key], SECRET_KEYS) if key in desired else None
        have = normal_value(kind, key, live.get(key), SECRET_KEYS)
        if want == have:
            continue
        if key in desired:
            result.append(PropertyDiff(key, "changed", tuple(_leaf_changes(key, want, have))))
        elif applied is not None and key in applied:
            result.append(PropertyDiff(key, "removed", (FieldChange(key, have, REMOVED),)))
        else:
            result.append(PropertyDiff(key, "kept", (FieldChange(key, have, have),)))
    return result
