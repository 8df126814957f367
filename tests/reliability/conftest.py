"""Fixtures of the reliability tests: an insight worth stealing, and the values that turn every
route's pattern into a URL. The cast (owner, teammate, stranger) comes from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Project
from insights.models import Dashboard, Event, Insight
from tests.reliability.routes import INSIGHT_QUERY

PASSWORD = "correct horse battery"  # tests/conftest.py gives every member this password


@dataclass(frozen=True)
class Secret:
    """An insight of the owner's project whose every identifying string must never reach an outsider."""

    insight: Insight
    dashboard: Dashboard
    strings: tuple[str, ...]

    def leaked_in(self, content: bytes) -> list[str]:
        return [text for text in self.strings if text.encode() in content]


@pytest.fixture
def secret(make_insight: Callable[..., Insight], make_dashboard: Callable[..., Dashboard], project: Project,
           owner, org) -> Secret:  # fmt: skip
    # A name no public page could carry by chance ("Acme" is the home page's own example).
    org.name = "Acme Confidential Holdings"
    org.save(update_fields=["name"])
    dashboard = make_dashboard("Boardroom Numbers")
    insight = make_insight(
        name="Quarterly Revenue Secret",
        description="Only for the board",
        tags=["confidential-kpi"],
        dashboards=[dashboard],
        query=INSIGHT_QUERY,
    )
    Event.objects.bulk_create(
        [Event(project=project, timestamp=timezone.now() - timedelta(minutes=n), event="$pageview",
               distinct_id=f"user-{n}") for n in range(5)]
    )  # fmt: skip
    return Secret(
        insight=insight,
        dashboard=dashboard,
        strings=(
            insight.name,
            insight.description,
            "confidential-kpi",
            dashboard.name,
            insight.short_id,
            owner.email,
            project.name,
            org.name,
        ),
    )


@pytest.fixture
def path_values(project: Project, secret: Secret) -> dict[str, object]:
    """What fills each named group of a route's pattern."""
    return {"project_id": project.id, "pk": secret.insight.id, "query_id": "0" * 32}
