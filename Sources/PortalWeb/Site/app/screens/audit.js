// The Audit & Event Log: every recorded change of the organization, filtered by date range, type,
// user and text; times as `DD MMM YYYY, HH:MM:SS` in the viewer's zone or in UTC; CSV for Admins.

import { h } from "/app/dom.js";
import { dateTime, eventTypeName, localTimeZone } from "/app/format.js";
import { auditRequest, dateRangeProblem, exportQuery } from "/app/query.js";
import { withParams } from "/app/router.js";
import { listResults, settle } from "/app/table.js";
import { dateField, exportLink, selectField, timeZoneToggle, toolbar } from "/app/widgets.js";

/** The audit page. */
export async function render(ctx) {
  const { params, path } = ctx;
  const set = (changes) => ctx.navigate(withParams(path, params, changes));
  const utc = params.get("tz") === "utc";
  const zone = utc ? "UTC" : localTimeZone();
  const rangeProblem = dateRangeProblem(params);
  const request = auditRequest(params);
  const list = rangeProblem ? { problem: rangeProblem } : await settle(ctx.api("ListAuditEvents", request, { read: true }));
  const spec = {
    id: "audit", caption: "Audit and event log", order: request.orderBy, emptyText: "No events match these filters.",
    columns: [
      { key: "time", label: `Date & Time (${zone})`, sort: "time", firstDirection: "desc", fixed: true, cell: (row) => h("time", { datetime: row.time }, dateTime(row.time, zone)) },
      { key: "message", label: "Message", fixed: true, cell: (row) => row.message },
      { key: "type", label: "Type", fixed: true, cell: (row) => eventTypeName(row.eventType) },
      { key: "user", label: "User", fixed: true, cell: (row) => row.user },
    ],
  };

  const userInput = h("input", { id: "user", name: "user", type: "text", value: params.get("user") ?? "", maxlength: "320", autocomplete: "off" });
  const textInput = h("input", { id: "search", name: "search", type: "search", value: params.get("q") ?? "", maxlength: "200", autocomplete: "off" });
  const search = h("form", { class: "search", role: "search", "aria-label": "Search events" },
    h("div", { class: "field" }, h("label", { for: "user" }, "User (name or email)"), userInput),
    h("div", { class: "field" }, h("label", { for: "search" }, "Search events"), textInput),
    h("button", { type: "submit", class: "secondary", id: "search-submit" }, "Search"));
  search.addEventListener("submit", (event) => {
    event.preventDefault();
    set({ user: userInput.value.trim(), q: textInput.value.trim() });
  });

  const filters = toolbar("Filters",
    dateField("from", "Start date", params.get("from"), (value) => set({ from: value })),
    dateField("to", "End date", params.get("to"), (value) => set({ to: value })),
    selectField("type", "Type", [["", "All types"], ["members", "Members"], ["licenses", "Licenses"], ["activations", "Activations"]],
      params.get("type"), (value) => set({ type: value })),
    search);
  const actions = toolbar("Table options",
    timeZoneToggle(ctx, localTimeZone()),
    ctx.isAdmin ? exportLink("/exports/audit-events.csv", exportQuery(request, zone)) : null);

  const results = listResults(spec, list, ctx, { rows: "events", noun: ["event", "events"] });
  return h("div", {}, h("h1", {}, "Audit & Event Log"), filters, actions, results);
}
