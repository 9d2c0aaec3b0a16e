"""The files of a source folder (storage inputs, application packages), walked without following links.

A source folder is uploaded as it is on disk, so what it holds must be plain: regular files and folders.
A symbolic link inside it (``in/passwd -> /etc/passwd``, a link to the local target's ``credentials.json``)
would upload whatever it points at, files the manifest's reviewer never saw; a FIFO, socket or device has no
content to upload (a FIFO blocks the reader forever). Such entries are refused, naming the entry and, for a
link, its target. The source path named in the manifest may itself be a link: the reviewer sees it.

The walk uses ``lstat`` only (``os.scandir`` with ``follow_symlinks=False``), so no link is ever opened.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import msgspec

from batchrun.errors import Diagnostic, ManifestError

MAX_REPORTED = 10  # entries named in one error; the rest are counted


class SourceEntry(msgspec.Struct, frozen=True):
    """One entry of a source folder: its path on disk, its ``/``-separated name relative to the folder."""

    path: Path
    name: str
    is_dir: bool
    size: int = 0


class Refused(msgspec.Struct, frozen=True):
    """An entry that is not a regular file or folder."""

    path: Path
    what: str  # "a symbolic link to /etc/passwd", "a FIFO", "a folder that cannot be read (...)"

    @property
    def message(self) -> str:
        if self.what.startswith("a folder"):
            return f"{self.path} is {self.what}; its files would be left out of the upload"
        return f"{self.path} is {self.what}; batchrun uploads only regular files and folders"

    @property
    def hint(self) -> str:
        if self.what.startswith("a symbolic link"):
            return "replace the link with a copy of what it points to (cp --dereference), or remove it"
        if self.what.startswith("a folder"):
            return "make it readable, or remove it from the source folder"
        return "remove it from the source folder"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a special file"


def _link_target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "an unreadable target"


def scan(source: Path) -> tuple[list[SourceEntry], list[Refused]]:
    """Every entry under ``source`` (a folder) sorted by name, and the entries that are refused.

    A ``source`` that is a file gives that one file (it must be a regular file once links are followed).
    """
    try:
        top = source.stat()
    except OSError:
        return [], []
    if not stat.S_ISDIR(top.st_mode):
        if stat.S_ISREG(top.st_mode):
            return [SourceEntry(source, source.name, False, top.st_size)], []
        return [], [Refused(source, _kind(top.st_mode))]
    entries: list[SourceEntry] = []
    refused: list[Refused] = []
    pending: list[tuple[Path, str]] = [(source, "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as listing:
                items = list(listing)
        except OSError as error:
            refused.append(Refused(folder, f"a folder that cannot be read ({error.strerror or error})"))
            continue
        for item in items:
            name = prefix + item.name
            path = Path(item.path)
            info = item.stat(follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                refused.append(Refused(path, f"a symbolic link to {_link_target(path)}"))
            elif stat.S_ISDIR(info.st_mode):
                entries.append(SourceEntry(path, name, True))
                pending.append((path, name + "/"))
            elif stat.S_ISREG(info.st_mode):
                entries.append(SourceEntry(path, name, False, info.st_size))
            else:
                refused.append(Refused(path, _kind(info.st_mode)))
    entries.sort(key=lambda entry: entry.name)
    refused.sort(key=lambda entry: str(entry.path))
    return entries, refused


def refusal_problems(refused: list[Refused]) -> list[tuple[str, str]]:
    """(message, hint) per refused entry, at most MAX_REPORTED, then one line counting the rest."""
    problems = [(entry.message, entry.hint) for entry in refused[:MAX_REPORTED]]
    if len(refused) > MAX_REPORTED:
        problems.append((f"... and {len(refused) - MAX_REPORTED} more such entries", "fix the ones above"))
    return problems


def source_problems(source: Path) -> list[tuple[str, str]]:
    """(message, hint) for each entry of ``source`` that batchrun refuses to upload (validate uses this)."""
    return refusal_problems(scan(source)[1])


def source_files(source: Path) -> list[SourceEntry]:
    """The regular files of ``source`` sorted by name; raises ManifestError when it holds a link or a
    special file (the folder changed since validation, or the caller skipped it)."""
    return [entry for entry in source_entries(source) if not entry.is_dir]


def source_entries(source: Path) -> list[SourceEntry]:
    """Files and folders of ``source`` sorted by name; raises ManifestError like :func:`source_files`."""
    entries, refused = scan(source)
    if refused:
        raise ManifestError(
            [Diagnostic(str(source), 0, 0, message, "", hint) for message, hint in refusal_problems(refused)]
        )
    return entries
