"""What an operator sees: request ids in headers and JSON logs (web and Celery), Prometheus metrics
for request latency by route, Celery task outcomes and rollup lag — all from a live gunicorn and a
real worker process."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from insights.models import ActivityLog
from tests.ecosystem.conftest import Stack
from tests.live import http, wait_until
from viewtracking.services import views_record

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pytest.mark.worker]

TRENDS = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}


def samples(stack: Stack, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of `name` in the server's /metrics."""
    text = http(stack.url + "/metrics").content.decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def sample_value(stack: Stack, name: str, **labels: str) -> float:
    return sum(value for found, value in samples(stack, name) if labels.items() <= found.items())


@pytest.fixture
def owner_key(key_for, owner) -> str:
    return key_for(owner)


def test_a_response_carries_a_new_request_id_when_the_caller_sends_none(stack):
    answer = http(stack.url + "/_health")

    assert uuid.UUID(answer.headers["X-Request-ID"]).version == 4


def test_a_well_formed_incoming_request_id_is_kept_and_a_malformed_one_replaced(stack, owner_key, project):
    kept = http(
        f"{stack.url}/api/projects/{project.id}/insights/",
        key=owner_key,
        headers={"X-Request-ID": "lb-7f3a.1:42"},
    )
    for bad in ("has spaces", "x" * 129, "<script>", "-leading-dash"):
        replaced = http(stack.url + "/_health", headers={"X-Request-ID": bad})
        assert uuid.UUID(replaced.headers["X-Request-ID"]), bad

    assert kept.status == 200
    assert kept.headers["X-Request-ID"] == "lb-7f3a.1:42"


def test_each_request_is_one_json_log_line_with_its_request_id_route_and_status(stack, owner_key, project):
    request_id = f"log-{uuid.uuid4().hex}"

    http(
        f"{stack.url}/api/projects/{project.id}/insights/999/",
        key=owner_key,
        headers={"X-Request-ID": request_id},
    )

    wait_until(
        lambda: any(line.get("request_id") == request_id for line in stack.server_lines()), what="log line"
    )
    [line] = [line for line in stack.server_lines() if line.get("request_id") == request_id]
    assert line["logger"] == "insights_api.request"
    assert line["route"] == "/api/projects/{project_id}/insights/{pk}/"
    assert line["status"] == 404 and line["method"] == "GET" and line["duration_ms"] >= 0
    assert line["level"] == "info" and line["time"].endswith("+00:00")


def test_a_celery_task_logs_the_request_id_of_the_request_that_enqueued_it(stack, owner_key, project):
    request_id = f"async-{uuid.uuid4().hex}"

    started = http(
        f"{stack.url}/api/projects/{project.id}/query/",
        "POST",
        key=owner_key,
        headers={"X-Request-ID": request_id},
        body={"query": TRENDS, "refresh": "force_async"},
    )
    status_url = f"{stack.url}/api/projects/{project.id}/query/{started.json()['query_status']['id']}/"
    wait_until(lambda: http(status_url, key=owner_key).json()["complete"], what="the async query")
    wait_until(
        lambda: any(
            line.get("request_id") == request_id and "succeeded" in line["message"]
            for line in stack.worker_lines(queries=True)
        ),
        what="the task's success line",
    )

    task_lines = [line for line in stack.worker_lines(queries=True) if line.get("request_id") == request_id]
    assert started.status == 202
    assert {line["task_name"] for line in task_lines} == {"insights.compute_execution"}
    assert all(line["task_id"] for line in task_lines)


def test_activity_log_entries_store_the_request_id_of_the_change(stack, owner_key, project, make_insight):
    insight = make_insight(name="Signups")
    request_id = str(uuid.uuid4())

    http(
        f"{stack.url}/api/projects/{project.id}/insights/bulk_update_tags/",
        "POST",
        key=owner_key,
        headers={"X-Request-ID": request_id},
        body={"ids": [insight.id], "action": "add", "tags": ["kpi"]},
    )

    entry = ActivityLog.objects.get(insight=insight, activity="updated")
    assert str(entry.request_id) == request_id


def test_request_latency_is_labelled_by_route_never_by_raw_path(stack, owner_key, project, make_insight):
    first, second = make_insight(name="One"), make_insight(name="Two")
    route = "/api/projects/{project_id}/insights/{pk}/"
    before = sample_value(
        stack, "insights_http_request_duration_seconds_count", route=route, status="200", method="GET"
    )

    for lookup in (first.id, second.id, second.short_id):
        assert http(f"{stack.url}/api/projects/{project.id}/insights/{lookup}/", key=owner_key).status == 200

    after = sample_value(
        stack, "insights_http_request_duration_seconds_count", route=route, status="200", method="GET"
    )
    routes = {labels["route"] for labels, _ in samples(stack, "insights_http_request_duration_seconds_count")}
    assert after - before == 3
    assert not any(str(first.id) in found or second.short_id in found for found in routes), routes
    buckets = samples(stack, "insights_http_request_duration_seconds_bucket")
    assert any(labels["route"] == route and labels["le"] == "+Inf" for labels, _ in buckets)


def test_celery_task_outcomes_are_counted_for_every_task(stack):
    def outcome(task: str, result: str) -> float:
        return sample_value(stack, "insights_celery_tasks_total", task=task, outcome=result)

    before = {
        "success": outcome("viewtracking.rollup_views", "success"),
        "failure": outcome("insights.compute_execution", "failure"),
        "unknown": outcome("no.such.task", "unknown"),
    }

    stack.send_task("viewtracking.rollup_views").get(timeout=30)
    stack.send_task("insights.compute_execution")  # missing its arguments: fails on the worker
    stack.send_task("no.such.task")

    wait_until(lambda: outcome("no.such.task", "unknown") > before["unknown"], what="the unknown task")
    wait_until(
        lambda: outcome("insights.compute_execution", "failure") > before["failure"], what="the failure"
    )
    wait_until(
        lambda: outcome("viewtracking.rollup_views", "success") > before["success"], what="the success"
    )
    assert outcome("viewtracking.rollup_views", "success") == before["success"] + 1
    assert outcome("insights.compute_execution", "failure") == before["failure"] + 1


def test_rollup_lag_is_the_age_of_the_oldest_view_not_rolled_up(stack, project, owner, make_insight):
    insight = make_insight(name="Viewed")
    views_record(
        project=project, user=owner, insight_ids=[insight.id], at=timezone.now() - timedelta(minutes=10)
    )

    lagging = sample_value(stack, "insights_view_rollup_lag_seconds")
    stack.send_task("viewtracking.rollup_views").get(timeout=30)
    caught_up = sample_value(stack, "insights_view_rollup_lag_seconds")

    assert 600 <= lagging < 600 + 60
    assert caught_up == 0


def test_metrics_of_the_web_processes_and_the_worker_are_served_together(stack, owner_key, project):
    http(f"{stack.url}/api/projects/{project.id}/insights/", key=owner_key)
    before = sample_value(
        stack, "insights_celery_tasks_total", task="viewtracking.prune_views", outcome="success"
    )
    stack.send_task("viewtracking.prune_views").get(timeout=30)
    # The worker counts the outcome just after storing the result that get() returns.
    wait_until(
        lambda: (
            sample_value(
                stack, "insights_celery_tasks_total", task="viewtracking.prune_views", outcome="success"
            )
            > before
        ),
        what="the task's outcome counted",
    )

    names = {
        family.name
        for family in text_string_to_metric_families(http(stack.url + "/metrics").content.decode())
    }

    assert {
        "insights_http_request_duration_seconds",
        "insights_celery_tasks",
        "insights_view_rollup_lag_seconds",
    } <= names


def test_a_worker_in_its_own_container_serves_its_task_metrics_itself(stack):
    stack.send_task("viewtracking.prune_views").get(timeout=30)

    text = http(stack.worker_metrics_url).content.decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}

    outcomes = {(s.labels["task"], s.labels["outcome"]) for s in families["insights_celery_tasks"].samples}
    assert ("viewtracking.prune_views", "success") in outcomes
    assert "insights_view_rollup_lag_seconds" not in families  # the web processes serve that one
