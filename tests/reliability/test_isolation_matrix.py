"""Every route, every method, every kind of caller who must not get in (issue 6, item 7).

The routes come from the URL resolver (tests/reliability/routes.py); the expected status codes from
docs/tenancy-and-errors.md: no or bad credentials → 401 with WWW-Authenticate; another organization's project → 404,
answered exactly as for a project that does not exist; a key limited to other projects → 403; a key
without the scope → 403 naming it. And never a byte of the owner's data in the answer, JSON or CSV.

tests/accounts/test_isolation.py and test_scopes.py pin the same rules on a hand-written route
list; tests/insights/test_coalescing.py proves a stranger following a coalesced execution gets 404.
Here the remaining followers (a limited, a revoked and a bad key) join it on a live server.
"""

from __future__ import annotations

import io
import json
import threading
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import OrganizationMembership, PersonalAPIKey, Project, User
from accounts.services import personal_api_key_create
from insights.models import Insight, InsightAccessOverride
from tagging.models import TaggedItem
from tests.live import (
    coalesced_waiters,
    events_table_locked,
    live_server,
    queries_waiting_on_events,
    wait_until,
)
from tests.reliability.conftest import PASSWORD, Secret
from tests.reliability.processes import Caller
from tests.reliability.routes import Route, every_route, samples

pytestmark = pytest.mark.django_db

NO_SUCH_PROJECT = 987_654_321
OTHER_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Outsider:
    name: str
    client: APIClient
    # What a protected route outside any project (users-me, logout) answers them.
    own_routes: int
    session_of: User | None = None  # logged in again after each logout


@pytest.fixture
def outsiders(client_for, owner, stranger, org) -> dict[str, Outsider]:
    deleted = client_for(owner)
    PersonalAPIKey.objects.filter(user=owner).delete()  # revocation is deleting the row
    invalid = APIClient()
    invalid.credentials(HTTP_AUTHORIZATION="Bearer ins_" + "x" * 43)
    return {
        "anonymous": Outsider("anonymous", APIClient(), 401),
        "invalid key": Outsider("invalid key", invalid, 401),
        "revoked key": Outsider("revoked key", deleted, 401),
        "stranger key": Outsider("stranger key", client_for(stranger), 200),
        "stranger session": Outsider("stranger session", client_for(stranger, session=True), 200, stranger),
    }


def call(client: APIClient, method: str, path: str, body: object, *, csv: bool = False):
    if csv:
        path += ("&" if "?" in path else "?") + "format=csv"
    return client.generic(method, path, _json(body), content_type="application/json")


def _json(body: object) -> str:
    return json.dumps(body) if body is not None else ""


def untouched(secret: Secret) -> tuple:
    insight = Insight.objects.get(id=secret.insight.id)
    tags = sorted(TaggedItem.objects.filter(insight=insight).values_list("tag__name", flat=True))
    return insight.name, insight.description, insight.deleted, tags, Insight.objects.count()


def test_outsiders_get_exact_codes_and_no_byte_of_data_on_every_route_and_method(
    outsiders, secret, owner, path_values
):
    before = untouched(secret)
    catalogue = samples(insight_id=secret.insight.id, email=owner.email, password=PASSWORD)
    failures, sent = [], 0
    for route in every_route():
        if route.is_public:
            continue  # login, docs, health and metrics answer anyone: the public-route test below
        sample = catalogue[(route.name, route.method)]
        path = route.path(**path_values) + sample.query
        elsewhere = route.path(**{**path_values, "project_id": NO_SUCH_PROJECT}) + sample.query
        for outsider in outsiders.values():
            for csv in (False, True):
                response = call(outsider.client, route.method, path, sample.body, csv=csv)
                sent += 1
                expected = 404 if route.in_project and outsider.own_routes == 200 else outsider.own_routes
                if route.name == "logout" and expected == 200:
                    expected = 204
                problems = _problems(response, expected, secret)
                if route.name == "logout" and outsider.session_of is not None:
                    outsider.client.force_login(outsider.session_of)
                if route.in_project:  # a foreign project is indistinguishable from a missing one
                    twin = call(outsider.client, route.method, elsewhere, sample.body, csv=csv)
                    sent += 1
                    if (twin.status_code, twin.content) != (response.status_code, response.content):
                        problems.append(f"differs from a missing project: {twin.status_code}")
                if problems:
                    failures.append((str(route), outsider.name, "csv" if csv else "json", problems))
    assert failures == [], f"{len(failures)} of {sent} calls"
    assert untouched(secret) == before
    print(
        f"isolation: {sent} calls by {len(outsiders)} kinds of outsider, all as docs/tenancy-and-errors.md says, no leak"
    )


def _problems(response, expected: int, secret: Secret) -> list[str]:
    problems = []
    if response.status_code != expected:
        problems.append(f"status {response.status_code}, expected {expected}")
    if response.status_code == 401 and not response.get("WWW-Authenticate", "").startswith("Bearer"):
        problems.append("401 without WWW-Authenticate")
    if leaked := secret.leaked_in(response.content):  # a 2xx here is about the caller alone
        problems.append(f"leaked {leaked}")
    return problems


def test_methods_a_route_lacks_answer_the_same_for_everyone_and_leak_nothing(outsiders, secret, path_values):
    """DELETE on an insight (or PUT on the list) is a 405 before anything else is checked, so it
    tells an outsider nothing either: the same answer whether the project is theirs, foreign or
    missing."""
    failures = []
    routes = {}
    for route in every_route():
        routes.setdefault((route.name, route.regex), set()).add(route.method)
    for (name, regex), methods in routes.items():
        route = Route(name, regex, "GET", None)
        if not route.in_project:
            continue
        for method in set(OTHER_METHODS) - methods:
            for outsider in outsiders.values():
                here = call(outsider.client, method, route.path(**path_values), {})
                missing = call(
                    outsider.client, method, route.path(**{**path_values, "project_id": NO_SUCH_PROJECT}), {}
                )
                if here.status_code != 405 or (here.status_code, here.content) != (
                    missing.status_code,
                    missing.content,
                ):
                    failures.append((name, method, outsider.name, here.status_code, missing.status_code))
                if secret.leaked_in(here.content):
                    failures.append((name, method, outsider.name, "leak"))
    assert failures == []


def test_public_routes_answer_everyone_alike_and_carry_no_tenant_data(outsiders, secret, owner, path_values):
    catalogue = samples(insight_id=secret.insight.id, email=owner.email, password=PASSWORD)
    for route in every_route():
        if not route.is_public or route.name == "login":  # login answers whom it logged in: tested apart
            continue
        sample = catalogue[(route.name, route.method)]
        for outsider in outsiders.values():
            response = call(outsider.client, route.method, route.path(**path_values), sample.body)
            assert response.status_code in (200, 503), (route, outsider.name)  # _ready may be 503
            assert secret.leaked_in(response.content) == [], (route, outsider.name)


@pytest.fixture
def limited(client_for, owner, org) -> APIClient:
    """The owner's own key, limited to another project of the same organization."""
    second = Project.objects.create(organization=org, name="Second site")
    return client_for(owner, projects=[second.id])


def test_a_key_limited_to_another_project_gets_403_everywhere_in_this_one_and_sees_no_data(
    limited, secret, owner, path_values
):
    before = untouched(secret)
    catalogue = samples(insight_id=secret.insight.id, email=owner.email, password=PASSWORD)
    not_its_own = [text for text in secret.strings if text not in (owner.email, "Acme")]
    for route in every_route():
        if route.is_public or not route.in_project:
            continue
        sample = catalogue[(route.name, route.method)]
        for csv in (False, True):
            response = call(
                limited, route.method, route.path(**path_values) + sample.query, sample.body, csv=csv
            )
            assert response.status_code == 403, route
            if not csv:
                assert response.json()["detail"] == "API key does not have access to this project.", route
            assert [text for text in not_its_own if text.encode() in response.content] == [], route
    assert untouched(secret) == before


def test_a_key_limited_to_one_project_sees_only_that_project_in_users_me(limited, secret, owner, org):
    response = limited.get("/api/users/@me/")

    organizations = response.json()["organizations"]
    assert [(o["name"], [p["name"] for p in o["projects"]]) for o in organizations] == [
        (org.name, ["Second site"])
    ]
    assert secret.leaked_in(response.content) == [owner.email, org.name]  # who they are, nothing else


def test_a_read_only_key_reads_everything_and_writes_nothing(client_for, owner, secret, path_values):
    reader = client_for(owner, scopes=["insight:read"])
    before = untouched(secret)
    catalogue = samples(insight_id=secret.insight.id, email=owner.email, password=PASSWORD)
    for route in every_route():
        if route.is_public or not route.in_project:
            continue
        sample = catalogue[(route.name, route.method)]
        response = call(reader, route.method, route.path(**path_values) + sample.query, sample.body)
        if route.scope == "insight:write":
            assert response.status_code == 403, route
            assert response.json()["detail"] == "API key missing required scope 'insight:write'", route
            assert secret.leaked_in(response.content) == [], route
        elif (route.name, route.method) == ("query-detail", "GET"):  # no such run: past every check, 404
            assert (response.status_code, response.json()["detail"]) == (404, "Query not found."), route
        else:
            assert response.status_code in (200, 201, 204), (route, response.content[:200])
    assert untouched(secret) == before


def test_a_deleted_key_is_refused_at_once(client_for, owner, insights_url):
    issued = personal_api_key_create(user=owner, label="soon revoked", scopes=["*"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert client.get(insights_url).status_code == 200

    PersonalAPIKey.objects.filter(id=issued.key.id).delete()

    response = client.get(insights_url)
    assert response.status_code == 401 and response.json()["detail"] == "Invalid personal API key."


# --- Live: followers of a coalesced execution, and revocation across processes ---------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory, django_db_setup, django_db_blocker):
    from django.conf import settings

    with live_server(tmp_path_factory.mktemp("isolation"), redis_url=settings.REDIS_URL) as running:
        yield running


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_callers_who_may_not_see_an_insight_never_follow_its_coalesced_execution(
    server, owner, teammate, stranger, org, secret
):
    second = Project.objects.create(organization=org, name="Second site")
    members = {}
    for name, level in (("hidden", "none"), ("viewer", "viewer")):
        members[name] = User.objects.create_user(email=f"{name}@acme.test", password=PASSWORD)
        OrganizationMembership.objects.create(organization=org, user=members[name])
        InsightAccessOverride.objects.create(insight=secret.insight, user=members[name], access_level=level)
    keys = {
        "owner": personal_api_key_create(user=owner, label="lead", scopes=["*"]).secret,
        "teammate read-only": personal_api_key_create(
            user=teammate, label="r", scopes=["insight:read"]
        ).secret,
        "member without access": personal_api_key_create(
            user=members["hidden"], label="h", scopes=["*"]
        ).secret,
        "viewer": personal_api_key_create(user=members["viewer"], label="v", scopes=["*"]).secret,
        "stranger": personal_api_key_create(user=stranger, label="s", scopes=["*"]).secret,
        "limited": personal_api_key_create(
            user=owner, label="l", scopes=["*"], scoped_project_ids=[second.id]
        ).secret,
        "revoked": personal_api_key_create(user=owner, label="gone", scopes=["*"]).secret,
        "invalid": "ins_" + "y" * 43,
        "anonymous": None,
    }
    PersonalAPIKey.objects.filter(label="gone").delete()
    path = f"/api/projects/{secret.insight.project_id}/insights/{secret.insight.id}/?refresh=force_blocking"
    answers: dict[str, object] = {}

    def ask(name: str) -> None:
        answers[name] = Caller(server.url, key=keys[name])("GET", path)

    with events_table_locked():
        leader = threading.Thread(target=ask, args=("owner",))
        leader.start()
        wait_until(lambda: queries_waiting_on_events() == 1, what="the leader's query")
        readers = ("teammate read-only", "viewer")
        followers = [threading.Thread(target=ask, args=(name,)) for name in readers]
        refused = [
            threading.Thread(target=ask, args=(name,)) for name in keys if name not in {"owner", *readers}
        ]
        others = followers + refused
        for thread in others:
            thread.start()
        # The refused are answered while the lock holds (a caller stuck behind it, in an execution
        # of its own or following, is still running: its status below says so); the readers join.
        for thread in refused:
            thread.join(60)
        wait_until(lambda: coalesced_waiters() == 1 + len(readers), timeout=60, what="the readers following")
        waiting = queries_waiting_on_events()
    for thread in [leader, *others]:
        thread.join(30)

    assert waiting == 1  # nobody started a second execution, and nobody but the readers joined
    statuses = {name: (answer.status, answer.headers.get("X-Coalesced")) for name, answer in answers.items()}
    assert statuses == {
        "owner": (200, "leader"),
        "teammate read-only": (200, "follower"),
        "viewer": (200, "follower"),
        "member without access": (404, None),
        "stranger": (404, None),
        "limited": (403, None),
        "revoked": (401, None),
        "invalid": (401, None),
        "anonymous": (401, None),
    }
    # One shared body, each caller's own level in it (docs/access-control.md).
    levels = {
        name: answers[name].json()["user_access_level"] for name in ("owner", "teammate read-only", "viewer")
    }
    assert levels == {"owner": "editor", "teammate read-only": "editor", "viewer": "viewer"}
    assert answers["viewer"].json()["result"] == answers["owner"].json()["result"]
    for name in ("member without access", "stranger", "limited", "revoked", "invalid", "anonymous"):
        assert (
            b"Quarterly Revenue Secret" not in answers[name].content
            and b"result" not in answers[name].content
        ), name


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_revoked_key_is_refused_by_every_server_process_at_once(server, owner, project):
    issued = personal_api_key_create(user=owner, label="revoke me", scopes=["*"])
    api = Caller(server.url, key=issued.secret)
    path = f"/api/projects/{project.id}/insights/"
    assert {api("GET", path).status for _ in range(6)} == {200}  # several processes have seen it

    call_command("revoke_api_key", "--prefix", issued.key.prefix, stdout=io.StringIO())  # as an operator

    assert [api("GET", path).status for _ in range(12)] == [401] * 12
