// The portal's tables: sortable headers with aria-sort, a column chooser remembered per browser, keyset
// paging with Previous and Next, and words for an empty list.

import { h } from "/app/dom.js";
import { chooseColumns, visibleColumns } from "/app/columns.js";
import { ariaSort, nextOrder, pageSize } from "/app/query.js";
import { withParams } from "/app/router.js";
import { disclosure, explain, problem } from "/app/widgets.js";
import { count } from "/app/format.js";

/**
 * A table of `rows`. `spec`: `id` (names the table and its remembered columns), `caption`, `columns`
 * (`key`, `label`, `sort` column name for order_by, `shown: false` for optional columns, `cell(row)`
 * giving text or a node, `fixed: true` for columns that cannot be hidden), `order` (current order_by),
 * `emptyText`; `ctx` supplies the route, parameters and navigation.
 */
export function dataTable(spec, rows, ctx) {
  const visible = new Set(visibleColumns(spec.id, spec.columns));
  const headerCells = spec.columns.map((column) => {
    const label = column.sort ? sortButton(spec, column, ctx) : column.label;
    return h("th", { scope: "col", "data-col": column.key, "aria-sort": column.sort ? ariaSort(spec.order, column.sort) : undefined, hidden: !column.fixed && !visible.has(column.key) }, label);
  });
  const body = rows.map((row) =>
    h("tr", { dataset: spec.rowData ? spec.rowData(row) : {} },
      spec.columns.map((column) => h(column.header ? "th" : "td", { "data-col": column.key, scope: column.header ? "row" : undefined, hidden: !column.fixed && !visible.has(column.key) }, column.cell(row) ?? "")),
    ),
  );
  const table = h("table", { id: `${spec.id}-table` },
    h("caption", { class: "visually-hidden" }, spec.caption),
    h("thead", {}, h("tr", {}, headerCells)),
    h("tbody", {}, body),
  );
  const scroller = h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-labelledby": `${spec.id}-caption` },
    h("span", { id: `${spec.id}-caption`, class: "visually-hidden" }, `${spec.caption} (scrolls sideways)`), table);
  if (rows.length === 0) {
    return h("p", { class: "empty", "data-empty": spec.id }, spec.emptyText ?? "Nothing to show.");
  }
  return scroller;
}

/** The header button that sorts by `column`, keeping the other filters; focus stays on it. */
function sortButton(spec, column, ctx) {
  const id = `sort-${spec.id}-${column.key}`;
  const current = ariaSort(spec.order, column.sort);
  const next = nextOrder(spec.order, column.sort, column.firstDirection);
  const hint = current === "none" ? "" : current === "ascending" ? " ▲" : " ▼";
  return h("button", {
    type: "button", id, class: "sort",
    onclick: () => ctx.navigate(withParams(ctx.path, ctx.params, { order: next }), { focus: id }),
  }, column.label, h("span", { "aria-hidden": "true" }, hint));
}

/** The column chooser of table `spec`: a disclosure with one checkbox per column that can be hidden. */
export function columnChooser(spec) {
  const visible = new Set(visibleColumns(spec.id, spec.columns));
  const choosable = spec.columns.filter((column) => !column.fixed);
  const boxes = choosable.map((column) => {
    const id = `col-${spec.id}-${column.key}`;
    const box = h("input", { type: "checkbox", id, value: column.key, checked: visible.has(column.key) });
    box.addEventListener("change", () => {
      const chosen = chooseColumns(spec.id, spec.columns, boxes.filter((item) => item.querySelector("input").checked).map((item) => item.querySelector("input").value));
      const shown = new Set(chosen);
      for (const item of boxes) item.querySelector("input").checked = shown.has(item.querySelector("input").value);
      for (const cell of document.querySelectorAll(`#${spec.id}-table [data-col]`)) {
        const column = spec.columns.find((entry) => entry.key === cell.dataset.col);
        cell.hidden = !column?.fixed && !shown.has(cell.dataset.col);
      }
    });
    return h("div", { class: "check" }, box, h("label", { for: id }, column.label));
  });
  return disclosure(`columns-${spec.id}`, "Columns", h("fieldset", {}, h("legend", {}, "Show columns"), boxes));
}

/**
 * Paging under a list: how many rows match, and Previous/Next by page token. The tokens of earlier
 * pages ride in the history entry, so Previous returns to the page seen before.
 */
export function pager(id, response, ctx, noun) {
  const total = Number(response.totalSize ?? 0);
  const previous = ctx.history.pages ?? [];
  const first = previous.length * pageSize + 1;
  const shown = ctx.shownRows ?? 0;
  const range = total === 0 ? "" : shown === 0 ? "" : `${count(first)}–${count(first + shown - 1)} of `;
  const summary = h("p", { class: "count", id: `${id}-count`, tabindex: "-1" }, `${range}${count(total)} ${total === 1 ? noun[0] : noun[1]}`);
  const buttons = [];
  if (previous.length > 0 || ctx.params.get("page")) {
    buttons.push(h("button", {
      type: "button", id: `${id}-previous`, class: "secondary",
      onclick: () => {
        const pages = previous.slice(0, -1);
        const token = previous.length ? previous[previous.length - 1] : "";
        ctx.navigate(withParams(ctx.path, ctx.params, { page: token }), { state: { pages }, focus: `${id}-count` });
      },
    }, "Previous page"));
  }
  if (response.nextPageToken) {
    buttons.push(h("button", {
      type: "button", id: `${id}-next`, class: "secondary",
      onclick: () => ctx.navigate(withParams(ctx.path, ctx.params, { page: response.nextPageToken }),
        { state: { pages: [...previous, ctx.params.get("page") ?? ""] }, focus: `${id}-count` }),
    }, "Next page"));
  }
  return h("nav", { class: "pager", "aria-label": `${noun[1]} pages` }, summary, buttons);
}

/** A small fixed table (the dashboard's recent lists): `columns` of `[label, cell(row)]`. */
export function simpleTable(id, caption, columns, rows, emptyText) {
  if (rows.length === 0) return h("p", { class: "empty", "data-empty": id }, emptyText);
  return h("div", { class: "table-scroll", tabindex: "0", role: "region", "aria-label": `${caption} (scrolls sideways)` },
    h("table", { id },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map(([label]) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, columns.map(([, cell]) => h("td", {}, cell(row) ?? "")))))));
}

/** The outcome of a list call in Promise.allSettled's shape, so a screen can show a failure in words. */
export async function settle(promise) {
  const [outcome] = await Promise.allSettled([promise]);
  return outcome;
}

/**
 * What a screen shows for its list: the table and its pager, or why there is none — `outcome.problem`
 * (a filter that cannot be asked, e.g. a reversed date range) or the failed call. `rows` names the
 * response's list field, `noun` its singular and plural.
 */
export function listResults(spec, outcome, ctx, { rows, noun }) {
  // An address the list cannot answer (an edited or outdated link) offers the way back to the whole list.
  const reset = h("p", {}, h("a", { href: ctx.path, id: `${spec.id}-reset` }, `Show all ${noun[1]}`));
  if (outcome.problem) return [problem(outcome.problem), reset];
  if (outcome.status === "rejected") {
    const refused = outcome.reason?.code === "invalid_argument";
    return [problem(`The ${noun[1]} could not be loaded. ${explain(outcome.reason)}`), refused ? reset : null];
  }
  const items = outcome.value[rows] ?? [];
  return [dataTable(spec, items, ctx), pager(spec.id, outcome.value, { ...ctx, shownRows: items.length }, noun)];
}
