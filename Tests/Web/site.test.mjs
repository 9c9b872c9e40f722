// Checks of the portal's files as a whole (node --test): index.html preloads every module, so the
// browser fetches them all at once instead of one import level at a time.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { test } from "node:test";

const site = new URL("../../Sources/PortalWeb/Site/", import.meta.url);

/** The site's module paths under app/, as the browser asks for them. */
function modules(folder = "app/") {
  return readdirSync(new URL(folder, site), { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? modules(`${folder}${entry.name}/`) : entry.name.endsWith(".js") ? [`/${folder}${entry.name}`] : []);
}

test("index.html preloads exactly the portal's modules", () => {
  const html = readFileSync(new URL("index.html", site), "utf8");
  const preloaded = [...html.matchAll(/<link rel="modulepreload" href="([^"]+)">/g)].map((found) => found[1]);
  assert.deepEqual([...preloaded].sort(), modules().sort());
});

test("every module is imported by absolute path, so each has one URL", () => {
  for (const path of modules()) {
    const source = readFileSync(new URL(`.${path}`, site), "utf8");
    for (const [, target] of source.matchAll(/^import [^"]*"([^"]+)";$/gm)) {
      assert.ok(target.startsWith("/app/"), `${path} imports ${target}`);
      assert.ok(modules().includes(target), `${path} imports ${target}, which does not exist`);
    }
  }
});
