"""Batch's raw property shapes as JSON Schema, read from the installed azure-batch SDK's models.

Property names, types, enums, required properties and descriptions come from the models, so raw Batch
properties pasted from Batch docs are accepted exactly as Batch names them and misspellings are caught.
Used by build_schema.py; a development tool, not part of the batchrun package.
"""

from __future__ import annotations

import datetime
import enum
import re
import typing
from typing import Any

import azure.batch.models as batch_models
from azure.batch.models import _enums as batch_enums
from azure.batch.models import _models as batch_models_module

# Batch requires these in its REST body; batchrun fills them in.
NOT_REQUIRED_IN_MANIFEST = {"BatchJobCreateOptions": {"poolInfo"}}


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
