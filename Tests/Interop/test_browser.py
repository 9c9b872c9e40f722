"""The web portal in a real browser: Debian's Chromium driven by Playwright, against `portal dev` on
loopback. It loads the page, signs in through the cookie flow (the session cookie is HttpOnly,
Secure and SameSite=Strict, and the page's script cannot read it), calls the gateway, and signs out,
with no Content-Security-Policy violation on the way; on both `127.0.0.1` and `localhost`, which
Chromium treats as secure contexts that may hold `Secure` cookies over plain HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

import support
from test_portal_dev import DEMO_PASSWORD, Dev

pytestmark = pytest.mark.skipif(support.backend() == "postgres", reason="portal dev keeps SQLite files by design")

CHROMIUM = os.environ.get("PORTAL_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("PORTAL_SCREENSHOTS", "/tmp/portal-screenshots"))


@pytest.fixture(scope="module")
def portal(portal_bin, tmp_path_factory):
    """`portal dev` with its demo data; yields the web portal's port."""
    base = support.free_port_base()
    dev = Dev(portal_bin, tmp_path_factory.mktemp("browser"), "--port-base", str(base))
    dev.organization()
    try:
        yield base + 4
    finally:
        dev.stop()


@pytest.fixture(scope="module")
def browser():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/install-deps test installs Debian's", pytrace=False)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_sign_in_call_and_sign_out_in_chromium(portal, browser, host):
    origin = f"http://{host}:{portal}"
    context = browser.new_context()
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text) if message.type == "error" else None)
    page.goto(origin + "/")
    page.get_by_label("Email").fill("grace@northwind.example")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Signed in as Grace Hopper").wait_for(timeout=15_000)

    cookies = {cookie["name"]: cookie for cookie in context.cookies(origin)}
    session = cookies.get("__Host-portal-session")
    assert session, f"Chromium kept no session cookie on {host}: {cookies}"
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict" and session["path"] == "/"
    assert page.evaluate("document.cookie") == "", "the page's script must not see the session"

    # The dashboard figure on the page is the API's, read with the same session from outside the browser.
    request = urllib.request.Request(
        f"{origin}/portal.gateway.v1.PortalService/GetDashboard", data=b"{}", method="POST",
        headers={"Content-Type": "application/json", "Connect-Protocol-Version": "1", "Cookie": f"__Host-portal-session={session['value']}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        dashboard = json.loads(response.read())
    shown = page.locator("#summary dd").all_text_contents()
    figures = [f"{int(dashboard[name]):,}" for name in ("availableLicenses", "activatedLicenses", "unactivatedLicenses")]
    assert all(figure in shown for figure in figures), (shown, dashboard)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"signed-in-{host}.png"))
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for(timeout=10_000)
    assert "__Host-portal-session" not in {cookie["name"] for cookie in context.cookies(origin)}

    # Reloading after sign-out shows the sign-in form again: the cookie is gone, not just hidden.
    page.reload()
    page.get_by_role("button", name="Sign in").wait_for(timeout=10_000)
    refused_session = [text for text in violations if "401" not in text]
    assert not refused_session, f"console errors (CSP violations among them): {refused_session}"
    context.close()


def test_a_member_of_two_organizations_chooses_one(portal, browser):
    """Ada's email and password open two organizations: the page asks which, and the session opens there."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{portal}/")
    page.get_by_label("Email").fill("ada@northwind.example")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    choices = page.get_by_role("radio")
    choices.first.wait_for(timeout=15_000)
    names = [page.locator(f"label[for={choices.nth(i).get_attribute('id')}]").text_content() for i in range(choices.count())]
    assert sorted(names) == ["Northwind Robotics", "Tailspin Venues"], names
    assert not {cookie["name"] for cookie in context.cookies()}, "no session before the choice"
    page.get_by_role("radio", name="Tailspin Venues").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Signed in as Ada Lovelace").wait_for(timeout=15_000)
    shown = page.locator("#summary dd").all_text_contents()
    assert "ROLE_VIEWER" in shown, shown
    page.screenshot(path=str(SCREENSHOTS / "chose-organization.png"))
    context.close()
