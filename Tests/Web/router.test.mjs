// Unit tests of the portal's addresses (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { match, safeReturn, withParams } from "../../Sources/PortalWeb/Site/app/router.js";

test("every screen and tab has its own path; short forms lead to the default tab", () => {
  assert.equal(match("/").screen, "dashboard");
  assert.deepEqual([match("/licensing/products").screen, match("/licensing/products").tab], ["licensing", "products"]);
  assert.equal(match("/licensing/entitlements/").tab, "entitlements", "a trailing slash is the same address");
  assert.deepEqual(match("/licensing"), { redirect: "/licensing/products" });
  assert.deepEqual(match("/members"), { redirect: "/members/active" });
  assert.equal(match("/members/invites").admin, true);
  assert.equal(match("/accept-invite").public, true);
  assert.equal(match("/nowhere").screen, "not-found");
});

test("changing a filter keeps the others, drops empty values and starts again at the first page", () => {
  const params = new URLSearchParams("q=apollo&page=tok&product=A");
  assert.equal(withParams("/activations", params, { product: "B" }), "/activations?product=B&q=apollo");
  assert.equal(withParams("/activations", params, { q: "" }), "/activations?product=A");
  assert.equal(withParams("/activations", params, { page: "next" }), "/activations?page=next&product=A&q=apollo");
  assert.equal(withParams("/activations", new URLSearchParams(""), {}), "/activations");
  assert.equal(withParams("/audit", new URLSearchParams(""), { q: "a&b=c" }), "/audit?q=a%26b%3Dc", "values are encoded");
});

test("after sign-in the portal returns only to its own pages", () => {
  assert.equal(safeReturn("/audit?type=members"), "/audit?type=members");
  assert.equal(safeReturn("//evil.example/"), "/");
  assert.equal(safeReturn("/\\evil.example"), "/");
  assert.equal(safeReturn("https://evil.example/"), "/");
  assert.equal(safeReturn("/sign-in?next=/x"), "/");
  assert.equal(safeReturn(null), "/");
});
