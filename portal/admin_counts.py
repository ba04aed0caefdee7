"""Admin lists of millions of rows: count exactly up to a cap, then say "more than" (or "about", unfiltered).

Django's changelist counts every matching row on every page view. At a million rows that
count alone takes longer than the whole page may. Here a list counts at most CAP rows, in
the list's order (so the database stops at the cap): below it the number is exact; above
it the list says "more than 10,000 incidents", and its pages stop at the cap (a filter or
a search narrows it). An unfiltered list on PostgreSQL reads the table's size from the
planner's statistics and says "about 1,000,000 incidents", rounded so it does not pass
for a count. Searches count exactly: they are narrow, and the search box shows their
number. On PostgreSQL a count gets COUNT_BUDGET_MS: a rare combination of filters over a
million rows (a few thousand matches, so no early stop) would need a full pass, and past
the budget the list shows the planner's estimate as "about N" instead.
"""

import json

from django.contrib.admin.views.main import SEARCH_VAR, ChangeList
from django.core.paginator import Paginator
from django.db import OperationalError, connection, transaction
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext

CAP = 10_000
COUNT_BUDGET_MS = 30


class CappedCountPaginator(Paginator):
    """Count at most `cap` rows (None: all) within COUNT_BUDGET_MS on PostgreSQL.

    `capped` says there were more than `cap`; `estimated` that the count ran out of time
    and `count` is the planner's estimate.
    """

    cap: int | None = CAP
    capped = False
    estimated: int | None = None
    # The order the capped count reads rows in: the list's default, which an index serves, so
    # the database stops at the cap (whatever column the person sorted the page by).
    count_order: list[str] | None = None

    @cached_property
    def count(self) -> int:
        if self.cap is None:
            rows = self.object_list.order_by()
        else:
            ordered = self.object_list.order_by(*self.count_order) if self.count_order else self.object_list
            rows = ordered[: self.cap + 1]
        found = self._count(rows)
        if self.cap is not None and found > self.cap:
            self.capped = True
            return self.cap
        return found

    def _count(self, rows) -> int:
        if connection.vendor != "postgresql":
            return rows.count()
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('statement_timeout'), set_config('statement_timeout', %s, true)",
                    [str(COUNT_BUDGET_MS)],
                )
                before = cursor.fetchone()[0]
                found = rows.count()
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [before])
                return found
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != "57014":  # query_canceled
                raise
        # Out of time (the savepoint's rollback restored the timeout): the planner's estimate.
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)  # noqa: S608  (Django's own SQL)
            plan = cursor.fetchone()[0]
        plan = json.loads(plan) if isinstance(plan, str) else plan
        self.estimated = int(plan[0]["Plan"]["Plan Rows"])
        return self.estimated


def estimated_rows(model) -> int | None:
    """Return the planner's estimate of `model`'s rows on PostgreSQL (no scan), else None."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] > 0 else None


def rounded(n: int) -> int:
    """Return `n` to two significant digits (990,034 -> 990,000): an estimate should look like one."""
    digits = len(str(n)) - 2
    return round(n, -digits) if digits > 0 else n


class CappedCountChangeList(ChangeList):
    """A changelist whose count label reads "more than 10,000" or "about 1,000,000" when capped."""

    def get_results(self, request):
        # Unfiltered lists ask for the estimate at every size, so the query count never varies.
        estimate = None if self.has_active_filters or self.query else estimated_rows(self.model)
        super().get_results(request)
        count = number_format(self.result_count, force_grouping=True)
        self.count_capped = getattr(self.paginator, "capped", False)
        estimated = getattr(self.paginator, "estimated", None)
        if estimated is not None:
            self.count_capped = True  # the pages follow the estimate: say how to narrow the list
            self.count_label = gettext("about %(count)s") % {
                "count": number_format(rounded(estimated), force_grouping=True)
            }
        elif not self.count_capped:
            self.count_label = count
        elif estimate and estimate > self.result_count:
            self.count_label = gettext("about %(count)s") % {
                "count": number_format(rounded(estimate), force_grouping=True)
            }
        else:
            self.count_label = gettext("more than %(count)s") % {"count": count}


class CappedCountAdminMixin:
    """Use in a ModelAdmin whose list may hold millions of rows (see the module docstring)."""

    paginator = CappedCountPaginator
    show_full_result_count = False

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        if queryset.model is not self.model:
            # Another model's list on this admin's pages (an object's history): a plain count.
            return Paginator(queryset, per_page, orphans, allow_empty_first_page)
        paginator = super().get_paginator(request, queryset, per_page, orphans, allow_empty_first_page)
        paginator.count_order = self.get_ordering(request) or None
        if request.GET.get(SEARCH_VAR):
            paginator.cap = None
        return paginator

    def get_changelist(self, request, **kwargs):
        return CappedCountChangeList
