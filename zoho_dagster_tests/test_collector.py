"""The collector setting for syncs: fewer collections inside, cycles still freed, the interpreter restored."""

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from zoho_dagster.collector import sync_collection


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _young_collections_during(allocate: int) -> int:
    """How many young collections run while ``allocate`` dicts are made and kept (as a page waiting in a
    queue is)."""
    runs = [0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 0:
            runs[0] += 1

    gc.callbacks.append(count)
    try:
        kept = [{"i": i} for i in range(allocate)]
        del kept
    finally:
        gc.callbacks.remove(count)
    return runs[0]


@pytest.fixture
def interpreter_defaults() -> Iterator[tuple[int, ...]]:
    """The thresholds before the test; whatever the test does, they are put back after it."""
    found = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*found)


def test_a_page_worth_of_objects_triggers_no_collection_inside_and_many_outside(
    interpreter_defaults: tuple[int, ...],
) -> None:
    page = 10_000  # about the containers one decoded page of 200 records holds
    assert _young_collections_during(page) >= 10
    with sync_collection():
        assert _young_collections_during(page) == 0


def test_objects_alive_before_are_frozen_inside_and_unfrozen_after(
    interpreter_defaults: tuple[int, ...],
) -> None:
    before = gc.get_freeze_count()
    with sync_collection():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == interpreter_defaults


def test_cycles_made_inside_are_still_freed(interpreter_defaults: tuple[int, ...]) -> None:
    with sync_collection():
        first = _Node()
        first.other = _Node()
        first.other.other = first
        watch = weakref.ref(first)
        del first
        for _ in range(10):  # a long sync: a million short-lived containers
            _young_collections_during(100_000)
            if watch() is None:
                break
        assert watch() is None


def test_nested_and_concurrent_holders_restore_only_when_the_last_leaves(
    interpreter_defaults: tuple[int, ...],
) -> None:
    inside = threading.Event()
    leave = threading.Event()

    def other_sync() -> None:
        with sync_collection():
            inside.set()
            leave.wait(30)

    thread = threading.Thread(target=other_sync)
    with sync_collection():
        raised = gc.get_threshold()
        assert raised[0] > interpreter_defaults[0]
        thread.start()
        assert inside.wait(30)
    # This thread left first: the other sync still streams, so its setting stays.
    assert gc.get_threshold() == raised
    leave.set()
    thread.join(30)
    assert gc.get_threshold() == interpreter_defaults
    assert gc.get_freeze_count() == 0
