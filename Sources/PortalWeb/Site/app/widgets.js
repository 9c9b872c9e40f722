// Small accessible building blocks: disclosures (menus, the column chooser), tabs that are links,
// labelled filter fields, and the words shown while loading, when empty and on errors.

import { h } from "/app/dom.js";
import { withParams } from "/app/router.js";

/** A button that shows and hides `content` (aria-expanded); Escape and a click elsewhere close it. */
export function disclosure(id, label, content, { buttonClass = "secondary", align = "start" } = {}) {
  const panel = h("div", { id: `${id}-panel`, class: `popover popover-${align}`, hidden: true }, content);
  const button = h("button", { type: "button", id, class: buttonClass, "aria-expanded": "false", "aria-controls": `${id}-panel` }, label);
  const wrapper = h("div", { class: "disclosure" }, button, panel);
  const setOpen = (open) => {
    panel.hidden = !open;
    button.setAttribute("aria-expanded", String(open));
  };
  button.addEventListener("click", () => setOpen(panel.hidden));
  wrapper.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !panel.hidden) {
      event.stopPropagation();
      setOpen(false);
      button.focus();
    }
  });
  wrapper.addEventListener("focusout", (event) => {
    if (!panel.hidden && event.relatedTarget && !wrapper.contains(event.relatedTarget)) setOpen(false);
  });
  return wrapper;
}

/** Closes every open disclosure that does not hold `target` (the app calls it on each click). */
export function closeDisclosuresOutside(target) {
  for (const wrapper of document.querySelectorAll(".disclosure")) {
    if (wrapper.contains(target)) continue;
    const button = wrapper.querySelector(":scope > button");
    const panel = wrapper.querySelector(":scope > .popover");
    if (panel && !panel.hidden) {
      panel.hidden = true;
      button?.setAttribute("aria-expanded", "false");
    }
  }
}

/** Tabs that are links (each tab has its own URL): `items` of `{ label, href, current }`. */
export function linkTabs(label, items) {
  return h("nav", { class: "tabs", "aria-label": label },
    h("ul", {}, items.map((item) => h("li", {}, h("a", { href: item.href, "aria-current": item.current ? "page" : undefined }, item.label)))));
}

/** A labelled `<select>` of `options` (`[value, text]`), `value` selected. */
export function selectField(id, label, options, value, onchange) {
  const select = h("select", { id, name: id }, options.map(([optionValue, text]) => h("option", { value: optionValue, selected: optionValue === (value ?? "") }, text)));
  if (onchange) select.addEventListener("change", () => onchange(select.value));
  return h("div", { class: "field" }, h("label", { for: id }, label), select);
}

/** A labelled date input (`yyyy-mm-dd`). */
export function dateField(id, label, value, onchange) {
  const input = h("input", { id, name: id, type: "date", value: value ?? "" });
  if (onchange) input.addEventListener("change", () => onchange(input.value));
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

/** A search form: a labelled text field and a Search button; submitting calls `onsearch(text)`. */
export function searchForm(id, label, value, onsearch, extra = null) {
  const input = h("input", { id, name: id, type: "search", value: value ?? "", maxlength: "200", autocomplete: "off" });
  const form = h("form", { class: "search", role: "search", "aria-label": label },
    extra,
    h("div", { class: "field" }, h("label", { for: id }, label), input),
    h("button", { type: "submit", class: "secondary", id: `${id}-submit` }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    onsearch(input.value.trim());
  });
  return form;
}

/** A message that a list or a value could not be loaded, in words a person understands. */
export function problem(text) {
  return h("p", { class: "problem", role: "alert" }, text);
}

/** What to tell a person about a failed call. */
export function explain(error) {
  switch (error?.code) {
    case "unavailable": return "The portal cannot be reached right now. Check your connection and try again.";
    case "deadline_exceeded": return "The portal took too long to answer. Try again in a moment.";
    case "permission_denied": return "Your role does not allow this. Ask an Admin of your organization.";
    case "not_found": return "This item does not exist, or it is not part of your organization.";
    case "resource_exhausted": return "Too many attempts. Wait a minute, then try again.";
    case "invalid_argument": case "failed_precondition": case "already_exists": return sentence(error.message);
    default: return `Something went wrong (${error?.message || "unknown error"}). Try again.`;
  }
}

/** The server's message as a sentence: capitalised, with a full stop. */
function sentence(message) {
  // An API field name such as `member_id: ` means nothing to a person: the words after it say it all.
  const text = String(message || "The request was not accepted").trim().replace(/^[a-z]+(?:_[a-z]+)+: /, "");
  const capital = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(capital) ? capital : `${capital}.`;
}

/** The button that shows a list's times in UTC or in the viewer's own time zone (`tz=utc` in the URL). */
export function timeZoneToggle(ctx, localZone) {
  const utc = ctx.params.get("tz") === "utc";
  return h("button", {
    type: "button", id: "time-zone", class: "secondary", "aria-pressed": String(utc),
    // A new first page: UTC days change a date range, and page tokens are bound to the filters.
    onclick: () => ctx.navigate(withParams(ctx.path, ctx.params, { tz: utc ? "" : "utc" }), { focus: "time-zone" }),
    title: utc ? `Times are shown in UTC; press to show them in ${localZone}` : `Times are shown in ${localZone}; press to show them in UTC`,
  }, "Show times in UTC");
}

/** A labelled block of a list's filters and actions above its table. */
export function toolbar(label, ...children) {
  return h("div", { class: "toolbar", role: "group", "aria-label": label }, children);
}

/** The Export CSV link of a list (Admins only): a download with the list's filters and every column. */
export function exportLink(path, query) {
  return h("a", { class: "button secondary", id: "export-csv", href: query ? `${path}?${query}` : path, download: "" }, "Export CSV");
}
