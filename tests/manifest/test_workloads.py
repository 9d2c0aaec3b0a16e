"""The example workloads are valid and expand to what the later end-to-end runs rely on."""

from __future__ import annotations

from pathlib import Path

from batchrun.manifest import load_workload

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"


def test_hello() -> None:
    workload = load_workload(WORKLOADS / "hello.yaml")
    assert workload.name == "hello" and workload.job is not None and workload.pool is not None
    assert [task.id for task in workload.job.tasks] == ["greet-001", "greet-002", "greet-003", "merge"]
    assert workload.job.tasks[3].properties["dependsOn"] == {
        "taskIds": ["greet-001", "greet-002", "greet-003"]
    }
    assert workload.pool.properties["applicationPackageReferences"] == [
        {"applicationId": "tools", "version": "1.0"}
    ]
    assert workload.inputs[0].source == WORKLOADS / "hello" / "data"
    assert (workload.packages[0].source / "greet.sh").is_file()


def test_sweep_product_and_merge() -> None:
    workload = load_workload(WORKLOADS / "sweep.yaml")
    assert workload.job is not None
    ids = [task.id for task in workload.job.tasks]
    assert len(ids) == 13 and ids[0] == "sim-1-001" and ids[-1] == "merge"
    assert len(workload.job.tasks[-1].properties["dependsOn"]["taskIds"]) == 12
    assert workload.job.tasks[-1].outputs[0].path == "results/summary.txt"


def test_ingest_one_task_per_file_with_package() -> None:
    workload = load_workload(WORKLOADS / "ingest.yaml")
    assert workload.job is not None and workload.pool is not None
    assert [task.id for task in workload.job.tasks] == ["count-alpha", "count-beta", "count-gamma"]
    assert (
        "$AZ_BATCH_APP_PACKAGE_wctools_2_1/count.sh raw/alpha.csv"
        in workload.job.tasks[0].properties["commandLine"]
    )
    assert workload.pool.properties["applicationPackageReferences"] == [
        {"applicationId": "wctools", "version": "2.1"}
    ]


def test_fails_has_a_failing_task() -> None:
    workload = load_workload(WORKLOADS / "fails.yaml")
    assert workload.job is not None
    assert "exit 3" in workload.job.tasks[1].properties["commandLine"]
