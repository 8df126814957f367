"""Access control per insight (docs/access-control.md): the level each caller gets, and what every route does with it."""

from __future__ import annotations

import pytest

from accounts.models import OrganizationMembership, User
from insights.models import AccessLevel, ActivityLog, Insight, InsightAccessOverride
from viewtracking.models import InsightViewed
from viewtracking.services import views_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(org) -> User:
    user = User.objects.create_user(email="ada@acme.test", password="x", first_name="Ada")
    OrganizationMembership.objects.create(
        organization=org, user=user, level=OrganizationMembership.Level.ADMIN
    )
    return user


@pytest.fixture
def restricted(make_insight, owner):
    """An insight of the owner's at `level`, with optional per-member `overrides` {user: level}."""

    def build(level: str, overrides: dict | None = None, **fields) -> Insight:
        insight = make_insight(name=fields.pop("name", f"A {level} insight"), **fields)
        Insight.objects.filter(id=insight.id).update(access_level=level)
        InsightAccessOverride.objects.bulk_create(
            InsightAccessOverride(insight=insight, user=user, access_level=lvl)
            for user, lvl in (overrides or {}).items()
        )
        insight.refresh_from_db()
        return insight

    return build


@pytest.fixture
def as_teammate(client_for, teammate):
    return client_for(teammate)


def listed(client, insights_url) -> dict[str, str]:
    response = client.get(insights_url)
    assert response.status_code == 200, response.content
    return {row["name"]: row["user_access_level"] for row in response.json()["results"]}


@pytest.mark.parametrize(
    ("level", "override", "expected"),
    [
        ("editor", None, "editor"),
        ("viewer", None, "viewer"),
        ("none", None, None),
        ("none", "editor", "editor"),
        ("none", "viewer", "viewer"),
        ("editor", "viewer", "viewer"),
        ("editor", "none", None),
    ],
)
def test_a_members_level_is_their_override_else_the_insights(
    as_teammate, insights_url, restricted, teammate, level, override, expected
):
    restricted(level, {teammate: override} if override else None, name="Shared")

    assert listed(as_teammate, insights_url).get("Shared") == expected


def test_creators_and_organization_admins_are_always_editors(
    client_for, insights_url, restricted, make_insight, teammate, admin, owner
):
    mine = make_insight(name="Teammate's", created_by=teammate)
    Insight.objects.filter(id=mine.id).update(access_level=AccessLevel.NONE)
    InsightAccessOverride.objects.create(insight=mine, user=teammate, access_level=AccessLevel.NONE)
    restricted("none", {admin: "none"}, name="Hidden")

    assert listed(client_for(teammate), insights_url) == {"Teammate's": "editor"}
    assert listed(client_for(admin), insights_url) == {"Teammate's": "editor", "Hidden": "editor"}
    assert listed(client_for(owner), insights_url) == {"Teammate's": "editor", "Hidden": "editor"}


def test_an_insight_hidden_from_a_member_does_not_exist_for_them_on_any_route(
    as_teammate, insights_url, restricted, teammate, owner, project
):
    hidden = restricted("none")
    views_record(project=project, user=owner, insight_ids=[hidden.id])
    detail = f"{insights_url}{hidden.id}/"

    for response in (
        as_teammate.get(detail),
        as_teammate.get(f"{insights_url}{hidden.short_id}/"),
        as_teammate.patch(detail, {"name": "mine now"}, format="json"),
        as_teammate.put(detail, {"name": "mine now"}, format="json"),
        as_teammate.get(f"{detail}activity/"),
        as_teammate.get(f"{detail}access_controls/"),
        as_teammate.put(f"{detail}access_controls/", {"access_level": "editor"}, format="json"),
        as_teammate.patch(detail, {"deleted": False}, format="json"),
    ):
        assert (response.status_code, response.json()["detail"]) == (404, "Insight not found.")
    assert as_teammate.get(insights_url, {"short_id": hidden.short_id}).json()["count"] == 0
    assert as_teammate.get(f"{insights_url}activity/").json()["count"] == 0
    assert as_teammate.get(f"{insights_url}trending/").json() == {
        "count": 0, "next": None, "previous": None, "results": []
    }  # fmt: skip
    assert (
        as_teammate.post(f"{insights_url}viewed/", {"insight_ids": [hidden.id]}, format="json").status_code
        == 201
    )
    assert not InsightViewed.objects.filter(user=teammate).exists()
    assert as_teammate.get(f"{insights_url}my_last_viewed/").json() == []
    tagged = as_teammate.post(
        f"{insights_url}bulk_update_tags/",
        {"ids": [hidden.id], "action": "add", "tags": ["x"]},
        format="json",
    )
    assert tagged.json() == {
        "updated": [],
        "skipped": [{"id": hidden.id, "reason": "Not found or no edit access"}],
    }
    assert Insight.objects.get(id=hidden.id).name == "A none insight"


def test_a_viewer_reads_everything_and_changes_nothing(
    as_teammate, insights_url, restricted, teammate, project
):
    readonly = restricted("viewer", tags=["kpi"])
    detail = f"{insights_url}{readonly.id}/"
    as_teammate.post(f"{insights_url}viewed/", {"insight_ids": [readonly.id]}, format="json")

    retrieved = as_teammate.get(detail)
    patched = as_teammate.patch(detail, {"name": "changed"}, format="json")
    put = as_teammate.put(detail, {"name": "changed"}, format="json")
    deleted = as_teammate.patch(detail, {"deleted": True}, format="json")
    tagged = as_teammate.post(
        f"{insights_url}bulk_update_tags/", {"ids": [readonly.id], "action": "set", "tags": []}, format="json"
    )
    controls = as_teammate.get(f"{detail}access_controls/")

    assert (
        retrieved.status_code,
        retrieved.json()["user_access_level"],
        retrieved.json()["effective_privilege_level"],
    ) == (200, "viewer", 21)
    assert [response.status_code for response in (patched, put, deleted, controls)] == [403, 403, 403, 403]
    assert patched.json()["detail"] == "You may view this insight but not change it."
    assert tagged.json()["skipped"] == [{"id": readonly.id, "reason": "Not found or no edit access"}]
    assert as_teammate.get(f"{detail}activity/").status_code == 200
    assert [row["user_access_level"] for row in as_teammate.get(f"{insights_url}my_last_viewed/").json()] == [
        "viewer"
    ]
    assert [
        row["user_access_level"] for row in as_teammate.get(f"{insights_url}trending/").json()["results"]
    ] == ["viewer"]
    after = Insight.objects.get(id=readonly.id)
    assert (after.name, after.deleted, list(after.tagged_items.values_list("tag__name", flat=True))) == (
        "A viewer insight", False, ["kpi"]
    )  # fmt: skip


def test_access_controls_read_and_replace_the_level_and_overrides(
    client_for, insights_url, make_insight, teammate, owner
):
    insight = make_insight(name="Finance")
    url = f"{insights_url}{insight.id}/access_controls/"
    owner_api = client_for(owner)

    before = owner_api.get(url).json()
    wanted = {"access_level": "none", "members": [{"user_id": teammate.id, "access_level": "viewer"}]}
    changed = owner_api.put(url, wanted, format="json")
    unchanged = owner_api.put(url, wanted, format="json")
    cleared = owner_api.put(url, {"access_level": "viewer"}, format="json")

    assert before == {"access_level": "editor", "members": []}
    assert changed.json() == {
        "access_level": "none",
        "members": [{"user_id": teammate.id, "access_level": "viewer"}],
    }
    assert unchanged.json() == changed.json()
    assert cleared.json() == {"access_level": "viewer", "members": []}
    [first, second] = ActivityLog.objects.filter(insight=insight, activity="updated").order_by(
        "created_at", "id"
    )
    assert first.detail["changes"] == [{
        "type": "Insight", "action": "changed", "field": "access_controls", "before": before, "after": changed.json()
    }]  # fmt: skip
    assert second.detail["changes"][0]["after"] == cleared.json()


def test_only_the_creator_and_admins_change_access_controls(
    client_for, insights_url, make_insight, teammate, admin
):
    insight = make_insight(name="Ops", created_by=teammate)
    url = f"{insights_url}{insight.id}/access_controls/"
    colleague = User.objects.create_user(email="cole@acme.test", password="x")
    OrganizationMembership.objects.create(
        organization=teammate.memberships.get().organization, user=colleague
    )

    by_editor = client_for(colleague).put(url, {"access_level": "none"}, format="json")
    by_creator = client_for(teammate).put(url, {"access_level": "viewer"}, format="json")
    by_admin = client_for(admin).put(url, {"access_level": "editor"}, format="json")
    read_by_editor = client_for(colleague).get(url)

    assert by_editor.status_code == 403
    assert (by_creator.status_code, by_admin.status_code, read_by_editor.status_code) == (200, 200, 200)
    assert Insight.objects.get(id=insight.id).access_level == "editor"


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({}, "access_level"),
        ({"access_level": "owner"}, "access_level"),
        (
            {"access_level": "viewer", "members": [{"user_id": 0, "access_level": "viewer"}]},
            "members__0__user_id",
        ),
        (
            {"access_level": "viewer", "members": [{"user_id": 1, "access_level": "admin"}]},
            "members__0__access_level",
        ),
        ({"access_level": "viewer", "members": "everyone"}, "members"),
    ],
)
def test_bad_access_controls_are_a_400_naming_the_field_and_change_nothing(
    owner_api, insights_url, make_insight, body, attr
):
    insight = make_insight()

    response = owner_api.put(f"{insights_url}{insight.id}/access_controls/", body, format="json")

    assert (response.status_code, response.json()["attr"]) == (400, attr)
    assert Insight.objects.get(id=insight.id).access_level == "editor"


def test_members_must_belong_to_the_organization_and_appear_once(
    owner_api, insights_url, make_insight, stranger, teammate
):
    url = f"{insights_url}{make_insight().id}/access_controls/"

    def editors(*users: User):
        members = [{"user_id": user.id, "access_level": "editor"} for user in users]
        return owner_api.put(url, {"access_level": "none", "members": members}, format="json")

    outsider = editors(stranger)
    twice = editors(teammate, teammate)

    assert (outsider.status_code, outsider.json()["detail"]) == (
        400,
        f"User {stranger.id} is not a member of this organization.",
    )
    assert (twice.status_code, twice.json()["detail"]) == (400, "Each member may appear once.")
    assert not InsightAccessOverride.objects.exists()


def test_a_read_only_key_reads_access_controls_but_cannot_change_them(
    client_for, insights_url, make_insight, owner
):
    url = f"{insights_url}{make_insight().id}/access_controls/"
    reader = client_for(owner, scopes=["insight:read"])

    assert reader.get(url).status_code == 200
    refused = reader.put(url, {"access_level": "none"}, format="json")
    assert (refused.status_code, refused.json()["detail"]) == (
        403,
        "API key missing required scope 'insight:write'",
    )


def test_the_list_statement_count_stays_constant_for_a_member_with_overrides(
    client_for, insights_url, restricted, teammate, django_assert_num_queries
):
    reader = client_for(teammate)
    restricted("viewer", {teammate: "editor"})
    reader.get(insights_url)  # the key's last_used_at is written on first use only

    with django_assert_num_queries(2):  # the key with the project, the page (short: no COUNT)
        assert len(reader.get(insights_url, {"limit": 200}).json()["results"]) == 1
    # 100 hidden insights, each with an override: a third shown to edit, a third to read, a third not.
    for n in range(100):
        restricted("none", {teammate: ("editor", "viewer", "none")[n % 3]}, name=f"n{n}")
    with django_assert_num_queries(2):
        visible = reader.get(insights_url, {"limit": 200}).json()["results"]
    assert len(visible) == 1 + 34 + 33


def _activity_texts(client, project, insight) -> dict[str, bytes]:
    """Both activity routes under both prefixes, as JSON and as CSV: what each answers."""
    texts = {}
    for prefix in ("projects", "environments"):
        base = f"/api/{prefix}/{project.id}/insights/"
        for route in (f"{base}{insight.id}/activity/", f"{base}activity/"):
            for format_ in ("json", "csv"):
                response = client.get(route, {"format": format_})
                assert response.status_code == 200, (route, response.content)
                texts[f"{route}?format={format_}"] = response.content
    return texts


def test_an_access_change_in_the_activity_log_shows_members_and_levels_only_to_editors(
    client_for, project, insights_url, make_insight, owner, teammate
):
    insight = make_insight(name="Payroll")
    colleague = User.objects.create_user(email="cole@acme.test", password="x", first_name="Cole")
    OrganizationMembership.objects.create(organization=project.organization, user=colleague)
    controls = {
        "access_level": "none",
        "members": [
            {"user_id": teammate.id, "access_level": "viewer"},
            {"user_id": colleague.id, "access_level": "editor"},
        ],
    }
    assert (
        client_for(owner)
        .put(f"{insights_url}{insight.id}/access_controls/", controls, format="json")
        .status_code
        == 200
    )

    as_viewer = _activity_texts(client_for(teammate), project, insight)
    as_editor = _activity_texts(client_for(colleague), project, insight)

    for route, text in as_viewer.items():
        assert b"access_controls" in text, route  # that access changed
        assert b"members" not in text and b"access_level" not in text, route  # not who got what
    for route, text in as_editor.items():
        assert b"members" in text, route
    [change] = (
        client_for(teammate)
        .get(f"{insights_url}{insight.id}/activity/")
        .json()["results"][0]["detail"]["changes"]
    )
    assert change == {
        "type": "Insight", "action": "changed", "field": "access_controls", "before": None, "after": None
    }  # fmt: skip
    [whole] = client_for(colleague).get(f"{insights_url}activity/").json()["results"][0]["detail"]["changes"]
    assert (whole["before"], whole["after"]) == ({"access_level": "editor", "members": []}, controls)
