"""The project-scoped base viewset cannot be bypassed by a subclass."""

from __future__ import annotations

import pytest
from rest_framework.decorators import action

from accounts.api.viewsets import ProjectScopedViewSet
from insights.models import Insight


@pytest.mark.parametrize(
    "attribute", ["get_queryset", "get_project_queryset", "get_permissions", "permission_classes"]
)
def test_a_subclass_may_not_replace_the_scoping_or_the_permissions(attribute):
    with pytest.raises(TypeError, match=attribute):
        type(
            "Leaky",
            (ProjectScopedViewSet,),
            {"queryset": Insight.objects.all(), attribute: lambda self: None},
        )


def test_an_extra_action_must_declare_its_scope():
    with pytest.raises(TypeError, match="required_scopes"):

        class Forgetful(ProjectScopedViewSet):
            scope_object = "insight"

            @action(detail=False, methods=["post"])
            def frobnicate(self, request, project_id):  # pragma: no cover - never routed
                raise AssertionError
