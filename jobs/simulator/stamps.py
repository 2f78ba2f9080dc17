"""When the simulator changed each record: kept beside the data, never inside the JSON served.

SmartUp does not say when a record changed; the simulator knows, and freshness benches
compare that moment with the moment the row landed in PostgreSQL. Every mutator of
:class:`~jobs.simulator.SmartUpSimulator` stamps the record it changed (or removed) with
the simulator's clock (its ``clock`` callable: the bench's simulated moment, else the wall
clock in UTC). Records loaded whole (the constructor, ``set_*``) are not changes and carry
no stamp.

Keys, per kind of record (the simulator's own natural keys; a harness maps them to the
key columns of its tables):

- ``products``: ``product_id``; ``orders``: ``deal_id``;
- ``groups``: ``product_group_id`` (a change to one of its types stamps the type too);
  ``product_types``: ``product_type_id``;
- ``price_types``: ``price_type_id``;
- ``prices``: ``(inventory_code, price_type_code, card_code)``;
- ``stock``: ``(condition, warehouse_code, product_id, batch_number)``.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Hashable
from typing import Literal

ChangeKind = Literal[
    "products", "orders", "groups", "product_types", "price_types", "prices", "stock"
]
CHANGE_KINDS: tuple[ChangeKind, ...] = (
    "products",
    "orders",
    "groups",
    "product_types",
    "price_types",
    "prices",
    "stock",
)

Clock = Callable[[], datetime.datetime]


def wall_clock() -> datetime.datetime:
    """Now, in UTC."""
    return datetime.datetime.now(datetime.UTC)


class ChangeStamps:
    """The latest change moment of each record, per kind, and the removals apart.

    Not thread-safe by itself: the simulator calls it with its lock held.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock: Clock = clock or wall_clock
        self._changed: dict[ChangeKind, dict[Hashable, datetime.datetime]] = {
            kind: {} for kind in CHANGE_KINDS
        }
        self._removed: dict[ChangeKind, dict[Hashable, datetime.datetime]] = {
            kind: {} for kind in CHANGE_KINDS
        }

    def moment(self) -> datetime.datetime:
        """The clock's reading; it must be time zone aware."""
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the simulator's clock must give time zone aware moments")
        return now

    def stamp(self, kind: ChangeKind, key: Hashable) -> datetime.datetime:
        """Record that ``key`` of ``kind`` changed (or was added) now."""
        now = self.moment()
        self._changed[kind][key] = now
        self._removed[kind].pop(key, None)
        return now

    def stamp_removed(self, kind: ChangeKind, key: Hashable) -> datetime.datetime:
        """Record that ``key`` of ``kind`` was removed now."""
        now = self.moment()
        self._removed[kind][key] = now
        self._changed[kind].pop(key, None)
        return now

    def changed_at(self, kind: ChangeKind) -> dict[Hashable, datetime.datetime]:
        """A copy: the latest change of each record of ``kind`` still served."""
        return dict(self._changed[kind])

    def removed_at(self, kind: ChangeKind) -> dict[Hashable, datetime.datetime]:
        """A copy: when each removed record of ``kind`` was removed."""
        return dict(self._removed[kind])
