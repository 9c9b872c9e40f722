// The right-side detail panel of a list: a labelled region with a Close link back to the list (the
// panel is part of the URL), closed by Escape too.

import { h } from "/app/dom.js";

/** A panel titled `title` holding `children`; `closeHref` is the list's address without the panel. */
export function detailPanel(id, title, closeHref, returnFocus, children, ctx) {
  const close = h("a", { class: "button secondary close", href: closeHref, "data-focus": returnFocus, id: `${id}-close` }, "Close", h("span", { class: "visually-hidden" }, ` ${title} details`));
  const panel = h("section", { class: "panel", id, role: "region", "aria-labelledby": `${id}-title` },
    h("div", { class: "panel-head" }, h("h2", { id: `${id}-title`, tabindex: "-1" }, title), close),
    children);
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !document.querySelector("dialog[open]")) {
      event.preventDefault();
      ctx.navigate(closeHref, { focus: returnFocus });
    }
  });
  return panel;
}

/** A description list of `[term, value]` pairs (values may be nodes). */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value ?? "")]));
}
