"""The web portal in a real browser: Debian's Chromium driven by Playwright, against `portal dev` on
loopback. It signs in through the cookie flow (the session cookie is HttpOnly, Secure and
SameSite=Strict, and the page's script cannot read it), shows the dashboard, and signs out, with no
Content-Security-Policy violation on the way; on both `127.0.0.1` and `localhost`, which Chromium
treats as secure contexts that may hold `Secure` cookies over plain HTTP.
"""

from __future__ import annotations

import pytest

import support
from browser_support import browser, stack  # noqa: F401  (the module's fixtures)
from browser_support import (ADA, GRACE, NORTHWIND, TAILSPIN, WAIT_MS, api, console_problems, ready,
                             screenshot, session_cookie, sign_in)

pytestmark = pytest.mark.skipif(support.backend() == "postgres", reason="portal dev keeps SQLite files by design")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_sign_in_call_and_sign_out_in_chromium(stack, browser, host):
    origin = stack.origin.replace("127.0.0.1", host)
    context = browser.new_context()
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text) if message.type == "error" else None)
    sign_in(page, origin, GRACE)
    page.get_by_role("heading", name="Dashboard", level=1).wait_for(timeout=WAIT_MS)

    token = session_cookie(context, origin)
    cookie = next(item for item in context.cookies(origin) if item["name"] == "__Host-portal-session")
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert page.evaluate("document.cookie") == "", "the page's script must not see the session"

    # The dashboard's figures on the page are the API's, read with the same session from outside the browser.
    dashboard = api(origin, token, "GetDashboard")
    for key, field in [("available", "availableLicenses"), ("activated", "activatedLicenses"), ("unactivated", "unactivatedLicenses")]:
        shown = page.locator(f"[data-metric={key}] .metric-value").text_content()
        assert shown == f"{int(dashboard[field]):,}", (key, shown, dashboard[field])
    assert page.locator("[data-metric=members]").count() == 0, "a Viewer sees no member count"

    page.get_by_role("button", name="Account: Grace Hopper").click()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for(timeout=WAIT_MS)
    assert "__Host-portal-session" not in {item["name"] for item in context.cookies(origin)}

    # Reloading after sign-out shows the sign-in form again: the cookie is gone, not just hidden.
    page.reload()
    page.get_by_role("button", name="Sign in").wait_for(timeout=WAIT_MS)
    assert not console_problems(messages), f"console errors (CSP violations among them): {console_problems(messages)}"
    context.close()


def test_a_member_of_two_organizations_chooses_one(stack, browser):
    """Ada's email and password open two organizations: the page asks which, and the session opens there."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.origin + "/")
    page.get_by_label("Email").fill(ADA)
    page.get_by_label("Password").fill("portal-demo-2026")
    page.get_by_role("button", name="Sign in").click()
    choices = page.get_by_role("radio")
    choices.first.wait_for(timeout=WAIT_MS)
    names = [page.locator(f"label[for={choices.nth(i).get_attribute('id')}]").text_content() for i in range(choices.count())]
    assert sorted(names) == [NORTHWIND, TAILSPIN], names
    assert not {cookie["name"] for cookie in context.cookies()}, "no session before the choice"
    page.get_by_role("radio", name=TAILSPIN).check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Dashboard", level=1).wait_for(timeout=WAIT_MS)
    ready(page)
    assert page.locator("#current-organization").text_content() == TAILSPIN
    assert page.get_by_role("link", name="Members").count() == 0, "Ada is a Viewer in Tailspin: no Members screen"
    screenshot(page, "chose-organization")
    context.close()


def test_an_address_that_needs_a_session_returns_there_after_sign_in(stack, browser):
    """A bookmarked screen with filters leads to sign-in and back to the same address."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.origin + "/audit?type=members")
    page.get_by_role("button", name="Sign in").wait_for(timeout=WAIT_MS)
    assert "/sign-in?next=" in page.url
    sign_in(page, stack.origin, GRACE, path=page.url.replace(stack.origin, ""))
    assert page.url == stack.origin + "/audit?type=members"
    page.get_by_role("heading", name="Audit & Event Log", level=1).wait_for(timeout=WAIT_MS)
    assert page.get_by_label("Type").input_value() == "members"
    context.close()
