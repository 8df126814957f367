"""Fixtures of the live insights tests."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.services import personal_api_key_create
from insights.models import Event

# The query of the busy insight: a day of pageviews.
BUSY_QUERY = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview"}],
        "dateRange": {"date_from": "-1d"},
    },
}


@pytest.fixture
def keys(owner, teammate, stranger) -> dict[str, str]:
    """An API key secret (`*`) of each member of the cast, by name: owner, teammate, stranger."""
    return {user.email.split("@")[0]: personal_api_key_create(user=user, label="live", scopes=["*"]).secret
            for user in (owner, teammate, stranger)}  # fmt: skip


@pytest.fixture
def busy_insight(project, make_insight):
    """An insight whose query counts five pageviews of the last hour: the one live tests crowd."""
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(project=project, timestamp=now - timedelta(minutes=n), event="$pageview", distinct_id=f"u{n}")
         for n in range(5)]
    )  # fmt: skip
    return make_insight(name="Busy", query=BUSY_QUERY)
