"""PostHog's frontend, replayed against gunicorn and a real worker (docs/posthog-clients.md).

Each test is one screen of PostHog's web app: the requests its logics make for insights and the six
actions, in the order they make them, built the way `frontend/src/lib/api.ts` builds them — a browser
session from `/api/login/`, `X-CSRFToken` read from the `posthog_csrftoken` cookie on every write,
URLs under `/api/environments/{team_id}/` (and `/api/projects/` where the app still writes them by
hand), a trailing slash only when there is no query string, query parameters encoded as its
`toParams` does — and each reads every field the screen reads.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from insights.models import Insight
from tests.ecosystem.conftest import Stack

pytestmark = [pytest.mark.live, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"  # the cast's password (tests/conftest.py)
TRENDS = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "name": "$pageview", "math": "total"}],
        "trendsFilter": {"display": "ActionsLineGraph"},
        "dateRange": {"date_from": "-7d"},
    },
    "full": True,
}
SQL_INSIGHT = {
    "kind": "DataVisualizationNode",
    "source": {"kind": "HogQLQuery", "query": "select event, count() from events group by event"},
    "display": "ActionsBar",
}
EVENTS_TABLE = {  # the activity page's table, saved as an insight
    "kind": "DataTableNode",
    "source": {"kind": "EventsQuery", "select": ["*", "event", "person", "timestamp"], "after": "-24h"},
    "full": True,
}
# What the saved-insights list, the insight scene and dashboards read of an insight.
LIST_FIELDS = {
    "id", "short_id", "name", "derived_name", "description", "query", "favorited", "tags", "created_by",
    "created_at", "last_modified_at", "last_viewed_at", "user_access_level", "last_refresh", "dashboard_tiles",
    "saved", "dashboards", "updated_at", "refreshing", "filters",
}  # fmt: skip


class ApiError(Exception):
    """What api.ts throws for a non-2xx answer: its status and the body's `detail`, `code`, `attr`."""

    def __init__(self, response: httpx.Response) -> None:
        body = response.json()
        super().__init__(f"{response.status_code} {body}")
        self.status, self.detail, self.code, self.attr = (
            response.status_code, body.get("detail"), body.get("code"), body.get("attr"),
        )  # fmt: skip


def to_params(params: dict[str, Any]) -> str:
    """api.ts's `toParams`: nulls dropped, objects and arrays as JSON, booleans as true/false."""
    encoded = []
    for name, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = str(value).lower()
        elif isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        encoded.append(f"{name}={quote(str(value), safe='')}")
    return "&".join(encoded)


class Browser:
    """PostHog's web app in a browser: a cookie jar, and api.ts's way of sending requests."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, timeout=30)
        self.session_id = str(uuid.uuid4())

    def login(self, email: str) -> None:
        response = self.http.post("/api/login/", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text

    @staticmethod
    def url(path: str, params: dict[str, Any] | None = None) -> str:
        """api.ts's `normalizeUrl`: a leading slash, and a trailing one only without a query string."""
        query = to_params(params or {})
        if query:
            return f"/{path.strip('/')}?{query}"
        return f"/{path.strip('/')}/"

    def _send(self, method: str, url: str, body: Any = None) -> Any:
        headers = {"X-POSTHOG-SESSION-ID": self.session_id}
        if method != "GET":
            headers["X-CSRFToken"] = self.http.cookies.get("posthog_csrftoken", "")
            headers["Content-Type"] = (
                "application/x-www-form-urlencoded" if method == "DELETE" else "application/json"
            )
        content = json.dumps(body).encode() if body is not None else None
        response = self.http.request(method, url, content=content, headers=headers)
        if not response.is_success:
            raise ApiError(response)
        return None if response.status_code in (204, 205) or not response.content else response.json()

    def get(self, url: str) -> Any:
        return self._send("GET", url)

    def create(self, url: str, body: Any = None) -> Any:
        return self._send("POST", url, body)

    def update(self, url: str, body: Any) -> Any:
        return self._send("PATCH", url, body)

    def delete(self, url: str) -> Any:
        return self._send("DELETE", url)


@pytest.fixture
def browser(stack: Stack, owner) -> Browser:
    logged_in = Browser(stack.url)
    logged_in.login(owner.email)
    return logged_in


@pytest.fixture
def env(project) -> str:
    """PostHog's frontend's own prefix for a team's routes."""
    return f"api/environments/{project.id}"


def test_writes_without_the_cookies_token_are_refused_as_a_browser_would_see_it(stack, owner, env):
    browser = Browser(stack.url)
    browser.login(owner.email)
    token = browser.http.cookies["posthog_csrftoken"]
    browser.http.cookies.delete("posthog_csrftoken")

    with pytest.raises(ApiError) as refused:
        browser.create(Browser.url(f"{env}/insights"), {"name": "x"})
    browser.http.cookies.set("posthog_csrftoken", token)
    created = browser.create(Browser.url(f"{env}/insights"), {"name": "x"})

    assert (refused.value.status, "CSRF" in refused.value.detail) == (403, True)
    assert created["name"] == "x"


def test_the_insight_editor_saves_reloads_renames_and_names_an_insight(browser, env, project, make_dashboard):
    dashboard = make_dashboard("Growth")

    # insightLogic.saveInsight, a new insight: everything the editor holds, and its folder.
    created = browser.create(
        Browser.url(f"{env}/insights"),
        {"name": "", "derived_name": "Pageview count", "description": "", "favorited": False, "query": TRENDS,
         "deleted": False, "saved": True, "dashboards": [dashboard.id], "tags": ["Growth"],
         "_create_in_folder": "Unfiled/Insights"},
    )  # fmt: skip
    # insightSceneLogic loads it by short id, asking for results asynchronously.
    loaded = browser.get(
        Browser.url(f"{env}/insights", {"short_id": created["short_id"], "refresh": "async"})
    )
    # The "generate name and description" button, then setInsightMetadata's PATCH.
    suggested = browser.create(Browser.url(f"{env}/insights/generate_metadata"), {"query": TRENDS})
    renamed = browser.update(
        Browser.url(f"{env}/insights/{created['id']}"),
        {"name": suggested["name"], "description": suggested["description"]},
    )
    # insightUsageLogic reports the view; the project homepage then lists it first.
    viewed = browser.create(
        Browser.url(f"api/environments/{project.id}/insights/viewed"), {"insight_ids": [created["id"]]}
    )
    recent = browser.get(Browser.url(f"api/environments/{project.id}/insights/my_last_viewed"))

    [row] = loaded["results"]
    assert set(row) >= LIST_FIELDS
    assert (row["id"], row["query"], row["derived_name"], row["saved"]) == (
        created["id"],
        TRENDS,
        "Pageview count",
        True,
    )
    assert (row["tags"], row["dashboards"], [tile["dashboard_id"] for tile in row["dashboard_tiles"]]) == (
        ["growth"], [dashboard.id], [dashboard.id]
    )  # fmt: skip
    assert (row["user_access_level"], row["filters"], row["created_by"]["first_name"]) == (
        "editor",
        {},
        "Olive",
    )
    assert suggested["name"] == "Pageviews" and suggested["description"]
    assert (renamed["name"], renamed["description"]) == (suggested["name"], suggested["description"])
    assert viewed is None  # 201 with an empty body, which api.ts reads as null
    assert isinstance(recent, list) and recent[0]["short_id"] == created["short_id"]
    assert {"short_id", "name", "derived_name", "last_modified_at", "query", "last_viewed_at"} <= set(
        recent[0]
    )


def test_the_saved_insights_page_lists_filters_and_pages_as_the_frontend_asks(
    browser, env, owner, make_dashboard
):
    dashboard = make_dashboard()
    for name, query in (
        ("Daily pageviews", TRENDS),
        ("Events by name", SQL_INSIGHT),
        ("Chrome events", EVENTS_TABLE),
    ):
        browser.create(
            Browser.url(f"{env}/insights"),
            {"name": name, "query": query, "saved": True, "dashboards": [dashboard.id]},
        )
    browser.create(Browser.url(f"{env}/insights"), {"name": "A draft", "query": TRENDS, "saved": False})

    def page(**params: Any) -> dict[str, Any]:
        # savedInsightsLogic writes this URL by hand, with the slash before the query string.
        defaults = {"order": "-last_modified_at", "limit": 30, "offset": 0, "saved": True, "basic": True}
        return browser.get(f"/{env}/insights/?{to_params({**defaults, **params})}")

    everything = page()
    sql_only = page(insight="SQL")
    mine_on_dashboard = page(created_by=owner.id, dashboards=[dashboard.id], search="events")
    second_page = page(limit=2, offset=2)

    assert everything["count"] == 3
    assert [row["name"] for row in everything["results"]] == [
        "Chrome events",
        "Events by name",
        "Daily pageviews",
    ]
    assert all(set(row) >= LIST_FIELDS for row in everything["results"])
    assert [row["name"] for row in sql_only["results"]] == ["Events by name"]
    assert [row["name"] for row in mine_on_dashboard["results"]] == ["Chrome events", "Events by name"]
    assert [row["name"] for row in second_page["results"]] == ["Daily pageviews"] and second_page[
        "next"
    ] is None


def test_a_dashboard_loads_its_tiles_reports_their_views_and_cancels_a_refresh(
    browser, env, project, make_dashboard, pageviews
):
    dashboard = make_dashboard()
    ids = [
        browser.create(
            Browser.url(f"{env}/insights"), {"name": name, "query": query, "dashboards": [dashboard.id]}
        )["id"]
        for name, query in (("Trend", TRENDS), ("SQL", SQL_INSIGHT))
    ]
    dashboard_query_id = str(uuid.uuid4())

    # dashboardLogic refreshes every tile (getInsightWithRetry), then reports them all viewed.
    tiles = [
        browser.get(Browser.url(f"{env}/insights/{insight_id}/", {
            "refresh": "blocking", "from_dashboard": dashboard.id,
            "client_query_id": f"{dashboard_query_id}::{uuid.uuid4()}", "session_id": browser.session_id,
        }))
        for insight_id in ids
    ]  # fmt: skip
    legacy_refresh = browser.get(
        Browser.url(f"{env}/insights/{ids[0]}/", {"refresh": True, "from_dashboard": dashboard.id})
    )
    browser.create(Browser.url(f"{env}/insights/viewed"), {"insight_ids": ids})
    # Leaving mid-refresh: dashboardLogic cancels through insights; newer dataNodeLogic through query.
    cancelled = browser.create(
        Browser.url(f"{env}/insights/cancel"), {"client_query_id": f"{dashboard_query_id}::x"}
    )
    deleted = browser.delete(Browser.url(f"api/projects/{project.id}/query/{dashboard_query_id}"))

    trend, sql = tiles
    assert trend["result"][0]["count"] == 29 and trend["query_status"] is None
    assert trend["is_cached"] is False and trend["last_refresh"] is not None
    assert (sql["result"], sql["last_refresh"]) == (None, None)
    assert all(tile["dashboard_tiles"][0]["dashboard_id"] == dashboard.id for tile in tiles)
    assert all(tile["user_access_level"] == "editor" for tile in tiles)
    assert legacy_refresh["is_cached"] is False and legacy_refresh["last_refresh"] > trend["last_refresh"]
    assert cancelled == {"cancelled": False} and deleted is None
    listed = browser.get(Browser.url(f"{env}/insights", {"basic": True, "short_id": trend["short_id"]}))
    assert listed["results"][0]["last_refresh"] == legacy_refresh["last_refresh"]


def test_the_homepage_shows_trending_insights_with_their_viewers(stack, browser, env, teammate, project):
    trending_id = browser.create(Browser.url(f"{env}/insights"), {"name": "Popular", "query": TRENDS})["id"]
    browser.create(Browser.url(f"{env}/insights"), {"name": "Quiet", "query": TRENDS})
    colleague = Browser(stack.url)
    colleague.login(teammate.email)
    colleague.create(Browser.url(f"{env}/insights/viewed"), {"insight_ids": [trending_id]})

    # trendingInsightsLogic: `api.insights.trending({days: 7, limit: 5})`, no slash before the query.
    answer = browser.get(Browser.url(f"{env}/insights/trending", {"days": 7, "limit": 5}))

    rows = answer["results"] if isinstance(answer, dict) else answer  # the logic accepts both
    assert [row["name"] for row in rows] == ["Popular", "Quiet"]
    assert (rows[0]["view_count"], sorted(viewer["first_name"] for viewer in rows[0]["viewers"])) == (
        2,
        ["Olive", "Theo"],
    )
    assert all({"uuid", "email", "first_name"} <= set(viewer) for viewer in rows[0]["viewers"])
    assert {"short_id", "name", "derived_name", "last_modified_at", "query"} <= set(rows[0])


def test_bulk_tagging_from_the_saved_insights_table(browser, env, project, make_insight, teammate):
    first, second = make_insight(name="One", tags=["existing"]), make_insight(name="Two")
    # BulkUpdateTagsButton writes the projects URL by hand, with the project id.
    url = Browser.url(f"api/projects/{project.id}/insights/bulk_update_tags")

    added = browser.create(url, {"ids": [first.id, second.id, 999999], "action": "add", "tags": ["Q3"]})
    cleared = browser.create(url, {"ids": [second.id], "action": "set", "tags": []})
    with pytest.raises(ApiError) as refused:
        browser.create(url, {"ids": [first.id], "action": "upsert", "tags": ["x"]})

    assert sorted((row["id"], row["tags"]) for row in added["updated"]) == [
        (first.id, ["existing", "q3"]), (second.id, ["q3"])
    ]  # fmt: skip
    assert added["skipped"] == [{"id": 999999, "reason": "Not found or no edit access"}]
    assert cleared["updated"] == [{"id": second.id, "tags": []}]
    assert (refused.value.status, refused.value.attr) == (400, "action")


def test_delete_with_undo_patches_the_whole_insight_and_restores_it(browser, project):
    # deleteWithUndo: `projects/<project id>/insights`, the whole insight spread, then `deleted`.
    insights = f"api/projects/{project.id}/insights"
    insight = browser.create(
        Browser.url(insights), {"name": "Short-lived", "query": EVENTS_TABLE, "tags": ["t"]}
    )
    whole = browser.get(Browser.url(f"{insights}/{insight['id']}"))

    browser.update(Browser.url(f"{insights}/{insight['id']}"), {**whole, "deleted": True})
    with pytest.raises(ApiError) as gone:
        browser.get(Browser.url(f"{insights}/{insight['id']}"))
    restored = browser.update(Browser.url(f"{insights}/{insight['id']}"), {**whole, "deleted": False})

    assert gone.value.status == 404
    assert (restored["deleted"], restored["name"], restored["tags"], restored["query"]) == (
        False,
        "Short-lived",
        ["t"],
        EVENTS_TABLE,
    )
    assert Insight.objects.get(id=insight["id"]).deleted is False


def test_the_history_tab_pages_the_activity_log(browser, env, make_insight):
    for n in range(3):
        make_insight(name=f"Insight {n}")

    # api.activity.listLegacy({scope: Insight}, page): `…/insights/activity?page=N&limit=2`.
    first = browser.get(Browser.url(f"{env}/insights/activity", {"page": 1, "limit": 2}))
    second = browser.get(Browser.url(f"{env}/insights/activity", {"page": 2, "limit": 2}))

    assert first["count"] == 3
    assert [entry["detail"]["name"] for entry in first["results"] + second["results"]] == [
        "Insight 2", "Insight 1", "Insight 0"
    ]  # fmt: skip
    assert {"user", "activity", "scope", "item_id", "detail", "created_at"} <= set(first["results"][0])
    assert first["next"] is not None and second["next"] is None
