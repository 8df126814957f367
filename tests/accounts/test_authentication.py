"""Session login with CSRF, personal API keys, and what a missing or bad credential gets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import PersonalAPIKey
from accounts.services import personal_api_key_create

pytestmark = pytest.mark.django_db


def test_missing_credentials_get_401_with_a_www_authenticate_header(api, insights_url):
    response = api.get(insights_url)

    assert response.status_code == 401
    assert response.json() == {
        "type": "authentication_error",
        "code": "not_authenticated",
        "detail": "Authentication credentials were not provided.",
        "attr": None,
    }
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header",
    [
        "Bearer ins_notarealkeyatall",
        "Bearer ",
        "Bearer a b",
        "Bearer ins_\u00e9\u00e9",
        "Bearer " + "x" * 5000,
    ],
)
def test_an_invalid_key_gets_401(api, insights_url, owner, header):
    response = api.get(insights_url, HTTP_AUTHORIZATION=header)

    assert response.status_code == 401
    assert response.json()["type"] == "authentication_error"


def test_a_key_that_shares_only_its_prefix_is_refused(api, insights_url, owner):
    issued = personal_api_key_create(user=owner, label="real", scopes=["*"])
    forged = issued.secret[:12] + "A" * (len(issued.secret) - 12)

    assert api.get(insights_url, HTTP_AUTHORIZATION=f"Bearer {forged}").status_code == 401


def test_keys_are_stored_only_as_a_digest(owner):
    issued = personal_api_key_create(user=owner, label="k", scopes=["*"])

    row = PersonalAPIKey.objects.get(id=issued.key.id)
    stored = " ".join(
        str(value) for value in PersonalAPIKey.objects.filter(id=row.id).values().get().values()
    )
    assert issued.secret not in stored
    assert issued.secret[12:] not in stored


def test_a_key_of_a_deactivated_user_is_refused(api, insights_url, owner):
    issued = personal_api_key_create(user=owner, label="k", scopes=["*"])
    owner.is_active = False
    owner.save()

    assert api.get(insights_url, HTTP_AUTHORIZATION=f"Bearer {issued.secret}").status_code == 401


def test_last_used_at_is_written_once_per_resolution_window(api, insights_url, owner, settings):
    issued = personal_api_key_create(user=owner, label="k", scopes=["*"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {issued.secret}"}

    api.get(insights_url, **auth)
    first = PersonalAPIKey.objects.get(id=issued.key.id).last_used_at
    api.get(insights_url, **auth)
    assert PersonalAPIKey.objects.get(id=issued.key.id).last_used_at == first

    stale = timezone.now() - timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS + 5)
    PersonalAPIKey.objects.filter(id=issued.key.id).update(last_used_at=stale)
    api.get(insights_url, **auth)
    assert PersonalAPIKey.objects.get(id=issued.key.id).last_used_at > first


def test_login_starts_a_session_that_reaches_the_api(insights_url, owner):
    client = APIClient()

    login = client.post(
        "/api/login/", {"email": "OWNER@acme.test", "password": "correct horse battery"}, format="json"
    )

    assert login.status_code == 200
    assert login.json()["email"] == owner.email
    assert client.get(insights_url).status_code == 200


def test_wrong_password_gets_401(api, owner):
    response = api.post("/api/login/", {"email": owner.email, "password": "nope"}, format="json")

    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid email or password."


def test_session_writes_need_the_csrf_token(insights_url, owner):
    client = APIClient(enforce_csrf_checks=True)
    client.post("/api/login/", {"email": owner.email, "password": "correct horse battery"}, format="json")

    without_token = client.post(insights_url, {"name": "x"}, format="json")
    token = client.cookies["posthog_csrftoken"].value
    with_token = client.post(insights_url, {"name": "x"}, format="json", HTTP_X_CSRFTOKEN=token)

    assert without_token.status_code == 403
    assert "CSRF" in without_token.json()["detail"]
    assert with_token.status_code == 201


def test_api_key_requests_need_no_csrf_token(insights_url, owner, client_for):
    client = client_for(owner)
    client.enforce_csrf_checks = True

    assert client.post(insights_url, {"name": "x"}, format="json").status_code == 201


def test_logout_ends_the_session(insights_url, owner):
    client = APIClient()
    client.post("/api/login/", {"email": owner.email, "password": "correct horse battery"}, format="json")

    assert client.post("/api/logout/").status_code == 204
    assert client.get(insights_url).status_code == 401


def test_me_lists_the_callers_organizations_and_projects(owner_api, owner, project, stranger_project):
    body = owner_api.get("/api/users/@me").json()

    assert body["email"] == owner.email
    assert [(org["name"], org["membership_level"]) for org in body["organizations"]] == [("Acme", "owner")]
    assert body["organizations"][0]["projects"] == [{"id": project.id, "name": project.name}]
