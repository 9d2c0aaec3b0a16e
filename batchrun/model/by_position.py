"""A read-only sequence whose items are made from their position when read (tasks, their keys, changes)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import TypeVar, overload

Item = TypeVar("Item")


class ByPosition(Sequence[Item]):
    """A subclass gives ``__len__`` and ``_at`` (called with 0 <= position < len); indexing, negative
    indices and slices (a tuple) are answered here. It equals any sequence (not a string) of equal items."""

    def _at(self, position: int) -> Item:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Item]: ...

    def __getitem__(self, index: int | slice) -> Item | Sequence[Item]:
        if isinstance(index, slice):
            return tuple(map(self._at, range(len(self))[index]))
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(index)
        return self._at(position)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        if len(self) != len(other):
            return False
        return all(mine == theirs for mine, theirs in zip(self, other, strict=True))

    def __hash__(self) -> int:
        return hash(tuple(self))


class Made(ByPosition[Item]):
    """``length`` items, each made from its position when read."""

    def __init__(self, length: int, made: Callable[[int], Item]) -> None:
        self._length, self._made = length, made

    def __len__(self) -> int:
        return self._length

    def _at(self, position: int) -> Item:
        return self._made(position)


class Joined(ByPosition[Item]):
    """Several sequences read as one, in order, without copying them (an empty one is left out)."""

    def __init__(self, parts: Iterable[Sequence[Item]]) -> None:
        self._parts = tuple(part for part in parts if len(part))
        self._length = sum(len(part) for part in self._parts)

    @property
    def parts(self) -> tuple[Sequence[Item], ...]:
        return self._parts

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Item]:
        return chain.from_iterable(self._parts)

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Item]: ...

    def __getitem__(self, index: int | slice) -> Item | Sequence[Item]:
        """A slice without a step is each part's own slice, joined: a part made by position makes its items
        in one call, not one lookup each (a request's 100 task bodies)."""
        if not isinstance(index, slice) or index.step not in (None, 1):
            return super().__getitem__(index)
        start, stop, _ = index.indices(self._length)
        items: list[Item] = []
        for part in self._parts:
            if start < stop and start < len(part):
                items.extend(part[start : min(stop, len(part))])
            start, stop = max(0, start - len(part)), stop - len(part)
        return tuple(items)

    def _at(self, position: int) -> Item:
        for part in self._parts:
            if position < len(part):
                return part[position]
            position -= len(part)
        raise IndexError(position)
