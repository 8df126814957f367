"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: JSON
messages separated by NUL bytes on file descriptors 3 and 4), with the standard library only.

Chromium runs with every host name but 127.0.0.1 unresolvable, so a page that needs anything from
the internet cannot load it; the network log still records every request the page tried.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BINARIES = ("chromium", "chromium-headless-shell")  # Debian's packages


def chromium_binary() -> str | None:
    return next((found for name in BINARIES if (found := shutil.which(name))), None)


class DevToolsError(RuntimeError):
    pass


@dataclass
class Page:
    """One tab, attached with a flat session; events are kept for the test to inspect."""

    browser: Browser
    session_id: str
    sent: dict[str, str] = field(default_factory=dict)  # request id → URL, every request the page made
    blocked: dict[str, str] = field(default_factory=dict)  # request id → why Chromium never sent it
    exceptions: list[str] = field(default_factory=list)

    @property
    def requests(self) -> list[str]:
        return list(self.sent.values())

    # A page answers DevTools on its main thread, only between its scripts: on a loaded machine a page
    # like Redoc's keeps it busy for tens of seconds. The page's deadlines only bound a hang.
    def send(self, method: str, *, timeout: float = 120, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, session_id=self.session_id, timeout=timeout, **params)

    def navigate(self, url: str, timeout: float = 120) -> None:
        self.browser.events.clear()
        self.send("Page.navigate", url=url)
        self.browser.wait_for(lambda event: event.get("method") == "Page.loadEventFired", timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 120) -> Any:
        answer = self.send(
            "Runtime.evaluate", timeout=timeout, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            raise DevToolsError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def wait_until(self, expression: str, timeout: float = 120) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value. Each evaluation may take
        what is left of the deadline (it waits for the page's scripts to yield)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            value = self.evaluate(expression, timeout=left)
            if value:
                return value
            time.sleep(0.1)
        raise TimeoutError(f"Still falsy after {timeout}s: {expression}")

    def screenshot(self, path: Path) -> Path:
        """The page's full length (up to 6000 pixels) at 1280 pixels wide, as PNG."""
        self.send(
            "Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False
        )
        height = self.evaluate("Math.min(document.documentElement.scrollHeight, 6000)") or 900
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=1280,
            height=int(height),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path


class Browser:
    def __init__(self, process: subprocess.Popen, to_browser: int, from_browser: int) -> None:
        self.process = process
        self.to_browser = to_browser
        self.reader = os.fdopen(from_browser, "rb", buffering=0)
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.pages: dict[str, Page] = {}

    def send(
        self, method: str, *, session_id: str | None = None, timeout: float = 30, **params: Any
    ) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session_id:
            message["sessionId"] = session_id
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        sent = self.next_id
        reply = self.wait_for(lambda incoming: incoming.get("id") == sent, timeout=timeout, keep=False)
        if "error" in reply:
            raise DevToolsError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, matches: Any, *, timeout: float, keep: bool = True) -> dict[str, Any]:
        """Read messages until one matches; earlier events are recorded (and checked first)."""
        for event in self.events:
            if matches(event):
                self.events.remove(event)
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._read()
            if matches(message):
                return message
            if "method" in message and keep:
                self.events.append(message)
        raise TimeoutError(f"No matching DevTools message within {timeout}s")

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            chunk = self.reader.read(65536)
            if not chunk:
                raise DevToolsError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        message = json.loads(raw)
        page = self.pages.get(message.get("sessionId", ""))
        if page is not None:
            method, params = message.get("method"), message.get("params", {})
            if method == "Network.requestWillBeSent":
                page.sent[params["requestId"]] = params["request"]["url"]
            elif method == "Network.loadingFailed" and params.get("blockedReason"):
                page.blocked[params["requestId"]] = params["blockedReason"]  # e.g. "csp": refused unsent
            elif method == "Runtime.exceptionThrown":
                page.exceptions.append(json.dumps(params["exceptionDetails"])[:500])
        return message

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        page = self.pages[session] = Page(self, session)
        for domain in ("Page", "Network", "Runtime"):
            page.send(f"{domain}.enable")
        return page


@contextmanager
def chromium(binary: str, workdir: Path) -> Iterator[Browser]:
    """Headless Chromium (as root it must run without its sandbox), stopped on exit."""
    to_browser_read, to_browser = os.pipe()
    from_browser, from_browser_write = os.pipe()

    def wire_pipes() -> None:  # in the child: the DevTools pipe is fds 3 (commands) and 4 (replies)
        commands, replies = (
            fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser_read, from_browser_write)
        )
        os.dup2(commands, 3)
        os.dup2(replies, 4)

    log = (workdir / "chromium.log").open("w")
    process = subprocess.Popen(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--remote-debugging-pipe", f"--user-data-dir={workdir / 'profile'}", "--no-first-run",
         "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
         "about:blank"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, close_fds=False, preexec_fn=wire_pipes,
    )  # fmt: skip
    os.close(to_browser_read)
    os.close(from_browser_write)
    browser = Browser(process, to_browser, from_browser)
    try:
        yield browser
    finally:
        with suppress(DevToolsError, TimeoutError, OSError):
            browser.send("Browser.close", timeout=5)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        os.close(to_browser)
        browser.reader.close()
        log.close()
