// Calls the portal's API with the Connect protocol's JSON: unary POSTs, GETs for methods without side
// effects, and the session kept by the browser in an HttpOnly cookie.

/** The portal's service path. */
export const servicePath = "/portal.gateway.v1.PortalService/";

/** A refused or failed call: Connect's code (`permission_denied`, …) and the server's message. */
export class ConnectError extends Error {
  constructor(code, message, status = 0) {
    super(message);
    this.name = "ConnectError";
    this.code = code;
    this.status = status;
  }
}

/** The Connect error an HTTP response carries, or a plain one naming its status. */
export async function errorFrom(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    // Not JSON: a proxy's page, a reset connection.
  }
  const code = typeof body.code === "string" ? body.code : codeForStatus(response.status);
  const message = typeof body.message === "string" && body.message ? body.message : `the server answered ${response.status}`;
  return new ConnectError(code, message, response.status);
}

/** Connect's code for an HTTP status without a Connect body. */
export function codeForStatus(status) {
  switch (status) {
    case 400: return "invalid_argument";
    case 401: return "unauthenticated";
    case 403: return "permission_denied";
    case 404: return "unimplemented";
    case 408: return "deadline_exceeded";
    case 409: return "aborted";
    case 412: return "failed_precondition";
    case 413: return "resource_exhausted";
    case 415: return "internal";
    case 429: return "unavailable";
    case 431: return "resource_exhausted";
    case 502: case 503: case 504: return "unavailable";
    default: return "unknown";
  }
}

/** The query of a Connect GET for `request` (JSON, URL-encoded). */
export function getQuery(request) {
  const params = new URLSearchParams({ connect: "v1", encoding: "json", message: JSON.stringify(request) });
  return params.toString();
}

/**
 * Calls `method` with `request` (a JSON-ready object); resolves to the JSON response or rejects with a
 * ConnectError. `read: true` uses GET (for methods without side effects), which browsers may repeat
 * safely. `fetchImpl` is for tests.
 */
export async function call(method, request = {}, { read = false, signal, timeoutMs, fetchImpl = globalThis.fetch } = {}) {
  const headers = {};
  if (timeoutMs) headers["Connect-Timeout-Ms"] = String(timeoutMs);
  let response;
  try {
    response = read
      ? await fetchImpl(`${servicePath}${method}?${getQuery(request)}`, { method: "GET", headers, signal, credentials: "same-origin" })
      : await fetchImpl(servicePath + method, {
          method: "POST",
          headers: { ...headers, "Content-Type": "application/json", "Connect-Protocol-Version": "1" },
          body: JSON.stringify(request),
          signal,
          credentials: "same-origin",
        });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ConnectError("unavailable", "the portal cannot be reached; check your connection and try again");
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}
