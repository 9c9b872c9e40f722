// The Activations module: every activation of the organization, filtered by date range, product and
// text, sorted by any column, with a column chooser and (for Admins) a CSV export of every column.

import { h } from "/app/dom.js";
import { count, dateTime, localTimeZone } from "/app/format.js";
import { activationsRequest, dateRangeProblem, exportQuery } from "/app/query.js";
import { withParams } from "/app/router.js";
import { columnChooser, listResults } from "/app/table.js";
import { dateField, exportLink, searchForm, selectField, timeZoneToggle, toolbar } from "/app/widgets.js";

/** The columns of the activations table; the seed's five are shown unless the viewer chooses. */
export function activationColumns(timeZone) {
  return [
    { key: "activation_date", label: "Activation Date", sort: "activation_date", firstDirection: "desc", cell: (row) => dateTime(row.activationDate, timeZone) },
    { key: "product_name", label: "Product Name", sort: "product_name", cell: (row) => row.productName },
    { key: "project_name", label: "Project Name", sort: "project_name", cell: (row) => row.projectName },
    { key: "project_manager", label: "Project Manager", sort: "project_manager", cell: (row) => row.projectManager },
    { key: "activated_by", label: "Activated By", sort: "activated_by", cell: (row) => row.activatedBy },
    { key: "quantity", label: "Quantity", sort: "quantity", shown: false, cell: (row) => count(row.quantity) },
    { key: "entitlement_id", label: "Entitlement ID", sort: "entitlement_id", shown: false, cell: (row) => row.entitlementId },
    { key: "serial_number", label: "Serial Number", sort: "serial_number", shown: false, cell: (row) => row.serialNumber },
  ];
}

/** The activations page. */
export async function render(ctx) {
  const { params, path } = ctx;
  const set = (changes) => ctx.navigate(withParams(path, params, changes));
  const utc = params.get("tz") === "utc";
  const zone = utc ? "UTC" : localTimeZone();
  const rangeProblem = dateRangeProblem(params);
  const request = activationsRequest(params);
  const [products, list] = await Promise.allSettled([
    ctx.api("ListProducts", { pageSize: 500, orderBy: "product_name asc" }, { read: true }),
    rangeProblem ? Promise.resolve(null) : ctx.api("ListActivations", request, { read: true }),
  ]);
  const spec = { id: "activations", caption: "Activations", columns: activationColumns(zone), order: request.orderBy, emptyText: "No activations match these filters." };
  const productOptions = [["", "All products"], ...((products.value?.products ?? []).map((item) => [item.product.productId, item.product.name]))];

  const filters = toolbar("Filters",
    dateField("from", "Start date", params.get("from"), (value) => set({ from: value })),
    dateField("to", "End date", params.get("to"), (value) => set({ to: value })),
    selectField("product", "Product Name", productOptions, params.get("product"), (value) => set({ product: value })),
    searchForm("search", "Search activations", params.get("q"), (text) => set({ q: text })));
  const actions = toolbar("Table options",
    columnChooser(spec),
    timeZoneToggle(ctx, localTimeZone()),
    ctx.isAdmin ? exportLink("/exports/activations.csv", exportQuery(request, zone)) : null);

  const results = listResults(spec, rangeProblem ? { problem: rangeProblem } : list, ctx, { rows: "activations", noun: ["activation", "activations"] });
  return h("div", {}, h("h1", {}, "Activations"), filters, actions, results);
}
