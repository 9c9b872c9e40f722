// The portal's addresses: every screen, tab, panel and filter is a URL, so Back, bookmarks and links in
// mail work. Pure functions of paths and query strings; the app wires them to the History API.

/** The screens by path. `admin: true` screens are not shown to Viewers (the server refuses them too). */
export const routes = [
  { path: "/", screen: "dashboard", title: "Dashboard" },
  { path: "/licensing/products", screen: "licensing", tab: "products", title: "Licensing Overview" },
  { path: "/licensing/entitlements", screen: "licensing", tab: "entitlements", title: "Licensing Overview" },
  { path: "/activations", screen: "activations", title: "Activations" },
  { path: "/audit", screen: "audit", title: "Audit & Event Log" },
  { path: "/members/active", screen: "members", tab: "active", title: "Members", admin: true },
  { path: "/members/invites", screen: "members", tab: "invites", title: "Members", admin: true },
  { path: "/sign-in", screen: "sign-in", title: "Sign in", public: true },
  { path: "/accept-invite", screen: "accept-invite", title: "Accept your invitation", public: true },
];

/** Short forms that lead to a screen's default tab. */
const aliases = { "/licensing": "/licensing/products", "/members": "/members/active", "/dashboard": "/" };

/** The route for `pathname` (trailing slashes ignored), the alias it redirects to, or the not-found route. */
export function match(pathname) {
  const path = pathname.length > 1 ? pathname.replace(/\/+$/, "") : pathname;
  if (aliases[path]) return { redirect: aliases[path] };
  return routes.find((route) => route.path === path) ?? { screen: "not-found", title: "Page not found", path };
}

/**
 * `path` with the query of `params` changed by `changes` (a value of "", null or undefined removes the
 * parameter). The page token is dropped unless `changes` sets it: a new filter starts at the first page.
 */
export function withParams(path, params, changes = {}) {
  const next = new URLSearchParams(params);
  if (!("page" in changes)) next.delete("page");
  for (const [name, value] of Object.entries(changes)) {
    if (value === "" || value === null || value === undefined) next.delete(name);
    else next.set(name, String(value));
  }
  next.sort();
  const query = next.toString();
  return query ? `${path}?${query}` : path;
}

/** Whether a click on a link should stay in the app (left button, no modifier, same origin, no download). */
export function isAppNavigation(event, anchor, origin) {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return false;
  if (!anchor || anchor.hasAttribute("download") || (anchor.target && anchor.target !== "_self")) return false;
  // A link to a place on this page (the skip link) is the browser's to follow: it moves focus there.
  if ((anchor.getAttribute("href") ?? "").startsWith("#")) return false;
  const url = new URL(anchor.href, origin);
  return url.origin === origin && !url.pathname.startsWith("/exports/");
}

/** A `next` address that is safe to return to after signing in: a path on this site, never another origin. */
export function safeReturn(next) {
  if (typeof next !== "string" || !next.startsWith("/") || next.startsWith("//") || next.startsWith("/\\")) return "/";
  if (next.startsWith("/sign-in") || next.startsWith("/accept-invite")) return "/";
  return next;
}
