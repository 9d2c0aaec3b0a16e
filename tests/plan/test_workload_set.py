"""Several manifests as one: which files a folder stands for, whether the workloads can live together, the
order they are applied in, and the combined plan's text, JSON and Markdown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from msgspec.structs import replace

from batchrun.errors import ManifestError
from batchrun.manifest.collection import manifest_files
from batchrun.model import JobSpec, PoolSpec, Workload
from batchrun.plan.actions import Action, Change, Plan
from batchrun.plan.markdown import COMMENT_LIMIT
from batchrun.plan.render_set import WorkloadPlan, render_set_json, render_set_markdown, render_set_text
from batchrun.plan.workload_order import apply_order, check_together, destroy_order
from tests.plan.test_markdown import big_plan


def workload(name: str, pool: str | None = None, job: str | None = None, on: str | None = None) -> Workload:
    properties: dict[str, Any] = {"poolInfo": {"poolId": on or pool}} if (on or pool) else {}
    return Workload(
        name=name,
        manifest_path=Path(f"/repo/{name}.yaml"),
        digest="d",
        pool=PoolSpec(pool, {}) if pool else None,
        job=JobSpec(job, properties) if job else None,
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        # A job on another workload's pool comes after that pool's workload, whatever the order given.
        (["etl", "shared", "solo"], ["shared", "solo", "etl"]),
        (["shared", "etl", "solo"], ["shared", "solo", "etl"]),
        (["solo", "shared"], ["solo", "shared"]),
    ],
)
def test_apply_order_puts_a_pool_before_the_jobs_that_borrow_it(
    given: list[str], expected: list[str]
) -> None:
    every = {
        "shared": workload("shared", pool="Shared-Pool", job="prep"),
        "etl": workload("etl", job="etl-job", on="shared-pool"),  # ids are case-insensitive
        "solo": workload("solo", pool="solo-pool", job="solo-job"),
    }
    ordered = apply_order([every[name] for name in given])
    assert [w.name for w in ordered] == expected
    assert [w.name for w in destroy_order([every[name] for name in given])] == list(reversed(expected))


def test_a_job_on_a_pool_outside_the_set_keeps_its_place() -> None:
    outside = workload("outside", job="j", on="pool-made-elsewhere")
    shared = workload("shared", pool="p", job="k")
    assert [w.name for w in apply_order([outside, shared])] == ["outside", "shared"]


@pytest.mark.parametrize(
    ("second", "message"),
    [
        (workload("a", pool="other", job="other-job"), "workload 'a' is also declared by /repo/a.yaml"),
        (workload("b", pool="POOL-A", job="b-job"), "pool 'pool-a' is also declared by /repo/a.yaml"),
        (workload("b", job="A-JOB", on="pool-a"), "job 'a-job' is also declared by /repo/a.yaml"),
    ],
)
def test_two_manifests_cannot_declare_the_same_workload_pool_or_job(second: Workload, message: str) -> None:
    first = workload("a", pool="pool-a", job="a-job")
    if second.name == "a":
        second = replace(second, manifest_path=Path("/repo/copy.yaml"))
    with pytest.raises(ManifestError) as raised:
        check_together([first, second])
    assert message in str(raised.value)
    kind = message.split()[0]
    problem = raised.value.diagnostics[0]
    assert problem.path == {"workload": "metadata.name", "pool": "pool.id", "job": "job.id"}[kind]
    assert {"workload": "metadata.name", "pool": "rename the pool", "job": "rename the job"}[
        kind
    ] in problem.hint


MANIFEST = "apiVersion: batchrun/v1\nkind: Workload\nmetadata: {name: %s}\n"


def test_a_folder_stands_for_the_workload_manifests_under_it(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(MANIFEST % "b")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "a.yml").write_text("# comment\napiVersion: batchrun/v1\nkind: 'Workload'  # x\n")
    (tmp_path / "vars.yaml").write_text("count: 3\n")  # a variable file: not a manifest
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "w.yaml").write_text(MANIFEST % "hidden")  # hidden folders are not read
    (tmp_path / "notes.txt").write_text(MANIFEST % "txt")
    named = tmp_path / "elsewhere.yaml"
    named.write_text("not: a manifest\n")  # a file named explicitly is always read (and reported if wrong)
    found = manifest_files([tmp_path, named, tmp_path / "b.yaml"])
    assert found.files == (tmp_path / "b.yaml", tmp_path / "nested" / "a.yml", named)
    assert found.skipped == (tmp_path / "vars.yaml",)


def test_a_folder_without_manifests_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "vars.yaml").write_text("count: 3\n")
    with pytest.raises(ManifestError) as raised:
        manifest_files([tmp_path])
    assert "holds no workload manifest" in str(raised.value)
    assert str(tmp_path) in str(raised.value)


def _plans() -> list[WorkloadPlan]:
    quiet = Plan(workload="quiet", target="t", changes=(Change("pool/q", Action.NOOP),))
    busy = Plan(
        workload="busy",
        target="t",
        changes=(
            Change("job/j", Action.CREATE),
            Change("task/j/t1", Action.CREATE, reason="new", cause="new"),
        ),
    )
    return [WorkloadPlan(Path("repo/quiet.yaml"), quiet), WorkloadPlan(Path("repo/busy.yaml"), busy)]


def test_combined_text_names_each_workload_and_adds_them_up() -> None:
    text = render_set_text(_plans())
    assert "=== workload quiet (repo/quiet.yaml) ===\n\nNo changes. Live state matches the manifest." in text
    assert "=== workload busy (repo/busy.yaml) ===" in text
    assert "+ job/j will be created" in text
    assert text.endswith(
        "2 workloads, 1 with changes: 2 to create, 0 to update, 0 to replace, 0 to delete (1 unchanged)."
    )
    unchanged = [WorkloadPlan(Path("a.yaml"), Plan(workload="a", target="t", changes=()))]
    assert render_set_text(unchanged).endswith("1 workload: no changes. Live state matches every manifest.")


def test_combined_json_lists_each_plan_with_its_manifest() -> None:
    document = json.loads(render_set_json(_plans()))
    assert [(w["workload"], w["manifest"]) for w in document["workloads"]] == [
        ("quiet", "repo/quiet.yaml"),
        ("busy", "repo/busy.yaml"),
    ]
    assert document["summary"]["create"] == 2 and document["summary"]["no-op"] == 1


def test_combined_markdown_of_big_changes_fits_one_comment() -> None:
    plans = [
        WorkloadPlan(Path(f"repo/w{index}.yaml"), replace(big_plan(), workload=f"w{index}"))
        for index in range(3)
    ]
    text = render_set_markdown(plans)
    assert len(text) < COMMENT_LIMIT
    assert "**3 workloads, 3 with changes: 3000 to create, 6 to update, 24003 to replace" in text
    assert "| `w2` | `repo/w2.yaml` | 1000 | 2 | 8001 | 0 | 1 |" in text
    assert text.count("### batchrun plan: workload") == 3
    assert "SECRETSIGNATURE" not in text and "hunter2" not in text
    many = [WorkloadPlan(Path(f"w{i}.yaml"), replace(big_plan(10), workload=f"w{i}")) for i in range(60)]
    crowded = render_set_markdown(many)
    assert len(crowded) < COMMENT_LIMIT and "details are left out to fit a comment" in crowded


def test_windows_line_endings_and_links_in_a_folder(tmp_path: Path) -> None:
    (tmp_path / "crlf.yaml").write_bytes(b"\xef\xbb\xbfapiVersion: batchrun/v1\r\nkind: Workload\r\n")
    (tmp_path / "link.yaml").symlink_to(tmp_path / "crlf.yaml")  # not followed: listed as skipped
    found = manifest_files([tmp_path])
    assert found.files == (tmp_path / "crlf.yaml",)
    assert found.skipped == (tmp_path / "link.yaml",)
