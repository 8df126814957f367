"""A change to who may call takes effect on the very next request, on every gunicorn process:
nothing about a key, its scopes or a membership is remembered between requests."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.models import OrganizationMembership, PersonalAPIKey
from accounts.services import personal_api_keys_revoke
from tests.ecosystem.conftest import Stack
from tests.live import http

pytestmark = [pytest.mark.live, pytest.mark.django_db(transaction=True)]

DASHBOARD = 20  # requests at once, as a dashboard sends them, spread over both workers


def statuses(stack: Stack, path: str, key: str) -> list[int]:
    with ThreadPoolExecutor(DASHBOARD) as pool:
        return sorted(pool.map(lambda _: http(f"{stack.url}{path}", key=key).status, range(DASHBOARD)))


def test_a_revoked_key_is_refused_on_the_next_request_by_every_worker(stack, key_for, owner, project):
    key = key_for(owner)
    path = f"/api/projects/{project.id}/insights/"
    assert statuses(stack, path, key) == [200] * DASHBOARD

    personal_api_keys_revoke(keys=PersonalAPIKey.objects.filter(user=owner))

    assert statuses(stack, path, key) == [401] * DASHBOARD


def test_a_narrowed_scope_and_a_removed_membership_apply_at_once(stack, key_for, teammate, project):
    key = key_for(teammate)
    path = f"/api/projects/{project.id}/insights/"
    assert statuses(stack, path, key) == [200] * DASHBOARD

    PersonalAPIKey.objects.filter(user=teammate).update(scopes=["dashboard:read"])
    narrowed = statuses(stack, path, key)
    PersonalAPIKey.objects.filter(user=teammate).update(scopes=["*"])
    OrganizationMembership.objects.filter(user=teammate).delete()
    removed = statuses(stack, path, key)

    assert narrowed == [403] * DASHBOARD
    assert removed == [404] * DASHBOARD
