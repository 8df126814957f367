"""The contract between the insight viewset and every action mixin composed into it — insights'
own and the satellites' (tagging.api, viewtracking.api, ai_metadata.api): the project-scoped
insights, how they are loaded as rows, and how rows are written in their shapes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL
from rest_framework import exceptions

from accounts.api.viewsets import ProjectScopedViewSet, Scoped
from apikit.json_rows import RowWriter
from infra.db.compiled import Prepared
from insights.access import insights_visible
from insights.api.serializers import InsightBasicSerializer, InsightSerializer
from insights.models import Insight
from insights.query_runner import query_last_refreshed
from insights.selectors import insight_lookup, insight_rows, insights_annotate_dashboards
from tagging.selectors import insights_annotate_tags
from viewtracking.selectors import insights_annotate_last_viewed_at

# `{id}` takes a numeric id or a short_id.
ID_LOOKUP_REGEX = r"[A-Za-z0-9]+"


class InsightViewSetBase(ProjectScopedViewSet):
    """The insights of the URL's project the caller may see (docs/access-control.md: `none` is
    invisible, each row carries the caller's level), and what every insight action may use."""

    scope_object = "insight"
    queryset = Insight.objects.all()
    visibility = staticmethod(insights_visible)
    lookup_value_regex = ID_LOOKUP_REGEX

    def safely_get_queryset(self, queryset: QuerySet[Insight]) -> QuerySet[Insight]:
        """Everything the insight shapes show, in the statement that loads the insights."""
        return insights_shown().all()

    def get_object(self, *, restoring: bool = False) -> Any:
        """The URL's insight (by id or short_id) if the caller may see it, with their level and
        nothing the shapes show (answers are written from `insights_by_id` rows). A soft-deleted
        insight is not found, except by the PATCH that restores it (`restoring`)."""
        queryset = self.get_project_queryset()
        insight = insight_lookup(
            queryset=queryset if restoring else queryset.filter(deleted=False),
            id_or_short_id=self.kwargs[self.lookup_field],
        )
        if insight is None:
            raise exceptions.NotFound("Insight not found.")
        return insight

    def render_insights(
        self,
        rows: list[Any],
        *,
        basic: bool = False,
        serializer_class: type[InsightBasicSerializer] | None = None,
        extra_context: dict[str, Any] | None = None,
        results_known: bool = False,
    ) -> list[dict[str, Any]]:
        """Write rows of `insight_rows` as their serializer describes them (its precompiled writer);
        when each one's results were computed comes from Redis in one round trip, unless the
        caller has the results at hand (`results_known`)."""
        last_refresh = (
            {}
            if results_known
            else query_last_refreshed(
                project_id=self.project.id,
                fingerprints=[row.results_fingerprint for row in rows if row.results_fingerprint],
            )
        )
        context = {"project": self.project, "last_refresh": last_refresh, **(extra_context or {})}
        serializer = serializer_class or (InsightBasicSerializer if basic else InsightSerializer)
        return RowWriter.write_rows(serializer, rows, context)

    def insights_by_id(
        self,
        ids: list[int],
        *,
        key: str = "by id",
        annotate: Callable[[QuerySet[Insight]], QuerySet[Insight]] | None = None,
        extra: tuple[str, ...] = (),
    ) -> list[Any]:
        """The caller's visible rows (`insight_rows`) of these insights, deleted or not, in no
        particular order, with `extra` columns of `annotate`: one statement, compiled once per
        process for each `key`."""

        def build(scoped: Scoped) -> Prepared:
            wanted = RawSQL("SELECT unnest(%s::bigint[])", (scoped.markers.numbers("ids"),))
            queryset = scoped.rows.filter(id__in=wanted)
            return insight_rows(annotate(queryset) if annotate else queryset, scoped.markers, *extra)

        return self.run(self.prepared(key, build), ids=ids)


@functools.cache
def insights_shown() -> QuerySet[Insight]:
    """All insights with what their shapes show (tags, dashboards, latest view; the creators are
    columns of `insight_rows`), built once per process: building the annotations costs more than
    cloning them (`.all()`), and this queryset itself is never evaluated, only its clones."""
    queryset = Insight.objects.all()
    return insights_annotate_dashboards(insights_annotate_tags(insights_annotate_last_viewed_at(queryset)))
