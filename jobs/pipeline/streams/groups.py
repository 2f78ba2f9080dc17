"""``groups``: product groups and their types (``product_group$export``), a snapshot."""

from __future__ import annotations

from jobs.models import ProductGroup
from jobs.pipeline.loader import LoadTarget
from jobs.pipeline.records import PRODUCT_GROUP_COLUMNS, identify_group, parse_group
from jobs.pipeline.streams.base import Stream, declare
from jobs.pipeline.streams.links import GROUP_TYPES, TYPE_BY_ID
from jobs.pipeline.streams.pools import REFERENCE
from jobs.pipeline.streams.reach import SNAPSHOT
from jobs.pipeline.streams.settle import MARK_GONE, Settle


class GroupsStream(Stream):
    """Every group with its types, in one call, a few times a day. A group is a dimension
    (category, brand, ...), its types the values a product takes; a product's categories
    point at the types. A complete export marks the groups it lacks inactive, and their
    types with them (never deleted), with the catalogue's brake; a type a changed group
    no longer lists is marked inactive too."""

    name = "groups"
    path = "/b/anor/mxsx/mr/product_group$export"
    records_key = "product_group"
    pool = REFERENCE
    reach = SNAPSHOT
    default_interval = 6 * 3600
    child_rows_field = "product_group_types"
    identifier = staticmethod(identify_group)
    parser = staticmethod(parse_group)
    target = LoadTarget(
        model=ProductGroup,
        columns=PRODUCT_GROUP_COLUMNS,
        key=("external_id",),
        child=GROUP_TYPES,
        referenced_by=(("product_categories", TYPE_BY_ID),),
    )
    settle = Settle(
        mode=MARK_GONE,
        table="product_groups",
        key_column="external_id",
        noun="group",
        whole="product group",
        forget_hash=True,  # a group that comes back is written anew, with its types
        after_gone=(
            "UPDATE product_types SET is_active = false, deleted_at = %s "
            "WHERE deleted_at IS NULL AND group_external_id IN "
            "(SELECT external_id FROM product_groups WHERE deleted_at IS NOT NULL)",
        ),
    )


GROUPS = declare(GroupsStream())
