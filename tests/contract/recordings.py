"""The recorded create -> GET pairs of real Azure Batch (tests/contract/recordings/*.json), as test cases.

Each JSON file names its source: a recording of azure-sdk-for-python's live tests in the public repository
Azure/azure-sdk-assets, with the commit it was read at. A case holds the body that was sent (``create``;
``desired`` when later writes changed it, listed in ``writes``) and the body a later GET returned (``get``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent / "recordings"

# Every recording the contract covers, and how many create -> GET pairs of pools, jobs and tasks each holds.
EXPECTED_PAIRS = {
    "create_pools.json": 3,
    "update_pools.json": 1,
    "scale_pools.json": 3,
    "network_configuration.json": 2,
    "jobs.json": 2,
    "job_schedules.json": 2,
    "files.json": 2,
    "exception_policy.json": 0,  # one job created, never read back; two error bodies
    "compute_nodes.json": 0,  # node operations on a pool made by the test's preparer
}


@dataclass(frozen=True)
class Pair:
    kind: str  # pool | job | task
    name: str
    source: str  # recording file and commit
    desired: dict[str, Any]
    get: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.kind}: {self.name}"


def recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FOLDER / name).read_text())
    return data


def pairs(kind: str) -> list[Pair]:
    found: list[Pair] = []
    for path in sorted(FOLDER.glob("*.json")):
        data = recording(path.name)
        source = f"{data['repository']}/{data['source']}@{data['commit'][:12]}"
        for case in data.get(f"{kind}s", ()):
            found.append(Pair(kind, case["name"], source, case.get("desired", case["create"]), case["get"]))
    return found


def errors() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(FOLDER.glob("*.json")):
        for case in recording(path.name).get("errors", ()):
            found.append((f"{path.name}: {case['name']}", case))
    return found
