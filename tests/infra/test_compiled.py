"""Statements shared between requests (infra/db/compiled.py): compiled twice with different
stand-ins, kept only when both agree, and run with each request's own project and caller."""

from __future__ import annotations

import pytest

from accounts.models import OrganizationMembership, Project, User
from infra.db import compiled
from infra.db.compiled import Markers, prepare, prepare_shared
from insights.models import Insight, InsightAccessOverride


def test_a_statement_whose_two_compilations_agree_is_shared_and_runs_with_each_requests_values(
    make_insight, project, stranger_project
):
    ours, theirs = make_insight(name="kept"), make_insight(name="kept", in_project=stranger_project)

    statement = prepare_shared(
        lambda markers: prepare(
            Insight.objects.filter(project_id=markers.number("project"), name="kept").values_list("id"),
            markers,
        )
    )

    assert [row.id for row in statement.rows(project=project.id)] == [ours.id]
    assert [row.id for row in statement.rows(project=stranger_project.id)] == [theirs.id]


def test_a_stand_in_turned_into_another_value_is_refused_though_no_text_search_could_find_it(db):
    # `id + 1` is a fixed number nobody marked: compiled once, it would run with the first caller's
    # stand-in plus one for every request. The second compilation's number differs, and says so.
    def build(markers: Markers):
        return prepare(Insight.objects.filter(id=markers.number("lookup") + 1).values_list("id"), markers)

    with pytest.raises(ValueError, match="Parameter 1"):
        prepare_shared(build)


def test_a_stand_in_inside_a_json_value_is_refused_whatever_the_parameters_type(db):
    def build(markers: Markers):
        wanted = {"kind": markers.text("kind")}  # a JSON parameter: an adapter, not text
        return prepare(Insight.objects.filter(query__contains=wanted).values_list("id"), markers)

    with pytest.raises(ValueError, match="cannot be shared"):
        prepare_shared(build)


@pytest.fixture
def colleague(org) -> User:
    user = User.objects.create_user(email="colleague@acme.test", password="correct horse battery")
    OrganizationMembership.objects.create(
        organization=org, user=user, level=OrganizationMembership.Level.MEMBER
    )
    return user


def test_two_users_and_two_projects_run_one_cached_list_statement_and_each_sees_only_their_own_rows(
    make_insight, client_for, project, org, teammate, colleague
):
    second_site = Project.objects.create(organization=org, name="Second site")
    make_insight(name="Open to the team")
    hidden = make_insight(name="Only for the colleague")
    Insight.objects.filter(id=hidden.id).update(access_level="none")
    InsightAccessOverride.objects.create(insight=hidden, user=colleague, access_level="viewer")
    make_insight(name="On the second site", in_project=second_site)
    compiled._COMPILED.clear()  # so the first request below compiles the statement the others reuse

    def names(user: User, on: Project) -> list[str]:
        response = client_for(user).get(f"/api/projects/{on.id}/insights/?order=name")
        assert response.status_code == 200, response.content
        return [row["name"] for row in response.json()["results"]]

    seen = {
        "teammate, first site": names(teammate, project),
        "colleague, first site": names(colleague, project),
        "teammate, second site": names(teammate, second_site),
        "colleague, second site": names(colleague, second_site),
    }

    assert seen == {
        "teammate, first site": ["Open to the team"],
        "colleague, first site": ["Only for the colleague", "Open to the team"],
        "teammate, second site": ["On the second site"],
        "colleague, second site": ["On the second site"],
    }
    pages = [key for key in compiled._COMPILED if key[0][0] == "insights page"]
    assert len(pages) == 1  # one statement served all four


def test_each_value_of_a_flag_filter_has_a_shared_statement_of_its_own(make_insight, owner_api, insights_url):
    make_insight(
        name="A trend", query={"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": []}}
    )
    make_insight(name="A funnel", query={"kind": "FunnelsQuery", "series": []})

    def names(insight_type: str) -> list[str]:
        response = owner_api.get(f"{insights_url}?insight={insight_type}")
        assert response.status_code == 200, response.content
        return [row["name"] for row in response.json()["results"]]

    assert [names("TRENDS"), names("FUNNELS"), names("TRENDS")] == [["A trend"], ["A funnel"], ["A trend"]]
