// Unit tests of the column chooser's memory (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { chooseColumns, visibleColumns } from "../../Sources/PortalWeb/Site/app/columns.js";
import { chosenTheme } from "../../Sources/PortalWeb/Site/app/theme.js";

/** A Storage stand-in. */
function memory(initial = {}) {
  const items = new Map(Object.entries(initial));
  return { getItem: (key) => (items.has(key) ? items.get(key) : null), setItem: (key, value) => items.set(key, String(value)), removeItem: (key) => items.delete(key) };
}

const columns = [{ key: "date" }, { key: "product" }, { key: "serial", shown: false }, { key: "entitlement", shown: false }];

test("a table shows its default columns until the viewer chooses", () => {
  assert.deepEqual(visibleColumns("activations", columns, memory()), ["date", "product"]);
});

test("a choice is remembered per table, in the table's order", () => {
  const storage = memory();
  assert.deepEqual(chooseColumns("activations", columns, ["serial", "date"], storage), ["date", "serial"]);
  assert.deepEqual(visibleColumns("activations", columns, storage), ["date", "serial"]);
  assert.deepEqual(visibleColumns("members", columns, storage), ["date", "product"], "another table keeps its own");
});

test("at least one column stays; unknown and corrupt memories fall back to the defaults", () => {
  const storage = memory();
  assert.deepEqual(chooseColumns("activations", columns, [], storage), ["date", "product"]);
  assert.deepEqual(visibleColumns("x", columns, memory({ "portal.columns.x": "not json" })), ["date", "product"]);
  assert.deepEqual(visibleColumns("x", columns, memory({ "portal.columns.x": '["gone"]' })), ["date", "product"]);
  assert.deepEqual(visibleColumns("x", columns, undefined), ["date", "product"], "no storage at all");
});

test("the theme is the system's unless light or dark was chosen", () => {
  assert.equal(chosenTheme(memory()), "system");
  assert.equal(chosenTheme(memory({ "portal.theme": "dark" })), "dark");
  assert.equal(chosenTheme(memory({ "portal.theme": "purple" })), "system");
});
