from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_health_answers_without_credentials(api):
    assert api.get("/_health").json() == {"status": "ok"}


def test_ready_checks_postgres_and_redis(api):
    response = api.get("/_ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok"}
