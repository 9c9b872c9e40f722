// How the portal shows times and numbers: the product's `DD MMM YYYY, HH:MM:SS`, in the viewer's time
// zone or in UTC.

const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The parts of `date` in `timeZone` (an IANA name; undefined for the browser's own). */
function parts(date, timeZone) {
  const formatter = new Intl.DateTimeFormat("en-GB", {
    timeZone, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
    hourCycle: "h23",
  });
  const found = {};
  for (const { type, value } of formatter.formatToParts(date)) found[type] = value;
  return found;
}

/** `05 Mar 2026, 14:07:09` for an RFC 3339 time (or a Date); empty for none. */
export function dateTime(value, timeZone) {
  if (!value) return "";
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return "";
  const p = parts(date, timeZone);
  return `${p.day} ${months[Number(p.month) - 1]} ${p.year}, ${p.hour}:${p.minute}:${p.second}`;
}

/** `05 Mar 2026` for an RFC 3339 time (or a Date); empty for none. */
export function date(value, timeZone) {
  const text = dateTime(value, timeZone);
  return text ? text.slice(0, text.indexOf(",")) : "";
}

/** A count as people read it (`12,345`); 64-bit counts arrive as strings in JSON. */
export function count(value) {
  const number = typeof value === "string" ? Number(value) : value ?? 0;
  return Number.isFinite(number) ? number.toLocaleString("en-US") : String(value);
}

/** `Admin` or `Viewer` for a role as the API names it. */
export function roleName(role) {
  return { ROLE_ADMIN: "Admin", ROLE_VIEWER: "Viewer" }[role] ?? "";
}

/** `Members`, `Licenses` or `Activations` for an event type as the API names it. */
export function eventTypeName(type) {
  return { EVENT_TYPE_MEMBERS: "Members", EVENT_TYPE_LICENSES: "Licenses", EVENT_TYPE_ACTIVATIONS: "Activations" }[type] ?? "";
}

/** `Active` or `Expired` for an entitlement status as the API names it. */
export function statusName(status) {
  return { ENTITLEMENT_STATUS_ACTIVE: "Active", ENTITLEMENT_STATUS_EXPIRED: "Expired" }[status] ?? "";
}

/** The viewer's own IANA time zone (`Europe/Berlin`), or UTC when the browser does not say. */
export function localTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

/** A person's name from first and last name, else their email. */
export function personName(person) {
  const name = [person?.firstName, person?.lastName].filter(Boolean).join(" ");
  return name || person?.displayName || person?.email || "";
}
