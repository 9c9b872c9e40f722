// The Licensing Overview: the organization's licenses by product (the default tab) and by
// entitlement, each with search, filters, sorting, a column chooser and a right-side detail panel
// from which Admins activate licenses.

import { h } from "/app/dom.js";
import { count, date, statusName } from "/app/format.js";
import { dateRangeProblem, entitlementsRequest, productsRequest } from "/app/query.js";
import { withParams } from "/app/router.js";
import { columnChooser, listResults } from "/app/table.js";
import { dateField, explain, linkTabs, problem, searchForm, selectField, toolbar } from "/app/widgets.js";
import { detailPanel, facts } from "/app/panel.js";
import { activateDialog } from "/app/activate.js";

/** License cards the viewer has opened (entitlement/product), kept open when the panel refreshes. */
const openCards = new Set();

/** The licensing page: the tab the route names, and the panel the URL names. */
export async function render(ctx) {
  const tabs = linkTabs("Licensing views", [
    { label: "Products", href: "/licensing/products", current: ctx.route.tab === "products" },
    { label: "Entitlements", href: "/licensing/entitlements", current: ctx.route.tab === "entitlements" },
  ]);
  const body = ctx.route.tab === "entitlements" ? await entitlementsTab(ctx) : await productsTab(ctx);
  return h("div", { class: "with-panel" }, h("h1", {}, "Licensing Overview"), tabs, body);
}

/** A cell that opens the row's panel: a link to the list's address with the panel named. */
function panelLink(ctx, param, id, text) {
  const linkId = `open-${param}-${id}`;
  return h("a", { href: withParams(ctx.path, ctx.params, { [param]: id, page: ctx.params.get("page") }), id: linkId, "data-focus": `${param}-panel-title` }, text);
}

/** The Activate button of one entitlement line (Admins, while licenses remain and it has not expired). */
function activateButton(ctx, line, label) {
  if (!ctx.isAdmin) return null;
  const expired = line.status === "ENTITLEMENT_STATUS_EXPIRED";
  const none = Number(line.unactivated ?? 0) <= 0;
  return h("button", {
    type: "button", class: "primary small", disabled: expired || none, id: `activate-${line.entitlementId}-${line.productId}`,
    title: expired ? "This entitlement has expired." : none ? "Every license of this line is activated." : undefined,
    "aria-label": label,
    onclick: async () => {
      const activation = await activateDialog(ctx, line);
      if (activation) ctx.render();
    },
  }, "Activate");
}

// MARK: Products

async function productsTab(ctx) {
  const { params, path } = ctx;
  const request = productsRequest(params);
  const productId = params.get("product");
  const [list, detail] = await Promise.allSettled([
    ctx.api("ListProducts", request, { read: true }),
    productId ? ctx.api("GetProduct", { productId }, { read: true }) : Promise.resolve(null),
  ]);
  const spec = {
    id: "products", caption: "Products", order: request.orderBy, emptyText: "No products match this search.",
    columns: [
      { key: "product_name", label: "Product Name", sort: "product_name", header: true, cell: (row) => panelLink(ctx, "product", row.product.productId, row.product.name) },
      { key: "license_type", label: "Product Type", sort: "license_type", cell: (row) => row.product.licenseType },
      { key: "product_description", label: "Product Description", sort: "product_description", cell: (row) => row.product.productDescription },
      { key: "product_id", label: "Product ID", sort: "product_id", shown: false, cell: (row) => row.product.productId },
      { key: "deployment_type", label: "Deployment Type", sort: "deployment_type", shown: false, cell: (row) => row.product.deploymentType },
      { key: "available_licenses", label: "Available Licenses", sort: "available_licenses", shown: false, cell: (row) => count(row.availableLicenses) },
      { key: "activated_licenses", label: "Activated Licenses", sort: "activated_licenses", shown: false, cell: (row) => count(row.activatedLicenses) },
      { key: "unactivated_licenses", label: "Unactivated Licenses", sort: "unactivated_licenses", shown: false, cell: (row) => count(row.unactivatedLicenses) },
    ],
  };
  const controls = toolbar("Search and columns",
    searchForm("search", "Search by product name or type", params.get("q"), (text) => ctx.navigate(withParams(path, params, { q: text }))),
    columnChooser(spec));
  const results = listResults(spec, list, ctx, { rows: "products", noun: ["product", "products"] });
  return h("div", {}, controls, results, productId ? productPanel(ctx, productId, detail) : null);
}

function productPanel(ctx, productId, detail) {
  const closeHref = withParams(ctx.path, ctx.params, { product: "", page: ctx.params.get("page") });
  const returnFocus = `open-product-${productId}`;
  if (detail.status === "rejected") {
    return detailPanel("product-panel", "Product", closeHref, returnFocus, problem(explain(detail.reason)), ctx);
  }
  const product = detail.value.product?.product ?? {};
  const entitlements = detail.value.entitlements ?? [];
  return detailPanel("product-panel", product.name ?? productId, closeHref, returnFocus, [
    h("h3", {}, "General"),
    facts([["Product Name", product.name], ["License Type", product.licenseType], ["Description", product.productDescription]]),
    h("h3", {}, "Included in Entitlements"),
    entitlements.length === 0 ? h("p", { class: "empty" }, "No entitlement includes this product.") :
      h("ul", { class: "cards" }, entitlements.map((entry) => h("li", { class: "card line-card" },
        facts([
          ["Entitlement ID", entry.entitlementId], ["Order Date", date(entry.orderDate)], ["QSC Sales Order", entry.salesOrder],
          ["PO Number", entry.poNumber], ["Available Licenses", count(entry.availableLicenses)], ["Activated Licenses", count(entry.activatedLicenses)],
          ["Status", statusName(entry.status)],
        ]),
        activateButton(ctx, {
          entitlementId: entry.entitlementId, productId, productName: product.name, unactivated: entry.unactivatedLicenses, status: entry.status,
        }, `Activate ${product.name} from entitlement ${entry.entitlementId}`)))),
  ], ctx);
}

// MARK: Entitlements

async function entitlementsTab(ctx) {
  const { params, path } = ctx;
  const set = (changes) => ctx.navigate(withParams(path, params, changes));
  const rangeProblem = dateRangeProblem(params);
  const request = entitlementsRequest(params);
  const entitlementId = params.get("entitlement");
  const [list, detail] = await Promise.allSettled([
    rangeProblem ? Promise.resolve(null) : ctx.api("ListEntitlements", request, { read: true }),
    entitlementId ? ctx.api("GetEntitlement", { entitlementId }, { read: true }) : Promise.resolve(null),
  ]);
  const first = (row) => row.lines?.[0] ?? {};
  const spec = {
    id: "entitlements", caption: "Entitlements", order: request.orderBy, emptyText: "No entitlements match these filters.",
    columns: [
      { key: "entitlement_id", label: "Entitlement", sort: "entitlement_id", header: true, cell: (row) => panelLink(ctx, "entitlement", row.entitlementId, row.entitlementId) },
      { key: "sales_order", label: "QSC Sales Order", sort: "sales_order", cell: (row) => row.salesOrder },
      { key: "status", label: "Status", sort: "status", cell: (row) => statusName(row.status) },
      { key: "product_name", label: "Product", sort: "product_name", cell: (row) => (row.lines?.length > 1 ? `${first(row).productName} and ${row.lines.length - 1} more` : first(row).productName) },
      { key: "product_description", label: "Product Description", sort: "product_description", cell: (row) => first(row).productDescription },
      { key: "order_date", label: "Order Date", sort: "order_date", firstDirection: "desc", cell: (row) => date(row.orderDate) },
      { key: "expiration_date", label: "Expiration", sort: "expiration_date", cell: (row) => (row.expirationDate ? date(row.expirationDate) : "Never") },
      { key: "po_number", label: "PO Number", sort: "po_number", cell: (row) => row.poNumber },
      { key: "total_available_licenses", label: "Total Available Licenses", sort: "total_available_licenses", cell: (row) => count(row.totalAvailableLicenses) },
    ],
  };
  const searchBy = selectField("search-by", "Search by", [["entitlement", "Entitlement ID"], ["sales_order", "QSC Sales Order"], ["po_number", "PO Number"]], params.get("by") ?? "entitlement");
  const filters = toolbar("Filters",
    selectField("date-kind", "Filter by date", [["order", "Order Date"], ["expiration", "Expiration Date"]], params.get("date") === "expiration" ? "expiration" : "order",
      (value) => set({ date: value === "order" ? "" : value })),
    dateField("from", "From", params.get("from"), (value) => set({ from: value })),
    dateField("to", "To", params.get("to"), (value) => set({ to: value })),
    searchForm("search", "Search entitlements", params.get("q"), (text) => set({ q: text, by: searchBy.querySelector("select").value === "entitlement" ? "" : searchBy.querySelector("select").value }), searchBy));
  const results = listResults(spec, rangeProblem ? { problem: rangeProblem } : list, ctx, { rows: "entitlements", noun: ["entitlement", "entitlements"] });
  return h("div", {}, filters, toolbar("Table options", columnChooser(spec)), results, entitlementId ? entitlementPanel(ctx, entitlementId, detail) : null);
}

function entitlementPanel(ctx, entitlementId, detail) {
  const closeHref = withParams(ctx.path, ctx.params, { entitlement: "", page: ctx.params.get("page") });
  const returnFocus = `open-entitlement-${entitlementId}`;
  if (detail.status === "rejected") {
    return detailPanel("entitlement-panel", "Entitlement", closeHref, returnFocus, problem(explain(detail.reason)), ctx);
  }
  const entitlement = detail.value.entitlement ?? {};
  return detailPanel("entitlement-panel", `Entitlement ${entitlement.entitlementId ?? entitlementId}`, closeHref, returnFocus, [
    h("h3", {}, "General"),
    facts([
      ["Order Date", date(entitlement.orderDate)], ["QSC Sales Order", entitlement.salesOrder], ["PO Number", entitlement.poNumber],
      ["Entitlement ID", entitlement.entitlementId], ["Total Available Licenses", count(entitlement.totalAvailableLicenses)],
      ["Status", statusName(entitlement.status)], ["Expiration", entitlement.expirationDate ? date(entitlement.expirationDate) : "Never"],
    ]),
    h("h3", {}, "Licenses"),
    h("ul", { class: "cards" }, (entitlement.lines ?? []).map((line, index) => licenseCard(ctx, entitlement, line, index))),
  ], ctx);
}

/** One product line as a card: name and available licenses, expanding to its details and Activate. */
function licenseCard(ctx, entitlement, line, index) {
  const key = `${entitlement.entitlementId}/${line.productId}`;
  const open = openCards.has(key);
  const detailsId = `license-${index}-details`;
  const toggle = h("button", { type: "button", class: "card-toggle", "aria-expanded": String(open), "aria-controls": detailsId, id: `license-${index}` },
    h("span", { class: "card-title" }, line.productName),
    h("span", { class: "card-figure" }, `${count(line.availableLicenses)} available`));
  const details = h("div", { id: detailsId, class: "card-details", hidden: !open },
    facts([
      ["Description", line.productDescription], ["Deployment Type", line.deploymentType],
      ["Available Licenses", count(line.availableLicenses)], ["Activation Quantity", count(line.activatedLicenses)],
      ["Unactivated Licenses", count(line.unactivatedLicenses)],
    ]),
    activateButton(ctx, {
      entitlementId: entitlement.entitlementId, productId: line.productId, productName: line.productName, unactivated: line.unactivatedLicenses,
      status: entitlement.status,
    }, `Activate ${line.productName} from entitlement ${entitlement.entitlementId}`));
  toggle.addEventListener("click", () => {
    const opening = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(opening));
    details.hidden = !opening;
    if (opening) openCards.add(key);
    else openCards.delete(key);
  });
  return h("li", { class: "card license-card" }, toggle, details);
}
