"""Redis stopped while the service runs, then started again on the same port (issue 6, item 1).

The service (gunicorn, two processes) and a real Celery worker use a private Redis for the cache,
throttling, coalescing and the broker. With it gone every route still answers from PostgreSQL,
caches and coalescing fail open and `generate_metadata` falls back to the heuristic; when it comes
back, everything that uses it works again without restarting anything.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from accounts.models import Organization
from accounts.services import personal_api_key_create
from tests.live import (
    coalesced_waiters,
    events_table_locked,
    live_server,
    queries_waiting_on_events,
    redis_server,
    wait_until,
)
from tests.reliability.conftest import PASSWORD
from tests.reliability.processes import Caller, celery_worker, redis_on_port, redis_port
from tests.reliability.routes import INSIGHT_QUERY, every_route, samples
from viewtracking.models import ViewEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pytest.mark.slow]

# Calls whose whole purpose is Redis: an asynchronous run needs the broker and keeps its status in
# Redis (503 in the envelope, at once); readiness reports Redis down (503, its own shape).
NEED_REDIS = {("query-list", "POST", "async"), ("query-detail", "GET", None)}
READY = ("ready", "GET", None)
# Nothing may wait on a dead Redis: every answer comes within this many seconds. Waiting on it shows as
# a retry loop of seconds (Celery's result consumer retried for 20 s before it was bounded); a refused
# connection fails in milliseconds, and a loaded machine alone has taken 2 s to generate the schema.
PROMPT = 4
DEADLINE = 5  # AI_METADATA_DEADLINE_SECONDS of the server
UNCACHED = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "purchase", "math": "dau"}]}


@pytest.fixture
def stack(tmp_path, llm, org, owner):
    """Private Redis (db 0 cache, 1 broker, 2 results), a worker with the LLM stub, gunicorn set to an
    approved OpenAI-compatible provider, so generate_metadata really goes through the broker."""
    Organization.objects.filter(id=org.id).update(is_ai_data_processing_approved=True)
    ai = {
        "OPENAI_BASE_URL": f"{llm.base_url}/v1",
        "OPENAI_API_KEY": "test-key",
        "AI_PROVIDER_TIMEOUT_SECONDS": "5",
    }
    with redis_server(tmp_path) as redis:
        base = redis.url.rsplit("/", 1)[0]
        queues = {"broker": f"{base}/1", "backend": f"{base}/2"}
        with (
            celery_worker(tmp_path, **queues, REDIS_URL=f"{base}/0", **ai),
            live_server(tmp_path, redis_url=f"{base}/0", workers=1, AI_PROVIDER="openai",
                        AI_METADATA_DEADLINE_SECONDS=str(DEADLINE), CELERY_BROKER_URL=queues["broker"],
                        CELERY_RESULT_BACKEND=queues["backend"], **ai) as server,
        ):  # fmt: skip
            yield redis, server


def test_every_route_answers_without_redis_and_everything_recovers_when_it_returns(
    stack, tmp_path, llm, owner, project, secret, path_values
):
    redis, server = stack
    key = personal_api_key_create(user=owner, label="outage", scopes=["*"]).secret
    api = Caller(server.url, key=key)
    insight_path = f"/api/projects/{project.id}/insights/{secret.insight.id}/"
    generate = f"/api/projects/{project.id}/insights/generate_metadata/"
    query = f"/api/projects/{project.id}/query/"
    assert api("POST", generate, body={"query": INSIGHT_QUERY}).json()["provider"] == "openai"
    compute = f"{insight_path}?refresh=force_blocking"  # never answered from the cache
    assert api("GET", compute).headers["X-Coalesced"] == "leader"

    # A suggestion is in flight (the model is slow) when Redis dies.
    llm.reply(delay=2)
    in_flight: list = []
    waiting = threading.Thread(
        target=lambda: in_flight.append(api("POST", generate, body={"query": UNCACHED}))
    )
    waiting.start()
    wait_until(lambda: len(llm.requests) == 2, what="the worker to call the model")

    redis.stop()
    stopped_at = time.monotonic()
    views_before = ViewEvent.objects.filter(insight=secret.insight).count()
    catalogue = samples(insight_id=secret.insight.id, email=owner.email, password=PASSWORD)
    answers = {}
    for route in every_route():
        sample = catalogue[(route.name, route.method)]
        answers[(route.name, route.method, None)] = api(
            route.method, route.path(**path_values) + sample.query, body=sample.body
        )
    answers[("query-list", "POST", "async")] = api(
        "POST", query, body={"query": INSIGHT_QUERY, "refresh": "async"}
    )
    session = Caller(server.url)
    session_flow = [
        session("POST", "/api/login/", body={"email": owner.email, "password": PASSWORD}),
        session("GET", "/api/users/@me/"),
        session("POST", f"/api/projects/{project.id}/insights/", body={"name": "Saved by session"}),
        session("POST", "/api/logout/"),
    ]
    twice = [api("POST", query, body={"query": INSIGHT_QUERY}) for _ in range(2)]
    waiting.join(30)
    down_for = time.monotonic() - stopped_at

    statuses = {
        f"{name} {method} {mode or ''}": answer.status for (name, method, mode), answer in answers.items()
    }
    failing = {
        call: a.status for call, a in answers.items() if a.status >= 500 and call not in {*NEED_REDIS, READY}
    }
    assert failing == {}, statuses
    for need in NEED_REDIS:
        assert answers[need].status == 503 and answers[need].json()["code"] == "service_unavailable", need
    assert answers[READY].status == 503 and answers[READY].json()["checks"]["redis"] == "down"
    slow = {
        f"{name} {method}": round(a.seconds, 2)
        for (name, method, _), a in answers.items()
        if a.seconds > PROMPT
    }
    assert slow == {}  # failing open is immediate, never a wait on the dead server
    assert [answer.status for answer in session_flow] == [200, 200, 201, 204]
    for metadata in (answers[("insights-generate-metadata", "POST", None)], in_flight[0]):
        assert metadata.status == 200 and metadata.seconds < DEADLINE, metadata.content
        assert (metadata.json()["provider"], metadata.json()["fallback"]) == ("heuristic", True)
    assert answers[("insights-detail", "GET", None)].headers["X-Coalesced"] == "off"
    assert answers[("insights-detail", "GET", None)].json()["result"][0]["count"] == 5
    assert [reply.json()["is_cached"] for reply in twice] == [False, False]  # computed, not cached
    viewed_calls = sum(route.name == "insights-viewed" for route in every_route())  # projects + environments
    assert ViewEvent.objects.filter(insight=secret.insight).count() == views_before + viewed_calls

    # Redis returns on the same port: nothing is restarted.
    with redis_on_port(redis_port(redis.url), tmp_path):
        back_at = time.monotonic()
        # The deadlines only bound a hang; how soon each came back is reported below.
        wait_until(lambda: api("GET", "/_ready").status == 200, timeout=60, what="readiness")
        ready_after = time.monotonic() - back_at
        wait_until(lambda: api("GET", compute).headers["X-Coalesced"] == "leader", timeout=60,
                   what="coalescing")  # fmt: skip
        coalescing_after = time.monotonic() - back_at
        wait_until(lambda: not api("POST", generate, body={"query": INSIGHT_QUERY}).json()["fallback"],
                   timeout=60, what="the model through the worker")  # fmt: skip
        model_after = time.monotonic() - back_at
        cached = [api("POST", query, body={"query": INSIGHT_QUERY}).json()["is_cached"] for _ in range(2)]
        roles = concurrent_roles(
            server.url, key, compute, callers=4, redis_url=f"{redis.url.rsplit('/', 1)[0]}/0"
        )

    assert cached[1] is True  # the results cache serves again
    assert roles == {"leader": 1, "follower": 3}  # identical requests run once again
    report = {"down_for_s": round(down_for, 1), "ready_after_s": round(ready_after, 2),
              "coalescing_after_s": round(coalescing_after, 2), "model_after_s": round(model_after, 2),
              "requests_while_down": len(answers) + len(session_flow) + len(twice),
              "slowest_while_down_s": round(max(a.seconds for a in answers.values()), 3)}  # fmt: skip
    print("redis outage:", report, statuses)


def concurrent_roles(url: str, key: str, path: str, *, callers: int, redis_url: str) -> Counter:
    """X-Coalesced of `callers` identical requests sent while a lock on the events table holds the
    leader's query in PostgreSQL, so that they overlap (`redis_url`: the server's cache Redis, where
    the waiters are seen)."""
    replies: list = [None] * callers

    def call(index: int) -> None:
        replies[index] = Caller(url, key=key)("GET", path)

    with events_table_locked():
        threads = [threading.Thread(target=call, args=(index,)) for index in range(callers)]
        threads[0].start()
        wait_until(lambda: queries_waiting_on_events() == 1, what="the leader's query")
        for thread in threads[1:]:
            thread.start()
        wait_until(lambda: coalesced_waiters(redis_url) == callers, timeout=60, what="every caller waiting")
    for thread in threads:
        thread.join(30)
    assert [reply.status for reply in replies] == [200] * callers
    return Counter(reply.headers["X-Coalesced"] for reply in replies)
