"""A paginator for very large admin changelists: no full COUNT(*) on PostgreSQL."""

import json

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

# Below this many rows (by the planner's estimate) an exact count is cheap enough.
EXACT_COUNT_BELOW = 10_000


def planner_estimate(queryset) -> int | None:
    """PostgreSQL's own estimate of how many rows `queryset` returns (EXPLAIN, not run)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = queryset.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


class EstimatedCountPaginator(Paginator):
    """Exact counts for small results; the planner's estimate for large ones.

    Counting millions of rows on every changelist page costs seconds on PostgreSQL; the
    estimate costs a query plan. Page links past the true end simply show an empty page.
    """

    estimated = False  # whether `count` is the planner's estimate

    @cached_property
    def count(self):
        estimate = planner_estimate(self.object_list)
        if estimate is None or estimate < EXACT_COUNT_BELOW:
            return super().count
        self.estimated = True
        return estimate

    def get_elided_page_range(self, number=1, *, on_each_side=3, on_ends=2):
        """The admin's page links, without links to the last pages of an estimated count.

        Those pages are an OFFSET of millions of rows (2-3 s each at 1M uploads and 5M audit
        events, bench/README.md), and where the estimate puts the end is approximate anyway.
        Reversing the sort reaches the oldest rows at the speed of the first page.
        """
        pages = list(super().get_elided_page_range(number, on_each_side=on_each_side,
                                                   on_ends=on_ends))
        if self.estimated and len(pages) > on_ends and pages[-on_ends - 1] == self.ELLIPSIS:
            del pages[-on_ends:]  # keeps the ellipsis: there is more
        return pages
