"""Several manifests at once: the files named on the command line, with folders opened.

A folder stands for the workload manifests under it (recursively, in name order, hidden folders skipped). A
YAML file under a folder is a workload manifest when it says ``kind: Workload`` at its top level; other YAML
files there (variable files, CI configuration) are skipped and listed, so a repository's folder can be given
as it is. A file named explicitly is always read as a manifest, so a mistyped one is reported, not skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import msgspec

from batchrun.errors import Diagnostic, ManifestError

YAML_SUFFIXES = (".yaml", ".yml")
# The top-level ``kind: Workload`` line (quoted or not, with or without a comment); read from the file's
# text so that choosing the files costs no YAML parse.
_WORKLOAD_KIND = re.compile(r"""^kind:[ \t]*(["']?)Workload\1[ \t]*(#[^\r\n]*)?\r?$""", re.MULTILINE)
_SNIFF_BYTES = 64 * 1024


class ManifestFiles(msgspec.Struct, frozen=True):
    files: tuple[Path, ...]
    skipped: tuple[Path, ...]  # YAML files (and links) under a folder that are not read as workload manifests


def _is_workload(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            text = handle.read(_SNIFF_BYTES).decode("utf-8-sig", errors="replace")
    except OSError:
        return True  # the loader reports why it cannot be read
    return bool(_WORKLOAD_KIND.search(text))


def _under(folder: Path) -> list[Path]:
    found: list[Path] = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder).parts
        if any(part.startswith(".") for part in relative):
            continue
        if path.suffix.lower() in YAML_SUFFIXES and (path.is_file() or path.is_symlink()):
            found.append(path)
    return found


def manifest_files(paths: Sequence[Path]) -> ManifestFiles:
    """The manifests named by ``paths`` (files and folders), each once, in the order given."""
    files: list[Path] = []
    skipped: list[Path] = []
    problems: list[Diagnostic] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            files.append(path)

    for path in paths:
        if not path.is_dir():
            add(path)  # a missing file is reported by the loader with its name
            continue
        candidates = _under(path)
        # A link is not followed (as links in input folders are not): it is listed among the skipped files.
        workloads = [c for c in candidates if not c.is_symlink() and _is_workload(c)]
        skipped.extend(candidate for candidate in candidates if candidate not in workloads)
        if not workloads:
            problems.append(
                Diagnostic(
                    file=str(path),
                    line=0,
                    column=0,
                    message="the folder holds no workload manifest (no YAML file under it says "
                    "`kind: Workload`)",
                    hint="name the manifest files, or the folder that holds them",
                )
            )
        for workload in workloads:
            add(workload)
    if problems:
        raise ManifestError(problems)
    named = {path.absolute() for path in files}  # a skipped file named explicitly too is read, not skipped
    return ManifestFiles(tuple(files), tuple(path for path in skipped if path.absolute() not in named))
