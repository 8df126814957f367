"""A demo project that makes every API action answer something worth looking at (`make run` seeds
one on its first start; `manage.py seed_demo` does it by hand).

It spans every app — events, insights with tags and dashboards, teammates, views, rollups, activity —
so it lives here with the project wiring rather than in any one of them.

Steps (`demo_seed`):
1. Events: the synthetic stream of `generate_events`, over the last `days` days, into the events store.
2. Teammates: three members of the project's organization (no password: they cannot log in).
3. Dashboards and insights: Trends queries over those events (and one funnel, which this service
   stores but does not compute yet), tagged and placed on dashboards, created by different people.
4. Changes: a bulk tag update and a rename, so the activity log has history.
5. Views: three months of views by everyone, most on a few favourite insights, then a rollup; the
   demo user's own latest views come last, so `my_last_viewed`, `trending` and the usage routes
   (`views`, `viewers`, `usage`) all have a story. One insight, made 200 days ago and on no dashboard,
   nobody opens any more: what `not_viewed_in_days` and `on_dashboard=false` are for.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.utils import timezone

from accounts.models import OrganizationMembership, Project, User
from insights import events_store
from insights.api.editing import insight_create_with_tags, insight_update_with_tags
from insights.event_streams import events_generate
from insights.models import Dashboard, Insight
from tagging.services import tags_bulk_update
from viewtracking.services import views_record, views_rollup

T = TypeVar("T")
Progress = Callable[[Iterable[T], str, int], Iterable[T]]

TEAMMATES = (
    ("ana@demo.example", "Ana", "Lima"),
    ("ben@demo.example", "Ben", "Okafor"),
    ("chloe@demo.example", "Chloé", "Martin"),
)
DASHBOARDS = ("Growth", "Product health", "Revenue")
VIEW_DAYS = 90


def _trends(
    event: str, *, math: str = "total", interval: str = "day", date_from: str = "-30d", **extra: object
) -> dict:
    series = {"kind": "EventsNode", "event": event, "math": math}
    source = {
        "kind": "TrendsQuery",
        "series": [series],
        "interval": interval,
        "dateRange": {"date_from": date_from},
    }
    return {"kind": "InsightVizNode", "source": {**source, **extra}}


@dataclass(frozen=True)
class DemoInsight:
    name: str
    description: str
    query: dict[str, Any]
    tags: list[str]
    dashboards: list[str]
    author: int  # 0: the demo user; 1-3: a teammate
    popularity: float  # relative chance of being viewed on a given day
    favorited: bool = False
    made_days_ago: int = 0  # when its creator made (and so viewed) it


INSIGHTS = (
    DemoInsight("Pageviews", "Daily pageviews over the last 30 days.", _trends("$pageview"),
                ["growth", "traffic"], ["Growth"], 0, 10, favorited=True),
    DemoInsight("Daily Active Users", "Unique users with a pageview, per day.", _trends("$pageview", math="dau"),
                ["kpi", "growth"], ["Growth", "Product health"], 1, 8, favorited=True),
    DemoInsight("User Signed Up", "Signups per week over the last 12 weeks.",
                _trends("user_signed_up", interval="week", date_from="-12w"), ["growth", "kpi"], ["Growth"], 2, 5),
    DemoInsight("Purchases by Browser", "Purchases per day over two weeks, split by browser.",
                _trends("purchase", date_from="-14d", breakdownFilter={"breakdown": "$browser", "breakdown_type": "event"}),
                ["revenue"], ["Revenue"], 3, 4),
    DemoInsight("Pageviews by Country", "Pageviews in the last week, split by country.",
                _trends("$pageview", date_from="-7d",
                        breakdownFilter={"breakdown": "$geoip_country_code", "breakdown_type": "event", "breakdown_limit": 10}),
                ["traffic"], ["Growth"], 1, 3),
    DemoInsight("Pricing Page Views", "Daily views of the pricing page.",
                _trends("$pageview", properties=[{"key": "$current_url", "value": "https://shop.example.com/pricing",
                                                   "operator": "exact", "type": "event"}]),
                ["pricing", "traffic"], ["Revenue"], 2, 2),
    DemoInsight("Autocaptured Events per Hour", "Clicks and form interactions per hour over the last day.",
                _trends("$autocapture", interval="hour", date_from="-1d"), ["engineering"], ["Product health"], 3, 1.5),
    DemoInsight("Signup → Purchase Conversion", "Share of new users who buy within the window (a funnel: stored, not computed yet).",
                {"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "series": [
                    {"kind": "EventsNode", "event": "user_signed_up"}, {"kind": "EventsNode", "event": "purchase"}]}},
                ["conversion", "revenue"], ["Revenue"], 0, 1),
    DemoInsight("Bounce Rate (Legacy)", "Sessions that left after one page; superseded by Pricing Page Views.",
                _trends("$pageleave"), ["legacy", "traffic"], [], 1, 0, made_days_ago=200),
)  # fmt: skip


@dataclass(frozen=True)
class DemoSeeded:
    events: int
    users: list[User]
    insights: list[Insight]
    views: int


def demo_seed(
    *, project: Project, owner: User, events: int, days: int, seed: int, progress: Progress
) -> DemoSeeded:
    """Fill `project` (whose organization `owner` belongs to) with the demo data. Not idempotent:
    run it on an empty project. `progress(iterable, description, total)` wraps the long loops."""
    now = timezone.now()
    rng = random.Random(seed)
    # 1. Events.
    loaded = events_store.events_write(
        project_id=project.id,
        rows=progress(events_generate(count=events, days=days, seed=seed, now=now), "events", events),
    )
    # 2. Teammates.
    users = [owner, *(_member(project, *person) for person in TEAMMATES)]
    # 3. Dashboards and insights.
    dashboards = {
        name: Dashboard.objects.get_or_create(project=project, name=name)[0].id for name in DASHBOARDS
    }
    insights = [
        insight_create_with_tags(
            project=project,
            user=users[spec.author],
            request_id=uuid.uuid4(),
            data={
                "name": spec.name,
                "description": spec.description,
                "query": spec.query,
                "tags": spec.tags,
                "dashboards": [dashboards[name] for name in spec.dashboards],
                "favorited": spec.favorited,
            },
            viewed_at=now - timedelta(days=spec.made_days_ago) if spec.made_days_ago else None,
        )
        for spec in progress(INSIGHTS, "insights", len(INSIGHTS))
    ]
    # 4. History for the activity log.
    tags_bulk_update(project=project, user=users[1], insight_ids=[insights[0].id, insights[2].id], action="add",
                     names=["weekly review"], dry_run=False, request_id=uuid.uuid4())  # fmt: skip
    insight_update_with_tags(project=project, user=users[2], insight=insights[5],
                             data={"description": "Daily views of /pricing: a leading indicator of purchases."},
                             replace=False, request_id=uuid.uuid4())  # fmt: skip
    # 5. Views, oldest first, then the rollup; the demo user's own latest views last of all.
    weights = [spec.popularity for spec in INSIGHTS]
    recorded = 0
    for days_ago in progress(range(VIEW_DAYS, 0, -1), "views", VIEW_DAYS):
        for user in users:
            for _ in range(rng.randint(1, 4)):
                at = now - timedelta(days=days_ago, minutes=rng.randint(0, 600))
                insight = rng.choices(insights, weights=weights)[0]
                recorded += views_record(project=project, user=user, insight_ids=[insight.id], at=at)
    views_rollup()
    for index in (4, 2, 1, 0):  # now, one after the other: later than the views creating them made
        recorded += views_record(project=project, user=owner, insight_ids=[insights[index].id])
    return DemoSeeded(events=loaded, users=users, insights=insights, views=recorded)


def _member(project: Project, email: str, first_name: str, last_name: str) -> User:
    user = User.objects.filter(email=email).first() or User.objects.create_user(
        email=email, password=None, first_name=first_name, last_name=last_name
    )
    OrganizationMembership.objects.get_or_create(
        organization_id=project.organization_id,
        user=user,
        defaults={"level": OrganizationMembership.Level.MEMBER},
    )
    return user
