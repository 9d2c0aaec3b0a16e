"""What the pool and job decisions share: options, ownership, metadata and confirmation rules (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from batchrun.plan.actions import Action, Change, FieldChange
from batchrun.plan.bodies import OWNERSHIP_KEYS, user_metadata
from batchrun.plan.diff import REMOVED
from batchrun.plan.last_applied import read_applied
from batchrun.plan.live import WORKLOAD_KEY

CONFIRM_FLAG = "--confirm-replace"
ADOPT_FLAG = "--adopt"


class PlanOptions(msgspec.Struct, frozen=True):
    prune: bool = False
    adopt: bool = False
    confirm_replace: bool = False
    rerun_failed: bool = False  # run again the tasks whose unchanged definition failed
    rerun: tuple[str, ...] = ()  # globs of task ids to run again
    reboot_nodes: bool = False  # reboot the pool's nodes when its start task or packages change in place


def ownership_block(address: str, metadata: Mapping[str, str], workload: str, adopt: bool) -> Change | None:
    """A blocked change when the live resource is not this workload's and ``--adopt`` was not given."""
    owner = metadata.get(WORKLOAD_KEY, "")
    if owner == workload or adopt:
        return None
    whose = f"owned by workload {owner!r}" if owner else "not created by batchrun"
    return Change(
        address,
        Action.BLOCKED,
        reason=f"a resource with this id exists and is {whose}; batchrun never changes what it does not own",
        unblock=f"{ADOPT_FLAG} takes it over (or rename it in the manifest)",
    )


def user_metadata_changes(desired: Mapping[str, Any], live_metadata: Mapping[str, str]) -> list[FieldChange]:
    """Items the manifest sets that differ live, and items batchrun set last time (``batchrun.keys``) that
    the manifest no longer sets (removed). Items someone else set are not drift: they are kept."""
    wanted = user_metadata(desired)
    have = {k: v for k, v in live_metadata.items() if k not in OWNERSHIP_KEYS}
    applied = read_applied(live_metadata)
    changes = [
        FieldChange(f"metadata.{name}", have.get(name), value)
        for name, value in wanted.items()
        if have.get(name) != value
    ]
    if applied is not None:
        changes.extend(
            FieldChange(f"metadata.{name}", have[name], REMOVED)
            for name in sorted(set(have) - set(wanted))
            if name in applied.metadata
        )
    return changes


def kept_metadata(desired: Mapping[str, Any], live_metadata: Mapping[str, str]) -> list[dict[str, str]]:
    """Live items someone else set (not the manifest's, not batchrun's last time): written back unchanged,
    since Batch replaces the whole metadata list on every update."""
    wanted = user_metadata(desired)
    applied = read_applied(live_metadata)
    previous = applied.metadata if applied is not None else frozenset()
    return [
        {"name": name, "value": value}
        for name, value in live_metadata.items()
        if name not in OWNERSHIP_KEYS and name not in wanted and name not in previous
    ]


def others_metadata(desired: Mapping[str, Any], live_metadata: Mapping[str, str]) -> list[FieldChange]:
    """Items someone else set, shown as kept when batchrun writes the resource's metadata."""
    return [
        FieldChange(f"metadata.{item['name']}", item["value"], f"{item['value']} (kept: not batchrun's)")
        for item in kept_metadata(desired, live_metadata)
    ]


def needs_confirmation(address: str, busy: str, fields: tuple[FieldChange, ...], action: str) -> Change:
    return Change(
        address,
        Action.BLOCKED,
        fields,
        reason=f"{action} would interrupt {busy}",
        unblock=f"{CONFIRM_FLAG} (or answer yes when asked)",
    )


def body_user(body: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's own metadata items from a body that also holds batchrun's marks."""
    items = [i for i in body.get("metadata", ()) or () if i["name"] not in OWNERSHIP_KEYS]
    return {"metadata": items}
