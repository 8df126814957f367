"""Daily view rollups and retention (docs/view-tracking.md): recomputed, idempotent, exact under concurrency."""

from __future__ import annotations

import threading
from datetime import UTC, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from insights.models import Insight
from insights_api.celery import app as celery_app
from viewtracking.models import InsightViewDaily, PendingView, ViewEvent
from viewtracking.selectors import trending_rank
from viewtracking.services import view_events_prune, views_record, views_rollup

pytestmark = pytest.mark.django_db


def add_views(project, insight, user, *, count: int, ago: timedelta) -> None:
    """`count` views at one moment in the past (the clock is a parameter of the service)."""
    for _ in range(count):
        views_record(project=project, user=user, insight_ids=[insight.id], at=timezone.now() - ago)


def daily(insight) -> dict:
    return {
        row.day: (row.views, row.unique_viewers) for row in InsightViewDaily.objects.filter(insight=insight)
    }


def test_a_rollup_recomputes_views_and_unique_viewers_per_day(project, make_insight, owner, teammate):
    insight = make_insight()
    add_views(project, insight, owner, count=3, ago=timedelta(days=2))
    add_views(project, insight, teammate, count=2, ago=timedelta(days=2))
    add_views(project, insight, owner, count=1, ago=timedelta(days=1))

    result = views_rollup()

    two_days_ago = (timezone.now() - timedelta(days=2)).astimezone(UTC).date()
    yesterday = (timezone.now() - timedelta(days=1)).astimezone(UTC).date()
    assert result.ran and result.events == 6
    assert daily(insight) == {two_days_ago: (5, 2), yesterday: (1, 1)}
    assert not PendingView.objects.exists()


def test_rolling_up_twice_changes_nothing(project, make_insight, owner):
    insight = make_insight()
    add_views(project, insight, owner, count=4, ago=timedelta(hours=1))
    views_rollup()
    first = daily(insight)

    again = views_rollup()

    assert again.events == 0
    assert daily(insight) == first


def test_a_later_rollup_recomputes_a_day_that_got_more_views(project, make_insight, owner, teammate):
    insight = make_insight()
    add_views(project, insight, owner, count=2, ago=timedelta(0))
    views_rollup()
    add_views(project, insight, teammate, count=3, ago=timedelta(0))

    views_rollup()

    assert list(daily(insight).values()) == [(5, 2)]


def test_pruning_removes_only_old_rolled_up_events_and_keeps_counts(project, make_insight, owner):
    insight = make_insight()
    add_views(project, insight, owner, count=2, ago=timedelta(days=40))
    views_rollup()
    add_views(project, insight, owner, count=1, ago=timedelta(days=41))  # old but never rolled up
    counted_before = trending_rank(project=project, days=60, limit=10, offset=0).rows[0].view_count

    pruned = view_events_prune(older_than_days=30)

    assert pruned == 2
    assert PendingView.objects.count() == 1 and ViewEvent.objects.count() == 1
    assert (
        trending_rank(project=project, days=60, limit=10, offset=0).rows[0].view_count == counted_before == 3
    )


@pytest.mark.django_db(transaction=True)
def test_rollups_running_while_views_arrive_never_change_a_count(client_for, owner, insights_url, project):
    clients = [client_for(owner) for _ in range(8)]
    created = clients[0].post(insights_url, {"name": "Busy"}, format="json")  # records the creator's view
    insight = Insight.objects.get(id=created.json()["id"])
    stop = threading.Event()
    observed: dict[str, list[int]] = {}

    def viewer(client) -> None:
        try:
            for _ in range(10):
                client.post(f"{insights_url}viewed/", {"insight_ids": [insight.id]}, format="json")
        finally:
            connection.close()

    def roller() -> None:
        seen = observed.setdefault(threading.current_thread().name, [])
        try:
            while not stop.is_set():
                views_rollup()
                seen.append(trending_rank(project=project, days=1, limit=1, offset=0).rows[0].view_count)
        finally:
            connection.close()

    rollers = [threading.Thread(target=roller) for _ in range(2)]
    viewers = [threading.Thread(target=viewer, args=(client,)) for client in clients]
    for thread in rollers + viewers:
        thread.start()
    for thread in viewers:
        thread.join()
    stop.set()
    for thread in rollers:
        thread.join()
    views_rollup()

    expected = 1 + 8 * 10  # the creator's view, then every viewer's
    assert trending_rank(project=project, days=1, limit=1, offset=0).rows[0].view_count == expected
    assert sum(row.views for row in InsightViewDaily.objects.filter(insight=insight)) == expected
    # Each reader's successive counts never go backwards, however the rollups interleave.
    assert all(seen == sorted(seen) for seen in observed.values()), observed


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_beat_task_rolls_up_on_a_real_worker(celery_worker, project, make_insight, owner):
    insight = make_insight()
    add_views(project, insight, owner, count=2, ago=timedelta(minutes=5))

    result = celery_app.send_task("viewtracking.rollup_views").get(timeout=30)

    assert result["ran"] is True and result["events"] == 2
    assert sum(views for views, _ in daily(insight).values()) == 2
