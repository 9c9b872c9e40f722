// Unit tests of the portal's Connect client (node --test), with a recorded fetch.
import assert from "node:assert/strict";
import { test } from "node:test";

import { call, ConnectError, getQuery, servicePath } from "../../Sources/PortalWeb/Site/app/connect.js";

function recorder(status, body) {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    return new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  };
  return { calls, fetchImpl };
}

test("a unary call POSTs JSON with the Connect protocol header", async () => {
  const { calls, fetchImpl } = recorder(200, { principal: { displayName: "Ada" } });
  const answer = await call("WhoAmI", { a: 1 }, { fetchImpl, timeoutMs: 5000 });
  assert.deepEqual(answer, { principal: { displayName: "Ada" } });
  assert.equal(calls[0].url, `${servicePath}WhoAmI`);
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.headers["Content-Type"], "application/json");
  assert.equal(calls[0].init.headers["Connect-Protocol-Version"], "1");
  assert.equal(calls[0].init.headers["Connect-Timeout-Ms"], "5000");
  assert.equal(calls[0].init.body, '{"a":1}');
  assert.equal(calls[0].init.credentials, "same-origin");
});

test("a read uses Connect's GET encoding", async () => {
  const { calls, fetchImpl } = recorder(200, {});
  await call("ListProducts", { pageSize: 50, searchText: "a&b" }, { read: true, fetchImpl });
  const url = new URL(calls[0].url, "http://portal.test");
  assert.equal(calls[0].init.method, "GET");
  assert.equal(url.pathname, `${servicePath}ListProducts`);
  assert.equal(url.searchParams.get("connect"), "v1");
  assert.equal(url.searchParams.get("encoding"), "json");
  assert.deepEqual(JSON.parse(url.searchParams.get("message")), { pageSize: 50, searchText: "a&b" });
  assert.equal(getQuery({}), "connect=v1&encoding=json&message=%7B%7D");
});

test("a Connect error keeps its code, message and status", async () => {
  const { fetchImpl } = recorder(403, { code: "permission_denied", message: "Viewers cannot export" });
  await assert.rejects(call("ExportActivationsCsv", {}, { fetchImpl }), (error) => {
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, "permission_denied");
    assert.equal(error.message, "Viewers cannot export");
    assert.equal(error.status, 403);
    return true;
  });
});

test("a response that is not Connect JSON is named by its status", async () => {
  const { fetchImpl } = recorder(502, "<html>bad gateway</html>");
  await assert.rejects(call("WhoAmI", {}, { fetchImpl }), { code: "unavailable", status: 502 });
});

test("an unreachable portal is unavailable, in words a person understands", async () => {
  const fetchImpl = async () => { throw new TypeError("Failed to fetch"); };
  await assert.rejects(call("WhoAmI", {}, { fetchImpl }), (error) => error.code === "unavailable" && /cannot be reached/.test(error.message));
});
