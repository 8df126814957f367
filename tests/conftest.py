"""The cast and the tools every test uses.

- `owner`: owns the organization `org` and its project `project`.
- `teammate`: a plain member of the same organization (so of `project` too).
- `stranger`: owns another organization with its own `stranger_project`.

Clients: `owner_api` (API key with `*`), `api` (no credentials), and `client_for(user, scopes=...)`
to build any other. Everything runs against real PostgreSQL and Redis.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Organization, OrganizationMembership, Project, User
from accounts.services import personal_api_key_create
from infra.redis import redis_client
from insights.models import Dashboard, Event, Insight
from insights.services import insight_create
from tagging.normalization import normalize_tags
from tagging.services import insight_tags_set
from tests.live import celery_worker as celery_worker_process
from tests.live import chdb_owner
from tests.llm_stub import LLMStub, start_llm_stub

# In CI a skip is a failure (tests/missing.py).
from tests.missing import pytest_runtest_makereport  # noqa: F401


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Throttle counters and cached answers must not leak between tests. Only this run's cache keys
    go: the broker and result backend may share the Redis server (and the worker is using them)."""
    client = redis_client()
    stale = list(client.scan_iter(f"{django_settings.CACHES['default']['KEY_PREFIX']}:*", count=1000))
    if stale:
        client.delete(*stale)
    yield


def _member(organization: Organization, email: str, first_name: str, level: int) -> User:
    user = User.objects.create_user(email=email, password="correct horse battery", first_name=first_name)
    OrganizationMembership.objects.create(organization=organization, user=user, level=level)
    return user


@pytest.fixture
def org(db: None) -> Organization:
    return Organization.objects.create(name="Acme")


@pytest.fixture
def project(org: Organization) -> Project:
    return Project.objects.create(organization=org, name="Acme web")


@pytest.fixture
def owner(org: Organization) -> User:
    return _member(org, "owner@acme.test", "Olive", OrganizationMembership.Level.OWNER)


@pytest.fixture
def teammate(org: Organization) -> User:
    return _member(org, "teammate@acme.test", "Theo", OrganizationMembership.Level.MEMBER)


@pytest.fixture
def stranger(db: None) -> User:
    elsewhere = Organization.objects.create(name="Elsewhere")
    return _member(elsewhere, "stranger@elsewhere.test", "Sam", OrganizationMembership.Level.OWNER)


@pytest.fixture
def stranger_project(stranger: User) -> Project:
    return Project.objects.create(organization=stranger.memberships.get().organization, name="Elsewhere app")


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


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def client_for(db: None) -> Callable[..., APIClient]:
    """A client authenticated with a fresh API key of `user`, or by session with `session=True`."""

    def build(
        user: User,
        *,
        scopes: list[str] | None = None,
        projects: list[int] | None = None,
        session: bool = False,
    ) -> APIClient:
        client = APIClient()
        if session:
            client.force_login(user)
        else:
            issued = personal_api_key_create(
                user=user, label="test", scopes=scopes or ["*"], scoped_project_ids=projects
            )
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        return client

    return build


@pytest.fixture
def owner_api(client_for: Callable[..., APIClient], owner: User) -> APIClient:
    return client_for(owner)


@pytest.fixture
def insights_url(project: Project) -> str:
    return f"/api/projects/{project.id}/insights/"


@pytest.fixture
def make_insight(project: Project, owner: User) -> Callable[..., Insight]:
    """Create an insight directly through the service (not the API), optionally tagged."""

    def build(*, tags: list[str] | None = None, in_project: Project | None = None, **fields: Any) -> Insight:
        target = in_project or project
        creator = fields.pop("created_by", owner)
        dashboards = fields.pop("dashboards", [])
        deleted = fields.pop("deleted", False)
        insight = insight_create(
            project=target,
            user=creator,
            fields={"name": "An insight", **fields},
            dashboard_ids=[dashboard.id for dashboard in dashboards],
            request_id=uuid.uuid4(),
        )
        if tags:
            with transaction.atomic():
                insight_tags_set(project=target, insight=insight, names=normalize_tags(tags))
        if deleted:
            Insight.objects.filter(id=insight.id).update(deleted=True)
            insight.refresh_from_db()
        return insight

    return build


@pytest.fixture
def make_dashboard(project: Project) -> Callable[..., Dashboard]:
    def build(name: str = "A dashboard", *, in_project: Project | None = None) -> Dashboard:
        return Dashboard.objects.create(project=in_project or project, name=name)

    return build


# --- Outside world: the LLM stub. Real parts: the Celery worker ------------------------------------


@pytest.fixture(scope="session")
def llm_stub() -> Iterator[LLMStub]:
    stub = start_llm_stub()
    yield stub
    stub.server.shutdown()


@pytest.fixture
def llm(llm_stub: LLMStub, settings: Any) -> Iterator[LLMStub]:
    """The stub, emptied, with this process's provider settings pointing at it."""
    llm_stub.reset()
    settings.OPENAI_BASE_URL = f"{llm_stub.base_url}/v1"
    settings.ANTHROPIC_BASE_URL = llm_stub.base_url
    settings.OPENAI_API_KEY = settings.ANTHROPIC_API_KEY = "test-key"
    yield llm_stub
    llm_stub.reset()


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None, llm_stub: LLMStub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """A real Celery worker process, on the real broker, using the test database, serving both the
    default queue and the query lane's. Tests that use it must commit their data (`transaction=True`)."""
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    with celery_worker_process(
        log,
        name="test",
        concurrency=4,
        queues=f"celery,{django_settings.QUERY_QUEUE}",
        OPENAI_BASE_URL=f"{llm_stub.base_url}/v1",
        ANTHROPIC_BASE_URL=llm_stub.base_url,
        OPENAI_API_KEY="test-key",
        ANTHROPIC_API_KEY="test-key",
        AI_PROVIDER_TIMEOUT_SECONDS="5",
    ):
        yield


# --- ClickHouse: the embedded chDB database, served over ClickHouse's HTTP interface ----------------


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a chDB database served by its owner process (insights/events_store/chdb_server.py),
    as `make run` serves one: the real engine, reached through clickhouse-connect."""
    with chdb_owner(tmp_path_factory.mktemp("chdb")) as url:
        yield url


@pytest.fixture
def clickhouse(clickhouse_server: str, settings: Any) -> str:
    """This test's events store is ClickHouse (the session's chDB, schema migrated); its URL."""
    from insights.events_store import clickhouse as store

    settings.EVENTS_BACKEND = "clickhouse"
    settings.CLICKHOUSE_URL = clickhouse_server
    settings.CLICKHOUSE_DATABASE = "test_insights"
    store.schema_migrate()
    return clickhouse_server
