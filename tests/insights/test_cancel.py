"""`POST …/insights/cancel/` (docs/insight-actions.md#cancel): exact matching on (project, client_query_id, user)."""

from __future__ import annotations

import uuid

import pytest

from infra.executions import Execution
from infra.wakeups import WAKEUPS
from insights.cancellation import query_registration

pytestmark = pytest.mark.django_db


@pytest.fixture
def cancel(owner_api, insights_url):
    return lambda body, client=owner_api: client.post(f"{insights_url}cancel", body, format="json")


@pytest.fixture
def running(project, owner):
    """Register a running query of `user` (the owner by default) under a client_query_id."""

    def register(client_query_id: str, *, user=None, in_project=None):
        return query_registration(
            project_id=(in_project or project).id,
            user_id=(user or owner).id,
            client_query_id=client_query_id,
            execution=Execution(f"coalesce:{{{uuid.uuid4().hex}}}:run"),
            waiter="the-request",
        )

    return register


def test_cancelling_a_running_query_answers_true_and_marks_it(cancel, running):
    with running("dash-1") as registration:
        response = cancel({"client_query_id": "dash-1"})
        cancelled = registration.cancelled()

    assert response.status_code == 201
    assert response.json() == {"cancelled": True}
    assert cancelled


def test_the_waiter_is_woken_at_once(cancel, running):
    with running("wake-me") as registration, WAKEUPS.watching([registration.channel]) as woken:
        cancel({"client_query_id": "wake-me"})
        woken_within_two_seconds = woken.wait(2)

    assert woken_within_two_seconds


def test_nothing_running_answers_false(cancel):
    assert cancel({"client_query_id": "nothing-here"}).json() == {"cancelled": False}


def test_cancel_is_idempotent(cancel, running):
    with running("twice") as registration:
        answers = [cancel({"client_query_id": "twice"}).json() for _ in range(2)]
        assert registration.cancelled()

    assert answers == [{"cancelled": True}, {"cancelled": True}]
    assert cancel({"client_query_id": "twice"}).json() == {"cancelled": False}  # it has finished


def test_a_prefix_never_matches(cancel, running):
    with running("report-2024") as registration:
        answer = cancel({"client_query_id": "report"}).json()
        untouched = not registration.cancelled()

    assert answer == {"cancelled": False}
    assert untouched


def test_another_users_query_is_never_touched(cancel, running, teammate):
    with running("shared-name", user=teammate) as registration:
        answer = cancel({"client_query_id": "shared-name"}).json()
        untouched = not registration.cancelled()

    assert answer == {"cancelled": False}
    assert untouched


def test_a_query_in_another_project_is_never_touched(cancel, running, org):
    from accounts.models import Project

    other = Project.objects.create(organization=org, name="Other")
    with running("same-id", in_project=other) as registration:
        answer = cancel({"client_query_id": "same-id"}).json()
        untouched = not registration.cancelled()

    assert answer == {"cancelled": False}
    assert untouched


@pytest.mark.parametrize(
    "body",
    [{}, {"client_query_id": ""}, {"client_query_id": "x" * 129}, {"client_query_id": "has space"},
     {"client_query_id": "semi;colon"}, {"client_query_id": "%"}, {"client_query_id": 12}, {"client_query_id": None}],
)  # fmt: skip
def test_bad_ids_are_a_400_on_client_query_id(cancel, body):
    response = cancel(body)

    assert response.status_code == 400
    assert response.json()["attr"] == "client_query_id"


def test_delete_on_the_query_route_cancels_as_posthogs_newer_frontend_does(
    owner_api, project, running, teammate
):
    url = f"/api/environments/{project.id}/query/"
    with running("dash::a1b2") as mine, running("dash::a1b2", user=teammate) as theirs:
        response = owner_api.delete(f"{url}dash::a1b2/")
        again = owner_api.delete(f"{url}dash::a1b2")
        cancelled = (mine.cancelled(), theirs.cancelled())

    assert (response.status_code, again.status_code) == (204, 204)
    assert cancelled == (True, False)
    assert owner_api.delete(f"{url}not%20an%20id/").status_code == 404
