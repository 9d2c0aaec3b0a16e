"""batchrun: a declarative workload runner for Azure Batch.

The public Python API is re-exported here; see the README's "Python API" section. The error classes are
imported with the package; the verbs (``plan``, ``apply``, ...) on first use (PEP 562), so a command that
needs neither the planner nor the Azure SDKs (``batchrun validate``) does not pay for importing them.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

from batchrun.errors import (
    AbortedError,
    ApplyError,
    AuthenticationError,
    BatchrunError,
    ConfigurationError,
    Diagnostic,
    LocalTargetError,
    ManifestError,
    PlanError,
    TargetError,
)

if TYPE_CHECKING:
    from batchrun.api import apply, destroy, load, load_all, plan, render_plan
    from batchrun.connection import connect

__version__ = "0.1.0"

# Attribute -> the module that defines it, imported when the attribute is first read.
_LAZY = {
    **{name: "batchrun.api" for name in ("apply", "destroy", "load", "load_all", "plan", "render_plan")},
    "connect": "batchrun.connection",
}

__all__ = [
    "AbortedError",
    "ApplyError",
    "AuthenticationError",
    "BatchrunError",
    "ConfigurationError",
    "Diagnostic",
    "LocalTargetError",
    "ManifestError",
    "PlanError",
    "TargetError",
    "__version__",
    "apply",
    "connect",
    "destroy",
    "load",
    "load_all",
    "plan",
    "render_plan",
]


class _Package(types.ModuleType):
    """``batchrun.plan`` and ``batchrun.apply`` are the API's verbs, whichever subpackage of the same name
    (``batchrun.plan.actions``, ``batchrun.apply.hooks``) is imported first or later: the import system's
    binding of a subpackage on its parent is ignored for these names (the subpackages stay in sys.modules)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _LAZY and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later reads find it directly
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
