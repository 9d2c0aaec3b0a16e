"""What the pool and job decisions share: options, ownership, metadata and confirmation rules (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchrun.plan.actions import Action, Change, FieldChange
from batchrun.plan.bodies import OWNERSHIP_KEYS, user_metadata
from batchrun.plan.live import WORKLOAD_KEY

CONFIRM_FLAG = "--confirm-replace"
ADOPT_FLAG = "--adopt"


@dataclass(frozen=True)
class PlanOptions:
    prune: bool = False
    adopt: bool = False
    confirm_replace: bool = False


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
    wanted = user_metadata(desired)
    have = {k: v for k, v in live_metadata.items() if k not in OWNERSHIP_KEYS}
    if not wanted or wanted == have:  # no metadata in the manifest: extra live items are not drift
        return []
    return [FieldChange("metadata", have, wanted)]


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
