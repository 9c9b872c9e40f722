"""The web portal's licensing screens in Chromium, checked against the API: the dashboard, the
Activations log, the Audit & Event Log and the Licensing Overview (products, entitlements, their
panels and Activate), as an Admin (Ada, choosing Northwind Robotics) and as a Viewer (Grace).

What the page shows is compared with what the Connect API answers to the same session cookie for
the same filters, order and page; CSV downloads with what the gRPC export streams on the gateway
port to the same session token. The browser runs in Asia/Kolkata (UTC+05:30), so times and date
ranges in the viewer's zone differ from UTC. Activating through the page is checked to take
licenses exactly once, also when the first answer is lost; text a member typed is shown as text.
One keyboard-only test drives sorting, the column chooser, a panel and Activate with Tab, Enter,
Space and Escape.
"""

from __future__ import annotations

import csv
import io
import json
import re
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from google.protobuf import json_format
from playwright.sync_api import expect

import support
from browser_support import browser, stack  # noqa: F401  (the module's fixtures)
from browser_support import (ADA, GRACE, NORTHWIND, WAIT_MS, api, ready, session_cookie, sign_in)

pytestmark = pytest.mark.skipif(support.backend() == "postgres", reason="portal dev keeps SQLite files by design")

ZONE = "Asia/Kolkata"
ZONE_NAMES = {"Asia/Kolkata", "Asia/Calcutta"}  # Chromium's Intl still names it Calcutta
ACTIVATE_URL = "**/portal.gateway.v1.PortalService/Activate"
ACTIVATION_COLUMNS = ["activation_date", "product_name", "project_name", "project_manager", "activated_by", "quantity",
                      "entitlement_id", "serial_number"]
DEFAULT_ACTIVATION_COLUMNS = ACTIVATION_COLUMNS[:5]
ACTIVATIONS_CSV_HEADER = ["Activation Date", "Product Name", "Quantity", "Project Name", "Project Manager", "Activated By",
                          "Entitlement ID", "Serial Number"]
EVENT_TYPES = {"members": "EVENT_TYPE_MEMBERS", "licenses": "EVENT_TYPE_LICENSES", "activations": "EVENT_TYPE_ACTIVATIONS"}
EVENT_TYPE_NAMES = {"EVENT_TYPE_MEMBERS": "Members", "EVENT_TYPE_LICENSES": "Licenses", "EVENT_TYPE_ACTIVATIONS": "Activations"}
STATUS_NAMES = {"ENTITLEMENT_STATUS_ACTIVE": "Active", "ENTITLEMENT_STATUS_EXPIRED": "Expired"}


# MARK: Fixtures


@dataclass
class Session:
    """A signed-in browser page and the session token its cookie holds."""

    origin: str
    context: object
    page: object
    token: str
    dialogs: list = field(default_factory=list)

    def api(self, method: str, request: dict | None = None) -> dict:
        return api(self.origin, self.token, method, request)

    def goto(self, path: str) -> None:
        self.page.goto(self.origin + path)
        ready(self.page)


def new_page(browser, origin: str, cookies: list[dict] = ()) -> tuple[object, object, list[str]]:
    """A browser context in Asia/Kolkata holding `cookies`, its page, and the script dialogs it opens."""
    context = browser.new_context(timezone_id=ZONE, accept_downloads=True, viewport={"width": 1400, "height": 900})
    if cookies:
        context.add_cookies(list(cookies))
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog):
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return context, page, dialogs


@pytest.fixture(scope="module")
def signed_in(stack, browser):
    """Each role signs in once through the sign-in page; each test then starts a fresh context (no
    remembered columns) with that session's cookie, which saves a password hash per test."""
    sessions = {}

    def cookies(email: str, organization: str | None) -> list[dict]:
        if email not in sessions:
            context, page, _ = new_page(browser, stack.origin)
            sign_in(page, stack.origin, email, organization)
            sessions[email] = context.cookies(stack.origin)
            context.close()
        return sessions[email]

    return cookies


def open_session(browser, stack, cookies: list[dict]) -> Session:
    context, page, dialogs = new_page(browser, stack.origin, cookies)
    page.goto(stack.origin + "/")
    ready(page)
    page.get_by_role("heading", name="Dashboard", level=1).wait_for(timeout=WAIT_MS)
    return Session(stack.origin, context, page, session_cookie(context, stack.origin), dialogs)


@pytest.fixture
def admin(stack, browser, signed_in):
    session = open_session(browser, stack, signed_in(ADA, NORTHWIND))
    yield session
    assert session.dialogs == [], f"script dialogs opened: {session.dialogs}"
    session.context.close()


@pytest.fixture
def viewer(stack, browser, signed_in):
    session = open_session(browser, stack, signed_in(GRACE, None))
    yield session
    assert session.dialogs == [], f"script dialogs opened: {session.dialogs}"
    session.context.close()


# MARK: What the page should show for an API answer


def parse_time(value: str) -> datetime:
    """An RFC 3339 time of the JSON API (`2026-03-05T14:07:09.123Z`), to the second."""
    assert value.endswith("Z"), value
    return datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def shown_time(value: str | None, zone: str = ZONE) -> str:
    """`05 Mar 2026, 14:07:09` in `zone`, as the page and the CSV show times."""
    return parse_time(value).astimezone(ZoneInfo(zone)).strftime("%d %b %Y, %H:%M:%S") if value else ""


def shown_date(value: str | None, zone: str = ZONE) -> str:
    return shown_time(value, zone).split(",")[0] if value else ""


def number(value) -> str:
    return f"{int(value or 0):,}"


def day_start(day: date, zone: str = ZONE) -> str:
    """The start of `day` in `zone` as the page sends it (JavaScript's toISOString)."""
    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(timezone.utc)
    return start.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def activation_cells(row: dict, columns: list[str], zone: str = ZONE) -> list[str]:
    values = {
        "activation_date": shown_time(row["activationDate"], zone), "product_name": row.get("productName", ""),
        "project_name": row.get("projectName", ""), "project_manager": row.get("projectManager", ""),
        "activated_by": row.get("activatedBy", ""), "quantity": number(row.get("quantity")),
        "entitlement_id": row.get("entitlementId", ""), "serial_number": row.get("serialNumber", ""),
    }
    return [values[column] for column in columns]


def event_cells(row: dict, zone: str = ZONE) -> list[str]:
    return [shown_time(row["time"], zone), row.get("message", ""), EVENT_TYPE_NAMES[row["eventType"]], row.get("user", "")]


def product_cells(row: dict, columns: list[str]) -> list[str]:
    product = row["product"]
    values = {
        "product_name": product["name"], "license_type": product.get("licenseType", ""),
        "product_description": product.get("productDescription", ""), "product_id": product["productId"],
        "deployment_type": product.get("deploymentType", ""), "available_licenses": number(row.get("availableLicenses")),
        "activated_licenses": number(row.get("activatedLicenses")), "unactivated_licenses": number(row.get("unactivatedLicenses")),
    }
    return [values[column] for column in columns]


def entitlement_cells(row: dict) -> list[str]:
    lines = row.get("lines", [])
    first = lines[0] if lines else {}
    product = first.get("productName", "") + (f" and {len(lines) - 1} more" if len(lines) > 1 else "")
    return [row["entitlementId"], row.get("salesOrder", ""), STATUS_NAMES[row["status"]], product, first.get("productDescription", ""),
            shown_date(row.get("orderDate")), shown_date(row["expirationDate"]) if row.get("expirationDate") else "Never",
            row.get("poNumber", ""), number(row.get("totalAvailableLicenses"))]


# MARK: Reading the page


def table_rows(page, table_id: str) -> list[list[str]]:
    """The text of each shown cell of each body row of `table_id` (no rows when the list is empty)."""
    return page.evaluate("""(id) => [...document.querySelectorAll(`#${id} tbody tr`)]
        .map((tr) => [...tr.children].filter((cell) => !cell.hidden).map((cell) => cell.textContent))""", table_id)


def shown_columns(page, table_id: str) -> list[str]:
    """The `data-col` of each header cell the table shows (checked against layout, not only `hidden`)."""
    return page.evaluate("""(id) => [...document.querySelectorAll(`#${id} thead th`)]
        .filter((cell) => !cell.hidden && cell.getClientRects().length > 0).map((cell) => cell.dataset.col)""", table_id)


def facts(locator) -> list[tuple[str, str]]:
    """The term/value pairs of a description list."""
    return [tuple(pair) for pair in locator.evaluate(
        "(dl) => [...dl.querySelectorAll(':scope > dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent])")]


def count_text(page, list_id: str) -> str:
    return page.locator(f"#{list_id}-count").text_content()


def query_of(url: str) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)


def settle(tab, path: str | None = None, **params) -> None:
    """Waits until the address is `path` with `params` (a value of None: absent) and the screen is ready."""
    def matches(url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        if path is not None and parts.path != path:
            return False
        query = urllib.parse.parse_qs(parts.query)
        return all((name not in query) if value is None else query.get(name) == [value] for name, value in params.items())
    tab.wait_for_url(matches, timeout=WAIT_MS)
    ready(tab)


def metric(page, key: str) -> str:
    return page.locator(f"[data-metric={key}] .metric-value").text_content()


def total(response: dict) -> int:
    """A list's total_size (absent from the JSON when zero)."""
    return int(response.get("totalSize", 0))


def local_today_of(value: str) -> date:
    return parse_time(value).astimezone(ZoneInfo(ZONE)).date()


# MARK: CSV over gRPC


def grpc_export(stack, token: str, kind: str, href: str) -> bytes:
    """The CSV the gRPC export streams on the gateway port for the query of the page's Export link."""
    P = support.protos()
    if kind == "activations":
        message, method = P.gateway.ExportActivationsCsvRequest, "ExportActivationsCsv"
    else:
        message, method = P.gateway.ExportAuditEventsCsvRequest, "ExportAuditEventsCsv"
    fields = message.DESCRIPTOR.fields_by_camelcase_name
    request = {}
    for name, values in query_of(href).items():
        assert name in fields, f"the Export link sends {name}, which {message.DESCRIPTOR.name} does not have"
        repeated = hasattr(getattr(message(), fields[name].name), "extend")
        request[name] = values if repeated else values[0]
    gateway_port = int(urllib.parse.urlsplit(stack.origin).port) - 4
    channel = support.make_channel(gateway_port)
    try:
        stub = P.gateway_grpc.PortalServiceStub(channel)
        chunks = getattr(stub, method)(json_format.ParseDict(request, message()), metadata=[("authorization", f"Bearer {token}")], timeout=30)
        return b"".join(chunk.chunk for chunk in chunks)
    finally:
        channel.close()


def download_export(page) -> tuple[str, bytes]:
    """Clicks Export CSV and returns the link's address and the downloaded file."""
    link = page.get_by_role("link", name="Export CSV")
    href = link.get_attribute("href")
    with page.expect_download(timeout=WAIT_MS) as info:
        link.click()
    download = info.value
    path = download.path()
    assert download.failure() is None, download.failure()
    with open(path, "rb") as file:
        return href, file.read()


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


# MARK: Activating


def activate_in_dialog(page, quantity: int | None, project: str, manager: str, serial: str = "") -> None:
    """Fills the open Activate dialog and submits it (by mouse)."""
    dialog = page.locator("dialog#activate-dialog")
    expect(dialog).to_be_visible()
    if quantity is not None:
        dialog.get_by_label("Quantity").fill(str(quantity))
    dialog.get_by_label("Project Name").fill(project)
    dialog.get_by_label("Project Manager").fill(manager)
    if serial:
        dialog.get_by_label("Serial Number").fill(serial)
    dialog.get_by_role("button", name="Activate", exact=True).click()


# MARK: Dashboard


def test_admin_dashboard_shows_the_api_figures_recent_lists_and_links(admin):
    page = admin.page
    page.get_by_role("heading", name="Dashboard", level=1).wait_for(timeout=WAIT_MS)
    dashboard = admin.api("GetDashboard")
    for key, name in [("available", "availableLicenses"), ("activated", "activatedLicenses"), ("unactivated", "unactivatedLicenses"),
                      ("members", "totalMembers")]:
        assert metric(page, key) == number(dashboard[name]), (key, metric(page, key), dashboard[name])
    assert int(dashboard["availableLicenses"]) - int(dashboard["activatedLicenses"]) == int(dashboard["unactivatedLicenses"])
    expect(page.get_by_role("heading", name="Invite My Team")).to_be_visible()
    expect(page.get_by_role("button", name="+ Invite Member")).to_be_visible()

    assert table_rows(page, "recent-activations") == [
        [row["productName"], number(row["quantity"]), shown_time(row["activationDate"]), row["activatedBy"]]
        for row in dashboard["recentActivations"]]
    assert len(dashboard["recentActivations"]) == 5
    assert table_rows(page, "recent-events") == [event_cells(row) for row in dashboard["recentEvents"]]
    assert len(dashboard["recentEvents"]) == 5

    page.get_by_role("link", name="View all activations").click()
    settle(page, "/activations")
    expect(page.get_by_role("heading", name="Activations", level=1)).to_be_visible()
    page.go_back()
    settle(page, "/")
    page.get_by_role("link", name="View all audit events").click()
    settle(page, "/audit")
    expect(page.get_by_role("heading", name="Audit & Event Log", level=1)).to_be_visible()


# MARK: Viewer


def test_a_viewer_sees_the_figures_but_no_admin_controls(viewer):
    page = viewer.page
    dashboard = viewer.api("GetDashboard")
    assert "totalMembers" not in dashboard
    for key, name in [("available", "availableLicenses"), ("activated", "activatedLicenses"), ("unactivated", "unactivatedLicenses")]:
        assert metric(page, key) == number(dashboard[name])
    assert page.locator("[data-metric=members]").count() == 0, "a Viewer sees no member count"
    assert page.get_by_role("heading", name="Invite My Team").count() == 0
    assert page.get_by_role("button", name="+ Invite Member").count() == 0
    assert table_rows(page, "recent-activations") == [
        [row["productName"], number(row["quantity"]), shown_time(row["activationDate"]), row["activatedBy"]]
        for row in dashboard["recentActivations"]]
    assert table_rows(page, "recent-events") == [event_cells(row) for row in dashboard["recentEvents"]]
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Activations")).to_be_visible()
    assert nav.get_by_role("link", name="Members").count() == 0
    expect(page.locator("#primary-nav a[href='/members/active']")).to_be_hidden()

    page.get_by_role("link", name="View all activations").click()
    settle(page, "/activations")
    listed = viewer.api("ListActivations", {"pageSize": 50, "orderBy": "activation_date desc"})
    assert table_rows(page, "activations-table") == [activation_cells(row, DEFAULT_ACTIVATION_COLUMNS) for row in listed["activations"]]
    assert page.get_by_role("link", name="Export CSV").count() == 0
    assert page.locator("a[href^='/exports/']").count() == 0

    nav.get_by_role("link", name="Audit & Event Log").click()
    settle(page, "/audit")
    events = viewer.api("ListAuditEvents", {"pageSize": 50, "orderBy": "time desc"})
    assert table_rows(page, "audit-table") == [event_cells(row) for row in events["events"]]
    assert page.get_by_role("link", name="Export CSV").count() == 0

    nav.get_by_role("link", name="Licensing Overview").click()
    settle(page, "/licensing/products")
    page.get_by_role("link", name="Summit Identity").click()
    settle(page, "/licensing/products", product="QSC-SUMMIT")
    panel = page.get_by_role("region", name="Summit Identity")
    expect(panel.get_by_role("heading", name="Included in Entitlements")).to_be_visible()
    assert page.get_by_role("button", name="Activate").count() == 0
    assert page.locator("button[id^=activate-]").count() == 0

    page.get_by_role("link", name="Entitlements").click()
    settle(page, "/licensing/entitlements")
    page.get_by_role("link", name="ENT-241020").click()
    settle(page, "/licensing/entitlements", entitlement="ENT-241020")
    cards = page.locator("#entitlement-panel .card-toggle")
    for index in range(cards.count()):
        cards.nth(index).click()
        expect(cards.nth(index)).to_have_attribute("aria-expanded", "true")
    expect(page.locator("#entitlement-panel dt", has_text="Activation Quantity").first).to_be_visible()
    assert page.get_by_role("button", name="Activate").count() == 0

    viewer.goto("/members/active")
    expect(page.get_by_text("This page is for Admins of your organization.")).to_be_visible()
    assert page.locator("#members-table").count() == 0


# MARK: Activations


def test_activation_filters_search_and_date_range_show_what_the_api_lists(admin):
    page = admin.page
    admin.goto("/activations")

    def check(request: dict) -> dict:
        listed = admin.api("ListActivations", {"pageSize": 50, "orderBy": "activation_date desc", **request})
        assert table_rows(page, "activations-table") == [activation_cells(row, DEFAULT_ACTIVATION_COLUMNS) for row in listed.get("activations", [])]
        count = total(listed)
        if count:
            assert count_text(page, "activations").endswith(f" of {number(count)} {'activation' if count == 1 else 'activations'}")
        else:
            expect(page.get_by_text("No activations match these filters.")).to_be_visible()
        return listed

    everything = check({})
    assert total(everything) >= 12

    page.get_by_role("combobox", name="Product Name").select_option(label="Nexus Core 110")
    settle(page, product="QSC-CORE-110")
    core = check({"productIds": ["QSC-CORE-110"]})
    assert total(core) >= 2 and {row["productName"] for row in core["activations"]} == {"Nexus Core 110"}

    page.get_by_role("searchbox", name="Search activations").fill("Harbor")
    page.get_by_role("search", name="Search activations").get_by_role("button", name="Search").click()
    settle(page, product="QSC-CORE-110", q="Harbor")
    both = check({"productIds": ["QSC-CORE-110"], "searchText": "Harbor"})
    assert 0 < total(both) < total(core)

    page.get_by_role("combobox", name="Product Name").select_option(label="All products")
    settle(page, product=None, q="Harbor")
    harbor = check({"searchText": "Harbor"})
    assert total(harbor) > total(both)

    page.get_by_role("searchbox", name="Search activations").fill("")
    page.get_by_role("search", name="Search activations").get_by_role("button", name="Search").click()
    settle(page, q=None)

    # The date range is in the viewer's days (Asia/Kolkata): the day of the newest activation holds it,
    # the day after holds nothing.
    today = local_today_of(everything["activations"][0]["activationDate"])
    page.get_by_label("Start date", exact=True).fill(today.isoformat())
    settle(page, **{"from": today.isoformat()})
    page.get_by_label("End date", exact=True).fill(today.isoformat())
    settle(page, **{"from": today.isoformat(), "to": today.isoformat()})
    on_the_day = check({"activationDateStart": day_start(today), "activationDateEnd": day_start(today + timedelta(days=1))})
    assert total(on_the_day) >= 1
    assert all(cells[0].startswith(today.strftime("%d %b %Y")) for cells in table_rows(page, "activations-table"))

    tomorrow = today + timedelta(days=1)
    page.get_by_label("End date", exact=True).fill(tomorrow.isoformat())
    settle(page, to=tomorrow.isoformat())
    page.get_by_label("Start date", exact=True).fill(tomorrow.isoformat())
    settle(page, **{"from": tomorrow.isoformat(), "to": tomorrow.isoformat()})
    none = check({"activationDateStart": day_start(tomorrow), "activationDateEnd": day_start(tomorrow + timedelta(days=1))})
    assert total(none) == 0

    # A start after the end is refused on the page, in words.
    page.get_by_label("End date", exact=True).fill(today.isoformat())
    settle(page, to=today.isoformat())
    expect(page.get_by_text("The start date is after the end date.")).to_be_visible()


def test_activation_sorting_by_header_follows_the_api_order(admin):
    page = admin.page
    admin.goto("/activations")
    header = lambda key: page.locator(f"#activations-table thead th[data-col={key}]")  # noqa: E731
    expect(header("activation_date")).to_have_attribute("aria-sort", "descending")
    expect(header("product_name")).to_have_attribute("aria-sort", "none")

    for label, key, order in [("Product Name", "product_name", "product_name asc"), ("Product Name", "product_name", "product_name desc"),
                              ("Project Manager", "project_manager", "project_manager asc"),
                              ("Activation Date", "activation_date", "activation_date desc"),
                              ("Activation Date", "activation_date", "activation_date asc")]:
        page.locator("#activations-table").get_by_role("button", name=label).click()
        settle(page, order=order)
        expect(header(key)).to_have_attribute("aria-sort", "ascending" if order.endswith("asc") else "descending")
        for other in DEFAULT_ACTIVATION_COLUMNS:
            if other != key:
                expect(header(other)).to_have_attribute("aria-sort", "none")
        listed = admin.api("ListActivations", {"pageSize": 50, "orderBy": order})
        assert table_rows(page, "activations-table") == [activation_cells(row, DEFAULT_ACTIVATION_COLUMNS) for row in listed["activations"]], order
        assert page.evaluate("document.activeElement.id") == f"sort-activations-{key}", "focus stays on the header"


def test_activation_column_chooser_is_remembered_and_export_has_every_column(admin, stack):
    page = admin.page
    admin.goto("/activations?product=QSC-ATLAS")
    assert shown_columns(page, "activations-table") == DEFAULT_ACTIVATION_COLUMNS

    chooser = page.get_by_role("button", name="Columns")
    chooser.click()
    expect(chooser).to_have_attribute("aria-expanded", "true")
    for label in ["Entitlement ID", "Serial Number", "Quantity"]:
        box = page.get_by_role("checkbox", name=label)
        expect(box).not_to_be_checked()
        box.check()
    page.get_by_role("checkbox", name="Project Manager").uncheck()
    chosen = ["activation_date", "product_name", "project_name", "activated_by", "quantity", "entitlement_id", "serial_number"]
    assert shown_columns(page, "activations-table") == chosen
    listed = admin.api("ListActivations", {"pageSize": 50, "orderBy": "activation_date desc", "productIds": ["QSC-ATLAS"]})
    assert table_rows(page, "activations-table") == [activation_cells(row, chosen) for row in listed["activations"]]
    assert any(row.get("serialNumber") for row in listed["activations"]), "a serial number shows in its column"

    page.keyboard.press("Escape")
    expect(chooser).to_have_attribute("aria-expanded", "false")
    page.reload()
    ready(page)
    assert shown_columns(page, "activations-table") == chosen, "the choice survives a reload"
    assert table_rows(page, "activations-table") == [activation_cells(row, chosen) for row in listed["activations"]]
    chooser.click()
    expect(page.get_by_role("checkbox", name="Project Manager")).not_to_be_checked()
    expect(page.get_by_role("checkbox", name="Serial Number")).to_be_checked()
    page.get_by_role("checkbox", name="Quantity").uncheck()
    chosen.remove("quantity")
    assert shown_columns(page, "activations-table") == chosen
    assert table_rows(page, "activations-table") == [activation_cells(row, chosen) for row in listed["activations"]]
    chooser.click()
    expect(chooser).to_have_attribute("aria-expanded", "false")

    # The export holds every column whatever the chooser shows, with the list's filters, in the viewer's zone.
    href, data = download_export(page)
    query = query_of(href)
    assert query["timeZone"][0] in ZONE_NAMES and query["productIds"] == ["QSC-ATLAS"], href
    rows = csv_rows(data)
    assert rows[0] == ACTIVATIONS_CSV_HEADER
    assert len(rows) - 1 == total(listed)
    assert data == grpc_export(stack, admin.token, "activations", href)
    assert rows[1:] == [
        [shown_time(row["activationDate"]), row["productName"], str(int(row["quantity"])), row["projectName"], row["projectManager"],
         row["activatedBy"], row["entitlementId"], row.get("serialNumber", "")] for row in listed["activations"]]

    # In UTC the link asks for UTC, and the file says so.
    page.get_by_role("button", name="Show times in UTC").click()
    settle(page, tz="utc")
    expect(page.get_by_role("button", name="Show times in UTC")).to_have_attribute("aria-pressed", "true")
    assert table_rows(page, "activations-table") == [activation_cells(row, chosen, "UTC") for row in listed["activations"]]
    href, data = download_export(page)
    assert query_of(href)["timeZone"] == ["UTC"]
    assert data == grpc_export(stack, admin.token, "activations", href)
    assert csv_rows(data)[1][0] == shown_time(listed["activations"][0]["activationDate"], "UTC")


def test_activation_pages_move_with_next_previous_and_back(admin):
    page = admin.page
    before = total(admin.api("ListActivations", {"pageSize": 1}))
    for index in range(max(0, 62 - before)):
        admin.api("Activate", {"entitlementId": "ENT-241020", "productId": "QSC-SUMMIT", "quantity": "1",
                               "projectName": f"Rollout {index:02d}", "projectManager": "Paging Check",
                               "idempotencyKey": f"paging-{uuid.uuid4()}"})
    first = admin.api("ListActivations", {"pageSize": 50, "orderBy": "activation_date desc"})
    listed_total = total(first)
    assert listed_total > 50 and first["nextPageToken"]
    second = admin.api("ListActivations", {"pageSize": 50, "orderBy": "activation_date desc", "pageToken": first["nextPageToken"]})
    page_one = [activation_cells(row, DEFAULT_ACTIVATION_COLUMNS) for row in first["activations"]]
    page_two = [activation_cells(row, DEFAULT_ACTIVATION_COLUMNS) for row in second["activations"]]
    assert len(page_one) == 50 and len(page_two) == min(50, listed_total - 50)

    admin.goto("/activations")
    assert table_rows(page, "activations-table") == page_one
    assert count_text(page, "activations") == f"1–50 of {number(listed_total)} activations"
    assert page.get_by_role("button", name="Previous page").count() == 0

    page.get_by_role("button", name="Next page").click()
    page.wait_for_url(lambda url: "page" in query_of(url), timeout=WAIT_MS)
    ready(page)
    assert table_rows(page, "activations-table") == page_two
    assert count_text(page, "activations") == f"51–{number(50 + len(page_two))} of {number(listed_total)} activations"
    assert page.evaluate("document.activeElement.id") == "activations-count"

    page.go_back()
    settle(page, "/activations", page=None)
    assert table_rows(page, "activations-table") == page_one, "Back returns to the first page"
    page.go_forward()
    page.wait_for_url(lambda url: "page" in query_of(url), timeout=WAIT_MS)
    ready(page)
    assert table_rows(page, "activations-table") == page_two

    page.get_by_role("button", name="Previous page").click()
    settle(page, "/activations", page=None)
    assert table_rows(page, "activations-table") == page_one
    assert count_text(page, "activations") == f"1–50 of {number(listed_total)} activations"


# MARK: Audit & Event Log


def test_audit_filters_times_and_export_follow_the_api(admin, stack):
    page = admin.page
    admin.goto("/audit")
    time_header = page.locator("#audit-table thead th[data-col=time]")
    expect(time_header).to_contain_text(re.compile(r"Date & Time \(Asia/(Kolkata|Calcutta)\)"))

    def check(request: dict, zone: str = ZONE) -> dict:
        listed = admin.api("ListAuditEvents", {"pageSize": 50, "orderBy": "time desc", **request})
        assert table_rows(page, "audit-table") == [event_cells(row, zone) for row in listed.get("events", [])]
        count = total(listed)
        if count:
            assert count_text(page, "audit").endswith(f" of {number(count)} {'event' if count == 1 else 'events'}")
        else:
            expect(page.get_by_text("No events match these filters.")).to_be_visible()
        return listed

    everything = check({})
    newest = everything["events"][0]["time"]
    assert page.locator("#audit-table tbody tr").first.locator("time").get_attribute("datetime") == newest

    page.get_by_label("Type", exact=True).select_option(label="Members")
    settle(page, type="members")
    members = check({"eventTypes": [EVENT_TYPES["members"]]})
    assert {row["eventType"] for row in members["events"]} == {"EVENT_TYPE_MEMBERS"}

    page.get_by_label("User (name or email)").fill("Ada Lovelace")
    page.get_by_role("searchbox", name="Search events").fill("invite")
    page.get_by_role("search", name="Search events").get_by_role("button", name="Search").click()
    settle(page, type="members", user="Ada Lovelace", q="invite")
    invited = check({"eventTypes": [EVENT_TYPES["members"]], "user": "Ada Lovelace", "searchText": "invite"})
    assert 0 < total(invited) < total(members)

    page.get_by_label("Type", exact=True).select_option(label="All types")
    settle(page, type=None, user="Ada Lovelace", q="invite")
    check({"user": "Ada Lovelace", "searchText": "invite"})

    page.get_by_label("User (name or email)").fill("")
    page.get_by_role("searchbox", name="Search events").fill("")
    page.get_by_role("search", name="Search events").get_by_role("button", name="Search").click()
    settle(page, user=None, q=None)

    today = local_today_of(newest)
    page.get_by_label("Start date", exact=True).fill(today.isoformat())
    settle(page, **{"from": today.isoformat()})
    page.get_by_label("End date", exact=True).fill(today.isoformat())
    settle(page, **{"from": today.isoformat(), "to": today.isoformat()})
    day = check({"timeStart": day_start(today), "timeEnd": day_start(today + timedelta(days=1))})
    assert total(day) >= 1
    assert all(cells[0].startswith(today.strftime("%d %b %Y")) for cells in table_rows(page, "audit-table"))

    # The export has the filters and the viewer's zone, and is what the gRPC export streams.
    page.get_by_label("Type", exact=True).select_option(label="Activations")
    settle(page, type="activations")
    listed = check({"timeStart": day_start(today), "timeEnd": day_start(today + timedelta(days=1)), "eventTypes": [EVENT_TYPES["activations"]]})
    href, data = download_export(page)
    assert query_of(href)["timeZone"][0] in ZONE_NAMES and query_of(href)["eventTypes"] == [EVENT_TYPES["activations"]]
    assert data == grpc_export(stack, admin.token, "audit-events", href)
    rows = csv_rows(data)
    assert rows[0] == ["Date & Time", "Message", "Type", "User"]
    assert rows[1:len(listed["events"]) + 1] == [event_cells(row) for row in listed["events"]]
    assert len(rows) - 1 == total(listed)

    # Times in UTC: the button is pressed, the address says so, the rows and the export are in UTC,
    # and the date range counts UTC days.
    utc_today = parse_time(newest).date()
    page.get_by_role("button", name="Show times in UTC").click()
    settle(page, tz="utc", type="activations")
    expect(page.get_by_role("button", name="Show times in UTC")).to_have_attribute("aria-pressed", "true")
    page.get_by_label("Start date", exact=True).fill(utc_today.isoformat())
    settle(page, tz="utc", **{"from": utc_today.isoformat()})
    page.get_by_label("End date", exact=True).fill(utc_today.isoformat())
    settle(page, tz="utc", **{"from": utc_today.isoformat(), "to": utc_today.isoformat()})
    in_utc = check({"timeStart": day_start(utc_today, "UTC"), "timeEnd": day_start(utc_today + timedelta(days=1), "UTC"),
                    "eventTypes": [EVENT_TYPES["activations"]]}, zone="UTC")
    assert total(in_utc) >= 1
    expect(time_header).to_contain_text("Date & Time (UTC)")
    assert all(cells[0].startswith(utc_today.strftime("%d %b %Y")) for cells in table_rows(page, "audit-table"))
    href, data = download_export(page)
    assert query_of(href)["timeZone"] == ["UTC"]
    assert data == grpc_export(stack, admin.token, "audit-events", href)
    assert csv_rows(data)[1] == event_cells(in_utc["events"][0], "UTC")

    page.get_by_role("button", name="Show times in UTC").click()
    settle(page, tz=None)
    expect(page.get_by_role("button", name="Show times in UTC")).to_have_attribute("aria-pressed", "false")
    page.get_by_label("Start date", exact=True).fill("")
    settle(page, **{"from": None})
    page.get_by_label("End date", exact=True).fill("")
    settle(page, **{"from": None, "to": None})
    check({"eventTypes": [EVENT_TYPES["activations"]]})
    expect(time_header).to_contain_text(re.compile(r"Date & Time \(Asia/(Kolkata|Calcutta)\)"))


# MARK: Licensing Overview: products


def test_products_tab_search_sort_columns_and_panel(admin):
    page = admin.page
    admin.goto("/licensing")
    settle(page, "/licensing/products")
    expect(page.get_by_role("navigation", name="Licensing views").get_by_role("link", name="Products")).to_have_attribute("aria-current", "page")
    columns = ["product_name", "license_type", "product_description"]
    listed = admin.api("ListProducts", {"pageSize": 50, "orderBy": "product_name asc"})
    assert len(listed["products"]) == 12
    assert table_rows(page, "products-table") == [product_cells(row, columns) for row in listed["products"]]

    page.get_by_role("searchbox", name="Search by product name or type").fill("perpetual")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    settle(page, q="perpetual")
    found = admin.api("ListProducts", {"pageSize": 50, "orderBy": "product_name asc", "searchText": "perpetual"})
    assert table_rows(page, "products-table") == [product_cells(row, columns) for row in found["products"]]
    assert {row["product"]["licenseType"] for row in found["products"]} == {"Perpetual"} and len(found["products"]) == 3
    page.get_by_role("searchbox", name="Search by product name or type").fill("")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    settle(page, q=None)

    for label, key, order in [("Product Type", "license_type", "license_type asc"), ("Product Type", "license_type", "license_type desc"),
                              ("Product Description", "product_description", "product_description asc")]:
        page.locator(f"#sort-products-{key}").click()
        settle(page, order=order)
        expect(page.locator(f"#products-table thead th[data-col={key}]")).to_have_attribute("aria-sort", "ascending" if order.endswith("asc") else "descending")
        expect(page.locator("#products-table thead th[data-col=product_name]")).to_have_attribute("aria-sort", "none")
        sorted_list = admin.api("ListProducts", {"pageSize": 50, "orderBy": order})
        assert table_rows(page, "products-table") == [product_cells(row, columns) for row in sorted_list["products"]], label

    page.get_by_role("button", name="Columns").click()
    page.get_by_role("checkbox", name="Unactivated Licenses").check()
    page.get_by_role("checkbox", name="Product Description").uncheck()
    chosen = ["product_name", "license_type", "unactivated_licenses"]
    assert shown_columns(page, "products-table") == chosen
    sorted_list = admin.api("ListProducts", {"pageSize": 50, "orderBy": "product_description asc"})
    assert table_rows(page, "products-table") == [product_cells(row, chosen) for row in sorted_list["products"]]
    page.reload()
    ready(page)
    assert shown_columns(page, "products-table") == chosen

    # The panel: its own address, General and Included in Entitlements as GetProduct says.
    page.get_by_role("link", name="Vision Edge 4K").click()
    settle(page, "/licensing/products", product="QSC-VISION-4K", order="product_description asc")
    detail = admin.api("GetProduct", {"productId": "QSC-VISION-4K"})
    panel = page.get_by_role("region", name="Vision Edge 4K")
    expect(panel).to_be_visible()
    product = detail["product"]["product"]
    assert facts(panel.locator("dl.facts").first) == [("Product Name", product["name"]), ("License Type", product["licenseType"]),
                                                      ("Description", product["productDescription"])]
    expect(panel.get_by_role("heading", name="Included in Entitlements")).to_be_visible()
    cards = panel.locator("li.line-card")
    assert cards.count() == len(detail["entitlements"]) >= 1
    for index, entry in enumerate(detail["entitlements"]):
        assert facts(cards.nth(index).locator("dl.facts")) == [
            ("Entitlement ID", entry["entitlementId"]), ("Order Date", shown_date(entry["orderDate"])), ("QSC Sales Order", entry["salesOrder"]),
            ("PO Number", entry["poNumber"]), ("Available Licenses", number(entry["availableLicenses"])),
            ("Activated Licenses", number(entry.get("activatedLicenses"))), ("Status", STATUS_NAMES[entry["status"]])]
        expect(cards.nth(index).get_by_role("button", name=f"Activate Vision Edge 4K from entitlement {entry['entitlementId']}")).to_be_visible()

    page.go_back()
    settle(page, "/licensing/products", product=None)
    assert page.locator("#product-panel").count() == 0, "Back closes the panel"

    page.get_by_role("link", name="Vision Edge 4K").click()
    settle(page, product="QSC-VISION-4K")
    expect(page.locator("#product-panel-title")).to_be_focused()
    page.keyboard.press("Escape")
    settle(page, "/licensing/products", product=None)
    assert page.locator("#product-panel").count() == 0
    expect(page.locator("#open-product-QSC-VISION-4K")).to_be_focused()


def test_activate_from_the_product_panel_moves_the_dashboard_figures(admin):
    page = admin.page
    before = admin.api("GetDashboard")
    entitlement = next(entry for entry in admin.api("GetProduct", {"productId": "QSC-SUMMIT"})["entitlements"] if entry["entitlementId"] == "ENT-241020")
    admin.goto("/licensing/products?product=QSC-SUMMIT")
    page.get_by_role("button", name="Activate Summit Identity from entitlement ENT-241020").click()
    dialog = page.locator("dialog#activate-dialog")
    expect(dialog.get_by_role("heading", name="Activate Summit Identity")).to_be_visible()
    expect(dialog).to_contain_text(f"{number(entitlement['unactivatedLicenses'])} unactivated licenses")
    activate_in_dialog(page, 3, "Panel Rollout", "Ada Lovelace", serial="NW-PANEL-1")
    expect(dialog).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("Activated 3 licenses of Summit Identity for Panel Rollout.")
    ready(page)
    card = page.locator("#product-panel li.line-card").filter(has_text="ENT-241020")
    expect(card.locator("dd").nth(5)).to_have_text(number(int(entitlement["activatedLicenses"]) + 3))

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    settle(page, "/")
    assert metric(page, "activated") == number(int(before["activatedLicenses"]) + 3)
    assert metric(page, "unactivated") == number(int(before["unactivatedLicenses"]) - 3)
    assert metric(page, "available") == number(before["availableLicenses"])
    after = admin.api("GetDashboard")
    assert metric(page, "activated") == number(after["activatedLicenses"])
    newest = after["recentActivations"][0]
    assert (newest["productName"], newest["quantity"], newest["projectName"], newest["serialNumber"]) == ("Summit Identity", "3", "Panel Rollout", "NW-PANEL-1")
    assert table_rows(page, "recent-activations")[0] == ["Summit Identity", "3", shown_time(newest["activationDate"]), "Ada Lovelace"]


# MARK: Licensing Overview: entitlements


def test_entitlements_tab_search_by_dates_and_license_cards(admin):
    page = admin.page
    admin.goto("/licensing/products")
    page.get_by_role("navigation", name="Licensing views").get_by_role("link", name="Entitlements").click()
    settle(page, "/licensing/entitlements")

    def check(request: dict) -> dict:
        listed = admin.api("ListEntitlements", {"pageSize": 50, "orderBy": "order_date desc", **request})
        if listed.get("entitlements"):
            assert table_rows(page, "entitlements-table") == [entitlement_cells(row) for row in listed["entitlements"]]
        else:
            expect(page.get_by_text("No entitlements match these filters.")).to_be_visible()
        return listed

    everything = check({})
    assert [row["entitlementId"] for row in everything["entitlements"]] == ["ENT-241020", "ENT-240811", "ENT-240502", "ENT-240117", "ENT-230309"]

    search = page.get_by_role("search", name="Search entitlements")
    for by, option, text, field_name, expected in [
        ("sales_order", "QSC Sales Order", "1043920", "ENTITLEMENT_SEARCH_FIELD_SALES_ORDER", ["ENT-240502"]),
        ("po_number", "PO Number", "PO-NW-0811", "ENTITLEMENT_SEARCH_FIELD_PO_NUMBER", ["ENT-240811"]),
        (None, "Entitlement ID", "ENT-2410", "ENTITLEMENT_SEARCH_FIELD_ENTITLEMENT_ID", ["ENT-241020"]),
    ]:
        search.get_by_label("Search by").select_option(label=option)
        search.get_by_role("searchbox", name="Search entitlements").fill(text)
        search.get_by_role("button", name="Search").click()
        settle(page, by=by, q=text)
        found = check({"searchField": field_name, "searchText": text})
        assert [row["entitlementId"] for row in found["entitlements"]] == expected, (option, text)
        expect(page.get_by_label("Search by")).to_have_value(by or "entitlement")
    # A sales order searched as an entitlement id finds nothing: the field is what is searched.
    search.get_by_role("searchbox", name="Search entitlements").fill("1043920")
    search.get_by_role("button", name="Search").click()
    settle(page, by=None, q="1043920")
    assert check({"searchField": "ENTITLEMENT_SEARCH_FIELD_ENTITLEMENT_ID", "searchText": "1043920"}).get("entitlements", []) == []
    search.get_by_role("searchbox", name="Search entitlements").fill("")
    search.get_by_role("button", name="Search").click()
    settle(page, q=None)

    today = local_today_of(admin.api("GetDashboard")["recentEvents"][0]["time"])
    start = today - timedelta(days=250)
    page.get_by_label("From", exact=True).fill(start.isoformat())
    settle(page, **{"from": start.isoformat()})
    ordered = check({"orderDateStart": day_start(start)})
    assert [row["entitlementId"] for row in ordered["entitlements"]] == ["ENT-241020", "ENT-240811", "ENT-240502"]

    page.get_by_label("Filter by date").select_option(label="Expiration Date")
    settle(page, date="expiration", **{"from": start.isoformat()})
    end = today + timedelta(days=400)
    page.get_by_label("To", exact=True).fill(end.isoformat())
    settle(page, date="expiration", to=end.isoformat())
    expiring = check({"expirationDateStart": day_start(start), "expirationDateEnd": day_start(end + timedelta(days=1))})
    assert [row["entitlementId"] for row in expiring["entitlements"]] == ["ENT-240117", "ENT-230309"]

    # The panel: General, and one card per product, collapsed until clicked.
    admin.goto("/licensing/entitlements")
    page.get_by_role("link", name="ENT-240117").click()
    settle(page, "/licensing/entitlements", entitlement="ENT-240117")
    detail = admin.api("GetEntitlement", {"entitlementId": "ENT-240117"})["entitlement"]
    panel = page.get_by_role("region", name="Entitlement ENT-240117")
    general = facts(panel.locator("dl.facts").first)
    assert general[:5] == [("Order Date", shown_date(detail["orderDate"])), ("QSC Sales Order", detail["salesOrder"]), ("PO Number", detail["poNumber"]),
                           ("Entitlement ID", "ENT-240117"), ("Total Available Licenses", number(detail["totalAvailableLicenses"]))]
    toggles = panel.locator(".card-toggle")
    assert toggles.count() == len(detail["lines"]) == 3
    for index, line in enumerate(detail["lines"]):
        toggle = toggles.nth(index)
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(toggle).to_have_text(f"{line['productName']}{number(line['availableLicenses'])} available")
        expect(panel.locator(f"#license-{index}-details")).to_be_hidden()
    toggle = toggles.nth(1)
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    details = panel.locator("#license-1-details")
    expect(details).to_be_visible()
    line = detail["lines"][1]
    assert facts(details.locator("dl.facts"))[:4] == [("Description", line["productDescription"]), ("Deployment Type", line["deploymentType"]),
                                                      ("Available Licenses", number(line["availableLicenses"])),
                                                      ("Activation Quantity", number(line.get("activatedLicenses")))]
    expect(details.get_by_role("button", name=f"Activate {line['productName']} from entitlement ENT-240117")).to_be_visible()
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(details).to_be_hidden()

    # The expired entitlement's lines cannot be activated.
    admin.goto("/licensing/entitlements?entitlement=ENT-230309")
    page.locator("#entitlement-panel .card-toggle").first.click()
    expect(page.locator("#entitlement-panel button[id^=activate-]").first).to_be_disabled()


def test_activate_from_a_card_is_safe_to_retry_and_refuses_too_many(admin):
    page = admin.page
    before = admin.api("GetDashboard")
    total_before = total(admin.api("ListActivations", {"pageSize": 1}))
    line = next(item for item in admin.api("GetEntitlement", {"entitlementId": "ENT-240811"})["entitlement"]["lines"] if item["productId"] == "QSC-HARBOR")
    unactivated = int(line["unactivatedLicenses"])
    assert unactivated >= 5

    # The first Activate reaches the server, but its answer is replaced by a 503 on the way back.
    requests: list[dict] = []

    def lose_first_answer(route):
        requests.append(json.loads(route.request.post_data))
        if len(requests) == 1:
            response = route.fetch()
            assert response.status == 200, response.text()
            route.fulfill(status=503, content_type="application/json", body=json.dumps({"code": "unavailable", "message": "upstream reset"}))
        else:
            route.continue_()

    page.route(ACTIVATE_URL, lose_first_answer)
    admin.goto("/licensing/entitlements?entitlement=ENT-240811")
    card = page.locator("#entitlement-panel li.license-card").filter(has_text="Harbor Storage")
    card.locator(".card-toggle").click()
    card.get_by_role("button", name="Activate Harbor Storage from entitlement ENT-240811").click()
    activate_in_dialog(page, 2, "Retry Check", "Grace Hopper")
    dialog = page.locator("dialog#activate-dialog")
    error = dialog.get_by_role("alert")
    expect(error).to_have_text("The portal cannot be reached right now. Check your connection and try again.")
    expect(dialog).to_be_visible()
    assert total(admin.api("ListActivations", {"pageSize": 1})) == total_before + 1, "the lost call did activate"

    dialog.get_by_role("button", name="Activate", exact=True).click()
    expect(dialog).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("Activated 2 licenses of Harbor Storage for Retry Check.")
    ready(page)
    assert len(requests) == 2 and requests[0] == requests[1], requests
    assert requests[0]["idempotencyKey"] and requests[0]["quantity"] == "2"
    after = admin.api("GetDashboard")
    assert total(admin.api("ListActivations", {"pageSize": 1})) == total_before + 1, "the retry activated nothing more"
    assert int(after["activatedLicenses"]) == int(before["activatedLicenses"]) + 2
    assert int(after["unactivatedLicenses"]) == int(before["unactivatedLicenses"]) - 2
    page.unroute(ACTIVATE_URL)
    card = page.locator("#entitlement-panel li.license-card").filter(has_text="Harbor Storage")
    expect(card.locator(".card-toggle")).to_have_attribute("aria-expanded", "true")
    expect(card.locator("dd").nth(3)).to_have_text(number(int(line.get("activatedLicenses", 0)) + 2))

    # More than the line has left: refused in the dialog, in words, with nothing sent.
    remaining = unactivated - 2
    sent: list[str] = []
    page.on("request", lambda request: sent.append(request.url) if request.url.endswith("/Activate") else None)
    card.get_by_role("button", name="Activate Harbor Storage from entitlement ENT-240811").click()
    expect(dialog).to_contain_text(f"{number(remaining)} unactivated licenses")
    activate_in_dialog(page, remaining + 1, "Too Many", "Grace Hopper")
    expect(error).to_be_visible()
    expect(error).to_contain_text(str(remaining))
    expect(dialog).to_be_visible()
    assert sent == []

    # The same when another Admin took licenses after the dialog opened: the server's answer is shown.
    admin.api("Activate", {"entitlementId": "ENT-240811", "productId": "QSC-HARBOR", "quantity": "1", "projectName": "Elsewhere",
                           "projectManager": "Katherine Johnson", "idempotencyKey": f"race-{uuid.uuid4()}"})
    dialog.get_by_label("Quantity").fill(str(remaining))
    dialog.get_by_role("button", name="Activate", exact=True).click()
    expect(error).to_contain_text(f"only {remaining - 1} of")
    expect(error).to_contain_text("unactivated")
    expect(dialog).to_be_visible()
    assert len(sent) == 1
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert total(admin.api("ListActivations", {"pageSize": 1})) == total_before + 2


# MARK: Hostile text


def test_typed_markup_and_formulas_stay_text(admin, stack):
    page = admin.page
    project = "<img src=x onerror=alert(1)>"
    manager = '=HYPERLINK("http://x","y")'
    admin.goto("/licensing/products?product=QSC-QUARTZ")
    page.get_by_role("button", name="Activate Quartz Reports from entitlement ENT-241020").click()
    activate_in_dialog(page, 1, project, manager)
    expect(page.locator("dialog#activate-dialog")).to_have_count(0)
    ready(page)

    def no_markup() -> None:
        assert page.locator("img").count() == 0, "typed markup became an element"
        assert admin.dialogs == []

    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Activations").click()
    settle(page, "/activations")
    listed = admin.api("ListActivations", {"pageSize": 50, "orderBy": "activation_date desc"})
    newest = listed["activations"][0]
    assert (newest["projectName"], newest["projectManager"]) == (project, manager)
    assert table_rows(page, "activations-table")[0] == activation_cells(newest, DEFAULT_ACTIVATION_COLUMNS)
    assert table_rows(page, "activations-table")[0][2:4] == [project, manager]
    no_markup()

    href, data = download_export(page)
    rows = csv_rows(data)
    assert rows[1][3] == project, "a cell starting with < is left as it is"
    assert rows[1][4] == "'" + manager, "a cell starting with = is neutralised with a leading quote"
    assert b"\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"" in data
    assert data == grpc_export(stack, admin.token, "activations", href)

    nav.get_by_role("link", name="Dashboard").click()
    settle(page, "/")
    message = f"Activated 1 license of Quartz Reports for project {project}"
    dashboard = admin.api("GetDashboard")
    assert dashboard["recentEvents"][0]["message"] == message
    assert table_rows(page, "recent-events")[0][1] == message
    no_markup()

    nav.get_by_role("link", name="Audit & Event Log").click()
    settle(page, "/audit")
    page.get_by_role("searchbox", name="Search events").fill("onerror")
    page.get_by_role("search", name="Search events").get_by_role("button", name="Search").click()
    settle(page, q="onerror")
    cells = table_rows(page, "audit-table")
    assert [row[1] for row in cells] == [message]
    no_markup()
    href, data = download_export(page)
    assert csv_rows(data)[1][1] == message
    assert data == grpc_export(stack, admin.token, "audit-events", href)


# MARK: Keyboard only


def tab_to(page, element_id: str, backwards: bool = False, limit: int = 80) -> None:
    """Presses Tab (Shift+Tab) until the element `element_id` has focus."""
    for _ in range(limit):
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    assert page.evaluate("document.activeElement && document.activeElement.id") == element_id, \
        f"Tab never reached #{element_id}; focus is on {page.evaluate('document.activeElement.outerHTML.slice(0, 120)')}"


def test_keyboard_only_sort_columns_panel_and_activate(admin):
    page = admin.page
    admin.goto("/licensing/products")
    total_before = total(admin.api("ListActivations", {"pageSize": 1}))

    tab_to(page, "sort-products-license_type")
    page.keyboard.press("Enter")
    settle(page, order="license_type asc")
    expect(page.locator("#products-table thead th[data-col=license_type]")).to_have_attribute("aria-sort", "ascending")
    expect(page.locator("#sort-products-license_type")).to_be_focused()
    listed = admin.api("ListProducts", {"pageSize": 50, "orderBy": "license_type asc"})
    assert table_rows(page, "products-table") == [product_cells(row, ["product_name", "license_type", "product_description"]) for row in listed["products"]]

    tab_to(page, "columns-products", backwards=True)
    page.keyboard.press("Enter")
    expect(page.locator("#columns-products")).to_have_attribute("aria-expanded", "true")
    tab_to(page, "col-products-deployment_type")
    page.keyboard.press("Space")
    expect(page.locator("#col-products-deployment_type")).to_be_checked()
    assert shown_columns(page, "products-table") == ["product_name", "license_type", "product_description", "deployment_type"]
    page.keyboard.press("Escape")
    expect(page.locator("#columns-products")).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#columns-products")).to_be_focused()
    expect(page.locator("#columns-products-panel")).to_be_hidden()

    tab_to(page, "open-product-QSC-SUMMIT")
    page.keyboard.press("Enter")
    settle(page, product="QSC-SUMMIT", order="license_type asc")
    expect(page.locator("#product-panel-title")).to_be_focused()
    tab_to(page, "activate-ENT-241020-QSC-SUMMIT")
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#activate-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Quantity")).to_be_focused()
    page.keyboard.press("Tab")
    expect(dialog.get_by_label("Project Name")).to_be_focused()
    page.keyboard.type("Keyboard Rollout")
    page.keyboard.press("Tab")
    page.keyboard.type("Kay Board")
    page.keyboard.press("Enter")
    expect(dialog).to_have_count(0)
    expect(page.locator("#toast")).to_have_text("Activated 1 license of Summit Identity for Keyboard Rollout.")
    ready(page)
    newest = admin.api("ListActivations", {"pageSize": 1})
    assert total(newest) == total_before + 1
    assert (newest["activations"][0]["projectName"], newest["activations"][0]["projectManager"], newest["activations"][0]["quantity"]) == \
        ("Keyboard Rollout", "Kay Board", "1")
    assert page.evaluate("document.getElementById('product-panel').contains(document.activeElement)"), "focus stays in the panel"

    page.keyboard.press("Escape")
    settle(page, "/licensing/products", product=None, order="license_type asc")
    assert page.locator("#product-panel").count() == 0
    expect(page.locator("#open-product-QSC-SUMMIT")).to_be_focused()


def test_an_address_the_list_cannot_answer_says_so_and_leads_back_to_the_whole_list(admin):
    """An edited or outdated link (a forged page token, an unknown sort column, a reversed date range)
    shows what is wrong in words and a link to the unfiltered list, which works."""
    page = admin.page
    for path, words in [("/activations?page=not-a-token", "could not be loaded"),
                        ("/audit?order=colour+asc", "could not be loaded"),
                        ("/activations?from=2026-03-05&to=2026-03-01", "The start date is after the end date.")]:
        admin.goto(path)
        alert = page.get_by_role("alert")
        assert words in alert.text_content(), (path, alert.text_content())
        assert "page_token:" not in alert.text_content() and "order_by:" not in alert.text_content(), "no API field name opens it"
        page.get_by_role("link", name=re.compile(r"^Show all ")).click()
        ready(page)
        assert "?" not in page.url, page.url
        assert page.get_by_role("alert").count() == 0
        assert page.locator("table tbody tr").count() > 0
