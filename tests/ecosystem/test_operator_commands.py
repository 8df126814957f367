"""What an operator runs: `seed_demo` (the data `make run` starts with) and the API key commands."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from accounts.models import PersonalAPIKey

pytestmark = pytest.mark.django_db


def run(command: str, *args: str) -> str:
    out = io.StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def seeded(project, owner, capsys) -> tuple[APIClient, str]:
    """The demo seeded into `project` (owned by `owner`); an API client of the owner and the seed's
    progress output."""
    summary = run("seed_demo", "--project", str(project.id), "--events", "3000", "--seed", "3")
    progress = capsys.readouterr().err
    key = run("create_api_key", "--email", owner.email, "--json")
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {json.loads(key)['api_key']}")
    return client, summary + progress


def test_the_demo_gives_the_usage_routes_something_to_show(seeded, project):
    client, _ = seeded
    base = f"/api/projects/{project.id}/insights/"

    usage = client.get(f"{base}usage/?days=30").json()
    [top] = client.get(f"{base}trending/?days=90&limit=1").json()["results"]
    weekly = client.get(f"{base}{top['id']}/views/?date_from=-90d&interval=week").json()
    viewers = client.get(f"{base}{top['id']}/viewers/").json()
    stale = client.get(f"{base}?not_viewed_in_days=90&on_dashboard=false").json()

    assert usage["insights"] == 9 and usage["viewers"] == 4 and usage["views"] > 100
    assert usage["not_viewed_in_window"] >= 1 and len(usage["top_viewers"]) == 4
    assert sum(1 for point in weekly["series"] if point["view_count"]) >= 12
    assert weekly["total"]["unique_viewers"] == 4 < sum(point["unique_viewers"] for point in weekly["series"])
    assert viewers["count"] == 4
    assert [row["name"] for row in stale["results"]] == ["Bounce Rate (Legacy)"]


def test_the_demo_gives_every_insight_action_something_to_show(seeded, project):
    client, _ = seeded
    base = f"/api/projects/{project.id}/insights/"

    listed = client.get(base).json()
    trending = client.get(f"{base}trending/?days=14").json()
    mine = client.get(f"{base}my_last_viewed/").json()
    pageviews = client.get(f"{base}{mine[0]['id']}/").json()
    suggestion = client.post(f"{base}generate_metadata/", {"query": pageviews["query"]}, format="json").json()
    tagged = client.post(
        f"{base}bulk_update_tags/?dry_run=true",
        {"ids": [pageviews["id"]], "action": "add", "tags": ["demo"]},
        format="json",
    ).json()
    activity = client.get(f"{base}activity/").json()

    assert listed["count"] == 9
    assert {tag for row in listed["results"] for tag in row["tags"]} >= {
        "growth",
        "kpi",
        "revenue",
        "weekly review",
    }
    assert [row["name"] for row in listed["results"] if not row["dashboards"]] == ["Bounce Rate (Legacy)"]
    assert (
        trending["count"] >= 5
        and trending["results"][0]["view_count"] > trending["results"][-1]["view_count"]
    )
    assert len({viewer["email"] for row in trending["results"] for viewer in row["viewers"]}) >= 3
    assert [row["name"] for row in mine] == [
        "Pageviews",
        "Daily Active Users",
        "User Signed Up",
        "Pageviews by Country",
        "Signup → Purchase Conversion",  # viewed by creating it
    ]
    assert pageviews["result"][0]["count"] > 0 and len(pageviews["result"][0]["data"]) == 31
    assert suggestion["name"] == "Pageviews"
    assert tagged["updated"] == [
        {"id": pageviews["id"], "tags": ["demo", "growth", "traffic", "weekly review"]}
    ]
    assert {entry["activity"] for entry in activity["results"]} == {"created", "updated"}
    assert len({entry["user"]["email"] for entry in activity["results"]}) == 4


def test_a_breakdown_insight_of_the_demo_has_one_series_per_value(seeded, project):
    client, _ = seeded
    listed = client.get(f"/api/projects/{project.id}/insights/?search=browser").json()

    [by_browser] = listed["results"]
    result = client.get(f"/api/projects/{project.id}/insights/{by_browser['id']}/").json()["result"]

    assert len(result) >= 2 and {series["breakdown_value"] for series in result} >= {"Chrome", "Safari"}


def test_the_demo_seed_shows_progress_and_refuses_a_project_that_has_insights(seeded, project):
    _, output = seeded

    with pytest.raises(CommandError, match="already has insights"):
        run("seed_demo", "--project", str(project.id))
    assert "events: 100%" in output and "insights: 100%" in output and "views: 100%" in output
    assert "3000 events, 9 insights, 4 people" in output


def test_create_api_key_issues_a_key_with_scopes_and_a_project_limit(owner, project, stranger_project, org):
    other = org.projects.create(name="Other")

    issued = json.loads(
        run(
            "create_api_key",
            "--email",
            owner.email,
            "--scopes",
            "insight:read",
            "--projects",
            str(project.id),
            "--json",
        )
    )
    client = APIClient(HTTP_AUTHORIZATION=f"Bearer {issued['api_key']}")

    assert issued["scopes"] == ["insight:read"] and issued["projects"] == [project.id]
    assert client.get(f"/api/projects/{project.id}/insights/").status_code == 200
    assert client.post(f"/api/projects/{project.id}/insights/", {}, format="json").status_code == 403
    assert client.get(f"/api/projects/{other.id}/insights/").status_code == 403
    assert PersonalAPIKey.objects.get(id=issued["id"]).secure_value != issued["api_key"]  # a digest
    with pytest.raises(CommandError, match="not a member"):
        run("create_api_key", "--email", owner.email, "--projects", str(stranger_project.id))
    with pytest.raises(CommandError, match="Invalid scopes"):
        run("create_api_key", "--email", owner.email, "--scopes", "insight:admin")
    with pytest.raises(CommandError, match="No user"):
        run("create_api_key", "--email", "nobody@example.com")


def test_list_and_revoke_api_keys(owner, teammate, project):
    first = json.loads(run("create_api_key", "--email", owner.email, "--label", "ci", "--json"))
    second = json.loads(run("create_api_key", "--email", owner.email, "--json"))
    theirs = json.loads(run("create_api_key", "--email", teammate.email, "--json"))

    listing = run("list_api_keys", "--email", owner.email)
    revoked = run("revoke_api_key", "--prefix", first["prefix"])

    assert first["prefix"] in listing and second["prefix"] in listing and theirs["prefix"] not in listing
    assert first["api_key"] not in listing
    assert revoked.strip() == f"revoked {first['prefix']}"
    insights = f"/api/projects/{project.id}/insights/"
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {first['api_key']}").get(insights).status_code == 401
    assert APIClient(HTTP_AUTHORIZATION=f"Bearer {second['api_key']}").get(insights).status_code == 200
    with pytest.raises(CommandError, match="add --all"):
        run("revoke_api_key", "--email", owner.email)
    assert run("revoke_api_key", "--email", owner.email, "--all").count("revoked") == 1
    assert run("revoke_api_key", "--key", theirs["api_key"]).strip() == f"revoked {theirs['prefix']}"
    assert not PersonalAPIKey.objects.exists()
    with pytest.raises(CommandError, match="No such key"):
        run("revoke_api_key", "--prefix", first["prefix"])
