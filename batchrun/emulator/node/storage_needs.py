"""What a run reads from or writes to storage: resource files, application packages, output files.

Such runs are started and finished away from the thread that reaps processes (they wait on the network).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from batchrun.emulator.node.model import TaskLaunch


def waits_on_storage(launch: TaskLaunch) -> bool:
    """True when starting or finishing ``launch`` reads or writes storage (resource files, application
    packages, output files): such runs are started and finished away from the thread that reaps processes."""
    return bool(launch.packages) or spec_waits_on_storage(launch.spec, launch.kind)


def spec_waits_on_storage(spec: Mapping[str, Any], kind: str = "task") -> bool:
    """:func:`waits_on_storage` for a run of ``spec`` without application packages."""
    if spec.get("resourceFiles") or (kind == "task" and listed(spec.get("outputFiles"))):
        return True
    multi_instance = spec.get("multiInstanceSettings")
    return (
        bool(multi_instance)
        and isinstance(multi_instance, Mapping)
        and bool(multi_instance.get("commonResourceFiles"))
    )


def outputs_of(launch: TaskLaunch) -> Sequence[Mapping[str, Any]]:
    """The output files a run uploads when it ends (only a task has them)."""
    return listed(launch.spec.get("outputFiles")) if launch.kind == "task" else []


def listed(value: object) -> Sequence[Mapping[str, Any]]:
    """The objects of a JSON array in a spec (none for anything else)."""
    if not value:  # most specs have none (an ABC check of None costs more than the rest of this)
        return []
    if isinstance(value, (list, Sequence)) and not isinstance(value, (str, bytes)):
        return [item for item in value if isinstance(item, (dict, Mapping))]
    return []
