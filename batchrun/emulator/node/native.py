"""Small native programs of the node runtime, compiled with the host's C compiler once per user.

Each program is built on first use with ``cc`` (``gcc`` or ``clang`` otherwise) into a per-user cache folder
(``$XDG_CACHE_HOME/batchrun`` or ``~/.cache/batchrun``, used only when it is writable by this user alone),
named after a hash of its source, checked with a test run and reused from then on. Static when the C library
allows it (one exec, no dynamic loader), dynamic otherwise. Without a compiler, or if the build or its check
fails, :func:`find_or_build` answers None and the caller keeps its fallback.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

_LOG = logging.getLogger(__name__)
_BUILD_SECONDS = 120.0


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "batchrun"


def find_or_build(name: str, source: str, works: Callable[[Path], bool]) -> str | None:
    """The path of the program built from ``source`` (``<cache>/<name>-<hash>``); None when it cannot be had.

    ``works`` checks a fresh build before it is put in place."""
    folder = cache_folder()
    target = folder / f"{name}-{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(folder):
            _LOG.debug("not using %s for %s: not a private folder of this user", folder, name)
            return None
        if _usable(target):
            return str(target)
        return _build(folder, target, source, works)
    except OSError as error:
        _LOG.debug("no %s: %s", name, error)
        return None


def _private(folder: Path) -> bool:
    """Only this user can write there (nobody else could swap the binary)."""
    info = folder.stat()
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _usable(path: Path) -> bool:
    try:
        info = path.stat()
    except FileNotFoundError:
        return False
    return (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        and os.access(path, os.X_OK)
    )


def _build(folder: Path, target: Path, source_text: str, works: Callable[[Path], bool]) -> str | None:
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if compiler is None:
        return None
    with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as work:
        source = Path(work) / "program.c"
        source.write_text(source_text)
        output = Path(work) / "program"
        for extra in (["-static"], []):
            command = [compiler, "-O2", *extra, "-o", str(output), str(source)]
            try:
                done = subprocess.run(command, capture_output=True, timeout=_BUILD_SECONDS, check=False)
            except (OSError, subprocess.TimeoutExpired) as error:
                _LOG.debug("building %s failed: %s", target.name, error)
                return None
            if done.returncode == 0 and works(output):
                output.chmod(0o755)
                os.replace(output, target)  # atomic: a concurrent build of the same source is identical
                return str(target)
    _LOG.debug("building %s failed", target.name)
    return None
