"""batchrun's own manifest keys as JSON Schema definitions (storage, packages, variables, factories, ...).

Used by build_schema.py; a development tool, not part of the batchrun package.
"""

# ruff: noqa: E501  (the schema's prose descriptions read better unwrapped than split mid-sentence)

from __future__ import annotations

from typing import Any

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
CONTAINER_PATTERN = r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$"
VARIABLE_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
DURATION_PATTERN = (
    r"^P(?!$)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$|^P$"
)

# Batch properties that batchrun manages itself or replaces with its own richer form.


def workload_definitions() -> dict[str, Any]:
    """The definitions of batchrun's own keys, in the order they appear in the schema."""
    return {
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
            "description": (
                "Ids of entries of the manifest's `packages` (each id once), e.g. `packages: [tools]`. Each "
                "becomes an `applicationPackageReferences` entry `{applicationId, version}` with that package's "
                "version, so bumping `version` under `packages` is the only edit a new version needs."
            ),
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
                "tasks": {
                    "description": (
                        'Ids or globs (`*`, `?`, `[...]`) over the job\'s expanded task ids, e.g. `["sim-*"]`. '
                        "A glob never matches the task itself; one that matches nothing is an error."
                    ),
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                },
                "ranges": {
                    "description": (
                        "Inclusive ranges of integer task ids, e.g. `[[1, 100]]` (for tasks whose ids are numbers; "
                        "compact for huge merges)."
                    ),
                    "type": "array",
                    "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}},
                },
                "taskIds": {
                    "description": "Batch's own form: exact task ids (no globs).",
                    "type": "array",
                    "items": {"type": "string", "minLength": 1},
                },
                "taskIdRanges": {
                    "description": "Batch's own form of `ranges`: `[{start, end}, ...]`, inclusive.",
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
    }
