// Which columns a table shows: each table's defaults, changed by the viewer with the column chooser and
// remembered in this browser (localStorage). Only the view changes; CSV exports always hold every column.

const prefix = "portal.columns.";

/** The keys of the columns `table` shows: the remembered choice, else the columns marked `shown`. */
export function visibleColumns(table, columns, storage = globalThis.localStorage) {
  const known = new Set(columns.map((column) => column.key));
  let saved = null;
  try {
    saved = JSON.parse(storage?.getItem(prefix + table) ?? "null");
  } catch {
    saved = null;
  }
  if (Array.isArray(saved)) {
    const chosen = saved.filter((key) => known.has(key));
    if (chosen.length > 0) return chosen;
  }
  return columns.filter((column) => column.shown !== false).map((column) => column.key);
}

/** Remembers `keys` (in the table's column order) as `table`'s choice; at least one column stays. */
export function chooseColumns(table, columns, keys, storage = globalThis.localStorage) {
  const wanted = new Set(keys);
  const chosen = columns.map((column) => column.key).filter((key) => wanted.has(key));
  if (chosen.length === 0) return visibleColumns(table, columns, storage);
  try {
    storage?.setItem(prefix + table, JSON.stringify(chosen));
  } catch {
    // Private windows may refuse storage: the choice then lasts for this page only.
  }
  return chosen;
}
