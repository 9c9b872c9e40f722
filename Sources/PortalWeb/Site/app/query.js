// Turns a screen's URL parameters into the API request they stand for, so filters, searches, sorting and
// pages live in the address bar. Pure functions, tested with `node --test`.

/** Rows per page of every list. */
export const pageSize = 50;

/** `2026-03-05` → the start of that day in the viewer's time zone (or UTC) as RFC 3339; undefined if not a date. */
export function dayStart(text, utc = false) {
  const found = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text ?? "");
  if (!found) return undefined;
  const [year, month, day] = [Number(found[1]), Number(found[2]) - 1, Number(found[3])];
  const date = utc ? new Date(Date.UTC(year, month, day)) : new Date(year, month, day);
  const parts = utc ? [date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate()] : [date.getFullYear(), date.getMonth(), date.getDate()];
  // 2026-02-31 or 2026-13-01 would roll over into the next month or year: not a date.
  return parts[0] === year && parts[1] === month && parts[2] === day ? date.toISOString() : undefined;
}

/** The start of the day after `text` (an end date includes its whole day); undefined if not a date. */
export function dayEnd(text, utc = false) {
  const start = dayStart(text, utc);
  if (!start) return undefined;
  const date = new Date(start);
  if (utc) date.setUTCDate(date.getUTCDate() + 1);
  else date.setDate(date.getDate() + 1);
  return date.toISOString();
}

/** A problem with a date range in words, or null: both dates must be real and the start not after the end. */
export function dateRangeProblem(params) {
  const from = params.get("from") ?? "";
  const to = params.get("to") ?? "";
  if (from && !dayStart(from)) return "The start date is not a date.";
  if (to && !dayStart(to)) return "The end date is not a date.";
  if (from && to && from > to) return "The start date is after the end date.";
  return null;
}

/** Paging and sorting parameters shared by every list. */
function listBase(params, defaultOrder) {
  const request = { pageSize };
  const page = params.get("page");
  if (page) request.pageToken = page;
  const order = params.get("order");
  request.orderBy = order || defaultOrder;
  const text = (params.get("q") ?? "").trim();
  if (text) request.searchText = text;
  return request;
}

const eventTypes = { members: "EVENT_TYPE_MEMBERS", licenses: "EVENT_TYPE_LICENSES", activations: "EVENT_TYPE_ACTIVATIONS" };
const roles = { admin: "ROLE_ADMIN", viewer: "ROLE_VIEWER" };
const memberFields = { name: "MEMBER_SEARCH_FIELD_NAME", email: "MEMBER_SEARCH_FIELD_EMAIL", phone: "MEMBER_SEARCH_FIELD_PHONE" };
const entitlementFields = {
  entitlement: "ENTITLEMENT_SEARCH_FIELD_ENTITLEMENT_ID",
  sales_order: "ENTITLEMENT_SEARCH_FIELD_SALES_ORDER",
  po_number: "ENTITLEMENT_SEARCH_FIELD_PO_NUMBER",
};

/** ListActivations for `/activations?from&to&product&q&order&page`. */
export function activationsRequest(params) {
  const request = listBase(params, "activation_date desc");
  // Days are the viewer's, or UTC days while the list shows times in UTC (`tz=utc`).
  const utc = params.get("tz") === "utc";
  const from = dayStart(params.get("from"), utc);
  const to = dayEnd(params.get("to"), utc);
  if (from) request.activationDateStart = from;
  if (to) request.activationDateEnd = to;
  const product = params.get("product");
  if (product) request.productIds = [product];
  return request;
}

/** ListAuditEvents for `/audit?from&to&type&user&q&order&page`. */
export function auditRequest(params) {
  const request = listBase(params, "time desc");
  const utc = params.get("tz") === "utc";
  const from = dayStart(params.get("from"), utc);
  const to = dayEnd(params.get("to"), utc);
  if (from) request.timeStart = from;
  if (to) request.timeEnd = to;
  const type = eventTypes[params.get("type")];
  if (type) request.eventTypes = [type];
  const user = (params.get("user") ?? "").trim();
  if (user) request.user = user;
  return request;
}

/** ListProducts for `/licensing/products?q&order&page`. */
export function productsRequest(params) {
  return listBase(params, "product_name asc");
}

/** ListEntitlements for `/licensing/entitlements?date&from&to&by&q&order&page`. */
export function entitlementsRequest(params) {
  const request = listBase(params, "order_date desc");
  const which = params.get("date") === "expiration" ? "expirationDate" : "orderDate";
  const from = dayStart(params.get("from"));
  const to = dayEnd(params.get("to"));
  if (from) request[`${which}Start`] = from;
  if (to) request[`${which}End`] = to;
  if (request.searchText) request.searchField = entitlementFields[params.get("by")] ?? entitlementFields.entitlement;
  return request;
}

/** ListMembers for `/members/active?role&by&q&order&page`. */
export function membersRequest(params) {
  const request = listBase(params, "last_name asc");
  const role = roles[params.get("role")];
  if (role) request.role = role;
  if (request.searchText) request.searchField = memberFields[params.get("by")] ?? memberFields.name;
  return request;
}

/** ListInvites for `/members/invites?role&q&order&page`. */
export function invitesRequest(params) {
  const request = listBase(params, "added_on desc");
  const role = roles[params.get("role")];
  if (role) request.role = role;
  return request;
}

/**
 * The query of a CSV download with the list's filters (JSON field names, as the export takes them):
 * no paging, and times in `timeZone` (an IANA name) as the viewer sees them.
 */
export function exportQuery(request, timeZone) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(request)) {
    if (name === "pageSize" || name === "pageToken") continue;
    for (const item of Array.isArray(value) ? value : [value]) query.append(name, String(item));
  }
  if (timeZone) query.set("timeZone", timeZone);
  return query.toString();
}

/** The order after a click on `column`'s header: ascending first, then the other way round. */
export function nextOrder(current, column, firstDirection = "asc") {
  const [name, direction] = (current ?? "").split(" ");
  if (name === column) return `${column} ${direction === "asc" ? "desc" : "asc"}`;
  return `${column} ${firstDirection}`;
}

/** `aria-sort` of `column` under `order`: ascending, descending or none. */
export function ariaSort(order, column) {
  const [name, direction] = (order ?? "").split(" ");
  if (name !== column) return "none";
  return direction === "desc" ? "descending" : "ascending";
}
