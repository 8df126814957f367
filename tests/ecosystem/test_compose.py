"""docker-compose.yml and the Dockerfile, checked without a Docker engine: the services and how they
start, health checks, volumes, the environment each container gets (every variable must be one the
service reads), and that every command, module and file they name exists in this repository."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.urls import resolve
from gunicorn.workers.ggevent import GeventWorker

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "events-store-migrate", "web", "worker", "query-worker", "beat")
LONG_RUNNING = ("postgres", "redis", "clickhouse", "web", "worker", "query-worker", "beat", "proxy")
WORKERS = ("worker", "query-worker")
# Variables an app container gets that settings.py does not read, and who reads them instead.
READ_ELSEWHERE = {
    "PROMETHEUS_MULTIPROC_DIR": "prometheus_client (infra/metrics.py) and docker/entrypoint.sh",
    "WEB_CONCURRENCY": "gunicorn (its number of worker processes; insights_api/gunicorn.conf.py)",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of each Dockerfile line, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def settings_variables() -> set[str]:
    """Every variable settings.py reads through the typed readers of insights_api/env.py."""
    tree = ast.parse((ROOT / "insights_api" / "settings.py").read_text())
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id.startswith("env_")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def command_of(service: dict[str, Any], dockerfile: list[tuple[str, str]]) -> list[str]:
    if "command" in service:
        return service["command"]
    [cmd] = [args for instruction, args in dockerfile if instruction == "CMD"]
    return yaml.safe_load(cmd)  # exec form is a JSON array


def test_the_stack_has_every_part_and_only_the_proxy_is_published(services):
    assert set(services) == {
        "postgres", "redis", "clickhouse", "migrate", "events-store-migrate", "web", "worker", "query-worker",
        "beat", "proxy",
    }  # fmt: skip
    assert [name for name, service in services.items() if "ports" in service] == ["proxy"]
    for name in APP_SERVICES:
        assert services[name]["image"] == "insights-api:latest" and services[name]["build"] == ".", name


def test_every_long_running_service_has_a_health_check_and_restarts(services):
    for name in LONG_RUNNING:
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1, name
        assert {"interval", "timeout", "retries"} <= check.keys(), name
        assert services[name]["restart"] == "unless-stopped", name
    assert services["migrate"]["restart"] == services["events-store-migrate"]["restart"] == "no"  # one-shot


def test_health_checks_ask_the_right_questions(services):
    web = " ".join(services["web"]["healthcheck"]["test"])
    worker = " ".join(services["worker"]["healthcheck"]["test"])
    query_worker = " ".join(services["query-worker"]["healthcheck"]["test"])
    readiness = re.search(r"http://127\.0\.0\.1:8000(/\S+?)'", web).group(1)
    assert resolve(readiness).url_name == "ready"  # PostgreSQL and Redis reachable, not just "up"
    assert "inspect ping -d celery@$$HOSTNAME" in worker  # this worker, not any worker
    assert "inspect ping -d queries@$$HOSTNAME" in query_worker
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert services["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    assert "/nginx-health" in services["proxy"]["healthcheck"]["test"][-1]
    assert "location = /nginx-health" in (ROOT / "docker" / "nginx.conf").read_text()


def test_nothing_starts_before_what_it_needs_is_ready(services):
    for name in ("web", *WORKERS, "beat"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }, name
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["events-store-migrate"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "clickhouse": {"condition": "service_healthy"},
    }
    assert services["proxy"]["depends_on"] == {"web": {"condition": "service_healthy"}}


def test_data_lives_in_named_volumes(compose, services):
    assert set(compose["volumes"]) == {"postgres-data", "redis-data", "clickhouse-data"}
    assert "clickhouse-data:/var/lib/clickhouse" in services["clickhouse"]["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "redis-data:/data" in services["redis"]["volumes"]
    assert "--appendonly" in services["redis"]["command"]  # queued tasks survive a Redis restart
    [config] = services["proxy"]["volumes"]
    assert (ROOT / config.split(":")[0]).is_file()


def test_every_variable_an_app_container_gets_is_one_the_service_reads(services):
    read = settings_variables()
    for name in APP_SERVICES:
        unknown = set(services[name]["environment"]) - read - set(READ_ELSEWHERE)
        assert not unknown, f"{name} passes variables nothing reads: {sorted(unknown)}"
    assert "PROMETHEUS_MULTIPROC_DIR" in (ROOT / "infra" / "metrics.py").read_text()
    assert "PROMETHEUS_MULTIPROC_DIR" in (ROOT / "docker" / "entrypoint.sh").read_text()


def test_the_environment_wires_the_containers_together(services):
    env = services["web"]["environment"]
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?")  # compose refuses to start without one
    assert "@postgres:5432/" in env["DATABASE_URL"] and "${POSTGRES_PASSWORD" in env["DATABASE_URL"]
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-insights}"
    assert all(
        env[name].startswith("redis://redis:6379/")
        for name in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")
    )
    assert len({env["REDIS_URL"], env["CELERY_BROKER_URL"], env["CELERY_RESULT_BACKEND"]}) == 3
    assert env["ALLOWED_HOSTS"].startswith("127.0.0.1,")  # the health check's own requests
    assert env["BEHIND_PROXY"] == "true" and env["LOG_FORMAT"] == "json"
    for name in (*WORKERS, "beat"):  # forked processes must not share a pool opened before the fork
        assert services[name]["environment"]["DATABASE_POOL"] == "false", name
    for name in WORKERS:
        assert services[name]["environment"]["WORKER_METRICS_PORT"] == "9100"
        assert "9100" in services[name]["expose"]


def test_each_container_runs_a_command_this_repository_provides(services, dockerfile):
    commands = {name: command_of(services[name], dockerfile) for name in APP_SERVICES}

    gunicorn_app = next(arg for arg in commands["web"] if ":" in arg and not arg.startswith("0.0.0.0"))
    module, attribute = gunicorn_app.split(":")
    assert commands["web"][0] == "gunicorn" and importlib.util.find_spec(module) is not None
    assert attribute in (ROOT / Path(*module.split("."))).with_suffix(".py").read_text()
    assert commands["migrate"][:3] == ["python", "manage.py", "migrate"] and (ROOT / "manage.py").is_file()
    assert commands["events-store-migrate"] == ["python", "manage.py", "events_store_migrate"]
    assert (ROOT / "insights" / "management" / "commands" / "events_store_migrate.py").is_file()
    config = commands["web"][commands["web"].index("--config") + 1]
    assert (ROOT / config).is_file() and 'worker_class = "infra.serving.GeventWorker"' in (
        ROOT / config
    ).read_text()
    assert issubclass(importlib.import_module("infra.serving").GeventWorker, GeventWorker)
    for name in (*WORKERS, "beat"):
        assert commands[name][:3] == ["celery", "-A", "insights_api"], name
        assert "app = Celery(" in (ROOT / "insights_api" / "celery.py").read_text()
    assert commands["worker"][3] == "worker" and commands["beat"][3] == "beat"
    # Each worker serves its own queue: the query lane's capacity is the query workers' alone.
    assert commands["worker"][commands["worker"].index("--queues") + 1] == "celery"
    assert commands["query-worker"][commands["query-worker"].index("--queues") + 1] == "queries"
    from django.conf import settings

    assert settings.CELERY_TASK_ROUTES == {"insights.compute_execution": {"queue": "queries"}}
    assert "--scale" in (ROOT / "docker-compose.yml").read_text()  # the file says how to scale


def test_the_image_builds_from_files_that_exist_and_runs_unprivileged(dockerfile):
    instructions = [instruction for instruction, _ in dockerfile]
    assert instructions[0] == "FROM" and "python:3.11" in dockerfile[0][1]
    for instruction, args in dockerfile:
        if instruction == "COPY":
            *sources, _target = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), source
    [entrypoint] = [args for instruction, args in dockerfile if instruction == "ENTRYPOINT"]
    [copied] = [args for instruction, args in dockerfile if instruction == "COPY" and "entrypoint" in args]
    script = ROOT / shlex.split(copied)[0]
    assert shlex.split(copied)[1].endswith(yaml.safe_load(entrypoint)[0])
    assert script.stat().st_mode & 0o111 and script.read_text().startswith("#!/bin/sh")
    assert 'exec "$@"' in script.read_text()
    [user] = [args for instruction, args in dockerfile if instruction == "USER"]
    assert user != "root"
    assert any("collectstatic" in args for instruction, args in dockerfile if instruction == "RUN")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", "tests"} <= set(ignored)


def test_clickhouse_runs_with_what_production_needs_and_the_app_reaches_it(services):
    clickhouse = services["clickhouse"]
    env = services["web"]["environment"]
    assert clickhouse["image"].startswith("clickhouse/clickhouse-server:")
    assert clickhouse["ulimits"]["nofile"] == {"soft": 262144, "hard": 262144}
    assert "ports" not in clickhouse and clickhouse["expose"] == ["8123"]  # the compose network only
    assert clickhouse["healthcheck"]["test"][-1] == "http://127.0.0.1:8123/ping"
    assert clickhouse["environment"]["CLICKHOUSE_PASSWORD"] == "${CLICKHOUSE_PASSWORD:-insights}"
    assert clickhouse["environment"]["CLICKHOUSE_DB"] == env["CLICKHOUSE_DATABASE"]
    [config] = [volume for volume in clickhouse["volumes"] if "config.d" in volume]
    assert (ROOT / config.split(":")[0]).is_file()
    assert env["CLICKHOUSE_URL"] == "http://insights:${CLICKHOUSE_PASSWORD:-insights}@clickhouse:8123"
    assert env["EVENTS_BACKEND"] == "${EVENTS_BACKEND:-postgres}"  # PostgreSQL stays the default
