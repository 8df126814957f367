"""Everything at once (issue 6, item 5): 16 `bulk_update_tags` writers on overlapping ids and tags,
50 `viewed` callers on the same insights, and rollups running all the while; and a dashboard's worth
of distinct result requests in one server process.

Each load alone has its own test (tests/tagging/test_bulk_update_tags.py,
tests/viewtracking/test_viewed.py, tests/viewtracking/test_rollups.py); this one runs them together,
so tag writes, view writes and rollups contend for connections and locks at the same moment.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.services import personal_api_key_create
from insights.models import Event
from tagging.models import Tag, TaggedItem
from tests.live import live_server
from tests.reliability.processes import Caller
from tests.reliability.routes import TRENDS
from viewtracking.models import InsightViewDaily, ViewEvent
from viewtracking.selectors import trending_rank
from viewtracking.services import views_rollup

pytestmark = pytest.mark.django_db(transaction=True)

INSIGHTS, VIEWERS, VIEWS_EACH = 8, 50, 2


def test_tag_writers_viewers_and_rollups_at_once_lose_nothing_and_count_exactly(
    client_for, owner, teammate, insights_url, make_insight, project
):
    insights = [make_insight(tags=["gone"]) for _ in range(INSIGHTS)]
    ids = [insight.id for insight in insights]
    # Adds of distinct tags and removes of one common tag commute, so every serial order of these 16
    # requests ends in the same state; a lost update or an orphaned tag would show.
    adds = [{"ids": ids[i : i + 3], "action": "add", "tags": [f"a{i}"]} for i in range(INSIGHTS)]
    removes = [
        {"ids": ids[i : i + 4], "action": "remove", "tags": ["gone"]} for i in range(0, INSIGHTS, 2)
    ] * 2
    writes = adds + removes
    viewers = [client_for(owner if n % 2 else teammate) for n in range(VIEWERS)]
    writers = [client_for(owner) for _ in writes]
    statuses: dict[str, list[int]] = {"write": [], "view": []}
    errors: list[BaseException] = []
    seen: dict[str, list[int]] = {}
    rollups: list[int] = []
    barrier = threading.Barrier(len(writes) + VIEWERS, timeout=30)
    done = threading.Event()

    def write(client, body: dict) -> None:
        barrier.wait()
        try:
            statuses["write"].append(
                client.post(f"{insights_url}bulk_update_tags/", body, format="json").status_code
            )
        finally:
            connection.close()

    def view(client) -> None:
        barrier.wait()
        try:
            for _ in range(VIEWS_EACH):
                statuses["view"].append(
                    client.post(f"{insights_url}viewed/", {"insight_ids": ids}, format="json").status_code
                )
        finally:
            connection.close()

    def roll() -> None:
        counts = seen.setdefault(threading.current_thread().name, [])
        try:
            while not done.is_set():
                rollups.append(views_rollup().events)
                counts.append(
                    sum(
                        row.view_count
                        for row in trending_rank(project=project, days=1, limit=100, offset=0).rows
                    )
                )
                time.sleep(0.005)
        except BaseException as error:  # the test fails on it below
            errors.append(error)
        finally:
            connection.close()

    rollers = [threading.Thread(target=roll, name=f"roller-{n}") for n in range(2)]
    workers = [threading.Thread(target=write, args=(c, b)) for c, b in zip(writers, writes, strict=True)]
    workers += [threading.Thread(target=view, args=(client,)) for client in viewers]
    started = time.monotonic()
    for thread in rollers + workers:
        thread.start()
    for thread in workers:
        thread.join(60)
    done.set()
    for thread in rollers:
        thread.join(60)
    elapsed = time.monotonic() - started
    views_rollup()

    assert errors == []
    assert statuses == {"write": [200] * len(writes), "view": [201] * VIEWERS * VIEWS_EACH}
    # Tags: every add landed, every removal happened, nothing is left on no insight.
    for position, insight in enumerate(insights):
        expected = {f"a{i}" for i in range(INSIGHTS) if i <= position < i + 3}
        assert set(TaggedItem.objects.filter(insight=insight).values_list("tag__name", flat=True)) == expected
    assert set(Tag.objects.values_list("name", flat=True)) == {f"a{i}" for i in range(INSIGHTS)}
    assert not Tag.objects.filter(tagged_items__isnull=True).exists()  # no orphan tag
    # Views: every one recorded once, counted once, and exactly, by trending and by the rollups.
    per_insight = VIEWERS * VIEWS_EACH
    assert ViewEvent.objects.count() == INSIGHTS * per_insight
    ranked = trending_rank(project=project, days=1, limit=100, offset=0).rows
    assert sorted(row.view_count for row in ranked) == [per_insight] * INSIGHTS
    for insight in insights:
        assert (
            sum(InsightViewDaily.objects.filter(insight=insight).values_list("views", flat=True))
            == per_insight
        )
    # Each reader's totals never went backwards, however the rollups interleaved with the writes.
    assert all(counts == sorted(counts) for counts in seen.values()), seen
    print(
        f"concurrency: {len(writes)} tag writers + {VIEWERS * VIEWS_EACH} viewed calls in {elapsed:.2f}s, "
        f"{len(rollups)} rollups ran alongside (taking {sum(rollups)} views), 0 errors"
    )


@pytest.mark.live
@pytest.mark.slow
def test_a_dashboard_of_distinct_insights_loading_at_once_never_starves_the_connection_pool(
    tmp_path, owner, project, make_insight
):
    """A dashboard asks for its insights all at once: in one gunicorn process of 8 threads, every
    request leads its own coalesced execution, whose work runs on a second connection while the
    request holds its first. With the production pool settings none may wait out the pool timeout
    (with 8 connections for 8 threads, 3 to 5 of these 24 answered 503)."""
    key = personal_api_key_create(user=owner, label="dashboard", scopes=["*"]).secret
    Event.objects.bulk_create(
        [Event(project=project, timestamp=timezone.now(), event="$pageview", distinct_id=f"u{n}") for n in range(5000)]
    )  # fmt: skip
    tiles = [
        make_insight(name=f"Tile {n}", query={"kind": "InsightVizNode", "source": {**TRENDS, "dateRange": {"date_from": f"-{n + 1}d"}}}).id
        for n in range(24)
    ]  # fmt: skip
    with live_server(tmp_path, redis_url=settings.REDIS_URL, workers=1, DJANGO_SETTINGS_MODULE="insights_api.settings",
                     THROTTLE_BURST="100000/minute", CACHE_KEY_PREFIX=f"dashboard-{uuid.uuid4().hex}") as server:  # fmt: skip
        answers: list = []

        def load(insight_id: int) -> None:
            path = f"/api/projects/{project.id}/insights/{insight_id}/?refresh=force_blocking"
            answers.append(Caller(server.url, key=key)("GET", path))

        threads = [threading.Thread(target=load, args=(insight_id,)) for insight_id in tiles]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert [answer.status for answer in answers] == [200] * len(tiles)
    assert {answer.headers["X-Coalesced"] for answer in answers} == {"leader"}
    print(
        f"dashboard: {len(tiles)} distinct insights at once, slowest {max(a.seconds for a in answers):.2f}s"
    )
