from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_health_answers_without_credentials(api):
    assert api.get("/_health").json() == {"status": "ok"}


def test_ready_answers_503_naming_the_query_workers_when_none_is_alive(api, settings):
    settings.QUERY_QUEUE = "a-queue-no-worker-serves"
    response = api.get("/_ready")

    assert response.status_code == 503
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok", "query_workers": "down"}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ready_checks_postgres_redis_and_that_a_query_worker_is_alive(celery_worker, api):
    response = api.get("/_ready")

    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": "ok", "redis": "ok", "query_workers": "ok"}


def test_metrics_expose_coalescing_and_query_counters(api, owner_api, project):
    owner_api.post(
        f"/api/projects/{project.id}/query/",
        {"query": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}},
        format="json",
    )

    text = api.get("/metrics").content.decode()

    assert 'insights_coalescing_requests_total{role="off"}' in text  # computed inline: a test's transaction
    assert 'insights_query_executions_total{outcome="computed"}' in text
    assert "insights_query_runtime_seconds_count" in text
    assert "insights_coalescing_wait_seconds_bucket" in text


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_ready_holds_at_503_while_its_hold_file_exists_as_make_run_does_while_it_seeds(
    celery_worker, api, settings, tmp_path
):
    hold = tmp_path / "starting"
    hold.touch()
    settings.READINESS_HOLD_FILE = str(hold)
    held = api.get("/_ready")
    hold.unlink()
    released = api.get("/_ready")

    assert (held.status_code, held.json()["checks"]["started"]) == (503, "down")
    assert released.status_code == 200 and "started" not in released.json()["checks"]
