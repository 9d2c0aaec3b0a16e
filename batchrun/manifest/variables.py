"""Variable values: the manifest's ``variables``, overridden by each ``--var-file`` in order, then ``--var``.

``--var`` values arrive as text; they take the type of the manifest's value for that name (``--var count=10``
stays an integer when the manifest says ``count: 3``), so ``${count}`` keeps working where Batch
expects a number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from batchrun.errors import Diagnostic, ManifestError
from batchrun.manifest.load import Document, load_document
from batchrun.manifest.suggest import did_you_mean

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _coerce(name: str, text: str, default: Any) -> tuple[Any, str]:
    """``text`` converted to the type of ``default``; returns (value, problem)."""
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True, ""
        if lowered in _FALSE:
            return False, ""
        return text, "expected true or false"
    if isinstance(default, int):
        try:
            return int(text.strip()), ""
        except ValueError:
            return text, "expected an integer"
    if isinstance(default, float):
        try:
            return float(text.strip()), ""
        except ValueError:
            return text, "expected a number"
    if isinstance(default, (list, dict)):
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            return text, f"expected a {'list' if isinstance(default, list) else 'mapping'} in YAML/JSON form"
        if type(value) is not type(default):
            return text, f"expected a {'list' if isinstance(default, list) else 'mapping'} in YAML/JSON form"
        return value, ""
    return text, ""


def resolve_variables(
    document: Document,
    overrides: Mapping[str, str],
    var_files: Sequence[Path],
    problems: list[Diagnostic],
) -> dict[str, Any]:
    """The effective variables; every problem is appended to ``problems``."""
    declared = document.data.get("variables")
    variables: dict[str, Any] = dict(declared) if isinstance(declared, dict) else {}
    names = list(variables)
    for var_file in var_files:
        try:
            loaded = load_document(var_file)
        except ManifestError as error:  # keep its diagnostics and go on collecting
            problems.extend(error.diagnostics)
            continue
        for name, value in loaded.data.items():
            if name not in variables:
                suggestion = did_you_mean(name, names)
                problems.append(
                    loaded.diagnostic(
                        (name,),
                        f"{name!r} is not a variable of {document.file}",
                        suggestion or "declare it under 'variables' in the manifest first",
                        key=True,
                    )
                )
                continue
            variables[name] = value
    for name, text in overrides.items():
        if name not in variables:
            suggestion = did_you_mean(name, names)
            problems.append(
                Diagnostic(
                    "--var",
                    0,
                    0,
                    f"{name!r} is not a variable of {document.file}",
                    "",
                    suggestion or f"declared variables: {', '.join(names) or 'none'}",
                )
            )
            continue
        value, problem = _coerce(name, text, variables[name])
        if problem:
            problems.append(
                Diagnostic("--var", 0, 0, f"{name}={text!r}: {problem}", "", f"give {name} a valid value")
            )
            continue
        variables[name] = value
    return variables
