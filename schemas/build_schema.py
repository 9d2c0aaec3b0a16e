"""Build schemas/manifest.schema.json: the pool, job and task sections here, batchrun's other keys in
workload_definitions.py, Batch's raw shapes read from the SDK by batch_shapes.py.

The Batch part is derived from the models of the installed azure-batch SDK (property names, types, enums, required
properties and descriptions), so raw Batch properties pasted from Batch docs are accepted exactly as Batch names
them and misspellings are caught. Run after changing these files or upgrading azure-batch, and commit the result:

    .venv/bin/python schemas/build_schema.py

This is a development tool; batchrun itself only reads the generated JSON file.
"""

# ruff: noqa: E501  (the schema's prose descriptions read better unwrapped than split mid-sentence)

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import azure.batch.models as batch_models
from batch_shapes import BatchDefinitions
from workload_definitions import workload_definitions

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
SCHEMA_ID = "https://batchrun.dev/schemas/manifest.schema.json"

# Batch properties that batchrun manages itself or replaces with its own richer form.
POOL_OWN_KEYS = {"id"}
JOB_OWN_KEYS = {"id"}
TASK_OWN_KEYS = {"id", "dependsOn"}

# Bounds Batch documents in prose but the SDK models do not carry: caught at validate time instead of as an
# HTTP 400 halfway through an apply. (definition, property) -> JSON Schema bounds.
RETRY_COUNT = {"minimum": -1}  # -1: retry without limit
BOUNDS: dict[tuple[str, str], dict[str, int]] = {
    **{
        (definition, name): {"minimum": 0}
        for definition in ("pool", "batch.BatchPoolSpecification")
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes")
    },
    ("pool", "taskSlotsPerNode"): {"minimum": 1, "maximum": 256},
    ("batch.BatchPoolSpecification", "taskSlotsPerNode"): {"minimum": 1, "maximum": 256},
    ("job", "priority"): {"minimum": -1000, "maximum": 1000},
    ("job", "maxParallelTasks"): {"minimum": -1},
    ("batch.BatchJobConstraints", "maxTaskRetryCount"): RETRY_COUNT,
    ("batch.BatchTaskConstraints", "maxTaskRetryCount"): RETRY_COUNT,
    ("batch.BatchStartTask", "maxTaskRetryCount"): RETRY_COUNT,
}


def build() -> dict[str, Any]:
    batch = BatchDefinitions()
    pool_base = batch.object_schema(batch_models.BatchPoolCreateOptions, POOL_OWN_KEYS)
    job_base = batch.object_schema(batch_models.BatchJobCreateOptions, JOB_OWN_KEYS)
    task_base = batch.object_schema(batch_models.BatchTaskCreateOptions, TASK_OWN_KEYS)
    batch.add(batch_models.BatchTaskDependencies)

    pool = {
        "title": "Pool",
        "description": (
            "The Batch pool the job runs on, in Batch REST camelCase (api-version 2025-06-01), plus `id` and the "
            "`packages` short form. Scale is either fixed (`targetDedicatedNodes` / `targetLowPriorityNodes`) or "
            "automatic (`enableAutoScale: true` with `autoScaleFormula`), never both."
        ),
        "type": "object",
        "required": ["id", *pool_base.get("required", [])],
        "additionalProperties": False,
        "properties": {
            "id": {
                "$ref": "#/$defs/batchId",
                "title": "Pool id",
                "description": "Unique pool id in the Batch account: letters, digits, `-` and `_`, at most 64.",
            },
            "packages": {
                "$ref": "#/$defs/packageShortForm",
                "description": (
                    "Ids of entries of the manifest's `packages`; each becomes an `applicationPackageReferences` "
                    "entry `{applicationId, version}` with that package's version."
                ),
            },
            **pool_base["properties"],
            # In the 2025-06-01 REST examples but not modelled by azure-batch 15.1.
            "targetNodeCommunicationMode": {
                "type": "string",
                "enum": ["default", "classic", "simplified"],
                "description": "The desired node communication mode for the pool.",
            },
        },
    }
    job = {
        "title": "Job",
        "description": (
            "The Batch job, in Batch REST camelCase, plus `id` and `tasks`. `poolInfo` defaults to the "
            "manifest's pool; `usesTaskDependencies` is set automatically when any task has dependencies."
        ),
        "type": "object",
        "required": ["id", *job_base.get("required", [])],
        "additionalProperties": False,
        "properties": {
            "id": {
                "$ref": "#/$defs/batchId",
                "title": "Job id",
                "description": "Unique job id in the Batch account: letters, digits, `-` and `_`, at most 64.",
            },
            "tasks": {
                "title": "Tasks",
                "description": "The job's tasks; each entry is one task or, with `foreach`, a task factory.",
                "type": "array",
                "items": {"$ref": "#/$defs/task"},
            },
            **job_base["properties"],
        },
    }
    task = {
        "title": "Task",
        "description": (
            "A Batch task in Batch REST camelCase, plus batchrun's conveniences: `foreach` (task factory), "
            "`inputs`, `outputs`, `packages` and the `dependsOn` short forms. Every string may use `${name}`."
        ),
        "type": "object",
        "required": ["id", *task_base.get("required", [])],
        "additionalProperties": False,
        "properties": {
            "id": {
                "type": "string",
                "title": "Task id",
                "description": (
                    "Unique task id in the job, compared case-insensitively: letters, digits, `-` and `_`, at most "
                    "64 after substitution. In a factory the id must use the axes (e.g. `render-${i:04d}`)."
                ),
                "minLength": 1,
            },
            "foreach": {"$ref": "#/$defs/foreach"},
            "zip": {
                "type": "boolean",
                "title": "Zip axes",
                "description": (
                    "With several `foreach` axes: `false` (default) makes one task per combination (product); "
                    "`true` pairs the axes element by element (all axes must have the same length)."
                ),
            },
            "inputs": {
                "title": "Storage inputs",
                "description": (
                    "`storage.inputs` downloaded into the task working directory before the command runs "
                    "(each file lands at its blob name, prefix included). A name gives the whole input; "
                    "`{name, paths}` gives only the listed files (paths relative to the input's source), so "
                    "the task reruns only when one of those files changes, e.g. "
                    '`{name: raw, paths: ["${f.path}"]}` in a `files` factory. '
                    "`{outputs: PREFIX}` gives the blobs under PREFIX in the `storage.outputs` container: "
                    "what earlier tasks uploaded, e.g. `{outputs: greet/}` for a merge that depends on them."
                ),
                "type": "array",
                "items": {
                    "oneOf": [
                        {"type": "string", "minLength": 1, "title": "Whole input"},
                        {
                            "type": "object",
                            "title": "Outputs of earlier tasks",
                            "required": ["outputs"],
                            "additionalProperties": False,
                            "properties": {
                                "outputs": {
                                    "type": "string",
                                    "title": "Blob prefix in the outputs container",
                                    "description": (
                                        "Blobs under this prefix of `storage.outputs.container` are "
                                        'downloaded, keeping their names (`""` for all of them).'
                                    ),
                                }
                            },
                        },
                        {
                            "type": "object",
                            "title": "Some files of an input",
                            "required": ["name", "paths"],
                            "additionalProperties": False,
                            "properties": {
                                "name": {"type": "string", "minLength": 1, "title": "Input name"},
                                "paths": {
                                    "type": "array",
                                    "minItems": 1,
                                    "title": "Files",
                                    "description": "Paths relative to the input's source folder, `/`-separated.",
                                    "items": {"type": "string", "minLength": 1},
                                },
                            },
                        },
                    ]
                },
            },
            "outputs": {
                "title": "Task outputs",
                "description": "Files uploaded to the `storage.outputs` container when the task ends.",
                "type": "array",
                "items": {"$ref": "#/$defs/taskOutput"},
            },
            "packages": {
                "$ref": "#/$defs/packageShortForm",
                "description": (
                    "Ids of entries of the manifest's `packages`, merged into the task's "
                    "`applicationPackageReferences`."
                ),
            },
            "dependsOn": {"$ref": "#/$defs/dependsOn"},
            **task_base["properties"],
        },
    }
    definitions = workload_definitions()
    definitions.update(pool=pool, job=job, task=task)
    definitions.update(sorted(batch.definitions.items()))
    for (definition, name), bounds in BOUNDS.items():
        definitions[definition]["properties"][name].update(bounds)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "batchrun workload manifest (batchrun/v1)",
        "description": (
            "A workload for Azure Batch: storage inputs, application packages, a pool, its jobs and their "
            "tasks. "
            "`batchrun apply` makes Azure Batch match it. Use in editors with "
            "`# yaml-language-server: $schema=<path>/schemas/manifest.schema.json`."
        ),
        "type": "object",
        "required": ["apiVersion", "kind", "metadata"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {
                "title": "API version",
                "description": "Always `batchrun/v1`.",
                "const": "batchrun/v1",
            },
            "kind": {"title": "Kind", "description": "Always `Workload`.", "const": "Workload"},
            "metadata": {"$ref": "#/$defs/metadata"},
            "variables": {"$ref": "#/$defs/variables"},
            "storage": {"$ref": "#/$defs/storage"},
            "packages": {
                "title": "Application packages",
                "type": "array",
                "items": {"$ref": "#/$defs/package"},
            },
            "pool": {"$ref": "#/$defs/pool"},
            "job": {"$ref": "#/$defs/job"},
            "schedule": {
                **batch.object_schema(batch_models.BatchJobScheduleConfiguration),
                "title": "Schedule",
                "description": (
                    "Run the job on a schedule (a Batch job schedule): each run is a new job made from `job`, "
                    "whose tasks a job manager task adds. Batch's schedule fields: `recurrenceInterval`, "
                    "`doNotRunUntil`, `doNotRunAfter`, `startWindow`. Needs `job` (not `jobs`)."
                ),
            },
            "jobs": {
                "title": "Jobs",
                "description": (
                    "Several jobs on the workload's pool, each reconciled like `job` (use `job` or `jobs`, not "
                    "both). Job ids are unique, and task ids are unique across the jobs."
                ),
                "type": "array",
                "minItems": 1,
                "items": {"$ref": "#/$defs/job"},
            },
        },
        "not": {"required": ["job", "jobs"]},
        "$defs": definitions,
    }


def main() -> int:
    schema = build()
    SCHEMA_PATH.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {SCHEMA_PATH} ({len(schema['$defs'])} definitions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
