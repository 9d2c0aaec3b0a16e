"""The cyclic collector paused while a plan is made: back on after, without rescanning what the pause made."""

from __future__ import annotations

import gc

import pytest

from batchrun.collector import collector_paused, freeze_long_lived, thaw


class _Node:
    def __init__(self) -> None:
        self.peer: _Node | None = None


def test_objects_made_during_a_pause_are_old_after_it_and_cycles_are_still_freed() -> None:
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        kept = [_Node() for _ in range(50_000)]
        lost = _Node()
        lost.peer = _Node()
        lost.peer.peer = lost  # a cycle: only the collector frees it
        del lost
    assert gc.isenabled()
    young = {id(o) for o in gc.get_objects(generation=0)} | {id(o) for o in gc.get_objects(generation=1)}
    assert not any(id(node) in young for node in kept[::1000]), "the next young collections would scan them"
    assert any(isinstance(o, _Node) for o in gc.get_objects(generation=2))
    assert gc.collect() >= 2, "the cycle made during the pause was not freed by a full collection"


def test_pauses_nest_and_only_the_outermost_turns_the_collector_back_on() -> None:
    with collector_paused():
        with collector_paused():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled(), "a pause that found the collector off leaves it off"
    finally:
        gc.enable()


def test_a_freeze_made_before_a_pause_is_kept_and_what_the_pause_made_joins_it() -> None:
    """The CLI freezes what exists once it has started: a pause must not undo that (nor a library user's)."""
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with collector_paused():
            kept = [_Node() for _ in range(1_000)]
        assert gc.get_freeze_count() >= before + len(kept), "the freeze made before the pause was undone"
    finally:
        gc.unfreeze()


def test_a_process_that_freezes_what_lives_long_is_not_asked_to_count_its_frozen_objects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``gc.get_freeze_count`` walks every frozen object: 5 ms at each pause's end after a CLI's start-up."""
    freeze_long_lived()
    try:
        before = gc.get_freeze_count()

        def walks_them_all() -> int:
            raise AssertionError("the frozen objects were counted one by one")

        monkeypatch.setattr(gc, "get_freeze_count", walks_them_all)
        with collector_paused():
            kept = [_Node() for _ in range(1_000)]
        monkeypatch.undo()
        assert gc.get_freeze_count() >= before + len(kept), "what the pause made was not frozen with the rest"
    finally:
        thaw()
    assert gc.get_freeze_count() == 0
    with collector_paused():  # thawed: a pause leaves nothing frozen again
        kept = [_Node() for _ in range(1_000)]
    assert gc.get_freeze_count() == 0
