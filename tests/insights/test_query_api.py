"""`POST …/query/`, async runs, and results on insight retrieve (docs/insights.md, docs/queries.md, docs/queries.md#results)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from infra.executions import join
from infra.redis import redis_client
from insights.models import Event

TRENDS = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "-2d"},
}
VIZ = {"kind": "InsightVizNode", "source": TRENDS}


@pytest.fixture
def events(project):
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(project=project, timestamp=now - timedelta(hours=hours), event="$pageview", distinct_id="u", properties={})
         for hours in (0, 0, 1)]
    )  # fmt: skip


@pytest.fixture
def run(owner_api, project):
    def call(body, client=owner_api):
        return client.post(f"/api/projects/{project.id}/query/", body, format="json")

    return call


@pytest.mark.django_db
def test_a_trends_query_answers_results_in_the_spec_shape(run, events):
    response = run({"query": TRENDS, "client_query_id": "q-1"})

    assert response.status_code == 200
    body = response.json()
    [result] = body["results"]
    assert set(result) >= {"label", "count", "data", "days", "labels"}
    assert result["count"] == sum(result["data"]) == 3
    assert len(result["data"]) == len(result["days"]) == len(result["labels"]) == 3
    assert (body["is_cached"], body["timezone"], body["query_status"]) == (False, "UTC", None)
    assert response["X-Coalesced"] == "off"  # computed inline: a test's open transaction is its own


@pytest.mark.django_db
def test_a_second_run_is_answered_from_the_cache_until_forced(run, events, project):
    first = run({"query": TRENDS}).json()
    Event.objects.create(project=project, timestamp=timezone.now(), event="$pageview", distinct_id="v")

    cached = run({"query": VIZ}).json()  # the wrapped form shares the bare query's cache entry
    forced = run({"query": TRENDS, "refresh": "force_blocking"}).json()

    assert cached["is_cached"] is True and cached["last_refresh"] == first["last_refresh"]
    assert cached["results"] == first["results"]
    assert forced["is_cached"] is False and forced["results"][0]["count"] == 4


@pytest.mark.django_db
def test_force_cache_never_computes(run, events):
    body = run({"query": TRENDS, "refresh": "force_cache"}).json()

    assert (body["results"], body["is_cached"]) == (None, False)


@pytest.mark.django_db
def test_posthogs_other_spellings_of_refresh_mean_what_posthog_means(run, events):
    never_computed = run({"query": TRENDS, "refresh": False}).json()
    blocking_on_a_miss = run({"query": TRENDS, "refresh": "async_except_on_cache_miss"}).json()
    forced = run({"query": TRENDS, "refresh": True}).json()
    from_the_cache = run({"query": TRENDS, "refresh": "false"}).json()

    assert (never_computed["results"], never_computed["is_cached"]) == (None, False)
    assert (blocking_on_a_miss["is_cached"], blocking_on_a_miss["results"][0]["count"]) == (False, 3)
    assert forced["is_cached"] is False and forced["last_refresh"] > blocking_on_a_miss["last_refresh"]
    assert (from_the_cache["is_cached"], from_the_cache["last_refresh"]) == (True, forced["last_refresh"])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({}, "query", None),
        ({"query": {"kind": "TrendsQuery", "series": []}}, "query", None),
        ({"query": "SELECT 1"}, "query", None),
        ({"query": TRENDS, "refresh": "eventually"}, "refresh", None),
        ({"query": TRENDS, "client_query_id": "bad id"}, "client_query_id", None),
        (
            {"query": {"kind": "FunnelsQuery", "series": [{"kind": "EventsNode"}, {"kind": "EventsNode"}]}},
            None,
            "unsupported_query_kind",
        ),
        (
            {"query": {**TRENDS, "series": [{"kind": "EventsNode", "math": "weekly_active"}]}},
            None,
            "unsupported_math",
        ),
        (
            {
                "query": {
                    **TRENDS,
                    "properties": [{"key": "n", "value": [], "operator": "gt", "type": "event"}],
                }
            },
            None,
            "invalid_property_filter",
        ),
    ],
)
def test_bad_queries_are_400s_with_a_reason(run, body, attr, code):
    response = run(body)

    assert response.status_code == 400
    if attr:
        assert response.json()["attr"] == attr
    if code:
        assert response.json()["code"] == code


@pytest.mark.django_db
def test_an_insight_retrieve_carries_its_result(owner_api, insights_url, make_insight, events):
    insight = make_insight(query=VIZ)

    body = owner_api.get(f"{insights_url}{insight.id}/").json()

    assert body["result"][0]["count"] == 3
    assert body["is_cached"] is False and body["last_refresh"]
    assert owner_api.get(f"{insights_url}{insight.id}/").json()["is_cached"] is True


@pytest.mark.django_db
def test_an_insight_of_a_kind_that_cannot_run_yet_retrieves_with_a_null_result(
    owner_api, insights_url, make_insight
):
    insight = make_insight(query={"kind": "RetentionQuery"})

    body = owner_api.get(f"{insights_url}{insight.id}/").json()

    assert body["result"] is None and body["name"] == insight.name


@pytest.mark.django_db
def test_results_are_csv_too(run, events, owner_api, project):
    response = owner_api.post(
        f"/api/projects/{project.id}/query/?format=csv", {"query": TRENDS}, format="json"
    )

    assert response.status_code == 200
    assert "results.0.count" in response.content.decode().splitlines()[0]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_async_run_answers_at_once_and_completes_on_a_worker(
    celery_worker, run, events, owner_api, project
):
    started = run({"query": TRENDS, "refresh": "force_async"})

    assert started.status_code == 202
    status = started.json()["query_status"]
    assert status["complete"] is False
    deadline = time.monotonic() + 60  # bounds a hang only
    while not status["complete"] and time.monotonic() < deadline:
        time.sleep(0.1)
        status = owner_api.get(f"/api/projects/{project.id}/query/{status['id']}/").json()
    assert status["complete"] is True and status["error"] is False
    assert status["results"][0]["count"] == 3


@pytest.mark.django_db
def test_an_async_run_whose_dispatching_process_stopped_is_reported_interrupted(owner_api, project):
    """Nothing renews its lease any more: the status says so instead of 'not complete' for an hour."""
    started = join(
        f"async:{{{project.id}:{'a' * 32}}}", waiter="async", holder="gone", max_age=-1, token="run"
    )
    redis_client().delete(f"{started.execution.id}:lease")  # its process died before handing it over

    answer = owner_api.get(f"/api/projects/{project.id}/query/{'a' * 32}/").json()

    assert (answer["complete"], answer["error"]) == (True, True)
    assert answer["error_message"] == "The query was interrupted before it finished; run it again."


@pytest.mark.django_db
def test_an_unknown_async_query_id_is_404(owner_api, project):
    assert owner_api.get(f"/api/projects/{project.id}/query/{'0' * 32}/").status_code == 404


@pytest.mark.django_db
def test_a_stranger_cannot_run_queries_in_a_foreign_project(client_for, stranger, project):
    response = client_for(stranger).post(
        f"/api/projects/{project.id}/query/", {"query": TRENDS}, format="json"
    )

    assert response.status_code == 404


@pytest.mark.django_db
def test_a_query_past_the_time_limit_is_a_400_and_its_statement_is_stopped(run, settings):
    # No events are written here: the test's open transaction would hold the table the lock needs.
    from tests.live import events_table_locked

    settings.QUERY_TIMEOUT_MS = 300
    with events_table_locked():  # the query waits on the lock until its statement timeout
        response = run({"query": TRENDS, "refresh": "force_blocking"})

    assert response.status_code == 400
    assert response.json()["code"] == "query_timeout"


def parallel_workers() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_parallel_workers_per_gather')")
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.parametrize("configured", [0, 1, None])
def test_a_query_runs_with_at_most_the_configured_parallel_workers(run, events, settings, configured):
    # The test's transaction keeps what the run set for itself (set_config(..., is_local)): this is
    # the setting its statement ran under.
    settings.QUERY_PARALLEL_WORKERS = configured
    postgresqls_own = parallel_workers()

    assert run({"query": TRENDS, "refresh": "force_blocking"}).status_code == 200
    assert parallel_workers() == (postgresqls_own if configured is None else str(configured))


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_cancelling_an_async_run_stops_its_statement(celery_worker, run, events, owner_api, project):
    from tests.live import events_table_locked, queries_waiting_on_events, wait_until

    with events_table_locked():
        started = run({"query": TRENDS, "refresh": "force_async", "client_query_id": "bg-1"}).json()
        wait_until(lambda: queries_waiting_on_events() == 1, what="the worker's query")
        cancel = owner_api.post(
            f"/api/projects/{project.id}/insights/cancel/", {"client_query_id": "bg-1"}, format="json"
        )
        # Well inside the worker's statement timeout (30 s): only the cancel can have stopped it.
        wait_until(lambda: queries_waiting_on_events() == 0, timeout=20, what="the statement to stop")
    url = f"/api/projects/{project.id}/query/{started['query_status']['id']}/"
    wait_until(lambda: owner_api.get(url).json()["complete"], timeout=60, what="the run to finish")
    final = owner_api.get(url).json()  # read once: both sides of the comparison are this one answer

    assert cancel.json() == {"cancelled": True}
    assert final | {"results": None} == {
        **final,
        "error": True,
        "error_message": "The query was cancelled.",  # as the query route answers a cancel
    }
