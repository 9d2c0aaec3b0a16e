"""The node agent's log: one line per lifecycle event of a simulated node (boot, start task, reboot, ...).

Kept at ``<node root>/volatile/node-agent.log``; ``uploadbatchservicelogs`` uploads it with the start task's
output, as Batch uploads its agent logs from the node.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

AGENT_LOG = Path("volatile") / "node-agent.log"
UPLOADED_LOGS = (AGENT_LOG, Path("startup") / "stdout.txt", Path("startup") / "stderr.txt")


def append_agent_log(root: Path, event: str) -> None:
    """Append one timestamped line; a node whose folder is gone has no log to write."""
    path = root / AGENT_LOG
    if not path.parent.is_dir():
        return
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    with path.open("a", encoding="utf-8") as handle:
        handle.write(f"{stamp} {event}\n")


def service_log_files(root: Path, start: datetime, end: datetime | None) -> list[Path]:
    """The node's service logs last written in ``[start, end]`` (relative to ``root``)."""
    chosen: list[Path] = []
    for relative in UPLOADED_LOGS:
        path = root / relative
        try:
            modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
        except OSError:
            continue
        if path.is_file() and modified >= start and (end is None or modified <= end):
            chosen.append(relative)
    return chosen
