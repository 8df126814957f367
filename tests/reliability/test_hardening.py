"""Hardening (issue 6, item 8): constant-time key checks, security headers, HTTPS settings, and
`manage.py check --deploy`.

Proven elsewhere, and cited in RELIABILITY.md: login throttling
(tests/apikit/test_throttling.py), keys hashed at rest and CSRF on session writes
(tests/accounts/test_authentication.py), CSV formula escaping (tests/apikit/test_csv.py),
`cancel` never touching another user's query (tests/insights/test_cancel.py).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import subprocess
import sys

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from rest_framework.test import APIClient

from accounts.services import personal_api_key_create
from apikit.security import API_POLICY, DOCS_POLICY
from tests.live import live_server
from tests.reliability.conftest import PASSWORD
from tests.reliability.processes import ROOT

pytestmark = pytest.mark.django_db


# --- Personal API keys are checked in constant time ---------------------------------------------


@pytest.mark.parametrize(
    "presented", ["the right key", "a wrong secret under a real prefix", "an unknown prefix", "x"]
)
def test_every_key_costs_exactly_one_constant_time_digest_comparison(
    presented, owner, insights_url, monkeypatch
):
    """Whether the prefix finds a row or not, and whatever the key, authentication compares two
    SHA-256 digests of equal length once, with hmac.compare_digest: the time it takes says nothing
    about how much of a guess was right."""
    issued = personal_api_key_create(user=owner, label="timing", scopes=["*"])
    key = {
        "the right key": issued.secret,
        "a wrong secret under a real prefix": issued.secret[:12] + secrets.token_urlsafe(32),
        "an unknown prefix": "ins_" + secrets.token_urlsafe(32),
        "x": "x",
    }[presented]
    comparisons: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):  # the standard library, observed: our code is not faked
        comparisons.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    response = APIClient().get(insights_url, HTTP_AUTHORIZATION=f"Bearer {key}")

    assert response.status_code == (200 if presented == "the right key" else 401)
    assert len(comparisons) == 1
    stored, offered = comparisons[0]
    assert re.fullmatch("[0-9a-f]{64}", stored) and re.fullmatch("[0-9a-f]{64}", offered)
    assert offered == hashlib.sha256(key.encode()).hexdigest()  # the key itself is never compared


# --- Security headers on every kind of answer ---------------------------------------------------


def test_every_kind_of_answer_carries_the_security_headers(owner_api, api, insights_url, secret):
    answers = {
        "json": owner_api.get(insights_url),
        "csv": owner_api.get(insights_url, {"format": "csv"}),
        "validation error": owner_api.post(insights_url, {"name": 1}, format="json"),
        "401": api.get(insights_url),
        "404": owner_api.get("/api/nothing/"),
        "405": owner_api.delete(f"{insights_url}{secret.insight.id}/"),
        "schema": api.get("/api/schema/"),
        "health": api.get("/_health"),
        "metrics": api.get("/metrics"),
        "swagger-ui": api.get("/api/schema/swagger-ui/"),
        "redoc": api.get("/api/schema/redoc/"),
    }
    for name, response in answers.items():
        assert response["X-Content-Type-Options"] == "nosniff", name
        assert response["Referrer-Policy"] == "same-origin", name
        assert response["X-Frame-Options"] == "DENY", name
        expected = DOCS_POLICY if name in ("swagger-ui", "redoc") else API_POLICY
        assert response["Content-Security-Policy"] == expected, name
        assert "Strict-Transport-Security" not in response, name  # plain HTTP: HSTS would be ignored


@pytest.mark.parametrize("page", ["swagger-ui", "redoc"])
def test_the_docs_pages_need_no_inline_script_nor_outside_script(api, page):
    """What the docs policy allows is all they use: their scripts come from this service, none is
    inline. (Both were also loaded in headless Chromium under this policy: see RELIABILITY.md.)"""
    html = api.get(f"/api/schema/{page}/").content.decode()

    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="/' in attributes and not body.strip() for attributes, body in scripts)
    for source in re.findall(r'<script[^>]*src="([^"]+)"', html):
        response = api.get(source.replace("&amp;", "&"))
        if response.status_code == 200 and hasattr(response, "streaming_content"):
            response.close()  # a static file, served by WhiteNoise
        assert response.status_code == 200, source
    # Only Redoc's web fonts come from elsewhere; the policy blocks them and it falls back to
    # local fonts (the service uses no CDN).
    outside = set(re.findall(r'(?:href|src)="(https?://[^/"]+)', html))
    assert outside <= {"https://fonts.googleapis.com", "https://fonts.gstatic.com"}


# --- HTTPS: HSTS, secure cookies, redirects --------------------------------------------------------


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_behind_an_https_proxy_answers_carry_hsts_and_cookies_are_secure(tmp_path, owner):
    # Production settings hash passwords with PBKDF2 only (the test settings use MD5, for speed).
    owner.password = PBKDF2PasswordHasher().encode(PASSWORD, secrets.token_hex(8))
    owner.save(update_fields=["password"])
    production = {
        "DJANGO_SETTINGS_MODULE": "insights_api.settings",
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "HTTPS": "true",
        "BEHIND_PROXY": "true",
        "SECURE_SSL_REDIRECT": "true",
    }
    with live_server(tmp_path, redis_url=settings.REDIS_URL, workers=1, **production) as server:  # fmt: skip
        with httpx.Client(base_url=server.url, headers={"X-Forwarded-Proto": "https"}) as https:
            login = https.post("/api/login/", json={"email": owner.email, "password": PASSWORD})
            # The cookies are Secure, so a client on plain http:// (this test) keeps them to itself;
            # the proxy's clients talk HTTPS and send them back, as here by hand.
            session = {"Cookie": f"sessionid={login.cookies['sessionid']}"}
            me = https.get("/api/users/@me/", headers=session)
        with httpx.Client(base_url=server.url) as plain:
            redirected = plain.get("/api/users/@me/")
            probe = plain.get("/_health")

    assert login.status_code == 200 and me.status_code == 200
    assert me.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    cookies = login.headers.get_list("set-cookie")
    assert {cookie.split("=")[0] for cookie in cookies} == {"posthog_csrftoken", "sessionid"}
    assert all("; Secure" in cookie for cookie in cookies), cookies
    assert all("HttpOnly" in cookie for cookie in cookies if cookie.startswith("sessionid"))
    assert redirected.status_code == 301 and redirected.headers["Location"].startswith("https://")
    assert probe.status_code == 200  # probes and metrics are exempt from the redirect


# --- manage.py check --deploy ---------------------------------------------------------------------

PRODUCTION = {
    "DEBUG": "false",
    "HTTPS": "true",
    "BEHIND_PROXY": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "ALLOWED_HOSTS": "insights.example.com",
    "DATABASE_URL": "postgresql://insights@db.internal:5432/insights",
    "REDIS_URL": "redis://cache.internal:6379/0",
}


def check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy` as an operator runs it: production settings, nothing from the test
    run's environment but PATH."""
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "insights_api.settings",
             "SECRET_KEY": secrets.token_urlsafe(64), "LOG_LEVEL": "error", **env},
    )  # fmt: skip


def test_check_deploy_is_clean_with_the_production_settings():
    result = check_deploy(**PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_warns_when_https_is_not_configured():
    """The control: the same check does fail, on the very settings HTTPS=true turns on."""
    result = check_deploy(**{**PRODUCTION, "HTTPS": "false"})

    assert result.returncode != 0
    assert "security.W004" in result.stderr  # no HSTS
    assert "security.W012" in result.stderr  # session cookie not secure
