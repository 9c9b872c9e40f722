// Unit tests of how a screen's URL parameters become API requests (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

process.env.TZ = "Europe/Berlin";
const query = await import("../../Sources/PortalWeb/Site/app/query.js");

const params = (text) => new URLSearchParams(text);

test("a start date is the start of that day in the viewer's zone; an end date includes its whole day", () => {
  assert.equal(query.dayStart("2026-03-05"), "2026-03-04T23:00:00.000Z");
  assert.equal(query.dayEnd("2026-03-05"), "2026-03-05T23:00:00.000Z");
  assert.equal(query.dayEnd("2026-03-28"), "2026-03-28T23:00:00.000Z", "the day before summer time");
  assert.equal(query.dayEnd("2026-03-29"), "2026-03-29T22:00:00.000Z", "a 23-hour day ends at local midnight");
  assert.equal(query.dayStart("2026-03-05", true), "2026-03-05T00:00:00.000Z");
  assert.equal(query.dayEnd("2026-12-31", true), "2027-01-01T00:00:00.000Z");
});

test("dates that are not dates are refused, in words", () => {
  assert.equal(query.dayStart("2026-02-31"), undefined);
  assert.equal(query.dayStart("05/03/2026"), undefined);
  assert.equal(query.dayStart(""), undefined);
  assert.equal(query.dateRangeProblem(params("from=2026-03-05&to=2026-03-04")), "The start date is after the end date.");
  assert.equal(query.dateRangeProblem(params("from=2026-13-01")), "The start date is not a date.");
  assert.equal(query.dateRangeProblem(params("to=yesterday")), "The end date is not a date.");
  assert.equal(query.dateRangeProblem(params("from=2026-03-05&to=2026-03-05")), null, "one whole day");
});

test("activations: filters, search, order and page token from the URL", () => {
  assert.deepEqual(query.activationsRequest(params("")), { pageSize: 50, orderBy: "activation_date desc" });
  assert.deepEqual(query.activationsRequest(params("from=2026-01-01&to=2026-01-31&product=NX-110&q=%20apollo%20&order=product_name+asc&page=tok")), {
    pageSize: 50, pageToken: "tok", orderBy: "product_name asc", searchText: "apollo", productIds: ["NX-110"],
    activationDateStart: "2025-12-31T23:00:00.000Z", activationDateEnd: "2026-01-31T23:00:00.000Z",
  });
});

test("audit: type and user filters; unknown types are ignored", () => {
  assert.deepEqual(query.auditRequest(params("type=members&user=system")), { pageSize: 50, orderBy: "time desc", eventTypes: ["EVENT_TYPE_MEMBERS"], user: "system" });
  assert.deepEqual(query.auditRequest(params("type=bogus")), { pageSize: 50, orderBy: "time desc" });
});

test("entitlements: order or expiration date range, and the search-by field only with a search", () => {
  const byOrder = query.entitlementsRequest(params("from=2026-01-01"));
  assert.equal(byOrder.orderDateStart, "2025-12-31T23:00:00.000Z");
  assert.equal(byOrder.searchField, undefined);
  const byExpiry = query.entitlementsRequest(params("date=expiration&to=2026-01-01&by=po_number&q=PO-1"));
  assert.equal(byExpiry.expirationDateEnd, "2026-01-01T23:00:00.000Z");
  assert.equal(byExpiry.searchField, "ENTITLEMENT_SEARCH_FIELD_PO_NUMBER");
  assert.equal(query.entitlementsRequest(params("q=ENT")).searchField, "ENTITLEMENT_SEARCH_FIELD_ENTITLEMENT_ID");
});

test("members and invites: role filter and search field", () => {
  assert.deepEqual(query.membersRequest(params("role=viewer&by=email&q=ada")), {
    pageSize: 50, orderBy: "last_name asc", role: "ROLE_VIEWER", searchText: "ada", searchField: "MEMBER_SEARCH_FIELD_EMAIL",
  });
  assert.equal(query.membersRequest(params("q=Ada")).searchField, "MEMBER_SEARCH_FIELD_NAME");
  assert.deepEqual(query.invitesRequest(params("role=admin")), { pageSize: 50, orderBy: "added_on desc", role: "ROLE_ADMIN" });
});

test("an export carries the list's filters and the viewer's time zone, never paging", () => {
  const request = query.activationsRequest(params("product=A&q=x&page=tok"));
  const exported = new URLSearchParams(query.exportQuery(request, "Europe/Berlin"));
  assert.equal(exported.get("pageSize"), null);
  assert.equal(exported.get("pageToken"), null);
  assert.deepEqual(exported.getAll("productIds"), ["A"]);
  assert.equal(exported.get("searchText"), "x");
  assert.equal(exported.get("orderBy"), "activation_date desc");
  assert.equal(exported.get("timeZone"), "Europe/Berlin");
});

test("clicking a header sorts ascending first, then flips; aria-sort says which", () => {
  assert.equal(query.nextOrder("activation_date desc", "product_name"), "product_name asc");
  assert.equal(query.nextOrder("product_name asc", "product_name"), "product_name desc");
  assert.equal(query.nextOrder("product_name desc", "product_name"), "product_name asc");
  assert.equal(query.nextOrder("", "time", "desc"), "time desc");
  assert.equal(query.ariaSort("product_name desc", "product_name"), "descending");
  assert.equal(query.ariaSort("product_name asc", "product_name"), "ascending");
  assert.equal(query.ariaSort("product_name asc", "quantity"), "none");
});
