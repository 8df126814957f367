"""`manage.py bootstrap` (docs/operations.md): first user, organization, project and key of an installation."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import Organization, OrganizationMembership, PersonalAPIKey, Project, User

pytestmark = pytest.mark.django_db


def bootstrap(*args: str) -> dict:
    out = io.StringIO()
    call_command("bootstrap", *args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_bootstrap_prints_the_created_objects_and_a_working_key():
    result = bootstrap("--email", "Admin@Example.com", "--organization", "Acme", "--project", "Web")

    assert set(result) == {"user", "organization", "project", "api_key"}
    assert result["user"]["email"] == "admin@example.com"
    assert result["organization"]["name"] == "Acme" and result["project"]["name"] == "Web"
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {result['api_key']}")
    created = client.post(
        f"/api/projects/{result['project']['id']}/insights/", {"name": "First"}, format="json"
    )
    assert created.status_code == 201
    membership = OrganizationMembership.objects.get(user_id=result["user"]["id"])
    assert membership.level == OrganizationMembership.Level.OWNER


def test_running_it_again_reuses_everything_but_issues_a_new_key():
    first = bootstrap("--email", "a@example.com", "--organization", "Acme", "--project", "Web")
    second = bootstrap("--email", "A@example.com", "--organization", "Acme", "--project", "Web")

    assert (first["user"], first["organization"], first["project"]) == (
        second["user"],
        second["organization"],
        second["project"],
    )
    assert first["api_key"] != second["api_key"]
    assert (User.objects.count(), Organization.objects.count(), Project.objects.count()) == (1, 1, 1)
    assert PersonalAPIKey.objects.count() == 2


def test_scopes_project_scoping_and_ai_approval_are_applied():
    result = bootstrap(
        "--email",
        "a@example.com",
        "--scopes",
        "insight:read",
        "--project-scoped",
        "--ai-approved",
        "--password",
        "pw-12345678",
    )

    key = PersonalAPIKey.objects.get()
    assert key.scopes == ["insight:read"]
    assert key.scoped_project_ids == [result["project"]["id"]]
    assert Organization.objects.get().is_ai_data_processing_approved is True
    assert User.objects.get().check_password("pw-12345678")


def test_a_user_joining_an_organization_is_a_member_unless_a_level_is_given():
    founder = bootstrap("--email", "founder@example.com", "--organization", "Acme")
    joiner = bootstrap("--email", "joiner@example.com", "--organization", "Acme")
    admin = bootstrap("--email", "admin@example.com", "--organization", "Acme", "--level", "admin")
    demoted = bootstrap("--email", "founder@example.com", "--organization", "Acme", "--level", "member")

    levels = dict(OrganizationMembership.objects.values_list("user__email", "level"))
    assert (
        founder["organization"] == joiner["organization"] == admin["organization"] == demoted["organization"]
    )
    assert levels == {
        "founder@example.com": OrganizationMembership.Level.MEMBER,
        "joiner@example.com": OrganizationMembership.Level.MEMBER,
        "admin@example.com": OrganizationMembership.Level.ADMIN,
    }


@pytest.mark.parametrize(
    "args",
    [
        ("--email", "not-an-email"),
        ("--email", "a@example.com", "--scopes", "admin:everything"),
        ("--email", "a@example.com", "--level", "superuser"),
    ],
)
def test_bad_arguments_are_refused_and_create_nothing(args):
    with pytest.raises(CommandError):
        call_command("bootstrap", *args, "--json", stdout=io.StringIO())

    assert not User.objects.exists()
