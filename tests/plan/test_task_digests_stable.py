"""Task digests are what live tasks and records of results carry: a digest that changed its form would make
every task of every workload run again after an upgrade. These values were made by the first implementation
of the four-part digest and must never change."""

from __future__ import annotations

from batchrun.model import JobSpec, TaskSpec
from batchrun.model.desired import TaskOutput
from batchrun.plan.actions import InputBinding
from batchrun.plan.task_identity import Contents, task_graph

PINNED = {
    "plain": "b29cce0d19391828-0000000000000000-df0800b3ede5c319-0000000000000000",
    "constrained": "3f936be1f78a5f50-0000000000000000-df0800b3ede5c319-0000000000000000",
    "reads": "242b599ed882fd26-819e96e936f5e5a9-df0800b3ede5c319-0000000000000000",
    "whole": "02c6ca9cab34a6a4-e3c3c88a71db149d-fbf87c5ad5345fa0-0000000000000000",
    "merge": "0ed27b86f032e872-0000000000000000-df0800b3ede5c319-ad80c6eeb00e334c",
}


def test_digests_keep_their_values() -> None:
    bindings = {"data": InputBinding("data", "inputs", "data/")}
    contents = Contents(
        {"data": {"data/a.txt": "md5a==", "data/b.txt": "md5b=="}},
        {"tools@1.0": "f00d"},
        {"tools": "1.0"},
        (("tools", ""),),
    )
    tools = [{"applicationId": "tools", "version": "1.0"}]
    tasks = (
        TaskSpec("plain", {"commandLine": "/bin/echo 1"}),
        TaskSpec("constrained", {"commandLine": "/bin/echo 2", "constraints": {"maxTaskRetryCount": 2}}),
        TaskSpec("reads", {"commandLine": "cat a.txt"}, inputs=("data",), input_paths={"data": ("a.txt",)}),
        TaskSpec(
            "whole",
            {"commandLine": "ls", "applicationPackageReferences": tools},
            inputs=("data",),
            outputs=(TaskOutput("out/*", "whole/", "taskcompletion"),),
        ),
        TaskSpec(
            "merge",
            {"commandLine": "merge", "dependsOn": {"taskIds": ["plain", "reads"]}},
            output_inputs=("whole/",),
        ),
    )
    job = JobSpec(
        "job",
        {"poolInfo": {"poolId": "p"}, "commonEnvironmentSettings": [{"name": "MODE", "value": "fast"}]},
        tasks,
    )
    graph = task_graph(job, bindings, "outputs", contents)
    assert dict(graph.digests) == PINNED
    # A constraint is not part of what a task is: it changes in place.
    limited = TaskSpec("plain", {"commandLine": "/bin/echo 1", "constraints": {"maxTaskRetryCount": 5}})
    again = task_graph(JobSpec("job", job.properties, (limited,)), bindings, "outputs", contents)
    assert again.digests["plain"] == PINNED["plain"]
