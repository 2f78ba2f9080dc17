"""``stock``: the balance of every warehouse today (``balance$export``), a snapshot per
filial and condition; warehouses (``warehouse$export``) once a day where answered, after
the balances."""

from __future__ import annotations

from functools import partial

from jobs.models import StockBalance, Warehouse
from jobs.pipeline.loader import LoadTarget
from jobs.pipeline.records import (
    BALANCE_COLUMNS,
    WAREHOUSE_COLUMNS,
    identify_balance,
    identify_warehouse,
    parse_balance,
    parse_warehouse,
)
from jobs.pipeline.streams.base import Call, Export, Span, Stream, declare, smartup_date
from jobs.pipeline.streams.links import PRODUCT_BY_ID, WAREHOUSE_BY_ID
from jobs.pipeline.streams.pools import DOCUMENTS, REFERENCE
from jobs.pipeline.streams.reach import DAY_RANGE_LIMIT, DAY_SECONDS, MODIFIED, SNAPSHOT_TODAY
from jobs.pipeline.streams.settle import DELETE, Settle
from jobs.settings import Settings

WAREHOUSES_KEY = "warehouses"  # the state key of the daily warehouses call

WAREHOUSES = Export(
    name="warehouses",
    path="/b/anor/mxsx/mkw/warehouse$export",
    records_key="warehouse",
    identifier=identify_warehouse,
    parser=parse_warehouse,
    optional=True,  # seen in one client only: an account that does not answer it is fine
    target=LoadTarget(
        model=Warehouse,
        columns=WAREHOUSE_COLUMNS,
        key=("external_id",),
        referenced_by=(("stock_balances", WAREHOUSE_BY_ID),),
    ),
)

BALANCE_TARGET = LoadTarget(
    model=StockBalance,
    columns=BALANCE_COLUMNS,
    key=("balance_key",),
    references=(PRODUCT_BY_ID, WAREHOUSE_BY_ID),
)

# Warehouses SmartUp did not list (or whose export it does not answer) are still known,
# by id and code, from the balance rows; the warehouses export fills in the rest.
WAREHOUSES_FROM_BALANCE = (
    "INSERT INTO warehouses (external_id, code, raw, content_hash, first_synced_at, "
    "last_synced_at) SELECT b.warehouse_external_id, min(b.warehouse_code), '{}', '', "
    "%s, %s FROM stock_balances b WHERE NOT EXISTS (SELECT 1 FROM warehouses w "
    "WHERE w.external_id = b.warehouse_external_id) GROUP BY b.warehouse_external_id",
    "UPDATE stock_balances SET warehouse_id = (SELECT w.id FROM warehouses w "
    "WHERE w.external_id = stock_balances.warehouse_external_id) WHERE warehouse_id IS NULL "
    "AND EXISTS (SELECT 1 FROM warehouses w "
    "WHERE w.external_id = stock_balances.warehouse_external_id)",
)


class Balance(Export):
    """The balance rows of one condition (the row does not say which; the request does)."""

    records_key = "balance"
    path = "/b/anor/mxsx/mkw/balance$export"
    target = BALANCE_TARGET

    def __init__(self, condition: str) -> None:
        super().__init__(
            name=f"stock {condition}",
            identifier=partial(identify_balance, condition=condition),
            parser=partial(parse_balance, condition=condition),
            settle=Settle(
                mode=DELETE,
                table="stock_balances",
                key_column="balance_key",
                noun="stock row",
                whole=f"stock ({condition})",
                scope=f"condition = '{condition}'",
            ),
        )
        self.condition = condition


class StockStream(Stream):
    """Per filial and per condition of ``SMARTUP_STOCK_CONDITIONS`` (default ``F``,
    free), the balance dated the company's today (``begin_date`` = ``end_date``), as
    often as orders. Each complete snapshot replaces the condition's rows: a row it lacks
    is deleted, with the brake; unchanged rows are never rewritten. Rows point at
    products by SmartUp's ``product_id`` and at warehouses by id."""

    name = "stock"
    path = "/b/anor/mxsx/mkw/balance$export"
    records_key = "balance"
    pool = DOCUMENTS
    reach = SNAPSHOT_TODAY
    side_requests = ((REFERENCE, 1),)  # warehouses, once a day
    after_settled = WAREHOUSES_FROM_BALANCE
    target = BALANCE_TARGET

    def __init__(self) -> None:
        super().__init__()
        self._balances: dict[str, Balance] = {}

    def balance(self, condition: str) -> Balance:
        if condition not in self._balances:
            self._balances[condition] = Balance(condition)
        return self._balances[condition]

    def filial_keys(self, settings: Settings) -> tuple[str, ...]:
        return (*(settings.smartup_filial_ids or ("",)), WAREHOUSES_KEY)

    def reach_of(self, key: str) -> str:
        return MODIFIED if key == WAREHOUSES_KEY else self.reach  # warehouses: once a day

    def ages_data(self, key: str) -> bool:
        return key != WAREHOUSES_KEY  # the balances' age is the stock's; warehouses are daily

    def sweep_seconds_of(self, key: str, sweep_seconds: int) -> int:
        return DAY_SECONDS if key == WAREHOUSES_KEY else sweep_seconds

    def calls(
        self, settings: Settings, span: Span, *, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> list[Call]:
        calls = []
        for key in settings.smartup_filial_ids or ("",):
            today = smartup_date(span[key].last)
            for condition in settings.smartup_stock_conditions:
                export = self.balance(condition)
                calls.append(
                    Call(
                        export,
                        export.request(
                            settings,
                            filial_id=key or None,
                            filters={
                                "begin_date": today,
                                "end_date": today,
                                "product_conditions": [condition],
                            },
                            state_key=key,
                        ),
                    )
                )
        # Warehouses last: a run whose balances fail (SmartUp down) stops before asking
        # them, so failing runs do not spend the reference pool on them every interval.
        warehouses = span.get(WAREHOUSES_KEY)
        if warehouses is not None and warehouses.sweep:
            first = settings.smartup_filial_ids[0] if settings.smartup_filial_ids else None
            calls.append(
                Call(
                    WAREHOUSES,
                    WAREHOUSES.request(
                        settings, filial_id=first, state_key=WAREHOUSES_KEY, project_code="anor"
                    ),
                )
            )
        return calls

    def requests_per_run(
        self, *, filials: int, settings: Settings | None, day_range_limit: int = DAY_RANGE_LIMIT
    ) -> int:
        conditions = len(settings.smartup_stock_conditions) if settings else 1
        return max(filials, 1) * conditions


STOCK = declare(StockStream())
