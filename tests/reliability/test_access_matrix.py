"""Every route and method against every access level (docs/access-control.md): members of the insight's own
organization, each reaching the same insight with a different effective level.

The insight's own level is `none`; a viewer and an editor hold overrides; its creator and an
organization admin hold `none` overrides that their role outranks; one member has nothing and so gets
`none`. The creator set these controls through the service, so the activity log holds the change.
Routes come from the URL resolver (tests/reliability/routes.py), both prefixes included, so a
new route is swept without anyone listing it here; every GET also as CSV. The expectations are
docs/access-control.md's, written below as tables by route kind, never read from the code: each answer's
status, and what its body shows of the insight and of its access controls.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from accounts.models import OrganizationMembership, User
from insights.access import AccessControls, access_controls_set
from insights.models import AccessLevel, Insight
from tests.reliability.conftest import PASSWORD, Secret
from tests.reliability.routes import Route, every_route, samples
from viewtracking.services import views_record

pytestmark = pytest.mark.django_db

# The callers in the order they sweep: those who may change nothing first, so that what they find is
# the insight as it was set up.
CALLERS = ("none", "viewer", "editor", "creator", "admin")
# What identifies the insight: never in an answer to a caller who may not see it.
SECRET_FIELDS = ("name", "description", "short_id")
# What names a member's level in an answer, JSON or CSV (`user_access_level`, the caller's own, is not).
ACCESS_DETAILS = re.compile(rb"members|(?<!user_)access_level")
# Routes whose answer shows the insight's access controls to its editors: the controls themselves, and
# the activity log that records their change.
SHOW_CONTROLS = {"insights-access-controls", "insights-activity", "insights-all-activity"}
# Successes other than 200.
SUCCESS = {
    ("insights-list", "POST"): 201,
    ("insights-viewed", "POST"): 201,
    ("insights-cancel", "POST"): 201,
    ("query-detail", "DELETE"): 204,
}


@pytest.fixture
def members(org, secret: Secret, project) -> dict[str, User]:
    def join(name: str, level=OrganizationMembership.Level.MEMBER) -> User:
        user = User.objects.create_user(email=f"{name}@acme.test", password=PASSWORD, first_name=name.title())
        OrganizationMembership.objects.create(organization=org, user=user, level=level)
        return user

    cast = {name: join(name) for name in ("none", "viewer", "editor", "creator")}
    cast["admin"] = join("admin", OrganizationMembership.Level.ADMIN)
    Insight.objects.filter(id=secret.insight.id).update(created_by=cast["creator"])
    overrides = {"viewer": "viewer", "editor": "editor", "creator": "none", "admin": "none"}
    access_controls_set(
        insight=secret.insight,
        user=cast["creator"],
        controls=AccessControls(
            AccessLevel.NONE, {cast[name].id: level for name, level in overrides.items()}
        ),
        request_id=uuid.uuid4(),
    )
    views_record(project=project, user=cast["admin"], insight_ids=[secret.insight.id])  # it trends
    return cast


def expected_status(route: Route, caller: str) -> int:
    """docs/access-control.md, by what the route does with the URL's insight."""
    names_the_insight = "(?P<pk>" in route.regex
    if names_the_insight and caller == "none":
        return 404
    if route.name == "insights-access-controls":
        if route.method == "PUT":
            return 200 if caller in ("creator", "admin") else 403
        return 403 if caller == "viewer" else 200
    if names_the_insight and route.method in ("PUT", "PATCH") and caller == "viewer":
        return 403
    if (route.name, route.method) == ("query-detail", "GET"):
        return 404  # no such asynchronous run, whoever asks
    if route.name in ("tags-rename", "tags-delete"):
        return 200 if caller == "admin" else 403  # a project's tags: its organization's admins
    return SUCCESS.get((route.name, route.method), 200)


def shows_access_details(route: Route, caller: str, status: int) -> bool:
    """docs/access-control.md: only the insight's editors see who holds which level on it; anyone
    else sees at most that its access changed."""
    return caller in ("editor", "creator", "admin") and route.name in SHOW_CONTROLS and status == 200


def test_every_route_gives_each_access_level_exactly_what_spec_11_says(
    client_for, members, secret, path_values, owner
):
    catalogue = samples(insight_id=secret.insight.id, email=owner.email, password=PASSWORD)
    hidden = [str(getattr(secret.insight, field)).encode() for field in SECRET_FIELDS]
    routes = [route for route in every_route() if route.in_project]
    failures, sent = [], 0
    for caller in CALLERS:
        client = client_for(members[caller])
        for route, format_ in [(route, "json") for route in routes] + [
            (route, "csv") for route in routes if route.method == "GET"
        ]:
            sample = catalogue[(route.name, route.method)]
            query = sample.query + ("&" if sample.query else "?") + f"format={format_}"
            response = client.generic(
                route.method, route.path(**path_values) + query, json.dumps(sample.body) if sample.body is not None else "",
                content_type="application/json",
            )  # fmt: skip
            sent += 1
            problems = []
            expected = expected_status(route, caller)
            if response.status_code != expected:
                problems.append(
                    f"status {response.status_code}, expected {expected}: {response.content[:160]!r}"
                )
            if caller == "none" and any(text in response.content for text in hidden):
                problems.append("shows the insight")
            shows = bool(ACCESS_DETAILS.search(response.content))
            if shows != shows_access_details(route, caller, response.status_code):
                problems.append(
                    f"{'shows' if shows else 'hides'} who holds which level: {response.content[:300]!r}"
                )
            if caller in ("none", "viewer") and _changed(secret):
                problems.append("changed the insight")
            if problems:
                failures.append((caller, f"{route} ({format_})", problems))
    assert failures == [], f"{len(failures)} of {sent} calls"
    print(f"access matrix: {sent} calls by {len(CALLERS)} access levels, all as docs/access-control.md says")


def test_each_caller_sees_their_own_level_on_every_insight_shape(client_for, members, secret, insights_url):
    for caller, level in (
        ("viewer", "viewer"),
        ("editor", "editor"),
        ("creator", "editor"),
        ("admin", "editor"),
    ):
        client = client_for(members[caller])
        client.post(f"{insights_url}viewed/", {"insight_ids": [secret.insight.id]}, format="json")
        shapes = {
            "list": client.get(insights_url).json()["results"][0],
            "basic": client.get(insights_url, {"basic": "true"}).json()["results"][0],
            "retrieve": client.get(f"{insights_url}{secret.insight.id}/").json(),
            "trending": client.get(f"{insights_url}trending/").json()["results"][0],
            "my_last_viewed": client.get(f"{insights_url}my_last_viewed/").json()[0],
        }
        assert {name: shape["user_access_level"] for name, shape in shapes.items()} == dict.fromkeys(
            shapes, level
        ), caller


def _changed(secret: Secret) -> bool:
    insight = Insight.objects.get(id=secret.insight.id)
    return (insight.name, insight.description, insight.deleted) != (
        secret.insight.name, secret.insight.description, False
    )  # fmt: skip
