"""Shared pieces of the web portal's browser tests: a `portal dev` stack with its demo data, Debian's
Chromium driven by Playwright, signing in through the page, and reading the same data through the
Connect JSON API with the page's own session cookie (to compare what the page shows with the API).

`PORTAL_SITE_DIR` in the environment makes the stack serve the portal from that folder instead of the
copy embedded in `portal` (for working on the pages); CI tests the embedded copy.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

import support
from test_portal_dev import DEMO_PASSWORD, Dev

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("PORTAL_SCREENSHOTS", "/tmp/portal-screenshots"))
COOKIE = "__Host-portal-session"
SERVICE = "/portal.gateway.v1.PortalService/"
WAIT_MS = 15_000

ADA = "ada@northwind.example"      # Admin of Northwind Robotics, Viewer of Tailspin Venues (chooses)
GRACE = "grace@northwind.example"  # Viewer of Northwind Robotics
LIN = "lin@tailspin.example"       # Admin of Tailspin Venues
NORTHWIND = "Northwind Robotics"
TAILSPIN = "Tailspin Venues"


@dataclass
class Stack:
    """A running `portal dev`: its web origin, data directory and demo organization id."""

    origin: str
    data_dir: Path
    organization: str
    dev: Dev


def start_stack(portal_bin: str, workdir: Path) -> Stack:
    """Starts `portal dev` on free ports (web portal at base + 4) and waits for its demo data."""
    base = support.free_port_base()
    dev = Dev(portal_bin, workdir, "--port-base", str(base))
    organization = dev.organization()
    return Stack(f"http://127.0.0.1:{base + 4}", workdir / "data", organization, dev)


@pytest.fixture(scope="module")
def stack(portal_bin, tmp_path_factory, request):
    """`portal dev` with its demo data for one test module (import this fixture into the module)."""
    running = start_stack(portal_bin, tmp_path_factory.mktemp(request.module.__name__))
    try:
        yield running
    finally:
        running.dev.stop()


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module; Playwright's assertions wait as long as the shared helpers do."""
    from playwright.sync_api import expect, sync_playwright
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        expect.set_options(timeout=WAIT_MS)
        try:
            yield chromium
        finally:
            chromium.close()


def launch_chromium(playwright):
    """Debian's Chromium (Playwright's own download cannot work offline)."""
    if not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/install-deps test installs Debian's", pytrace=False)
    return playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])


def ready(page, timeout: int = WAIT_MS) -> None:
    """Waits until the current screen has rendered its data (`main[data-state=ready]`, not busy)."""
    page.wait_for_function(
        "() => { const m = document.getElementById('main'); return m && m.dataset.state !== 'loading' && !m.hasAttribute('aria-busy'); }",
        timeout=timeout)


def sign_in(page, origin: str, email: str, organization: str | None = None, password: str = DEMO_PASSWORD, path: str = "/") -> None:
    """Signs in through the sign-in page (choosing `organization` when asked) and waits for `path`'s screen."""
    page.goto(origin + path)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    if organization:
        page.get_by_role("radio", name=organization).check()
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(lambda url: "/sign-in" not in url, timeout=WAIT_MS)
    ready(page)


def session_cookie(context, origin: str) -> str:
    """The page's session token (HttpOnly: only the browser context, not the page, can read it)."""
    cookies = {cookie["name"]: cookie for cookie in context.cookies(origin)}
    assert COOKIE in cookies, f"no session cookie: {sorted(cookies)}"
    return cookies[COOKIE]["value"]


def api(origin: str, token: str, method: str, request: dict | None = None) -> dict:
    """Calls `method` with the Connect protocol's JSON as the page does, with the session `token`."""
    call = urllib.request.Request(
        origin + SERVICE + method, data=json.dumps(request or {}).encode(), method="POST",
        headers={"Content-Type": "application/json", "Connect-Protocol-Version": "1", "Cookie": f"{COOKIE}={token}"})
    with urllib.request.urlopen(call, timeout=10) as response:
        return json.loads(response.read())


def download(origin: str, token: str, path: str) -> bytes:
    """A CSV download as the browser fetches it (same-origin, with the session cookie)."""
    call = urllib.request.Request(origin + path, headers={"Cookie": f"{COOKIE}={token}", "Sec-Fetch-Site": "same-origin"})
    with urllib.request.urlopen(call, timeout=30) as response:
        return response.read()


def screenshot(page, name: str) -> None:
    """Saves a full-page screenshot under PORTAL_SCREENSHOTS (docs/screenshots keeps the current set)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def console_problems(messages: list[str]) -> list[str]:
    """Console errors other than the 401 of the first WhoAmI before signing in."""
    return [text for text in messages if "401" not in text]


def query(**params) -> str:
    """A query string for a screen's address."""
    return urllib.parse.urlencode({name: value for name, value in params.items() if value not in (None, "")})
