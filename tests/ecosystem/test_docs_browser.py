"""Swagger UI and Redoc in a real browser (Debian's headless Chromium), served by the live service.

Chromium resolves no host name but 127.0.0.1, so the pages must render every operation from the
service's own assets; the network log must show no request to anywhere else. Screenshots are saved
under the pytest temporary directory (`docs-screenshots*/`, printed by each test).

`make test` installs Debian's `chromium` when it runs as root and the package is missing, and fails
if it cannot (scripts/test.py); without it these tests are skipped saying what to install, and in CI
they fail saying it (tests/missing.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from tests.ecosystem.browser import Browser, Page, chromium, chromium_binary
from tests.ecosystem.conftest import Stack
from tests.live import http
from tests.missing import missing

pytestmark = [pytest.mark.browser, pytest.mark.live]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    binary = chromium_binary()
    if binary is None:
        missing("Chromium", install="apt-get install chromium (`make test` does, when run as root)")
    with chromium(binary, tmp_path_factory.mktemp("chromium")) as running:
        yield running


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs-screenshots")


@pytest.fixture(scope="module")
def operations(stack: Stack) -> dict[str, str]:
    """operationId → summary of every operation in the live schema."""
    schema = yaml.safe_load(http(f"{stack.url}/api/schema/").content)
    return {
        op["operationId"]: op["summary"] for methods in schema["paths"].values() for op in methods.values()
    }


def left_the_service(page: Page, origin: str) -> list[str]:
    """Requests that went anywhere but the service: not inline (data:, blob:), not to its origin,
    and not refused unsent by the page's Content-Security-Policy."""
    return [
        url
        for request_id, url in page.sent.items()
        if urlsplit(url).scheme not in ("data", "blob")
        and f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" != origin
        and page.blocked.get(request_id) != "csp"
    ]


def test_swagger_ui_lists_every_operation_from_the_service_alone(stack, browser, operations, screenshots):
    page = browser.new_page()

    page.navigate(f"{stack.url}/api/schema/swagger-ui/")
    page.wait_until(f"document.querySelectorAll('.opblock').length >= {len(operations)}")
    summaries = page.evaluate(
        "Array.from(document.querySelectorAll('.opblock-summary-description')).map(e => e.textContent)"
    )
    shot = page.screenshot(screenshots / "swagger-ui.png")
    print(f"Swagger UI screenshot: {shot}")

    assert sorted(summaries) == sorted(operations.values())
    assert page.evaluate("document.querySelector('.info .title').textContent").startswith("Insights API")
    assert left_the_service(page, stack.url) == []
    assert any(url.endswith("swagger-ui-bundle.js") for url in page.requests)  # the service's own copy
    assert page.exceptions == []
    assert shot.stat().st_size > 20_000


def test_redoc_lists_every_operation_from_the_service_alone(stack, browser, operations, screenshots):
    page = browser.new_page()

    page.navigate(f"{stack.url}/api/schema/redoc/")
    page.wait_until(
        f"document.querySelectorAll('[data-item-id*=\"/operation/\"]').length >= {len(operations)}"
    )
    listed = page.evaluate(
        "Array.from(document.querySelectorAll('[data-item-id*=\"/operation/\"]'))"
        ".map(e => e.getAttribute('data-item-id').split('/operation/')[1])"
    )
    shot = page.screenshot(screenshots / "redoc.png")
    print(f"Redoc screenshot: {shot}")

    assert sorted(set(listed)) == sorted(operations)
    assert page.evaluate("document.body.innerText").count("Required API key scope") >= len(operations) - 3
    # Redoc's "by Redocly" logo points at a CDN: the CSP refuses it unsent (and nothing else is tried).
    assert left_the_service(page, stack.url) == []
    assert [url for url in page.requests if "redoc.ly" in url] in (
        [],
        ["https://cdn.redoc.ly/redoc/logo-mini.svg"],
    )
    assert any(url.endswith("redoc.standalone.js") for url in page.requests)
    assert page.exceptions == []
    assert shot.stat().st_size > 20_000


def test_the_front_page_opens_in_a_browser_and_every_link_on_it_answers(stack, browser, screenshots):
    page = browser.new_page()

    page.navigate(f"{stack.url}/")
    links = page.evaluate("Array.from(document.querySelectorAll('a')).map(a => a.href)")
    statuses = {link: page.evaluate(f"fetch({link!r}).then(answer => answer.status)") for link in links}
    page.navigate(links[0])  # and one followed as a user would: the first, Swagger UI
    page.wait_until("document.querySelectorAll('.opblock').length > 0")
    shot = page.screenshot(screenshots / "front-page-first-link.png")

    assert len(links) == 5 and all(link.startswith(stack.url) for link in links)
    assert statuses == dict.fromkeys(links, 200)
    assert left_the_service(page, stack.url) == [] and page.exceptions == []
    assert shot.stat().st_size > 10_000
