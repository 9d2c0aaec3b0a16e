"""batchrun: a declarative workload runner for Azure Batch.

The public Python API is re-exported here; see the README's "Python API" section.
"""

from __future__ import annotations

from batchrun.api import apply, destroy, load, load_all, plan, render_plan
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

__version__ = "0.1.0"

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
    "load_all",
    "plan",
    "render_plan",
]
