"""A Python SDK generated from the live `/api/schema/` with openapi-python-client (and the template
in sdk/, which adds the CSV alternative), used — not raw HTTP — for insight create, list and
retrieve, the six insight actions and the query route, against gunicorn and a real worker.

The client raises on any status the schema does not document, so every answer seen here is one the
schema promises, parsed into the type it promises.
"""

from __future__ import annotations

import csv
import importlib
import inspect
import io
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.ecosystem.conftest import Stack
from tests.ecosystem.generated import generated_client
from tests.live import events_table_locked, http, live_server, queries_waiting_on_events, wait_until

pytestmark = [pytest.mark.sdk, pytest.mark.live, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
TRENDS = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "dateRange": {"date_from": "-7d"},
}


@pytest.fixture(scope="module")
def sdk(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """`insights_client`, generated from the running server's schema into a temporary directory."""
    with generated_client(
        "insights_client", tmp_path_factory.mktemp("sdk"), "--url", f"{stack.url}/api/schema/",
        "--config", ROOT / "sdk" / "config.yml", "--custom-template-path", ROOT / "sdk",
    ) as client:  # fmt: skip
        yield client


def module(sdk: ModuleType, name: str) -> ModuleType:
    """An operation's module: `insights_list`, `query_create`, `environments_insights_list`, …"""
    tag = name.removeprefix("environments_").split("_", 1)[0]  # the alias keeps its resource's tag
    return importlib.import_module(
        f"{sdk.__name__}.api.{'auth' if tag in ('login', 'logout', 'users') else tag}.{name}"
    )


@pytest.fixture
def client_of(sdk: ModuleType, stack: Stack, key_for):
    """An SDK client for `user` (API key with `scopes`), raising on any undocumented status."""

    def build(user, scopes=None, *, url: str | None = None):
        return sdk.AuthenticatedClient(
            base_url=url or stack.url,
            token=key_for(user, scopes),
            raise_on_unexpected_status=True,
            timeout=30,
        )

    return build


@pytest.fixture
def owner_sdk(client_of, owner):
    return client_of(owner)


def test_the_generated_client_types_every_response_of_every_operation(sdk, stack):
    schema = yaml.safe_load(http(f"{stack.url}/api/schema/").content)
    operations = [op for methods in schema["paths"].values() for op in methods.values()]

    for operation in operations:
        returned = str(
            inspect.signature(module(sdk, operation["operationId"]).sync_detailed).return_annotation
        )
        bodiless = [
            status for status, response in operation["responses"].items() if "content" not in response
        ]
        assert ("Any" in returned) == bool(bodiless), (operation["operationId"], returned)
        assert "ErrorEnvelope" in returned and "str" in returned, (operation["operationId"], returned)


def test_insights_are_created_listed_and_retrieved_through_the_sdk(sdk, owner_sdk, project, pageviews):
    models = sdk.models
    created = module(sdk, "insights_create").sync_detailed(
        project.id,
        client=owner_sdk,
        body=models.InsightWriteRequest(
            name="Pageviews",
            tags=["  Growth ", "kpi"],
            query=models.InsightVizNode.from_dict({"kind": "InsightVizNode", "source": TRENDS}),
        ),
    )
    insight = created.parsed
    listed = module(sdk, "insights_list").sync(
        project.id, client=owner_sdk, order=sdk.models.InsightsListOrder.NAME_DESC
    )
    basic = module(sdk, "insights_list").sync(project.id, client=owner_sdk, basic=True)
    retrieved = module(sdk, "insights_retrieve").sync(project.id, insight.short_id, client=owner_sdk)

    assert created.status_code == 201 and isinstance(insight, models.Insight)
    assert insight.tags == ["growth", "kpi"] and isinstance(insight.query, models.InsightVizNode)
    assert (
        isinstance(insight.query.source, models.TrendsQuery)
        and insight.query.source.series[0].event == "$pageview"
    )
    assert isinstance(listed, models.PaginatedInsightListItemList) and listed.count == 1
    assert listed.results[0].id == insight.id and listed.results[0].deleted is False
    assert basic.results[0].deleted is sdk.types.UNSET and basic.results[0].order is sdk.types.UNSET
    assert isinstance(retrieved, models.InsightRetrieve) and retrieved.id == insight.id
    [series] = retrieved.result
    assert isinstance(series, models.TrendsSeries) and series.count == 29 and len(series.data) == 8
    assert retrieved.last_refresh.tzinfo is not None


def test_the_six_insight_actions_through_the_sdk(sdk, owner_sdk, client_of, teammate, project, make_insight):
    models = sdk.models
    first, second = make_insight(name="First"), make_insight(name="Second")
    teammate_sdk = client_of(teammate)

    viewed = module(sdk, "insights_viewed").sync_detailed(
        project.id, client=owner_sdk, body=models.ViewedRequest(insight_ids=[first.id, second.id, 10**9])
    )
    module(sdk, "insights_viewed").sync_detailed(
        project.id, client=teammate_sdk, body=models.ViewedRequest(insight_ids=[first.id])
    )
    mine = module(sdk, "insights_my_last_viewed").sync(project.id, client=owner_sdk)
    trending = module(sdk, "insights_trending").sync(project.id, client=owner_sdk, days=1, limit=1)
    tagged = module(sdk, "insights_bulk_update_tags").sync(
        project.id,
        client=owner_sdk,
        body=models.BulkUpdateTagsRequest(
            ids=[second.id, first.id, 404], action=models.TagActionEnum.ADD, tags=["KPI"]
        ),
    )
    suggested = module(sdk, "insights_generate_metadata").sync(
        project.id,
        client=owner_sdk,
        body=models.GenerateMetadataRequest(query=models.TrendsQuery.from_dict(TRENDS)),
    )
    not_running = module(sdk, "insights_cancel").sync(
        project.id, client=owner_sdk, body=models.CancelRequest(client_query_id="nothing-running")
    )

    assert viewed.status_code == 201 and viewed.parsed is None
    assert {insight.id for insight in mine} == {first.id, second.id}  # viewed in one call: tied
    assert all(isinstance(insight, models.InsightBasic) and insight.last_viewed_at for insight in mine)
    assert isinstance(trending, models.PaginatedTrendingInsightList) and trending.count == 2
    assert trending.results[0].id == first.id and trending.results[0].view_count == 2
    assert {viewer.email for viewer in trending.results[0].viewers} == {
        "owner@acme.test",
        "teammate@acme.test",
    }
    assert trending.next_ is not None and trending.previous is None
    assert [(row.id, row.tags) for row in tagged.updated] == [(second.id, ["kpi"]), (first.id, ["kpi"])]
    assert [(row.id, row.reason) for row in tagged.skipped] == [(404, "Not found or no edit access")]
    assert isinstance(suggested, models.MetadataSuggestion) and suggested.name == "Pageviews"
    assert suggested.provider == models.ProviderEnum.HEURISTIC and suggested.fallback is False
    assert isinstance(not_running, models.CancelResult) and not_running.cancelled is False


def test_insight_hygiene_through_the_sdk_bulk_delete_restore_and_the_projects_tags(
    sdk, owner_sdk, client_of, teammate, project, make_insight
):
    models = sdk.models
    first, second = (
        make_insight(name="First", tags=["q4", "kpi"]),
        make_insight(name="Second", tags=["q4", "Q4 Review"]),
    )

    previewed = module(sdk, "insights_bulk_delete").sync(
        project.id, client=owner_sdk, body=models.BulkDeleteRequest(ids=[first.id, 404]), dry_run=True
    )
    deleted = module(sdk, "insights_bulk_delete").sync(
        project.id, client=owner_sdk, body=models.BulkDeleteRequest(ids=[first.id, second.id])
    )
    restored = module(sdk, "environments_insights_bulk_restore").sync(
        project.id, client=owner_sdk, body=models.BulkDeleteRequest(ids=[first.id])
    )
    merged = module(sdk, "tags_rename").sync(
        project.id,
        client=owner_sdk,
        body=models.TagRenameRequest.from_dict({"from": "Q4", "to": "q4 review"}),
    )
    names = module(sdk, "tags_list").sync(project.id, client=owner_sdk)
    usage = module(sdk, "environments_tags_list").sync(project.id, client=owner_sdk, usage=True)
    dropped = module(sdk, "tags_delete_tag").sync(
        project.id, client=owner_sdk, body=models.TagDeleteRequest(name="kpi")
    )
    refused = module(sdk, "tags_delete_tag").sync_detailed(
        project.id, client=client_of(teammate), body=models.TagDeleteRequest(name="q4 review")
    )

    assert isinstance(previewed, models.BulkDeleteResult)
    assert [(row.id, row.deleted) for row in previewed.updated] == [(first.id, True)]
    assert [(row.id, row.reason) for row in previewed.skipped] == [(404, "Not found or no edit access")]
    assert [row.id for row in deleted.updated] == [first.id, second.id]
    assert [(row.id, row.deleted) for row in restored.updated] == [(first.id, False)]
    assert (
        isinstance(merged, models.TagChangeResult) and merged.insights == 2
    )  # second was deleted: still renamed
    assert names == ["kpi", "q4 review"]  # of live insights only
    assert [(row.name, row.insights, row.last_used_at) for row in usage] == [
        ("kpi", 1, None),
        ("q4 review", 1, None),
    ]
    assert dropped.insights == 1
    assert refused.status_code == 403 and isinstance(refused.parsed, models.ErrorEnvelope)


def test_usage_analytics_through_the_sdk(sdk, owner_sdk, client_of, teammate, project, make_insight):
    models = sdk.models
    watched, ignored = make_insight(name="Watched"), make_insight(name="Ignored")
    for client in (owner_sdk, client_of(teammate), owner_sdk):
        module(sdk, "insights_viewed").sync_detailed(
            project.id, client=client, body=models.ViewedRequest(insight_ids=[watched.id])
        )

    views = module(sdk, "insights_views").sync(
        project.id, watched.id, client=owner_sdk, date_from="-6d", interval=models.UsageIntervalEnum.DAY
    )
    viewers = module(sdk, "insights_viewers").sync(project.id, watched.id, client=owner_sdk, days=7, limit=1)
    usage = module(sdk, "insights_usage").sync(project.id, client=owner_sdk, days=7)
    stale = module(sdk, "insights_list").sync(project.id, client=owner_sdk, not_viewed_in_days=7)

    assert isinstance(views, models.InsightViews) and len(views.series) == 7
    assert (views.total.view_count, views.total.unique_viewers) == (3, 2)
    assert (views.series[-1].view_count, views.series[0].view_count) == (3, 0)
    assert isinstance(viewers, models.PaginatedInsightViewerList) and viewers.count == 2
    assert viewers.results[0].user.email == "owner@acme.test" and viewers.results[0].view_count == 2
    assert viewers.next_ is not None
    assert isinstance(usage, models.InsightUsage)
    assert (usage.insights, usage.viewed, usage.not_viewed_in_window, usage.views, usage.viewers) == (
        2,
        1,
        1,
        3,
        2,
    )
    assert [(top.user.email, top.view_count) for top in usage.top_viewers] == [
        ("owner@acme.test", 2),
        ("teammate@acme.test", 1),
    ]
    assert [row.id for row in stale.results] == [ignored.id]


def test_access_controls_through_the_sdk_hide_an_insight_from_a_member(
    sdk, owner_sdk, client_of, teammate, project, make_insight
):
    models = sdk.models
    insight = make_insight(name="Payroll")
    teammate_sdk = client_of(teammate)

    before = module(sdk, "insights_access_controls").sync(project.id, insight.id, client=owner_sdk)
    changed = module(sdk, "insights_access_controls_update").sync(
        project.id,
        insight.id,
        client=owner_sdk,
        body=models.AccessControlsRequest(
            access_level=models.AccessLevelEnum.NONE,
            members=[
                models.MemberAccessRequest(user_id=teammate.id, access_level=models.AccessLevelEnum.VIEWER)
            ],
        ),
    )
    seen = module(sdk, "insights_retrieve").sync(project.id, insight.id, client=teammate_sdk)
    refused = module(sdk, "insights_partial_update").sync_detailed(
        project.id, insight.id, client=teammate_sdk, body=models.PatchedInsightWriteRequest(name="Mine")
    )

    assert isinstance(before, models.AccessControls) and before.access_level == models.AccessLevelEnum.EDITOR
    assert changed.access_level == models.AccessLevelEnum.NONE
    assert [(member.user_id, member.access_level) for member in changed.members] == [
        (teammate.id, models.AccessLevelEnum.VIEWER)
    ]
    assert seen.user_access_level == models.AccessLevelEnum.VIEWER
    assert refused.status_code == 403 and isinstance(refused.parsed, models.ErrorEnvelope)


def test_cancel_through_the_sdk_stops_a_running_query_of_the_caller(sdk, owner_sdk, project, pageviews):
    models = sdk.models
    answers = []
    run = threading.Thread(
        target=lambda: answers.append(
            module(sdk, "query_create").sync_detailed(
                project.id,
                client=owner_sdk,
                body=models.QueryRunRequest(
                    query=models.TrendsQuery.from_dict(TRENDS),
                    client_query_id="sdk-cancel-1",
                    refresh=models.RefreshEnum.FORCE_BLOCKING,
                ),
            )
        )
    )
    with events_table_locked():
        run.start()
        wait_until(lambda: queries_waiting_on_events() >= 1, what="the query to block on the events table")
        cancelled = module(sdk, "insights_cancel").sync(
            project.id, client=owner_sdk, body=models.CancelRequest(client_query_id="sdk-cancel-1")
        )
        run.join(10)

    assert isinstance(cancelled, models.CancelResult) and cancelled.cancelled is True
    [answer] = answers
    assert answer.status_code == 400
    assert isinstance(answer.parsed, models.ErrorEnvelope) and answer.parsed.code == "query_cancelled"


def test_the_query_route_through_the_sdk_blocking_and_async(sdk, owner_sdk, project, pageviews):
    models, run = sdk.models, module(sdk, "query_create")

    blocking = run.sync_detailed(
        project.id, client=owner_sdk, body=models.QueryRunRequest(query=models.TrendsQuery.from_dict(TRENDS))
    )
    started = run.sync_detailed(
        project.id,
        client=owner_sdk,
        body=models.QueryRunRequest(
            query=models.TrendsQuery.from_dict(TRENDS), refresh=models.RefreshEnum.FORCE_ASYNC
        ),
    )
    status = module(sdk, "query_retrieve")
    query_id = started.parsed.query_status.id
    deadline = time.monotonic() + 60  # bounds a hang only
    while (
        not (done := status.sync(project.id, query_id, client=owner_sdk)).complete
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)

    assert blocking.status_code == 200 and isinstance(blocking.parsed, models.QueryResponse)
    assert blocking.parsed.results[0].count == 29 and blocking.headers["X-Coalesced"] in ("leader", "off")
    assert (
        started.status_code == 202
        and started.parsed.results is None
        and started.parsed.query_status.complete is False
    )
    assert isinstance(done, models.QueryStatus) and done.complete and not done.error
    assert [series.count for series in done.results] == [29]


def test_the_csv_alternative_is_typed_as_text(sdk, owner_sdk, project, make_insight):
    make_insight(name="=HYPERLINK(1)")

    answer = module(sdk, "insights_list").sync_detailed(
        project.id, client=owner_sdk, format_=sdk.models.Format.CSV
    )

    assert isinstance(answer.parsed, str)
    assert answer.headers["Content-Disposition"] == 'attachment; filename="insights.csv"'
    [row] = list(csv.DictReader(io.StringIO(answer.parsed)))
    assert row["name"] == "'=HYPERLINK(1)" and answer.headers["X-Total-Count"] == "1"


def test_documented_errors_arrive_as_the_typed_envelope(
    sdk, client_of, owner, stranger, stranger_project, project
):
    models = sdk.models
    bulk, create = module(sdk, "insights_bulk_update_tags"), module(sdk, "insights_create")
    owner_sdk, reader = client_of(owner), client_of(owner, ["insight:read"])
    nobody = sdk.AuthenticatedClient(
        base_url=owner_sdk._base_url, token="ins_not-a-key", raise_on_unexpected_status=True
    )

    invalid = bulk.sync_detailed(
        project.id,
        client=owner_sdk,
        body=models.BulkUpdateTagsRequest(ids=[], action=models.TagActionEnum.SET, tags=[]),
    )
    unauthenticated = bulk.sync_detailed(
        project.id,
        client=nobody,
        body=models.BulkUpdateTagsRequest(ids=[1], action=models.TagActionEnum.SET, tags=[]),
    )
    forbidden = create.sync_detailed(project.id, client=reader, body=models.InsightWriteRequest(name="x"))
    hidden = create.sync_detailed(
        stranger_project.id, client=owner_sdk, body=models.InsightWriteRequest(name="x")
    )
    huge = create.sync_detailed(
        project.id,
        client=owner_sdk,
        body=models.InsightWriteRequest(
            query=models.TrendsQuery.from_dict({**TRENDS, "pad": "x" * 3_000_000})
        ),
    )

    for answer, status, code in (
        (invalid, 400, "min_length"),
        (unauthenticated, 401, "authentication_failed"),
        (forbidden, 403, "permission_denied"),
        (hidden, 404, "not_found"),
        (huge, 413, "request_too_large"),
    ):
        assert answer.status_code == status, answer.content
        assert isinstance(answer.parsed, models.ErrorEnvelope) and answer.parsed.code == code, answer.parsed
    assert invalid.parsed.attr == "ids" and invalid.parsed.type_ == models.ErrorTypeEnum.VALIDATION_ERROR
    assert unauthenticated.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    assert forbidden.parsed.detail == "API key missing required scope 'insight:write'"


def test_a_throttled_call_arrives_as_429_with_retry_after(sdk, stack, client_of, owner, project, tmp_path):
    models = sdk.models
    with live_server(
        tmp_path,
        redis_url=stack.env["REDIS_URL"],
        workers=1,
        **{**stack.env, "THROTTLE_AI_PER_PROJECT": "1/hour"},
    ) as strict:
        client = client_of(owner, url=strict.url)
        suggest = module(sdk, "insights_generate_metadata")
        body = models.GenerateMetadataRequest(query=models.TrendsQuery.from_dict(TRENDS))
        allowed = suggest.sync_detailed(project.id, client=client, body=body)
        throttled = suggest.sync_detailed(project.id, client=client, body=body)

    assert allowed.status_code == 200
    assert throttled.status_code == 429 and isinstance(throttled.parsed, models.ErrorEnvelope)
    assert (
        throttled.parsed.type_ == models.ErrorTypeEnum.THROTTLED_ERROR
        and int(throttled.headers["Retry-After"]) > 0
    )
