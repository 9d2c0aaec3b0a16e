"""batchrun: a declarative workload runner for Azure Batch.

The public Python API is re-exported here; see the README's "Python API" section. The API is imported on
first use, so a command that needs only part of batchrun (``batchrun validate``) does not pay for the rest.
"""

from __future__ import annotations

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
    from batchrun.api import apply, destroy, load, plan, render_plan

__version__ = "0.1.0"

_API = frozenset({"apply", "destroy", "load", "plan", "render_plan"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from batchrun import api

        return getattr(api, name)
    raise AttributeError(f"module 'batchrun' has no attribute {name!r}")


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
    "destroy",
    "load",
    "plan",
    "render_plan",
]
