"""The contract between the insight viewset and every action mixin composed into it — insights'
own and the satellites' (tagging.api, viewtracking.api, ai_metadata.api): the project-scoped
insights, and how rows (read by insights/api/selectors.py) are written in their shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import QuerySet
from rest_framework import exceptions

from accounts.api.viewsets import ProjectScopedViewSet
from apikit.json_rows import RowWriter
from insights.access import insights_visible
from insights.api.selectors import insights_shown
from insights.api.serializers import InsightBasicSerializer, InsightSerializer
from insights.models import Insight
from insights.query_runner import query_last_refreshed
from insights.selectors import InsightRow, insight_lookup

# `{id}` takes a numeric id or a short_id.
ID_LOOKUP_REGEX = r"[A-Za-z0-9]+"
# One reason for every id a bulk write skips, so a caller cannot tell "missing" from "not yours"
# from "deleted".
SKIP_REASON = "Not found or no edit access"


class InsightViewSetBase(ProjectScopedViewSet[Insight]):
    """The insights of the URL's project the caller may see (docs/access-control.md: `none` is
    invisible, each row carries the caller's level), and what every insight action may use."""

    scope_object = "insight"
    queryset = Insight.objects.all()
    visibility = staticmethod(insights_visible)
    lookup_value_regex = ID_LOOKUP_REGEX

    def safely_get_queryset(self, queryset: QuerySet[Insight]) -> QuerySet[Insight]:
        """Everything the insight shapes show, in the statement that loads the insights."""
        return insights_shown().all()

    def get_object(self, *, restoring: bool = False) -> Insight:
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
        rows: list[InsightRow],
        *,
        basic: bool = False,
        serializer_class: type[InsightBasicSerializer] | None = None,
        extra_context: Mapping[str, object] | None = None,
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
