"""Generate docs/manifest.md, the manifest reference, from the schema's titles and descriptions.

    python -m batchrun.manifest.docgen > docs/manifest.md

tests/manifest/test_docs.py fails when the committed file is not what this prints.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from batchrun.manifest.validate import load_schema

# batchrun's own definitions, in reading order; Batch's (batch.*) follow alphabetically.
OWN_SECTIONS = (
    "metadata",
    "variables",
    "storage",
    "storageInput",
    "package",
    "pool",
    "job",
    "task",
    "foreach",
    "axis",
    "taskOutput",
    "dependsOn",
    "batchId",
    "containerName",
    "duration",
    "packageShortForm",
)
_BATCH_DESCRIPTION_LIMIT = 400


def anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower())


def short(text: str, limit: int) -> str:
    """The description cut at a sentence end near ``limit`` characters."""
    text = text.replace("|", "\\|").replace("\n", " ")
    if len(text) <= limit:
        return text
    cut = text.rfind(". ", 0, limit)
    return text[: cut + 1] if cut > 0 else text[:limit].rstrip() + "..."


def type_text(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if "$ref" in schema:
        name = str(schema["$ref"]).split("/")[-1]
        return f"[{name.removeprefix('batch.')}](#{anchor(name)})"
    if "const" in schema:
        return f"`{schema['const']}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{value}`" for value in schema["enum"])
    if "oneOf" in schema:
        return " or ".join(str(branch.get("title", type_text(branch))) for branch in schema["oneOf"])
    kind = schema.get("type")
    if kind == "array":
        return f"list of {type_text(schema.get('items'))}"
    if kind == "object" and schema.get("properties"):
        return "object with " + ", ".join(f"`{key}`" for key in schema["properties"])
    if kind == "object" and "properties" not in schema:
        values = schema.get("additionalProperties")
        return f"mapping of name to {type_text(values)}" if isinstance(values, dict) else "mapping"
    if isinstance(kind, list):
        return " or ".join(str(item) for item in kind)
    words = {
        "string": "string",
        "integer": "integer",
        "number": "number",
        "boolean": "boolean",
        "object": "object",
    }
    return words.get(str(kind), "any")


def property_table(schema: dict[str, Any], limit: int | None, definitions: dict[str, Any]) -> list[str]:
    properties: dict[str, Any] = schema.get("properties", {})
    if not properties:
        return []
    required = set(schema.get("required", []))
    lines = ["| key | type | required | description |", "|---|---|---|---|"]
    for name, child in properties.items():
        description = str(child.get("description", "")) if isinstance(child, dict) else ""
        title = str(child.get("title", "")) if isinstance(child, dict) else ""
        if not description and isinstance(child, dict) and "$ref" in child:
            referenced = definitions.get(str(child["$ref"]).split("/")[-1], {})
            title = title or str(referenced.get("title", ""))
        if not description and title:
            description = title
        text = short(description, limit) if limit else description.replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{name}` | {type_text(child)} | {'yes' if name in required else ''} | {text} |")
        if isinstance(child, dict) and "$ref" not in child and child.get("properties"):
            # An inline object (e.g. storage.outputs): its keys as rows of their own, named by their path.
            lines += [
                row.replace("| `", f"| `{name}.", 1) for row in property_table(child, limit, definitions)[2:]
            ]
    return lines


def section(name: str, schema: dict[str, Any], limit: int | None, definitions: dict[str, Any]) -> list[str]:
    title = schema.get("title", name)
    lines = [f'<a id="{anchor(name)}"></a>', "", f"### {title} (`{name}`)", ""]
    description = schema.get("description")
    if description:
        lines += [str(description), ""]
    if "pattern" in schema:
        lines += [f"Pattern: `{schema['pattern']}`", ""]
    if "oneOf" in schema:
        lines += ["Forms:", ""]
        for branch in schema["oneOf"]:
            inner = branch.get("properties", {})
            shape = ", ".join(f"`{key}`: {type_text(value)}" for key, value in inner.items())
            lines.append(f"- **{branch.get('title', '')}**: {shape or type_text(branch)}")
        lines.append("")
    if schema.get("type") == "object" and "additionalProperties" in schema and "properties" not in schema:
        lines += [f"Type: {type_text(schema)}", ""]
    if schema.get("type") == "array":
        lines += [f"Type: {type_text(schema)}", ""]
    lines += property_table(schema, limit, definitions)
    if lines[-1] != "":
        lines.append("")
    return lines


def generate() -> str:
    schema = load_schema()
    definitions: dict[str, Any] = schema["$defs"]
    lines = [
        "# Manifest reference (batchrun/v1)",
        "",
        "<!-- Generated by `python -m batchrun.manifest.docgen` from schemas/manifest.schema.json. "
        "Do not edit. -->",
        "",
        str(schema.get("description", "")),
        "",
        "See [manifest-guide.md](manifest-guide.md) for variables, task factories and dependencies by "
        "example.",
        "",
        "## Top level",
        "",
        *property_table(schema, None, definitions),
        "",
        "## batchrun sections",
        "",
    ]
    for name in OWN_SECTIONS:
        lines += section(name, definitions[name], None, definitions)
    lines += [
        "## Batch objects",
        "",
        "Raw Azure Batch shapes (REST camelCase, api-version 2025-06-01), derived from the azure-batch SDK "
        "models. Descriptions are shortened; see the Batch REST reference for the full text.",
        "",
    ]
    for name in sorted(key for key in definitions if key.startswith("batch.")):
        lines += section(name, definitions[name], _BATCH_DESCRIPTION_LIMIT, definitions)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    sys.stdout.write(generate())
    return 0


if __name__ == "__main__":
    sys.exit(main())
