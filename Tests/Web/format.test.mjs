// Unit tests of the portal's time and number formats (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { count, date, dateTime } from "../../Sources/PortalWeb/Site/app/format.js";

test("times read DD MMM YYYY, HH:MM:SS in the zone asked for", () => {
  assert.equal(dateTime("2026-03-05T14:07:09Z", "UTC"), "05 Mar 2026, 14:07:09");
  assert.equal(dateTime("2026-03-05T14:07:09Z", "Europe/Berlin"), "05 Mar 2026, 15:07:09");
  assert.equal(dateTime("2026-07-05T23:30:00.123Z", "America/New_York"), "05 Jul 2026, 19:30:00");
  assert.equal(dateTime("2026-12-31T23:59:59Z", "Asia/Tokyo"), "01 Jan 2027, 08:59:59");
  assert.equal(dateTime("2026-01-01T00:00:00Z", "UTC"), "01 Jan 2026, 00:00:00", "midnight is 00, not 24");
});

test("dates drop the time; missing or malformed times show nothing", () => {
  assert.equal(date("2026-03-05T14:07:09Z", "UTC"), "05 Mar 2026");
  assert.equal(dateTime(undefined), "");
  assert.equal(dateTime("not a time"), "");
});

test("counts, 64-bit ones arriving as strings", () => {
  assert.equal(count("12345"), "12,345");
  assert.equal(count(7), "7");
  assert.equal(count(undefined), "0");
});
