"""Job properties the manifest used to set and no longer sets (pure; pools decide theirs in decide_pool).

What batchrun set last time is read from the job's ``batchrun.keys`` (:mod:`batchrun.plan.last_applied`).
A removed property that Batch lets a PATCH change goes back to its default with that PATCH
(:data:`batchrun.plan.rules.JOB_REVERT`); any other removed property is create-only, so the job is replaced.
A job without the record has nothing reverted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from msgspec import field

from batchrun.plan.actions import FieldChange
from batchrun.plan.diff import diff_properties
from batchrun.plan.last_applied import read_applied
from batchrun.plan.rules import JOB_REVERT, Family, job_family

# Decided elsewhere: the final onAllTasksComplete switch, and poolInfo (required, never absent).
DECIDED_ELSEWHERE = frozenset({"onAllTasksComplete", "poolInfo"})


class JobRemovals(msgspec.Struct, frozen=True):
    patch_fields: list[FieldChange] = field(default_factory=list)
    patch: dict[str, Any] = field(default_factory=dict)  # what the job's PATCH sends to revert them
    replace_fields: list[FieldChange] = field(default_factory=list)  # create-only: forces replacement


def job_removals(
    body: Mapping[str, Any], live_properties: Mapping[str, Any], metadata: Mapping[str, str]
) -> JobRemovals:
    applied = read_applied(metadata)
    if applied is None:
        return JobRemovals()
    result = JobRemovals()
    for item in diff_properties("job", body, live_properties, applied.keys, DECIDED_ELSEWHERE):
        if item.status != "removed":
            continue
        if job_family(item.key) is Family.PATCH and item.key in JOB_REVERT:
            result.patch[item.key] = JOB_REVERT[item.key]
            result.patch_fields.extend(item.fields)
        else:
            result.replace_fields.extend(FieldChange(f.path, f.before, f.after, True) for f in item.fields)
    return result
