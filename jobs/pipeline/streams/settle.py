"""What a complete answer settles, as a stream declares it: one rule per export.

Two modes: :data:`MARK_GONE` (rows SmartUp no longer sends are marked gone, and come back
when seen again) and :data:`DELETE` (they are deleted). :func:`jobs.day.reconcile.settle`
carries a rule out, with its brake.
"""

from __future__ import annotations

from dataclasses import dataclass

MARK_GONE, DELETE = "mark-gone", "delete"


@dataclass(frozen=True, kw_only=True)
class Settle:
    """What a complete answer of one export settles in its table.

    ``key_column``: the column the export's keys (their last part) are compared with;
    ``scope``: an SQL condition on the rows this export owns (``""``: every row);
    ``noun``/``whole``: for messages ("product", "catalogue"); ``forget_hash``: a row
    marked gone loses its content hash, so that when it comes back it is parsed and
    written anew (with its children); ``after_gone``: statements run (with the time as
    their one parameter) once rows were marked gone, e.g. to mark their children gone;
    ``holder_column``: the column naming the answer's record a row came from (a price's
    ``product_code``), when one record holds several rows: the rows of a holder that was
    rejected whole (:meth:`jobs.day.reconcile.SeenIds.hold`) are kept, never taken as absent.
    """

    mode: str
    table: str
    key_column: str
    noun: str
    whole: str
    scope: str = ""
    forget_hash: bool = False
    after_gone: tuple[str, ...] = ()
    holder_column: str = ""

    def __post_init__(self) -> None:
        if self.mode not in (MARK_GONE, DELETE):
            raise ValueError(f"mode must be {MARK_GONE} or {DELETE}, not {self.mode!r}")
