"""The web portal's members, invites and account in Debian's Chromium (Playwright) against `portal dev`.

Ada (Admin of Northwind Robotics) sees the Active and Invites tabs exactly as ListMembers and ListInvites
answer with her session, filters, searches, sorts and hides columns; she invites from the dashboard and
from Members, and the invitee opens the mailed link, names themself, chooses a password and lands
signed in on the dashboard; a used, resent or revoked link then says it is no longer valid. Editing,
deleting (with its confirmation), resending and revoking work and the API agrees; the last Admin of an
organization can be neither demoted nor deleted; a deleted member's open page goes to sign-in on its
next step. The account menu switches organization (a wrong password changes nothing), chooses the theme
and signs out; an ended session leads to sign-in and back. A Viewer is never offered Members or
Invite, and the API refuses them anyway. One test uses the keyboard alone; one invites a member whose
name is markup, which shows as text everywhere.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse

import pytest
from playwright.sync_api import expect

import support
from browser_support import browser, stack  # noqa: F401  (the module's fixtures)
from browser_support import (ADA, GRACE, LIN, NORTHWIND, TAILSPIN, WAIT_MS, api, ready, screenshot,
                             session_cookie, sign_in)
from test_portal_dev import DEMO_PASSWORD

pytestmark = pytest.mark.skipif(support.backend() == "postgres", reason="portal dev keeps SQLite files by design")


ROLES = {"ROLE_ADMIN": "Admin", "ROLE_VIEWER": "Viewer"}
NEW_PASSWORD = "correct-horse-battery-9"
HOSTILE = "<img src=x onerror=alert(1)>"
NO_LONGER_VALID = "This invitation is no longer valid"
SESSION_ENDED = "Your session has ended"


# MARK: Fixtures


@pytest.fixture(scope="module")
def ada_state(stack, browser):
    """Ada signed in to Northwind once; tests that end or replace a session sign in for themselves."""
    context = browser.new_context()
    page = context.new_page()
    sign_in(page, stack.origin, ADA, NORTHWIND)
    state = context.storage_state()
    context.close()
    return state


class Pages:
    """New browser contexts for one test, each page watched for JavaScript dialogs; all closed afterwards."""

    def __init__(self, browser, origin: str):
        self.browser = browser
        self.origin = origin
        self.contexts = []
        self.alerts: list[str] = []

    def new(self, state=None, path: str | None = None, **options):
        context = self.browser.new_context(storage_state=state, **options)
        self.contexts.append(context)
        page = context.new_page()
        page.on("dialog", self._dialog)
        if path is not None:
            page.goto(self.origin + path)
            ready(page)
        return page

    def _dialog(self, dialog) -> None:
        self.alerts.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(stack, browser):
    opened = Pages(browser, stack.origin)
    yield opened
    opened.close()
    assert not opened.alerts, f"a page opened a JavaScript dialog: {opened.alerts}"


# MARK: Helpers


def token_of(page, origin: str) -> str:
    return session_cookie(page.context, origin)


def refused(origin: str, token: str, method: str, request: dict | None = None) -> str:
    """The Connect error code of a call that must fail."""
    try:
        answer = api(origin, token, method, request)
    except urllib.error.HTTPError as error:
        return json.loads(error.read() or b"{}").get("code", f"http {error.code}")
    raise AssertionError(f"{method} succeeded: {answer}")


def list_members(origin: str, token: str, **request) -> list[tuple]:
    """ListMembers as the Active tab asks for it (first page, default order): rows as the table shows them."""
    answer = api(origin, token, "ListMembers", {"pageSize": 50, "orderBy": "last_name asc", **request})
    return [(member.get("firstName", ""), member.get("lastName", ""), member["email"], ROLES[member["role"]], member.get("phone", ""))
            for member in answer.get("members", [])]


def list_invites(origin: str, token: str, **request) -> list[tuple]:
    """ListInvites as the Invites tab asks for it: (email, role) in the default order."""
    answer = api(origin, token, "ListInvites", {"pageSize": 50, "orderBy": "added_on desc", **request})
    return [(invite["email"], ROLES[invite["role"]]) for invite in answer.get("invites", [])]


def member_by_email(origin: str, token: str, email: str) -> dict | None:
    answer = api(origin, token, "ListMembers", {"searchField": "MEMBER_SEARCH_FIELD_EMAIL", "searchText": email})
    return next((member for member in answer.get("members", []) if member["email"].lower() == email.lower()), None)


def invite_by_email(origin: str, token: str, email: str) -> dict | None:
    answer = api(origin, token, "ListInvites", {"searchText": email})
    return next((invite for invite in answer.get("invites", []) if invite["email"].lower() == email.lower()), None)


def table_rows(page, table: str, columns: list[str]) -> list[tuple]:
    """The rows of `#<table>-table` as the cells' text in `columns` (none when the list shows its empty text)."""
    return [tuple(row) for row in page.evaluate(
        """([id, columns]) => [...document.querySelectorAll(`#${id}-table tbody tr`)].map((tr) =>
             columns.map((column) => tr.querySelector(`[data-col="${column}"]`)?.textContent ?? null))""",
        [table, columns])]


def shown_members(page) -> list[tuple]:
    return table_rows(page, "members", ["first_name", "last_name", "email", "role", "phone"])


def shown_invites(page) -> list[tuple]:
    return table_rows(page, "invites", ["email", "role"])


def settle(page, url_part: str) -> None:
    """Waits for the address to hold `url_part` and the screen to have rendered it."""
    page.wait_for_url(lambda url: url_part in urllib.parse.unquote_plus(url), timeout=WAIT_MS)
    ready(page)


def accept_link(stack, email: str, before: set[str]) -> str:
    """The accept link of the one new invite mail to `email`: the web portal's /accept-invite?code=<secret>."""
    secret = support.wait_for_invite_secret(stack.data_dir, email, before)
    (mail,) = [mail for mail in support.invite_mails(stack.data_dir, email, before)]
    link = next(line.split(":", 1)[1].strip() for line in mail.body.splitlines() if line.startswith("Accept the invite:"))
    parts = urllib.parse.urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == stack.origin + "/accept-invite", f"the mail links elsewhere: {link}"
    assert urllib.parse.parse_qs(parts.query) == {"code": [secret]}, link
    return link


def invite_through_api(stack, token: str, email: str, role: str = "ROLE_VIEWER") -> str:
    """Invites `email` with the API (setup for tests about something else) and returns the mailed link."""
    before = support.spool_files(stack.data_dir)
    api(stack.origin, token, "InviteMember", {"email": email, "role": role})
    return accept_link(stack, email, before)


def fill_accept_form(page, link: str, first: str, last: str, password: str = NEW_PASSWORD) -> None:
    page.goto(link)
    ready(page)
    expect(page.get_by_role("heading", name="Accept your invitation", level=1)).to_be_visible()
    page.get_by_label("First name").fill(first)
    page.get_by_label("Last name").fill(last)
    page.locator("#new-password").fill(password)
    page.get_by_label("Repeat the password").fill(password)
    page.get_by_role("button", name="Accept and sign in").click()


def accept(pages: Pages, link: str, first: str, last: str):
    """Opens the mailed link in a fresh browser, accepts, and returns the new member's page on the dashboard."""
    page = pages.new()
    fill_accept_form(page, link, first, last)
    page.wait_for_url(lambda url: urllib.parse.urlsplit(url).path == "/", timeout=WAIT_MS)
    ready(page)
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    return page


def assert_link_no_longer_works(pages: Pages, link: str) -> None:
    page = pages.new()
    fill_accept_form(page, link, "Late", "Comer")
    expect(page.locator("#accept-error")).to_contain_text(NO_LONGER_VALID)
    assert "/accept-invite" in page.url
    assert not page.context.cookies(), "a refused invite must not sign anybody in"


def open_account_menu(page, name: str):
    button = page.get_by_role("button", name=f"Account: {name}")
    button.click()
    expect(button).to_have_attribute("aria-expanded", "true")
    return page.locator("#account-button-panel")


def send_invite(page, email: str, role: str, phone: str = ""):
    """Fills the open Invite Member dialog and sends it; returns the dialog."""
    dialog = page.get_by_role("dialog", name="Invite Member")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Email").fill(email)
    dialog.get_by_label("Phone").fill(phone)
    dialog.get_by_label(role, exact=False).check()
    dialog.get_by_role("button", name="Send invite").click()
    return dialog


def images(page) -> int:
    return page.evaluate("document.querySelectorAll('img, image, picture, iframe, object').length")


# MARK: Admin lists


def test_the_active_tab_lists_filters_searches_sorts_and_hides_columns_as_the_api_says(stack, pages, ada_state):
    page = pages.new(ada_state, "/")
    token = token_of(page, stack.origin)
    katherine = member_by_email(stack.origin, token, "katherine@northwind.example")
    api(stack.origin, token, "UpdateMember", {"memberId": katherine["memberId"], "phone": "+14155550111"})

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Members").click()
    settle(page, "/members/active")
    expect(page.get_by_role("heading", name="Members", level=1)).to_be_visible()
    expect(page.get_by_role("link", name="Active")).to_have_attribute("aria-current", "page")
    everyone = list_members(stack.origin, token)
    assert len(everyone) >= 4 and shown_members(page) == everyone
    expect(page.locator("#members-count")).to_contain_text(f"{len(everyone)} members")

    # The role filter: only Admins, then only Viewers, each exactly as ListMembers filters them.
    for value, role in [("admin", "ROLE_ADMIN"), ("viewer", "ROLE_VIEWER")]:
        page.get_by_role("combobox", name="Role", exact=True).select_option(value)
        settle(page, f"role={value}")
        expected = list_members(stack.origin, token, role=role)
        assert expected and {row[3] for row in expected} == {ROLES[role]}
        assert shown_members(page) == expected, value
    page.get_by_role("combobox", name="Role", exact=True).select_option("")
    page.wait_for_url(lambda url: "role=" not in url)
    ready(page)

    # Search by each field the dropdown offers.
    search = page.get_by_role("search", name="Search members")
    for by, field, text, email in [("email", "EMAIL", "grace@", GRACE), ("name", "NAME", "hamilton", "margaret@northwind.example"),
                                   ("phone", "PHONE", "555011", "katherine@northwind.example")]:
        search.get_by_label("Search by").select_option(by)
        search.get_by_label("Search members").fill(text)
        search.get_by_role("button", name="Search").click()
        settle(page, f"q={text}")
        assert ("by=" in page.url) == (by != "name"), page.url
        expected = list_members(stack.origin, token, searchField=f"MEMBER_SEARCH_FIELD_{field}", searchText=text)
        assert [row[2] for row in expected] == [email], (by, expected)
        assert shown_members(page) == expected, by
        expect(page.get_by_role("search", name="Search members").get_by_label("Search by")).to_have_value(by)
        search = page.get_by_role("search", name="Search members")

    # Sorting by First Name: ascending, then descending, announced with aria-sort, rows in the API's order.
    page.goto(stack.origin + "/members/active")
    ready(page)
    expect(page.locator("#members-table th[data-col=last_name]")).to_have_attribute("aria-sort", "ascending")
    for direction, word in [("asc", "ascending"), ("desc", "descending")]:
        page.locator("#members-table").get_by_role("button", name="First Name").click()
        settle(page, f"order=first_name {direction}")
        expect(page.locator("#members-table th[data-col=first_name]")).to_have_attribute("aria-sort", word)
        expect(page.locator("#members-table th[data-col=last_name]")).to_have_attribute("aria-sort", "none")
        assert page.evaluate("document.activeElement.id") == "sort-members-first_name", "focus stays on the sort button"
        assert shown_members(page) == list_members(stack.origin, token, orderBy=f"first_name {direction}"), direction

    # The column chooser hides Phone, and the choice survives a reload.
    phone_header = page.locator("#members-table th[data-col=phone]")
    expect(phone_header).to_be_visible()
    page.get_by_role("button", name="Columns").click()
    page.locator("#columns-members-panel").get_by_label("Phone").uncheck()
    expect(phone_header).to_be_hidden()
    expect(page.locator("#members-table td[data-col=phone]").first).to_be_hidden()
    page.reload()
    ready(page)
    expect(page.locator("#members-table th[data-col=phone]")).to_be_hidden()
    expect(page.locator("#members-table th[data-col=first_name]")).to_be_visible()
    expect(page.locator("#columns-members-panel").get_by_label("Phone", exact=True)).not_to_be_checked()
    screenshot(page, "members-active")


def test_the_invites_tab_filters_by_role_and_searches_by_email_as_the_api_says(stack, pages, ada_state):
    page = pages.new(ada_state, "/members/active")
    token = token_of(page, stack.origin)
    page.get_by_role("link", name="Invites").click()
    settle(page, "/members/invites")
    expect(page.get_by_role("link", name="Invites")).to_have_attribute("aria-current", "page")
    pending = list_invites(stack.origin, token)
    assert {"dorothy@northwind.example", "mary@northwind.example"} <= {email for email, _ in pending}
    assert shown_invites(page) == pending

    for value, role in [("admin", "ROLE_ADMIN"), ("viewer", "ROLE_VIEWER")]:
        page.get_by_role("combobox", name="Role", exact=True).select_option(value)
        settle(page, f"role={value}")
        expected = list_invites(stack.origin, token, role=role)
        assert expected and {row[1] for row in expected} == {ROLES[role]}
        assert shown_invites(page) == expected, value

    page.get_by_role("combobox", name="Role", exact=True).select_option("")
    page.wait_for_url(lambda url: "role=" not in url)
    ready(page)
    page.get_by_role("searchbox", name="Search by email").fill("dorothy")
    page.get_by_role("search", name="Search by email").get_by_role("button", name="Search").click()
    settle(page, "q=dorothy")
    expected = list_invites(stack.origin, token, searchText="dorothy")
    assert expected == [("dorothy@northwind.example", "Viewer")]
    assert shown_invites(page) == expected

    page.get_by_role("searchbox", name="Search by email").fill("nobody-by-this-name")
    page.get_by_role("search", name="Search by email").get_by_role("button", name="Search").click()
    settle(page, "q=nobody-by-this-name")
    assert list_invites(stack.origin, token, searchText="nobody-by-this-name") == []
    expect(page.locator("[data-empty=invites]")).to_have_text("No pending invites match these filters.")


# MARK: Inviting


def test_an_invite_from_the_dashboard_is_mailed_accepted_and_signs_the_member_in(stack, pages, ada_state):
    email = "nikola@northwind.example"
    page = pages.new(ada_state, "/")
    token = token_of(page, stack.origin)
    card = page.get_by_role("region", name="Invite My Team")
    expect(card).to_be_visible()
    card.get_by_role("button", name="+ Invite Member").click()
    dialog = page.get_by_role("dialog", name="Invite Member")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Email")).to_be_focused()
    expect(dialog.get_by_role("radio", name="Viewer – view only access")).to_be_checked()
    expect(dialog.get_by_role("radio")).to_have_count(2)
    assert "(optional)" in dialog.locator("label[for=invite-phone]").text_content()

    before = support.spool_files(stack.data_dir)
    send_invite(page, email, "Admin – full access", "+14155550142")
    expect(dialog).to_have_count(0)
    ready(page)

    invite = invite_by_email(stack.origin, token, email)
    assert invite and invite["role"] == "ROLE_ADMIN" and invite["phone"] == "+14155550142", invite
    page.goto(stack.origin + "/members/invites")
    ready(page)
    assert (email, "Admin") in shown_invites(page)

    link = accept_link(stack, email, before)

    # The accept page asks for 12 characters and the same password twice before it sends anything.
    member = pages.new()
    fill_accept_form(member, link, "Nikola", "Tesla", password="too-short")
    expect(member.locator("#accept-error")).to_have_text("Choose a password of at least 12 characters.")
    expect(member.locator("#new-password")).to_be_focused()
    member.locator("#new-password").fill(NEW_PASSWORD)
    member.get_by_label("Repeat the password").fill(NEW_PASSWORD + "!")
    member.get_by_role("button", name="Accept and sign in").click()
    expect(member.locator("#accept-error")).to_have_text("The two passwords differ.")
    assert not member.context.cookies()
    screenshot(member, "accept-invite")
    member.get_by_label("Repeat the password").fill(NEW_PASSWORD)
    member.get_by_role("button", name="Accept and sign in").click()
    member.wait_for_url(stack.origin + "/", timeout=WAIT_MS)
    ready(member)
    expect(member.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(member.get_by_role("button", name="Account: Nikola Tesla")).to_be_visible()
    expect(member.locator("#current-organization")).to_have_text(NORTHWIND)
    expect(member.get_by_role("navigation", name="Main").get_by_role("link", name="Members")).to_be_visible()

    # The member is active, the invite has left the Invites tab, on the page and in the API.
    page.reload()
    ready(page)
    assert email not in [row[0] for row in shown_invites(page)]
    assert invite_by_email(stack.origin, token, email) is None
    page.goto(stack.origin + "/members/active")
    ready(page)
    assert ("Nikola", "Tesla", email, "Admin", "+14155550142") in shown_members(page)
    assert shown_members(page) == list_members(stack.origin, token)

    # The link has been used.
    assert_link_no_longer_works(pages, link)


def test_a_duplicate_invite_is_explained_in_the_dialog_which_stays_open(stack, pages, ada_state):
    page = pages.new(ada_state, "/members/active")
    token = token_of(page, stack.origin)
    opener = page.get_by_role("button", name="+ Invite Member")
    opener.click()
    dialog = page.get_by_role("dialog", name="Invite Member")
    duplicates = [("dorothy@northwind.example", "already has a pending invite"), ("Grace@Northwind.example", "already a member")]
    for email, words in duplicates:
        send_invite(page, email, "Viewer – view only access")
        error = dialog.get_by_role("alert")
        expect(error).to_contain_text(words)
        expect(dialog).to_be_visible()
        expect(dialog.get_by_label("Email")).to_have_value(email)
        expect(dialog.get_by_role("button", name="Send invite")).to_be_enabled()
    dorothy = [row for row in list_invites(stack.origin, token) if row[0] == "dorothy@northwind.example"]
    assert dorothy == [("dorothy@northwind.example", "Viewer")], "still the one invite"
    assert invite_by_email(stack.origin, token, GRACE) is None
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(opener).to_be_focused()

    # From Members, a sent invite leads to the Invites tab, where it is listed as the API has it.
    email = "from-members@northwind.example"
    opener.click()
    send_invite(page, email, "Viewer – view only access")
    expect(dialog).to_have_count(0)
    settle(page, "/members/invites")
    assert (email, "Viewer") in shown_invites(page)
    assert shown_invites(page) == list_invites(stack.origin, token)
    expect(page.get_by_role("button", name="+ Invite Member")).to_be_focused()


# MARK: Changing members and invites


def test_edit_changes_role_and_phone(stack, pages, ada_state):
    page = pages.new(ada_state, "/members/active")
    token = token_of(page, stack.origin)
    page.get_by_role("button", name="Edit Margaret Hamilton").click()
    dialog = page.get_by_role("dialog", name="Edit Margaret Hamilton")
    expect(dialog.get_by_role("radio", name="Viewer – view only access")).to_be_checked()
    dialog.get_by_label("Phone").fill("+14155550177")
    dialog.get_by_role("radio", name="Admin – full access").check()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog).to_have_count(0)
    ready(page)
    expect(page.locator("#members-table tr", has_text="margaret@northwind.example").locator("td[data-col=role]")).to_have_text("Admin")
    assert ("Margaret", "Hamilton", "margaret@northwind.example", "Admin", "+14155550177") in shown_members(page)
    margaret = member_by_email(stack.origin, token, "margaret@northwind.example")
    assert margaret["role"] == "ROLE_ADMIN" and margaret["phone"] == "+14155550177", margaret
    assert shown_members(page) == list_members(stack.origin, token)


def test_delete_asks_first_and_the_deleted_members_page_goes_to_sign_in(stack, pages, ada_state):
    email = "leaving@northwind.example"
    admin = pages.new(ada_state, "/")
    token = token_of(admin, stack.origin)
    member = accept(pages, invite_through_api(stack, token, email), "Lena", "Leaving")

    admin.goto(stack.origin + "/members/active")
    ready(admin)
    row = admin.locator("#members-table tbody tr", has_text=email)
    expect(row).to_have_count(1)
    admin.get_by_role("button", name="Delete Lena Leaving").click()
    dialog = admin.get_by_role("dialog", name="Delete Lena Leaving?")
    expect(dialog).to_contain_text(f"Lena Leaving ({email}) loses access")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(row).to_have_count(1)
    assert member_by_email(stack.origin, token, email) is not None

    admin.get_by_role("button", name="Delete Lena Leaving").click()
    dialog.get_by_role("button", name="Delete member").click()
    expect(dialog).to_have_count(0)
    ready(admin)
    expect(row).to_have_count(0)
    assert member_by_email(stack.origin, token, email) is None
    assert shown_members(admin) == list_members(stack.origin, token)

    # The deleted member's open page: the next step in the app leads to sign-in.
    member.get_by_role("navigation", name="Main").get_by_role("link", name="Activations").click()
    member.wait_for_url(lambda url: "/sign-in" in url, timeout=WAIT_MS)
    ready(member)
    expect(member.locator("#sign-in-message")).to_contain_text(SESSION_ENDED)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(member.url).query).get("next") == ["/activations"]
    expect(member.get_by_role("navigation", name="Main")).to_be_hidden()


def test_resend_mails_a_new_link_and_revoke_asks_first_and_both_end_the_old_link(stack, pages, ada_state):
    admin = pages.new(ada_state, "/")
    token = token_of(admin, stack.origin)
    resent, revoked = "resent@northwind.example", "revoked@northwind.example"
    first_link = invite_through_api(stack, token, resent)
    revoked_link = invite_through_api(stack, token, revoked, role="ROLE_ADMIN")

    admin.goto(stack.origin + "/members/invites")
    ready(admin)
    before = support.spool_files(stack.data_dir)
    admin.get_by_role("button", name=f"Resend the invite to {resent}").click()
    expect(admin.locator("#toast")).to_contain_text(f"A new invitation was sent to {resent}")
    new_link = accept_link(stack, resent, before)
    assert new_link != first_link
    assert (resent, "Viewer") in shown_invites(admin)
    assert_link_no_longer_works(pages, first_link)
    accept(pages, new_link, "Rene", "Resent")
    assert member_by_email(stack.origin, token, resent) is not None

    row = admin.locator("#invites-table tbody tr", has_text=revoked)
    expect(row).to_have_count(1)
    admin.get_by_role("button", name=f"Revoke the invite to {revoked}").click()
    dialog = admin.get_by_role("dialog", name=f"Revoke the invite to {revoked}?")
    expect(dialog).to_contain_text("stops working")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    expect(row).to_have_count(1)
    admin.get_by_role("button", name=f"Revoke the invite to {revoked}").click()
    dialog.get_by_role("button", name="Revoke invite").click()
    expect(dialog).to_have_count(0)
    ready(admin)
    expect(row).to_have_count(0)
    assert invite_by_email(stack.origin, token, revoked) is None
    assert shown_invites(admin) == list_invites(stack.origin, token)
    assert_link_no_longer_works(pages, revoked_link)


def test_the_last_admin_can_be_neither_demoted_nor_deleted(stack, pages):
    page = pages.new()
    sign_in(page, stack.origin, LIN, path="/members/active")
    token = token_of(page, stack.origin)
    expect(page.locator("#current-organization")).to_have_text(TAILSPIN)
    before = list_members(stack.origin, token)
    assert [row for row in before if row[3] == "Admin"] == [("Lin", "Chen", LIN, "Admin", "")], before
    assert shown_members(page) == before

    page.get_by_role("button", name="Edit Lin Chen").click()
    dialog = page.get_by_role("dialog", name="Edit Lin Chen")
    dialog.get_by_role("radio", name="Viewer – view only access").check()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.get_by_role("alert")).to_contain_text("last Admin")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)

    page.get_by_role("button", name="Delete Lin Chen").click()
    dialog = page.get_by_role("dialog", name="Delete Lin Chen?")
    dialog.get_by_role("button", name="Delete member").click()
    error = dialog.get_by_role("alert")
    expect(error).to_contain_text("last Admin")
    assert "member_id" not in error.text_content().lower(), f"the message speaks the API's field names: {error.text_content()}"
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert list_members(stack.origin, token) == before
    assert shown_members(page) == before


# MARK: The account menu


def test_switching_organization_asks_for_the_password(stack, pages):
    page = pages.new()
    sign_in(page, stack.origin, ADA, NORTHWIND)
    nav = page.get_by_role("navigation", name="Main")
    expect(page.locator("#current-organization")).to_have_text(NORTHWIND)
    expect(nav.get_by_role("link", name="Members")).to_be_visible()
    first_token = token_of(page, stack.origin)

    menu = open_account_menu(page, "Ada Lovelace")
    menu.get_by_role("button", name=f"{TAILSPIN} (Viewer)").click()
    dialog = page.get_by_role("dialog", name=f"Switch to {TAILSPIN}")
    dialog.get_by_label("Password").fill("not-the-password")
    dialog.get_by_role("button", name="Switch organization").click()
    expect(dialog.get_by_role("alert")).to_have_text("The password is incorrect.")
    expect(dialog).to_be_visible()
    expect(page.locator("#current-organization")).to_have_text(NORTHWIND)
    assert token_of(page, stack.origin) == first_token
    assert api(stack.origin, first_token, "WhoAmI")["principal"]["role"] == "ROLE_ADMIN"

    dialog.get_by_label("Password").fill(DEMO_PASSWORD)
    dialog.get_by_role("button", name="Switch organization").click()
    expect(dialog).to_have_count(0)
    expect(page.locator("#current-organization")).to_have_text(TAILSPIN)
    ready(page)
    assert urllib.parse.urlsplit(page.url).path == "/"
    expect(nav.get_by_role("link", name="Members")).to_have_count(0)
    expect(page.get_by_role("region", name="Invite My Team")).to_have_count(0)
    me = api(stack.origin, token_of(page, stack.origin), "WhoAmI")
    assert me["principal"]["role"] == "ROLE_VIEWER"
    assert [item["organizationName"] for item in me["organizations"] if item.get("current")] == [TAILSPIN]
    assert refused(stack.origin, first_token, "WhoAmI") == "unauthenticated", "switching ends the Northwind session"


def test_sign_out_from_the_account_menu_leaves_nothing_to_go_back_to(stack, pages):
    page = pages.new()
    sign_in(page, stack.origin, ADA, NORTHWIND, path="/members/active")
    token = token_of(page, stack.origin)
    assert shown_members(page)
    menu = open_account_menu(page, "Ada Lovelace")
    menu.get_by_role("button", name="Sign out").click()
    expect(page.locator("#sign-in-message")).to_have_text("You are signed out.")
    assert not [cookie for cookie in page.context.cookies() if cookie["name"] == "__Host-portal-session"]
    assert refused(stack.origin, token, "WhoAmI") == "unauthenticated"

    page.go_back()
    page.wait_for_url(lambda url: "/sign-in" in url, timeout=WAIT_MS)
    ready(page)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator("#members-table")).to_have_count(0)
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    assert "ada@northwind.example" not in page.locator("body").inner_text()


def test_an_ended_session_leads_to_sign_in_and_back_to_the_address(stack, pages):
    page = pages.new()
    sign_in(page, stack.origin, GRACE, path="/audit?type=members")
    expect(page.get_by_label("Type")).to_have_value("members")
    api(stack.origin, token_of(page, stack.origin), "Logout")

    page.get_by_label("Type").select_option("activations")
    page.wait_for_url(lambda url: "/sign-in" in url, timeout=WAIT_MS)
    ready(page)
    expect(page.locator("#sign-in-message")).to_contain_text(SESSION_ENDED)
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["next"] == ["/audit?type=activations"]
    page.get_by_label("Email").fill(GRACE)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(stack.origin + "/audit?type=activations", timeout=WAIT_MS)
    ready(page)
    expect(page.get_by_role("heading", name="Audit & Event Log", level=1)).to_be_visible()
    expect(page.get_by_label("Type")).to_have_value("activations")


def test_a_viewer_is_offered_no_member_management_and_the_api_refuses_it(stack, pages):
    page = pages.new()
    sign_in(page, stack.origin, GRACE)
    token = token_of(page, stack.origin)
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Activations")).to_be_visible()
    expect(page.get_by_role("link", name="Members")).to_have_count(0)
    expect(page.get_by_role("region", name="Invite My Team")).to_have_count(0)
    expect(page.get_by_role("button", name="+ Invite Member")).to_have_count(0)
    for path in ["/members/active", "/members/invites", "/members"]:
        page.goto(stack.origin + path)
        ready(page)
        expect(page.get_by_text("This page is for Admins of your organization.")).to_be_visible()
        expect(page.get_by_role("button", name="+ Invite Member")).to_have_count(0)
        expect(page.locator("#members-table, #invites-table")).to_have_count(0)
    invite = {"email": "x@northwind.example", "role": "ROLE_VIEWER"}
    for method, request in [("ListMembers", {}), ("ListInvites", {}), ("InviteMember", invite)]:
        assert refused(stack.origin, token, method, request) == "permission_denied", method


def test_the_theme_is_chosen_in_the_account_menu_and_follows_the_system_by_default(stack, pages, ada_state):
    page = pages.new(ada_state, "/", color_scheme="light")
    background = lambda: page.evaluate("getComputedStyle(document.body).backgroundColor")  # noqa: E731
    light = background()
    open_account_menu(page, "Ada Lovelace").get_by_label("Theme").select_option("dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dark = background()
    assert dark != light, "the dark theme changes the page's colours"
    page.reload()
    ready(page)
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background() == dark
    expect(page.locator("#theme-choice")).to_have_value("dark")

    open_account_menu(page, "Ada Lovelace").get_by_label("Theme").select_option("system")
    expect(page.locator("html")).not_to_have_attribute("data-theme", "dark")
    assert page.evaluate("document.documentElement.hasAttribute('data-theme')") is False
    assert background() == light
    page.emulate_media(color_scheme="dark")
    assert background() == dark
    page.reload()
    ready(page)
    assert background() == dark and page.evaluate("document.documentElement.hasAttribute('data-theme')") is False
    page.emulate_media(color_scheme="light")
    assert background() == light


# MARK: Keyboard and hostile input


def focused(page) -> dict:
    return page.evaluate("""() => { const e = document.activeElement;
        return { id: e?.id ?? '', tag: e?.tagName ?? '', text: (e?.textContent ?? '').trim(),
                 label: e?.labels?.[0]?.textContent?.trim() ?? '' }; }""")


def press_until(page, key: str, wanted, limit: int = 60) -> dict:
    """Presses `key` until the focused element satisfies `wanted` (a predicate on `focused`)."""
    for _ in range(limit):
        page.keyboard.press(key)
        now = focused(page)
        if wanted(now):
            return now
    raise AssertionError(f"{key} x{limit} never reached the wanted element; focus is on {focused(page)}")


def test_the_keyboard_alone_signs_in_invites_and_closes_menus_and_dialogs(stack, pages):
    page = pages.new(path="/")
    settle(page, "/sign-in")
    keys = page.keyboard

    keys.press("Tab")
    assert focused(page)["text"] == "Skip to content"
    keys.press("Enter")
    assert focused(page)["id"] == "main"

    keys.press("Tab")
    assert focused(page)["id"] == "email", "after the skip link, Tab goes on from the content"
    keys.type(ADA)
    keys.press("Tab")
    assert focused(page)["id"] == "password"
    keys.type(DEMO_PASSWORD)
    keys.press("Enter")
    page.locator("#choose-form").wait_for(state="visible")
    press_until(page, "ArrowDown", lambda f: f["label"] == NORTHWIND, limit=3)
    keys.press("Tab")
    assert focused(page)["text"] == "Continue"
    keys.press("Enter")
    page.wait_for_url(lambda url: "/sign-in" not in url, timeout=WAIT_MS)
    ready(page)
    expect(page.locator("#current-organization")).to_have_text(NORTHWIND)

    # The account menu opens with Enter and Escape closes it, focus back on its button.
    press_until(page, "Shift+Tab", lambda f: f["id"] == "account-button")
    keys.press("Enter")
    expect(page.locator("#account-button")).to_have_attribute("aria-expanded", "true")
    keys.press("Tab")
    assert page.evaluate("document.getElementById('account-button-panel').contains(document.activeElement)")
    keys.press("Escape")
    expect(page.locator("#account-button-panel")).to_be_hidden()
    assert focused(page)["id"] == "account-button"

    # Invite Member: open, fill and send without a mouse.
    email = "keys@northwind.example"
    press_until(page, "Tab", lambda f: f["id"] == "invite-member")
    keys.press("Space")
    expect(page.get_by_role("dialog", name="Invite Member")).to_be_visible()
    assert focused(page)["id"] == "invite-email"
    keys.type(email)
    keys.press("Tab")
    assert focused(page)["id"] == "invite-phone"
    keys.type("+14155550199")
    keys.press("Tab")
    assert focused(page)["id"] == "invite-role-ROLE_VIEWER"
    keys.press("ArrowUp")
    assert focused(page)["id"] == "invite-role-ROLE_ADMIN"
    press_until(page, "Tab", lambda f: f["text"] == "Send invite", limit=3)
    keys.press("Enter")
    expect(page.get_by_role("dialog", name="Invite Member")).to_have_count(0)
    invite = invite_by_email(stack.origin, token_of(page, stack.origin), email)
    assert invite and invite["role"] == "ROLE_ADMIN" and invite["phone"] == "+14155550199", invite

    # Members by keyboard; Edit opens its dialog and Escape closes it, focus back on that Edit button.
    press_until(page, "Shift+Tab", lambda f: f["tag"] == "A" and f["text"] == "Members")
    keys.press("Enter")
    settle(page, "/members/active")
    edit = press_until(page, "Tab", lambda f: f["id"].startswith("edit-"), limit=80)
    keys.press("Enter")
    dialog = page.locator("#edit-dialog")
    expect(dialog).to_be_visible()
    assert dialog.evaluate("(d) => d.contains(document.activeElement)")
    keys.press("Escape")
    expect(dialog).to_have_count(0)
    assert focused(page)["id"] == edit["id"]


def test_a_name_made_of_markup_shows_as_text(stack, pages, ada_state):
    email = "markup@northwind.example"
    admin = pages.new(ada_state, "/")
    token = token_of(admin, stack.origin)
    member = accept(pages, invite_through_api(stack, token, email), HOSTILE, "Tester")
    full_name = f"{HOSTILE} Tester"
    accepted = f"{full_name} ({email}) accepted the invite"

    # The audit event is relayed after the change commits: wait for it before looking at the pages.
    def recorded():
        events = api(stack.origin, token, "ListAuditEvents", {"pageSize": 20, "orderBy": "time desc"}).get("events", [])
        return any(event["message"].startswith(accepted) for event in events)
    assert support.wait_until(recorded, timeout=10), "no audit event for the accepted invite"
    member.reload()
    ready(member)

    account = member.locator("#account-button")
    expect(account).to_have_text(f"Account: {full_name}")
    open_account_menu(member, full_name)
    expect(member.locator("#account-button-panel .who strong")).to_have_text(full_name)
    expect(member.locator("#recent-events")).to_contain_text(accepted)
    assert images(member) == 0

    admin.goto(stack.origin + "/members/active")
    ready(admin)
    row = admin.locator("#members-table tbody tr", has_text=email)
    expect(row.locator("td[data-col=first_name]")).to_have_text(HOSTILE)
    admin.get_by_role("button", name=f"Edit {full_name}").click()
    expect(admin.locator("#edit-dialog-title")).to_have_text(f"Edit {full_name}")
    expect(admin.locator("#edit-first-name")).to_have_value(HOSTILE)
    admin.keyboard.press("Escape")
    assert images(admin) == 0
    for path in ["/", "/audit?type=members"]:
        admin.goto(stack.origin + path)
        ready(admin)
        expect(admin.locator("main")).to_contain_text(accepted)
        assert images(admin) == 0, path
    assert not pages.alerts
