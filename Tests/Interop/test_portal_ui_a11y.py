"""The web portal's accessibility, screen by screen: axe-core (through axe-playwright-python) scans every
screen, panel, menu and dialog against WCAG 2.2 AA in a real Chromium, as an Admin and as a Viewer, in
the light and the dark theme, at 1280 px and at 360 px; no violation of impact "serious" or "critical"
may remain. On the way it saves the screenshots kept in docs/screenshots (`scripts/screenshots` writes
them there; elsewhere they go to PORTAL_SCREENSHOTS, /tmp/portal-screenshots by default).

One signed-in browser context per role and theme walks the screens: at 1280 × 900 first, then the
same context narrowed to 360 px. Navigation inside the app goes through the History API as a click on
a link does, so axe-core is injected once per context rather than once per screen.
"""

from __future__ import annotations

import pytest
from axe_playwright_python.sync_playwright import Axe

import browser_support
import support
from browser_support import browser, stack  # noqa: F401  (the module's fixtures)
from browser_support import (ADA, GRACE, NORTHWIND, WAIT_MS, ready, screenshot, sign_in)
from test_portal_dev import DEMO_PASSWORD

pytestmark = pytest.mark.skipif(support.backend() == "postgres", reason="portal dev keeps SQLite files by design")

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
BLOCKING = {"serious", "critical"}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 780}

# The screenshots kept in docs/screenshots: (role, theme, width) → the steps shown. Every screen and the
# main dialogs for an Admin on a desktop, the main ones in the dark theme and for a Viewer, and the main
# screens on a phone.
SCREENS = ["sign-in", "choose-organization", "accept-invite", "dashboard", "account-menu", "products", "product-panel",
           "entitlements", "entitlement-panel", "activations", "audit", "members", "invites"]
SHOTS = {
    ("admin", "light", "desktop"): {*SCREENS, "columns", "invite-dialog", "activate-dialog"},
    ("admin", "dark", "desktop"): {"sign-in", "dashboard", "products", "entitlement-panel", "activations", "audit", "members"},
    ("viewer", "light", "desktop"): {"dashboard", "products", "activations", "audit"},
    ("admin", "light", "phone"): {"dashboard", "product-panel", "activations", "members"},
    ("admin", "dark", "phone"): {"dashboard", "product-panel", "activations", "members"},
}
# Screens seen before signing in (their pictures are named so).
SIGNED_OUT = {"sign-in", "choose-organization", "accept-invite"}
# What the dark theme is scanned on at 360 px (colours are the same at every width; the phone's layout
# is scanned in full in the light theme).
DARK_PHONE = {"dashboard", "product-panel", "activations", "members"}


def summary(node: dict) -> str:
    """What axe says is wrong with one element, on one line."""
    lines = [line.strip() for line in node.get("failureSummary", "").splitlines()]
    return "; ".join(line for line in lines if line and not line.startswith("Fix "))[:400]


class Tour:
    """One browser page of a role and theme: scans each state it is shown and keeps what axe found."""

    def __init__(self, browser, stack, role: str, theme: str):
        self.origin = stack.origin
        self.role, self.theme, self.size = role, theme, "desktop"
        self.context = browser.new_context(color_scheme=theme, viewport=DESKTOP, locale="en-US", timezone_id="Europe/Berlin",
                                           reduced_motion="reduce")
        self.page = self.context.new_page()
        self.page.set_default_timeout(WAIT_MS)
        self.axe = Axe()
        self.problems: list[str] = []
        self.scanned = 0
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text) if message.type == "error" else None)

    def close(self) -> None:
        self.context.close()

    def narrow(self) -> None:
        self.size = "phone"
        self.page.set_viewport_size(PHONE)

    def widen(self) -> None:
        self.size = "desktop"
        self.page.set_viewport_size(DESKTOP)

    def check(self, name: str, wanted: set[str] | None = None) -> None:
        """Scans the page as it is now (and saves its screenshot when it belongs to the kept set)."""
        if wanted is not None and name not in wanted:
            return
        page = self.page
        page.evaluate("() => document.fonts.ready")
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(self.axe.axe_script)
        results = page.evaluate("options => axe.run(document, options)",
                                {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]})
        self.scanned += 1
        where = f"{self.role}, {self.theme}, {self.size}, {name} ({page.url.replace(self.origin, '')})"
        for violation in results["violations"]:
            if violation["impact"] not in BLOCKING:  # shown with the failure's output, not failing
                print(f"{where}: {violation['id']} ({violation['impact']}): {violation['help']}")
                continue
            self.problems.append(f"{where}: {violation['id']} ({violation['impact']}): {violation['help']} ({violation['helpUrl']})\n"
                                 + "\n".join(f"    {' '.join(map(str, node['target']))}: {summary(node)}" for node in violation["nodes"]))
        if name in SHOTS.get((self.role, self.theme, self.size), set()):
            who = "signed-out" if name in SIGNED_OUT else self.role
            self.shoot(f"{who}-{self.theme}-{self.size}-{name}")

    def shoot(self, name: str) -> None:
        """A whole page that is not much longer than the window; else (and with a dialog, panel or menu
        open, which stay in the window) what the window shows."""
        page = self.page
        viewport = page.viewport_size
        page.mouse.move(viewport["width"] - 1, viewport["height"] - 1)  # no hover effect in the picture
        overlay = page.evaluate("() => Boolean(document.querySelector('dialog[open], .panel, .popover:not([hidden])'))")
        if not overlay and page.evaluate("() => document.documentElement.scrollHeight") <= viewport["height"] * 1.4:
            screenshot(page, name)
        else:
            browser_support.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(browser_support.SCREENSHOTS / f"{name}.png"))

    def go(self, path: str) -> None:
        """Moves to `path` inside the app, as a click on one of its links does, and waits for the screen."""
        self.page.evaluate("path => { history.pushState(null, '', path); dispatchEvent(new PopStateEvent('popstate')); }", path)
        ready(self.page)

    def dialog(self, opener, name: str, wanted: set[str] | None) -> None:
        """Opens a dialog with `opener` (a locator), scans it and cancels it."""
        if wanted is not None and name not in wanted:
            return
        opener.click()
        dialog = self.page.locator("dialog[open]")
        dialog.wait_for()
        self.check(name)
        dialog.get_by_role("button", name="Cancel").click()
        dialog.wait_for(state="detached")

    def disclosure(self, button_id: str):
        """Opens the menu or chooser behind the button `button_id`."""
        self.page.locator(f"#{button_id}").click()
        self.page.locator(f"#{button_id}-panel").wait_for()

    def close_disclosure(self, button_id: str) -> None:
        self.page.locator(f"#{button_id}").click()
        self.page.locator(f"#{button_id}-panel").wait_for(state="hidden")

    def report(self) -> str:
        return f"{len(self.problems)} serious or critical accessibility violations:\n\n" + "\n\n".join(self.problems)


def public_screens(tour: Tour) -> None:
    """Accepting an invite, signing in and choosing an organization, signed out (up to Continue)."""
    page = tour.page
    page.goto(tour.origin + "/accept-invite?code=x")
    page.get_by_role("heading", name="Accept your invitation").wait_for()
    ready(page)
    tour.check("accept-invite")
    page.goto(tour.origin + "/sign-in")
    page.get_by_role("button", name="Sign in").wait_for()
    ready(page)
    tour.check("sign-in")
    page.get_by_label("Email").fill(ADA)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("radio", name=NORTHWIND).wait_for()
    tour.check("choose-organization")


def signed_in_screens(tour: Tour, admin: bool, wanted: set[str] | None = None) -> None:
    """Every screen, panel, menu and dialog of the role, from the dashboard on."""
    page = tour.page
    want = (lambda name: True) if wanted is None else (lambda name: name in wanted)
    tour.go("/")
    tour.check("dashboard", wanted)
    if want("account-menu") or want("switch-dialog"):
        tour.disclosure("account-button")
        tour.check("account-menu", wanted)
        if admin:  # Ada is also a Viewer of Tailspin Venues
            tour.dialog(page.locator("#account-button-panel .switch button").first, "switch-dialog", wanted)
        if page.locator("#account-button-panel").is_visible():
            tour.close_disclosure("account-button")
    if admin:
        tour.dialog(page.locator("#invite-member"), "invite-dialog", wanted)

    tour.go("/licensing/products")
    tour.check("products", wanted)
    if want("product-panel") or want("activate-dialog"):
        product = page.locator("#products-table tbody a").first.get_attribute("href")
        tour.go(product)
        page.locator("#product-panel").wait_for()
        tour.check("product-panel", wanted)
        if admin:
            tour.dialog(page.locator("#product-panel button.primary:not([disabled])").first, "activate-dialog", wanted)

    if want("entitlements") or want("entitlement-panel"):
        tour.go("/licensing/entitlements")
        tour.check("entitlements", wanted)
    if want("entitlement-panel"):
        entitlement = page.locator("#entitlements-table tbody a").first.get_attribute("href")
        tour.go(entitlement)
        page.locator("#entitlement-panel").wait_for()
        card = page.locator("#entitlement-panel .card-toggle").first
        if card.get_attribute("aria-expanded") != "true":
            card.click()
        page.locator("#entitlement-panel .card-details").first.wait_for()
        tour.check("entitlement-panel")

    tour.go("/activations")
    if want("activations") or want("columns"):
        tour.check("activations", wanted)
        tour.disclosure("columns-activations")
        tour.check("columns", wanted)
        tour.close_disclosure("columns-activations")
    if want("audit"):
        tour.go("/audit")
        tour.check("audit")

    if admin and (want("members") or want("edit-dialog") or want("delete-dialog")):
        tour.go("/members/active")
        tour.check("members", wanted)
        tour.dialog(page.locator("#members-table button", has_text="Edit").first, "edit-dialog", wanted)
        tour.dialog(page.locator("#members-table button", has_text="Delete").last, "delete-dialog", wanted)
    if admin and (want("invites") or want("revoke-dialog")):
        tour.go("/members/invites")
        tour.check("invites", wanted)
        tour.dialog(page.locator("#invites-table button", has_text="Revoke").first, "revoke-dialog", wanted)


def finish(tour: Tour, minimum: int) -> None:
    problems, scanned, console = tour.problems, tour.scanned, list(tour.console)
    tour.close()
    assert scanned >= minimum, f"only {scanned} states scanned"
    assert not problems, tour.report()
    errors = [text for text in console if "401" not in text]
    assert not errors, f"console errors (CSP violations among them): {errors}"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_admin_screens_have_no_serious_accessibility_violations(stack, browser, theme):
    """Every screen and dialog as an Admin at 1280 px, then at 360 px (the dark theme's main screens)."""
    tour = Tour(browser, stack, "admin", theme)
    try:
        tour.narrow()
        public_screens(tour)
        tour.widen()
        public_screens(tour)
        tour.page.get_by_role("button", name="Continue").click()
        tour.page.wait_for_url(lambda url: "/sign-in" not in url)
        ready(tour.page)
        signed_in_screens(tour, admin=True)
        tour.narrow()
        phone = None if theme == "light" else DARK_PHONE
        signed_in_screens(tour, admin=True, wanted=phone)
    except BaseException:
        tour.close()
        raise
    finish(tour, 40 if theme == "light" else 27)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_viewer_screens_have_no_serious_accessibility_violations(stack, browser, theme):
    """A Viewer's screens (no Members, no Activate, no exports) at 1280 px."""
    tour = Tour(browser, stack, "viewer", theme)
    try:
        sign_in(tour.page, stack.origin, GRACE)
        signed_in_screens(tour, admin=False)
    except BaseException:
        tour.close()
        raise
    finish(tour, 9)

