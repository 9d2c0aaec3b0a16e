"""Build schemas/manifest.schema.json: batchrun's own keys written here, Batch's raw shapes read from the SDK.

The Batch part is derived from the models of the installed azure-batch SDK (property names, types, enums, required
properties and descriptions), so raw Batch properties pasted from Batch docs are accepted exactly as Batch names
them and misspellings are caught. Run after changing this file or upgrading azure-batch, and commit the result:

    .venv/bin/python schemas/build_schema.py

This is a development tool; batchrun itself only reads the generated JSON file.
"""

# ruff: noqa: E501  (the schema's prose descriptions read better unwrapped than split mid-sentence)

from __future__ import annotations

import datetime
import enum
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

import azure.batch.models as batch_models
from azure.batch.models import _enums as batch_enums
from azure.batch.models import _models as batch_models_module

SCHEMA_PATH = Path(__file__).with_name("manifest.schema.json")
SCHEMA_ID = "https://batchrun.dev/schemas/manifest.schema.json"

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CONTAINER_PATTERN = r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$"
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
DURATION_PATTERN = (
    r"^P(?!$)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$|^P$"
)

# Batch properties that batchrun manages itself or replaces with its own richer form.
POOL_OWN_KEYS = {"id"}
JOB_OWN_KEYS = {"id"}
TASK_OWN_KEYS = {"id", "dependsOn"}
# Batch requires these in its REST body; batchrun fills them in.
NOT_REQUIRED_IN_MANIFEST = {"BatchJobCreateOptions": {"poolInfo"}}

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


def clean_description(text: str) -> str:
    text = re.sub(r"`([^`<]+?)\s*<([^>]+)>`_", r"\2", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text.replace(" Required.", "").replace("Required.", "").strip()


def ivar_descriptions(model: type) -> dict[str, str]:
    """Attribute name -> description, read from the model's ``:ivar name: text`` docstring sections."""
    doc = model.__doc__ or ""
    found: dict[str, str] = {}
    for match in re.finditer(r":ivar (\w+): (.*?)(?=\n\s*:(?:ivar|vartype) |\Z)", doc, re.S):
        found[match.group(1)] = clean_description(match.group(2))
    return found


def is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, batch_models_module.__dict__["_Model"])


def is_enum(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, enum.Enum)


class BatchDefinitions:
    """Collects one JSON Schema definition per SDK model reachable from the roots."""

    def __init__(self) -> None:
        self.definitions: dict[str, Any] = {}

    def type_schema(self, annotation: Any) -> dict[str, Any]:
        origin = typing.get_origin(annotation)
        arguments = typing.get_args(annotation)
        if origin is typing.Union:
            non_none = [a for a in arguments if a is not type(None)]
            enums = [a for a in non_none if is_enum(a)]
            if enums:
                return {"type": "string", "enum": [member.value for member in enums[0]]}
            if len(non_none) == 1:
                return self.type_schema(non_none[0])
            raise TypeError(f"unsupported union {annotation}")
        if origin is list:
            return {"type": "array", "items": self.type_schema(arguments[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.type_schema(arguments[1])}
        if annotation is str:
            return {"type": "string"}
        if annotation is bool:
            return {"type": "boolean"}
        if annotation is int:
            return {"type": "integer"}
        if annotation is float:
            return {"type": "number"}
        if annotation is datetime.timedelta:
            return {"$ref": "#/$defs/duration"}
        if annotation is datetime.datetime:
            return {"type": "string", "format": "date-time"}
        if annotation is typing.Any:
            return {}
        if is_enum(annotation):
            return {"type": "string", "enum": [member.value for member in annotation]}
        if is_model(annotation):
            self.add(annotation)
            return {"$ref": f"#/$defs/batch.{annotation.__name__}"}
        raise TypeError(f"unsupported annotation {annotation!r}")

    def object_schema(self, model: type, skip: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
        model()  # computes the model's rest field table
        hints = typing.get_type_hints(
            model,
            globalns=vars(batch_models_module),
            localns={"_models": batch_models, "_enums": batch_enums},
        )
        descriptions = ivar_descriptions(model)
        properties: dict[str, Any] = {}
        required: list[str] = []
        for attribute, field in model.__dict__["_attr_to_rest_field"].items():
            visibility = field._visibility
            if visibility is not None and "create" not in visibility:
                continue
            rest_name = field._rest_name
            if rest_name in skip:
                continue
            schema = dict(self.type_schema(hints[attribute]))
            description = descriptions.get(attribute, "")
            if description:
                schema["description"] = description
            properties[rest_name] = schema
            annotation = hints[attribute]
            optional = typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(
                annotation
            )
            if not optional and rest_name not in NOT_REQUIRED_IN_MANIFEST.get(model.__name__, set()):
                required.append(rest_name)
        result: dict[str, Any] = {
            "title": f"Batch {model.__name__}",
            "description": clean_description((model.__doc__ or "").split(":ivar")[0]),
            "type": "object",
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            result["required"] = required
        return result

    def add(self, model: type) -> None:
        key = f"batch.{model.__name__}"
        if key in self.definitions:
            return
        self.definitions[key] = {}  # placeholder against recursion
        self.definitions[key] = self.object_schema(model)


def string_or(schema: dict[str, Any]) -> dict[str, Any]:
    return schema


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
                    "Names of `storage.inputs` downloaded into the task working directory before the command runs "
                    "(blob names keep their path below the input's prefix)."
                ),
                "type": "array",
                "items": {"type": "string", "minLength": 1},
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
    definitions: dict[str, Any] = {
        "batchId": {
            "title": "Batch id",
            "description": "Letters, digits, hyphens and underscores; 1 to 64 characters.",
            "type": "string",
            "pattern": ID_PATTERN,
            "x-hint": "use only letters, digits, '-' and '_', at most 64 characters",
        },
        "containerName": {
            "title": "Storage container name",
            "description": (
                "3 to 63 characters: lowercase letters, digits and single hyphens; starts and ends with a letter "
                "or digit."
            ),
            "type": "string",
            "pattern": CONTAINER_PATTERN,
            "x-hint": (
                "container names are 3-63 characters of lowercase letters, digits and single hyphens, starting "
                "and ending with a letter or digit"
            ),
        },
        "duration": {
            "title": "ISO-8601 duration",
            "description": "An ISO-8601 duration such as `PT30S`, `PT15M`, `PT1H30M`, `P1D` or `P7D`.",
            "type": "string",
            "pattern": DURATION_PATTERN,
            "x-hint": "write an ISO-8601 duration such as PT30S, PT15M, PT1H or P1D",
        },
        "packageShortForm": {
            "title": "Package ids",
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "uniqueItems": True,
        },
        "metadata": {
            "title": "Workload metadata",
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {
                "name": {
                    "$ref": "#/$defs/batchId",
                    "title": "Workload name",
                    "description": (
                        "Names the workload; batchrun records it in the metadata of what it creates and only "
                        "ever changes or deletes resources carrying this name."
                    ),
                },
                "labels": {
                    "title": "Labels",
                    "description": "Free-form string labels, recorded with the workload.",
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                },
            },
        },
        "variables": {
            "title": "Variables",
            "description": (
                "Named values substituted as `${name}` anywhere in a string value. Values are literal (not "
                "substituted themselves). Override them with `--var name=value` (converted to the type of the "
                "manifest's value) or `--var-file FILE` (a YAML mapping)."
            ),
            "type": "object",
            "propertyNames": {"pattern": VARIABLE_NAME_PATTERN},
            "additionalProperties": {"type": ["string", "integer", "number", "boolean", "array", "object"]},
        },
        "storageInput": {
            "title": "Storage input",
            "description": (
                "Local files uploaded to blob storage; tasks download them by listing `name` in `inputs`."
            ),
            "type": "object",
            "required": ["name", "source", "container"],
            "additionalProperties": False,
            "properties": {
                "name": {
                    "$ref": "#/$defs/batchId",
                    "title": "Input name",
                    "description": "Referenced by tasks.",
                },
                "source": {
                    "type": "string",
                    "minLength": 1,
                    "title": "Source path",
                    "description": (
                        "A file or a directory, relative to the manifest's folder. It must exist and stay inside "
                        "that folder unless `allowOutsideSource: true`."
                    ),
                },
                "container": {"$ref": "#/$defs/containerName", "description": "Blob container to upload to."},
                "prefix": {
                    "type": "string",
                    "title": "Blob prefix",
                    "description": "Blob name prefix, e.g. `data/` (a trailing `/` is added when missing).",
                },
                "allowOutsideSource": {
                    "type": "boolean",
                    "title": "Allow a source outside the manifest's folder",
                    "description": "Set to `true` to allow a `source` outside the manifest's folder.",
                },
            },
        },
        "storage": {
            "title": "Storage",
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "inputs": {
                    "title": "Storage inputs",
                    "type": "array",
                    "items": {"$ref": "#/$defs/storageInput"},
                },
                "outputs": {
                    "title": "Storage outputs",
                    "description": "Where task `outputs` are uploaded.",
                    "type": "object",
                    "required": ["container"],
                    "additionalProperties": False,
                    "properties": {
                        "container": {"$ref": "#/$defs/containerName", "description": "Blob container."},
                    },
                },
            },
        },
        "package": {
            "title": "Application package",
            "description": "A Batch application package version built from a local directory or `.zip` file.",
            "type": "object",
            "required": ["id", "version", "source"],
            "additionalProperties": False,
            "properties": {
                "id": {"$ref": "#/$defs/batchId", "title": "Application id"},
                "version": {
                    "type": "string",
                    "minLength": 1,
                    "pattern": r"^[A-Za-z0-9_.-]{1,64}$",
                    "title": "Version",
                    "description": (
                        'Package version: letters, digits, `.`, `-`, `_`. Quote it in YAML (`"1.10"`), '
                        "otherwise YAML reads it as a number."
                    ),
                    "x-hint": "use letters, digits, '.', '-' and '_' only",
                },
                "source": {
                    "type": "string",
                    "minLength": 1,
                    "title": "Source path",
                    "description": (
                        "A directory (zipped reproducibly) or a `.zip` file, relative to the manifest's folder; "
                        "same folder rule as storage inputs."
                    ),
                },
                "allowOutsideSource": {
                    "type": "boolean",
                    "title": "Allow a source outside the manifest's folder",
                },
                "setDefault": {
                    "type": "boolean",
                    "title": "Make this the default version",
                    "description": "Set this version as the application's default version.",
                },
                "allowUpdates": {
                    "type": "boolean",
                    "title": "Allow updates",
                    "description": "Whether versions of the application may be overwritten or deleted.",
                },
            },
        },
        "axis": {
            "title": "Factory axis",
            "description": (
                "One axis of a task factory: a list of values; `{range: [start, end]}` or "
                "`{range: [start, end, step]}` (integers, inclusive); or `{files: <storage input name>}` (one "
                "value per file of that input)."
            ),
            "oneOf": [
                {
                    "title": "list",
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": ["string", "integer", "number", "boolean"]},
                },
                {
                    "title": "range",
                    "type": "object",
                    "required": ["range"],
                    "additionalProperties": False,
                    "properties": {
                        "range": {
                            "type": "array",
                            "minItems": 2,
                            "maxItems": 3,
                            "items": {"type": "integer"},
                            "description": "`[start, end]` or `[start, end, step]`, inclusive.",
                        }
                    },
                },
                {
                    "title": "files",
                    "type": "object",
                    "required": ["files"],
                    "additionalProperties": False,
                    "properties": {
                        "files": {
                            "type": "string",
                            "minLength": 1,
                            "description": (
                                "A storage input name. The axis value `${f}` is the file's path relative to the "
                                "input's source; `${f.name}`, `${f.stem}`, `${f.suffix}`, `${f.parent}`, "
                                "`${f.blob}` and `${f.index}` give its basename, basename without extension, "
                                "extension, folder, blob name and 0-based position."
                            ),
                        }
                    },
                },
            ],
        },
        "foreach": {
            "title": "Task factory",
            "description": (
                "Makes one task per combination of the axes (or per position with `zip: true`). Axis names are "
                "used as `${name}` in the task. The total number of tasks is checked against the limit (default "
                "100,000; `--max-tasks` or `BATCHRUN_MAX_TASKS`) before expanding."
            ),
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": VARIABLE_NAME_PATTERN},
            "additionalProperties": {"$ref": "#/$defs/axis"},
        },
        "taskOutput": {
            "title": "Task output",
            "type": "object",
            "required": ["pattern"],
            "additionalProperties": False,
            "properties": {
                "pattern": {
                    "type": "string",
                    "minLength": 1,
                    "description": "File pattern relative to the task working directory (`*`, `**`, `?`).",
                },
                "path": {
                    "type": "string",
                    "description": (
                        "Blob name for a literal pattern, or blob name prefix for a wildcard pattern. Default: "
                        "`<job id>/<task id>/<pattern>` for a literal pattern, `<job id>/<task id>/` for a wildcard."
                    ),
                },
                "uploadCondition": {
                    "type": "string",
                    "enum": ["tasksuccess", "taskfailure", "taskcompletion"],
                    "description": "When to upload (default `taskcompletion`).",
                },
            },
        },
        "dependsOn": {
            "title": "Task dependencies",
            "description": (
                "Tasks that must succeed first. `tasks`: ids or globs (`*`, `?`, `[...]`) over the job's expanded "
                "task ids (a glob never matches the task itself); `ranges`: `[[start, end], ...]` of integer task ids. Batch's own `taskIds` and "
                "`taskIdRanges` are accepted too. The job gets `usesTaskDependencies: true` automatically."
            ),
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "tasks": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "ranges": {
                    "type": "array",
                    "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}},
                },
                "taskIds": {"type": "array", "items": {"type": "string", "minLength": 1}},
                "taskIdRanges": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["start", "end"],
                        "additionalProperties": False,
                        "properties": {"start": {"type": "integer"}, "end": {"type": "integer"}},
                    },
                },
            },
        },
        "pool": pool,
        "job": job,
        "task": task,
    }
    definitions.update(sorted(batch.definitions.items()))
    for (definition, name), bounds in BOUNDS.items():
        definitions[definition]["properties"][name].update(bounds)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "batchrun workload manifest (batchrun/v1)",
        "description": (
            "A workload for Azure Batch: storage inputs, application packages, a pool, a job and its tasks. "
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
        },
        "$defs": definitions,
    }


def main() -> int:
    schema = build()
    SCHEMA_PATH.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {SCHEMA_PATH} ({len(schema['$defs'])} definitions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
