// The dashboard: license figures, total members (Admins), Invite My Team (Admins), and the most recent
// activations and audit events with links into their modules.

import { h } from "/app/dom.js";
import { count, dateTime, eventTypeName } from "/app/format.js";
import { simpleTable } from "/app/table.js";
import { inviteButton } from "/app/invites.js";
import { explain, problem } from "/app/widgets.js";

/** One figure of the summary. */
function metric(key, label, value) {
  return h("li", { class: "metric", "data-metric": key }, h("span", { class: "metric-label" }, label), h("span", { class: "metric-value" }, count(value)));
}

/** The dashboard page. */
export async function render(ctx) {
  let dashboard;
  try {
    dashboard = await ctx.api("GetDashboard", {}, { read: true });
  } catch (error) {
    return h("section", {}, h("h1", {}, "Dashboard"), problem(`The dashboard could not be loaded. ${explain(error)}`));
  }
  const unavailable = new Set(dashboard.unavailableSections ?? []);
  const canInvite = (dashboard.quickActions ?? []).includes("QUICK_ACTION_INVITE_MEMBER");
  const metrics = [
    metric("available", "Available Licenses", dashboard.availableLicenses),
    metric("activated", "Activated Licenses", dashboard.activatedLicenses),
    metric("unactivated", "Unactivated Licenses", dashboard.unactivatedLicenses),
    dashboard.totalMembers !== undefined ? metric("members", "Total Members", dashboard.totalMembers) : null,
  ];
  const notices = [];
  if (unavailable.has("DASHBOARD_SECTION_LICENSES")) notices.push("License figures and recent activations are unavailable right now.");
  if (unavailable.has("DASHBOARD_SECTION_RECENT_EVENTS")) notices.push("Recent audit events are unavailable right now.");
  if (unavailable.has("DASHBOARD_SECTION_MEMBERS")) notices.push("The member count is unavailable right now.");

  return h("div", { class: "dashboard" },
    h("h1", {}, "Dashboard"),
    notices.map((text) => problem(`${text} Reload the page in a moment.`)),
    h("section", { "aria-labelledby": "summary-heading" },
      h("h2", { id: "summary-heading", class: "visually-hidden" }, "Summary"),
      h("ul", { class: "metrics" }, metrics)),
    canInvite ? h("section", { class: "card invite-card", "aria-labelledby": "invite-heading" },
      h("h2", { id: "invite-heading" }, "Invite My Team"),
      h("p", {}, "Give your colleagues access: Admins have full access, Viewers can only look."),
      inviteButton(ctx, () => ctx.render())) : null,
    h("section", { class: "card", "aria-labelledby": "recent-activations-heading" },
      h("div", { class: "card-head" }, h("h2", { id: "recent-activations-heading" }, "Recent Activations"),
        h("a", { href: "/activations", "aria-label": "View all activations" }, "View All")),
      simpleTable("recent-activations", "Recent activations", [
        ["Product Name", (row) => row.productName],
        ["Quantity", (row) => count(row.quantity)],
        ["Activation Date", (row) => dateTime(row.activationDate)],
        ["Activated By", (row) => row.activatedBy],
      ], dashboard.recentActivations ?? [], "No licenses have been activated yet.")),
    h("section", { class: "card", "aria-labelledby": "recent-events-heading" },
      h("div", { class: "card-head" }, h("h2", { id: "recent-events-heading" }, "Recent Audits & Events"),
        h("a", { href: "/audit", "aria-label": "View all audit events" }, "View All")),
      simpleTable("recent-events", "Recent audit events", [
        ["Date & Time", (row) => dateTime(row.time)],
        ["Message", (row) => row.message],
        ["Type", (row) => eventTypeName(row.eventType)],
        ["User", (row) => row.user],
      ], dashboard.recentEvents ?? [], "Nothing has happened yet.")));
}
