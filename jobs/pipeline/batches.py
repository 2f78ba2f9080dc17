"""Items in batches bounded by weight: the engine's look-ups (records weigh what they hold)
and the portable loader's upserts (every row weighs one). Pure; imports nothing of the
pipeline, so that every part of it may use it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

Item = TypeVar("Item")


def weighs_one(_: object) -> int:
    """The default weight: every item counts as one, so a batch holds ``size`` items."""
    return 1


def batches(
    items: Iterable[Item], size: int, *, weight: Callable[[Item], int] = weighs_one
) -> Iterator[list[Item]]:
    """``items`` in lists, in order, each ended by the item that brings its weight to
    ``size`` or more (the last list may weigh less): a heavier item ends a list sooner, so
    a batch of big records (orders of many lines) holds about as much memory as one of
    small ones. With the default weight, lists of ``size`` items. Items are read as the
    lists are asked for, never all at once; each list is new, the caller may clear it."""
    batch: list[Item] = []
    total = 0
    for item in items:
        batch.append(item)
        total += weight(item)
        if total >= size:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch
