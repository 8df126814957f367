"""Session login for the frontend, and who the caller is."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.middleware.csrf import get_token
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.api.authentication import request_user
from accounts.api.serializers import LoginSerializer, MeSerializer, UserBasicSerializer
from accounts.models import PersonalAPIKey
from accounts.selectors import user_organizations
from apikit.schema import error_response
from apikit.throttling import LoginThrottle


class LoginView(APIView):
    """Anyone may try to log in; CSRF is not checked here because there is no session yet."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(
        operation_id="login",
        summary="Log in with email and password",
        description=(
            "Starts a browser session (sets the `sessionid` and `posthog_csrftoken` cookies). Later unsafe "
            "requests made with the session must send the CSRF token in `X-CSRFToken`. Wrong "
            "credentials answer 401; repeated attempts from one address are throttled (429)."
        ),
        request=LoginSerializer,
        responses={200: UserBasicSerializer, 401: error_response("Wrong email or password.")},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        payload = LoginSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            email=payload.validated_data["email"].lower(),
            password=payload.validated_data["password"],
        )
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid email or password.")
        login(request._request, user)
        get_token(request._request)  # rotate and set the CSRF cookie for the new session
        return Response(UserBasicSerializer(user).data)

    def get_authenticate_header(self, request: Request) -> str:
        return 'Session realm="api"'


class LogoutView(APIView):
    @extend_schema(
        operation_id="logout",
        summary="Log out",
        description="Ends the caller's browser session. Requires the CSRF token like any session write.",
        request=None,
        responses={204: None},
        tags=["auth"],
    )
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    @extend_schema(
        operation_id="users_me",
        summary="The current user",
        description="Who the caller is (session or API key), with their organizations and projects.",
        responses={200: MeSerializer},
        tags=["auth"],
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        key = request.auth if isinstance(request.auth, PersonalAPIKey) else None
        organizations = user_organizations(user=user, project_ids=key.scoped_project_ids if key else None)
        data = {**UserBasicSerializer(user).data, "organizations": organizations}
        return Response(MeSerializer(data).data)
