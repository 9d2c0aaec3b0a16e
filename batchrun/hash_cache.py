"""A content-hash cache for local files, in the manner of git's index: stat data -> MD5.

Planning compares each input file's MD5 with its blob's Content-MD5. Hashing 1 GB of unchanged inputs on
every plan costs seconds, so the MD5 of each file is kept with the file's stat data (size, mtime_ns,
ctime_ns, inode). A file whose stat data is unchanged is not read again; any change re-hashes it. As in git,
an entry recorded less than ``RACY_NS`` after the file's last modification is not trusted (the file could
change again within the same timestamp tick without its stat data changing).

One JSON file per workload under ``$BATCHRUN_CACHE_DIR`` (default ``$XDG_CACHE_HOME/batchrun`` or
``~/.cache/batchrun``): ``hashes/<workload>-<folder digest>.json``. Set ``BATCHRUN_HASH_CACHE=off`` to hash
every file on every run. A cache that cannot be read or written is ignored: it only ever saves time.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, NamedTuple

CHUNK = 1024 * 1024
RACY_NS = 2_000_000_000  # coarse file systems keep mtime to the second or two
FORMAT_VERSION = 1


class Stat(NamedTuple):
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int

    @classmethod
    def of(cls, path: Path | int) -> Stat:
        """The stat data of a file, by path or by an open file's descriptor."""
        result = os.stat(path)
        return cls(result.st_size, result.st_mtime_ns, result.st_ctime_ns, result.st_ino)


def md5_of(path: Path) -> str:
    """Base64 MD5 of a file, read in chunks (the form Content-MD5 uses)."""
    with path.open("rb") as handle:
        return md5_read(handle)


def md5_read(handle: BinaryIO) -> str:
    """Base64 MD5 of what is left to read from an open file."""
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := handle.read(CHUNK):
        digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("BATCHRUN_CACHE_DIR"):
        return Path(env["BATCHRUN_CACHE_DIR"])
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "batchrun"


def enabled(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get("BATCHRUN_HASH_CACHE", "").strip().lower() not in ("off", "0", "false", "no")


class HashCache:
    """MD5s by absolute path, trusted while the file's stat data is what it was when hashed."""

    def __init__(self, file: Path | None) -> None:
        self.file = file
        self.entries: dict[str, tuple[Stat, str, int]] = {}  # path -> (stat, md5, recorded at, ns)
        self.changed = False
        self.seen: set[str] = set()  # paths looked up this run: only they are kept
        self.hashed = 0  # files read this run (for tests and benchmarks)
        self._lock = threading.Lock()
        if file is not None:
            self._load(file)

    @classmethod
    def for_workload(cls, workload: str, manifest_folder: Path) -> HashCache:
        if not enabled():
            return cls(None)
        folder = hashlib.sha256(str(manifest_folder.resolve()).encode()).hexdigest()[:16]
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in workload)[:64]
        return cls(cache_dir() / "hashes" / f"{safe}-{folder}.json")

    def _load(self, file: Path) -> None:
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
            if document.get("formatVersion") != FORMAT_VERSION:
                return
            for path, (size, mtime, ctime, inode, md5, recorded) in document["files"].items():
                self.entries[path] = (Stat(size, mtime, ctime, inode), str(md5), int(recorded))
        except (OSError, ValueError, KeyError, TypeError):
            self.entries = {}

    def md5(self, path: Path) -> str:
        return self.md5_and_stat(path)[0]

    def known(self, path: Path) -> tuple[str, Stat] | None:
        """The MD5 the cache holds for ``path`` with the stat data that vouches for it, when the file still
        has that stat data (None: the file must be hashed)."""
        return self._known(str(path), Stat.of(path))

    def known_with(self, path: Path, stat: Stat) -> tuple[str, Stat] | None:
        """:meth:`known`, for a file whose stat data was just read."""
        return self._known(str(path), stat)

    def _known(self, key: str, stat: Stat) -> tuple[str, Stat] | None:
        self.seen.add(key)
        found = self.entries.get(key)
        if found is not None and found[0] == stat and found[2] - stat.mtime_ns >= RACY_NS:
            return found[1], stat
        return None

    def md5_and_stat(self, path: Path) -> tuple[str, Stat | None]:
        """The file's MD5 and the stat data that vouches for it: while the file's stat data is still that,
        its content is what was hashed (None when it cannot vouch: the cache is off, the file changed while
        it was read, or it was hashed within ``RACY_NS`` of its last modification)."""
        key, stat = str(path), Stat.of(path)
        found = self._known(key, stat)
        if found is not None:
            return found
        md5 = md5_of(path)
        after = Stat.of(path)
        recorded = time.time_ns()
        with self._lock:  # files are hashed on several threads
            self.hashed += 1
            if after != stat:
                return md5, None
            if self.file is not None:  # unchanged while it was read: safe to remember
                self.entries[key] = (stat, md5, recorded)
                self.changed = True
        return md5, stat if self.file is not None and recorded - stat.mtime_ns >= RACY_NS else None

    def add(self, path: Path, stat: Stat, md5: str, hashed_at: int) -> None:
        """Remember the MD5 of a file hashed elsewhere (an upload hashes what it is about to send) while it
        had ``stat``, from ``hashed_at`` (time.time_ns() as the hashing began: the racy rule measures from
        it)."""
        with self._lock:
            self.seen.add(str(path))
            if self.file is not None:
                self.entries[str(path)] = (stat, md5, hashed_at)
                self.changed = True

    def save(self, prune: bool = True) -> None:
        """Write the cache; ``prune`` drops the entries of files not looked up this run (a plan looks up every
        file of the workload; an apply that only adds to the cache keeps the rest)."""
        if self.file is None or not (self.changed or (prune and set(self.entries) - self.seen)):
            return
        kept = {path: entry for path, entry in self.entries.items() if path in self.seen or not prune}
        document = {
            "formatVersion": FORMAT_VERSION,
            "files": {path: [*stat, md5, recorded] for path, (stat, md5, recorded) in kept.items()},
        }
        with contextlib.suppress(OSError):
            self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(dir=self.file.parent, prefix=".hashes-")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(document, stream, separators=(",", ":"))
            os.replace(temporary, self.file)
        self.changed = False
