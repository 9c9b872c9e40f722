// Builds DOM nodes with element APIs and textContent only: the portal's Content-Security-Policy and
// Trusted Types forbid HTML strings, and text set this way can never become markup.

/**
 * An element: `h("button", { type: "button", onclick: f, "aria-label": "Close" }, "Close")`.
 * Attributes starting with `on` become listeners; `class`, `hidden` and `dataset` are understood;
 * children are nodes or text (null and false are skipped).
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "dataset") {
      Object.assign(element.dataset, value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children (nodes, text, arrays of them), skipping null and false. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(typeof child === "string" || typeof child === "number" ? document.createTextNode(String(child)) : child);
  }
  return parent;
}
