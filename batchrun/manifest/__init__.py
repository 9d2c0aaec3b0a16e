"""The manifest language: YAML loading with positions, JSON Schema and semantic validation, expansion.

load_workload(path, variables, var_files, max_tasks) -> Workload   (raises ManifestError with every problem)
render_workload(workload, "yaml" | "json") -> str                  (the fully expanded desired state)
"""

from __future__ import annotations

from batchrun.manifest.render import render_workload
from batchrun.manifest.workload import DEFAULT_MAX_TASKS, load_workload

__all__ = ["DEFAULT_MAX_TASKS", "load_workload", "render_workload"]
