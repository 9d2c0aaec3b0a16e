"""Task factory axes (``foreach``): their values, their count before expansion, and their combinations."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import msgspec

from batchrun.errors import ManifestError
from batchrun.manifest.sources import source_files
from batchrun.model import StorageInput


class FileItem(msgspec.Struct, frozen=True):
    """One file of a storage input, as the value of a ``{files: <input>}`` axis.

    ``${f}`` is ``path``; ``${f.name}``, ``${f.stem}``, ``${f.suffix}``, ``${f.parent}``, ``${f.blob}`` and
    ``${f.index}`` give the rest.
    """

    ATTRIBUTES = ("path", "name", "stem", "suffix", "parent", "blob", "index")

    path: str  # relative to the input's source folder, with '/' separators
    blob: str  # blob name in the input's container (prefix + path)
    index: int  # 0-based position in the sorted file list

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.path).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.path).suffix

    @property
    def parent(self) -> str:
        parent = str(PurePosixPath(self.path).parent)
        return "" if parent == "." else parent

    def __str__(self) -> str:
        return self.path

    def __format__(self, spec: str) -> str:
        return format(self.path, spec)


def input_files(storage_input: StorageInput) -> list[str]:
    """Sorted ``/``-separated relative paths of the files an input uploads; a file source gives its name.

    Links and special files inside the folder are refused (ManifestError), never followed.
    """
    return [entry.name for entry in source_files(storage_input.source)]


class AxisError(Exception):
    """An axis without values. ``reported``: its cause is already a diagnostic elsewhere (a storage input
    whose source is missing is reported where the source is declared), so this one adds nothing."""

    def __init__(self, name: str, message: str, hint: str = "", reported: bool = False) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.hint = hint
        self.reported = reported


def axis_values(name: str, spec: Any, inputs: Mapping[str, StorageInput]) -> Sequence[Any]:
    """The values of one axis (a ``range`` object for ranges, so counting costs nothing)."""
    if isinstance(spec, list):
        if not spec:
            raise AxisError(name, f"axis {name!r} is an empty list", "give it at least one value")
        return spec
    if isinstance(spec, dict) and "range" in spec:
        bounds = spec["range"]
        if not isinstance(bounds, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) for b in bounds
        ):
            raise AxisError(name, f"axis {name!r}: range bounds must be integers", "write {range: [1, 10]}")
        if len(bounds) not in (2, 3):
            raise AxisError(name, f"axis {name!r}: a range is [start, end] or [start, end, step]")
        start, end = bounds[0], bounds[1]
        step = bounds[2] if len(bounds) == 3 else 1
        if step == 0:
            raise AxisError(name, f"axis {name!r}: the range step is 0", "use a positive or negative step")
        values = range(start, end + (1 if step > 0 else -1), step)
        if axis_length(values) == 0:
            raise AxisError(
                name,
                f"axis {name!r}: range [{start}, {end}] with step {step} is empty",
                "swap start and end, or use a negative step",
            )
        return values
    if isinstance(spec, dict) and "files" in spec:
        input_name = spec["files"]
        storage_input = inputs.get(str(input_name))
        if storage_input is None:
            raise AxisError(
                name,
                f"axis {name!r}: no storage input named {input_name!r}",
                f"storage inputs: {', '.join(inputs) or 'none'}",
            )
        if not storage_input.source.exists():
            raise AxisError(name, f"axis {name!r}: the source of {input_name!r} is missing", reported=True)
        try:
            paths = input_files(storage_input)
        except ManifestError as error:
            first = error.diagnostics[0]
            raise AxisError(name, f"axis {name!r}: {first.message}", first.hint) from None
        if not paths:
            raise AxisError(name, f"axis {name!r}: storage input {input_name!r} has no files", "add files")
        return [FileItem(path, storage_input.prefix + path, index) for index, path in enumerate(paths)]
    raise AxisError(name, f"axis {name!r} is not a list, a range or a files axis")


def axis_length(values: Sequence[Any]) -> int:
    """len(), also for ranges too long for len() (more than sys.maxsize values)."""
    if isinstance(values, range):
        if values.step > 0:
            return max(0, (values.stop - values.start + values.step - 1) // values.step)
        return max(0, (values.start - values.stop - values.step - 1) // -values.step)
    return len(values)


def combination_count(axes: Mapping[str, Sequence[Any]], zipped: bool) -> int:
    lengths = [axis_length(values) for values in axes.values()]
    if not lengths:
        return 1
    return min(lengths) if zipped else math.prod(lengths)


def _product(axes: Sequence[Sequence[Any]]) -> Iterator[tuple[Any, ...]]:
    """``itertools.product`` without its up-front copy of every axis into a tuple: a range of 10^8 values
    costs nothing until its values are used, so taking the first combination stays cheap."""
    if not axes:
        yield ()
        return
    if any(axis_length(values) == 0 for values in axes):
        return
    if all(not isinstance(values, range) for values in axes):
        yield from itertools.product(*axes)  # lists are in memory already
        return
    *outer, inner = axes
    for prefix in _product(outer):
        for value in inner:
            yield (*prefix, value)


def combinations(axes: Mapping[str, Sequence[Any]], zipped: bool) -> Iterator[dict[str, Any]]:
    names = list(axes)
    # ``zip: true`` without axes is one task, as for any entry without ``foreach`` (combination_count).
    rows = zip(*axes.values(), strict=False) if zipped and axes else _product(list(axes.values()))
    for row in rows:
        yield dict(zip(names, row, strict=True))


def combination_at(axes: Mapping[str, Sequence[Any]], zipped: bool, index: int) -> dict[str, Any]:
    """``list(combinations(axes, zipped))[index]`` without making the others: the last axis varies fastest."""
    if zipped:
        return {name: values[index] for name, values in axes.items()}
    chosen: dict[str, Any] = {}
    for name, values in reversed(list(axes.items())):
        index, place = divmod(index, axis_length(values))
        chosen[name] = values[place]
    return {name: chosen[name] for name in axes}
