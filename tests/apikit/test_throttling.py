"""Throttling per API key (or per user), with Retry-After."""

from __future__ import annotations

import math
import time

import pytest

pytestmark = pytest.mark.django_db


def test_a_key_over_its_budget_gets_429_with_retry_after(client_for, owner, insights_url, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "burst": "3/minute"}
    client = client_for(owner)

    statuses = [client.get(insights_url).status_code for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    response = client.get(insights_url)
    assert response.json()["type"] == "throttled_error"
    assert 1 <= int(response["Retry-After"]) <= 60


def test_each_budget_counts_every_request_and_the_longest_wait_is_asked(
    client_for, owner, insights_url, settings
):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "burst": "3/minute", "sustained": "2/hour"}
    client = client_for(owner)

    statuses = [client.get(insights_url).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]  # the hourly budget ran out first
    response = client.get(insights_url)  # now both have: the caller waits for the later window end
    now = time.time()
    assert response.status_code == 429
    later_end = max(3600 - now % 3600, 60 - now % 60)
    assert abs(int(response["Retry-After"]) - math.ceil(later_end)) <= 1


def test_budgets_are_per_key(client_for, owner, insights_url, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "burst": "2/minute"}
    first, second = client_for(owner), client_for(owner)

    for _ in range(2):
        first.get(insights_url)

    assert first.get(insights_url).status_code == 429
    assert second.get(insights_url).status_code == 200


def test_login_attempts_are_throttled(api, owner, settings):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "login": "2/minute"}

    statuses = [
        api.post("/api/login/", {"email": owner.email, "password": "guess"}, format="json").status_code
        for _ in range(3)
    ]

    assert statuses == [401, 401, 429]
