"""Real Azure Batch answers, recorded: a body batchrun would send, read back by a GET, plans no change.

For every pool, job and task a recording creates (and sometimes updates) and then reads back:

* the normalised desired body equals the normalised GET body key for key (``strict``): every field the
  service added is a documented default, a computed field or a write-only omission, so nothing it returns
  could be mistaken for drift or for a key set by someone else;
* the decision batchrun takes with that GET as live state, through its own body path (``pool_body`` /
  ``job_body`` and ``decide_pool`` / ``decide_job``), is a no-op.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from batchrun.model import JobSpec, PoolSpec
from batchrun.plan import defaults
from batchrun.plan.actions import Action
from batchrun.plan.bodies import Ownership, job_body, pool_body
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.decide_job import decide_job
from batchrun.plan.decide_pool import decide_pool
from batchrun.plan.diff import diff_properties, diff_subset
from batchrun.plan.live import LiveJob, LivePool
from batchrun.plan.secrets import SECRET_KEYS
from tests.contract.recordings import EXPECTED_PAIRS, FOLDER, Pair, pairs, recording

OWNER = Ownership("contract", "digest", "", salt="00112233445566778899aabbccddeeff")
POOLS, JOBS, TASKS = pairs("pool"), pairs("job"), pairs("task")


def _metadata(items: Any) -> dict[str, str]:
    return {str(i["name"]): str(i["value"]) for i in items or ()}


def strict_differences(kind: str, desired: dict[str, Any], get: dict[str, Any]) -> list[str]:
    """Every property that differs once normalised, treating every live key as one batchrun set."""
    applied = frozenset(desired) | frozenset(get)
    return [
        f"{item.status} {f.path}: {f.before!r} -> {f.after!r}"
        for item in diff_properties(kind, desired, get, applied)
        for f in item.fields
    ]


def live_pool(pair: Pair, body: dict[str, Any]) -> LivePool:
    """The GET as batchrun reads it, had batchrun sent ``body``: Batch returns the metadata it was sent."""
    properties = dict(pair.get)
    properties["metadata"] = body["metadata"]
    return LivePool(
        id=str(properties["id"]),
        properties=properties,
        metadata=_metadata(body["metadata"]),
        state=str(properties.get("state", "active")),
        allocation_state=str(properties.get("allocationState", "steady")),
    )


def test_every_listed_recording_is_covered() -> None:
    files = {path.name for path in FOLDER.glob("*.json")}
    assert files == set(EXPECTED_PAIRS)
    for name, count in EXPECTED_PAIRS.items():
        data = recording(name)
        assert data["repository"] == "Azure/azure-sdk-assets" and len(data["commit"]) == 40, name
        assert data["source"].startswith("python/sdk/batch/azure-batch/tests/recordings/"), name
        found = sum(len(data.get(kind, ())) for kind in ("pools", "jobs", "tasks"))
        assert found == count, name
    assert len(POOLS) + len(JOBS) + len(TASKS) == sum(EXPECTED_PAIRS.values())


@pytest.mark.parametrize("pair", POOLS, ids=str)
def test_pool_get_is_no_drift(pair: Pair) -> None:
    assert strict_differences("pool", pair.desired, pair.get) == [], pair.source
    properties = {k: v for k, v in pair.desired.items() if k != "id"}
    body = pool_body(PoolSpec(str(pair.desired["id"]), properties), OWNER)
    change = decide_pool(body, live_pool(pair, body), OWNER, PlanOptions())
    assert change.action is Action.NOOP, (pair.source, change.fields)


@pytest.mark.parametrize("pair", JOBS, ids=str)
def test_job_get_is_no_drift(pair: Pair) -> None:
    desired = {"id": "job", **pair.desired}
    get = {"id": "job", **pair.get}
    assert strict_differences("job", desired, get) == [], pair.source
    properties = {k: v for k, v in desired.items() if k != "id"}
    body = job_body(JobSpec(str(desired["id"]), properties, ()), OWNER)
    live_properties = dict(get, metadata=body["metadata"])
    live = LiveJob(
        str(desired["id"]), live_properties, _metadata(body["metadata"]), str(get.get("state", "active")), ""
    )
    decision = decide_job(
        body,
        str(desired.get("onAllTasksComplete", "noaction")),
        live,
        OWNER,
        PlanOptions(),
        tasks_change=False,
        tasks_run=False,
    )
    assert decision.change.action is Action.NOOP, (pair.source, decision.change.fields)


@pytest.mark.parametrize("pair", TASKS, ids=str)
def test_task_get_is_no_drift(pair: Pair) -> None:
    assert strict_differences("task", pair.desired, pair.get) == [], pair.source
    assert diff_subset(pair.desired, pair.get) == []


def test_durations_come_back_normalised_and_compare_equal() -> None:
    sent_and_returned = [("PT06M00S", "PT6M"), ("PT15M00S", "PT15M")]
    for case in recording("job_schedules.json")["durations"]:
        sent_and_returned.append((case["sent"], case["returned"]))
    for sent, returned in sent_and_returned:
        assert defaults.canonical_duration(sent) == defaults.canonical_duration(returned), sent
    assert defaults.canonical_duration("PT06M00S") == "PT6M"
    assert defaults.canonical_duration(defaults.UNLIMITED_DURATION) == defaults.UNLIMITED_DURATION


def test_passwords_are_never_returned() -> None:
    """The recordings' ground truth for write-only fields: sent on create, absent from every GET."""
    iaas = recording("create_pools.json")["pools"][0]
    assert all("password" in user for user in iaas["create"]["userAccounts"])
    assert all("password" not in user for user in iaas["get"]["userAccounts"])


REMOVABLE_RULES = [
    ("taskSchedulingPolicy.nodeFillType", False),
    ("virtualMachineConfiguration.imageReference.version", True),
    ("virtualMachineConfiguration.dataDisks[].caching", True),
    ("networkConfiguration.dynamicVNetAssignmentScope", True),
    ("userAccounts[].windowsUserConfiguration.loginMode", True),
    ("resizeTimeout", False),
]


@pytest.mark.parametrize(("rule", "nested"), REMOVABLE_RULES)
def test_the_suite_fails_when_a_default_rule_is_removed(
    rule: str, nested: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without one row of the defaults table, some recorded GET is drift again (so each row is needed).

    Under a property the manifest sets, the unknown default is a change batchrun would make on every plan;
    at the top level it is a property someone else seems to have set (kept and shown, not a change)."""
    table = tuple(d for d in defaults.POOL_DEFAULTS if d.path != rule)
    assert len(table) == len(defaults.POOL_DEFAULTS) - 1
    monkeypatch.setitem(defaults._TABLES, "pool", defaults._compile(table))
    drifting = [pair for pair in POOLS if strict_differences("pool", pair.desired, pair.get)]
    assert drifting, f"no recorded pool needs the default {rule}"
    if nested:
        pair = drifting[0]
        properties = {k: v for k, v in pair.desired.items() if k != "id"}
        body = pool_body(PoolSpec(str(pair.desired["id"]), properties), OWNER)
        live = live_pool(pair, copy.deepcopy(body))
        assert decide_pool(body, live, OWNER, PlanOptions()).action is not Action.NOOP


def test_the_suite_fails_when_casing_or_durations_are_compared_raw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(defaults, "CASE_INSENSITIVE_KEYS", frozenset())
    assert any(strict_differences("pool", p.desired, p.get) for p in POOLS)  # 'pack' vs 'Pack'
    monkeypatch.undo()
    monkeypatch.setattr(defaults, "DURATION_KEYS", frozenset())
    assert any(strict_differences("pool", p.desired, p.get) for p in POOLS)  # PT06M00S vs PT6M


def test_the_docs_list_every_default_and_write_only_field() -> None:
    text = (FOLDER.parents[2] / "docs" / "reconciler.md").read_text()
    section = text.split("## Defaults and write-only fields", 1)[1].split("\n## ", 1)[0]
    for table in (defaults.POOL_DEFAULTS, defaults.JOB_DEFAULTS, defaults.TASK_DEFAULTS):
        for row in table:
            assert f"`{row.path.removeprefix('**.')}` | `{json.dumps(row.value)}` | {row.source} |" in section
    for key in (*defaults.DURATION_KEYS, *defaults.CASE_INSENSITIVE_KEYS, *defaults.COMPUTED_KEYS):
        assert f"`{key}`" in section, key
    for key in SECRET_KEYS:
        assert f"`{key}`" in section, key
