"""Process exit codes of the batchrun CLI (documented in the README's troubleshooting section)."""

from __future__ import annotations

OK = 0
ERROR = 1  # bad input, configuration, target or apply error (BatchrunError)
CHANGES_PRESENT = 2  # `plan --detailed-exitcode` found changes
TASKS_FAILED = 3  # the job ended and at least one task failed
POOL_FAILED = 4  # the pool could not get usable nodes (start task failures, resize errors)
TIMEOUT = 5  # --timeout elapsed before the job ended
INTERRUPTED = 130
