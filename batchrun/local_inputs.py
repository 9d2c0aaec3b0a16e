"""Storage inputs on this machine: each file's blob name, stat data and MD5, hashed where a plan needs it.

A plan needs a file's MD5 to compare it with a blob that has a Content-MD5, and for the digests of the tasks
that read its input (a task reruns when the content it reads changes). A file whose MD5 the hash cache holds
(:mod:`batchrun.hash_cache`) costs a stat. A new file that no task reads needs no MD5 to be planned: whatever
its content, its blob is missing, so it is uploaded. Such a file is left unhashed (``LocalFile.md5`` None,
its stat data kept) and apply hashes it just before sending it, as a bare upload loop would, so that hashing
overlaps the uploads instead of coming before the first of them (:func:`batchrun.azure.storage.upload_files`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from msgspec.structs import replace

from batchrun.azure.parallel import run_parallel
from batchrun.hash_cache import HashCache, Stat
from batchrun.manifest.sources import source_files
from batchrun.model import StorageInput, Workload
from batchrun.plan.live import LiveInput, LocalFile, PreparedInput

HASH_THREADS = 4


def inputs_tasks_read(workload: Workload) -> frozenset[str]:
    """The names of the inputs some task of the workload downloads (their MD5s are in task digests); the
    tasks are read only until every input is named (a sweep's tasks are made one by one when read)."""
    names: set[str] = set()
    every = len(workload.inputs)
    for job in workload.jobs:
        for task in job.tasks:
            names.update(task.inputs)
            if len(names) >= every:
                return frozenset(names)
    return frozenset(names)


def local_files(
    source: Path, prefix: str, hashes: HashCache | None = None, hash_new: bool = True
) -> list[LocalFile]:
    """Files of an input: one file, or every file under a folder (blob names keep the relative path).

    Links and special files inside the folder are refused (ManifestError naming each), never followed. MD5s
    come from ``hashes`` when a file's stat data is unchanged since it was last hashed; the other files are
    hashed, or with ``hash_new`` False left with no MD5 (:func:`with_compared_md5s` hashes those the plan
    compares)."""
    cache = hashes or HashCache(None)
    entries = source_files(source)
    found: dict[int, tuple[str | None, Stat | None]] = {}
    missing = []
    for index, entry in enumerate(entries):  # stat data first: most files are known, and cheap to check
        stat = Stat.of(entry.path)
        known = cache.known_with(entry.path, stat)
        if known is not None:
            found[index] = known
        elif hash_new:
            missing.append(index)
        else:
            found[index] = (None, stat)  # the stat data the upload checks before it hashes and sends
    found.update(zip(missing, _hashed(cache, [entries[index].path for index in missing]), strict=True))
    # The size sent is the size of the stat data that vouches for the file, when there is one: a file that
    # grew after it was listed is not sent cut short under the MD5 of all of it.
    files = []
    for index, entry in enumerate(entries):
        md5, vouching = found[index]
        size = vouching.size if vouching is not None else entry.size
        files.append(LocalFile(prefix + entry.name, str(entry.path), md5, size, vouching))
    return files


def _hashed(cache: HashCache, paths: list[Path]) -> list[tuple[str, Stat | None]]:
    # Several at once: hashlib lets go of the interpreter lock, so each core hashes one.
    return run_parallel(cache.md5_and_stat, paths, HASH_THREADS)


def prepare_input(
    spec: StorageInput, hashes: HashCache | None = None, hash_new: bool = True
) -> PreparedInput:
    files = tuple(local_files(spec.source, spec.prefix, hashes, hash_new))
    record = str(hashes.file) if hashes is not None and hashes.file is not None else None
    return PreparedInput(spec.name, spec.container, spec.prefix, files, record)


def prepare_inputs(workload: Workload, hashes: HashCache, every_file: bool = False) -> list[PreparedInput]:
    """Every input of the workload, with the MD5s its task digests need (``every_file``: with every MD5);
    the others' new files wait for :func:`with_compared_md5s`."""
    read = inputs_tasks_read(workload) if workload.inputs and not every_file else frozenset()
    return [prepare_input(spec, hashes, hash_new=every_file or spec.name in read) for spec in workload.inputs]


def with_compared_md5s(
    inputs: Iterable[PreparedInput], live: Mapping[str, LiveInput], hashes: HashCache
) -> list[PreparedInput]:
    """Hash the unhashed files whose blobs have a Content-MD5 to compare with; the rest stay unhashed (a
    missing blob, or one without Content-MD5, is uploaded whatever the file holds)."""
    result = []
    for prepared in inputs:
        blobs = live[prepared.name].blobs if prepared.name in live else {}
        compared = [
            at
            for at, file in enumerate(prepared.files)
            if file.md5 is None and blobs.get(file.blob, ("", False))[0]
        ]
        if not compared:
            result.append(prepared)
            continue
        files = list(prepared.files)
        hashed = _hashed(hashes, [Path(files[at].path) for at in compared])
        for at, (md5, stat) in zip(compared, hashed, strict=True):
            files[at] = replace(files[at], md5=md5, stat=stat)
        result.append(replace(prepared, files=tuple(files)))
    return result
