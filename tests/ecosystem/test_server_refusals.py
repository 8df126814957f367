"""What gunicorn refuses before the app sees a request still answers in the error envelope, as the
schema says (insights_api/gunicorn.conf.py), so a typed client's error type holds for every error."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from tests.ecosystem.conftest import Stack
from tests.live import http

pytestmark = [pytest.mark.live, pytest.mark.worker]


def raw(stack: Stack, request: bytes) -> tuple[str, dict[str, str], bytes]:
    """Send bytes as they are; the status line, headers and body of the answer."""
    address = urlsplit(stack.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return (
        status,
        {name.lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)},
        body,
    )


def test_an_over_long_url_is_a_414_in_the_error_envelope(stack):
    answer = http(f"{stack.url}/api/projects/1/insights/?search={'x' * 5000}")

    assert answer.status == 414
    assert answer.headers["Content-Type"] == "application/json"
    assert json.loads(answer.content) == {
        "type": "invalid_request",
        "code": "uri_too_long",
        "detail": "The URL is too long (over 4094 bytes with its query string).",
        "attr": None,
    }


def test_a_malformed_request_line_is_a_400_in_the_error_envelope(stack):
    status, headers, body = raw(stack, b"GET /api/ projects HTTP/1.1 extra\r\nHost: x\r\n\r\n")

    assert status.startswith("HTTP/1.1 400")
    assert headers["content-type"] == "application/json"
    envelope = json.loads(body)
    assert (envelope["type"], envelope["code"], envelope["attr"]) == ("invalid_request", "bad_request", None)
    assert envelope["detail"]
