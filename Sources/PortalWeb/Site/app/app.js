// The portal app: the session, the header and navigation, and rendering the screen the URL names.
// Every screen is a module whose `render(ctx)` resolves to its content; navigation is the History API.

import { call, ConnectError } from "/app/connect.js";
import { h } from "/app/dom.js";
import { isAppNavigation, match, safeReturn } from "/app/router.js";
import { closeDisclosuresOutside } from "/app/widgets.js";
import { accountMenu } from "/app/account.js";
import { applyTheme } from "/app/theme.js";
import * as dashboard from "/app/screens/dashboard.js";
import * as licensing from "/app/screens/licensing.js";
import * as activations from "/app/screens/activations.js";
import * as audit from "/app/screens/audit.js";
import * as members from "/app/screens/members.js";
import * as signIn from "/app/screens/sign-in.js";
import * as acceptInvite from "/app/screens/accept-invite.js";

const screens = { dashboard, licensing, activations, audit, members, "sign-in": signIn, "accept-invite": acceptInvite };

/** Raised to stop rendering a screen when the session has ended (the app has moved to sign-in). */
class SignedOut extends Error {}

/** Who is signed in: WhoAmI's answer, or null. */
const session = { me: null };
let flash = "";
let renderCount = 0;
/** The query of the screen shown (with main's data-path, the address it renders). */
let shownSearch = "";

const main = () => document.getElementById("main");

/** Whether the signed-in member is an Admin of the current organization. */
function isAdmin() {
  return session.me?.principal?.role === "ROLE_ADMIN";
}

/** Calls the API; an ended session leads to sign-in, keeping the address to come back to. */
async function api(method, request = {}, options = {}) {
  try {
    return await call(method, request, options);
  } catch (error) {
    if (error instanceof ConnectError && error.code === "unauthenticated" && session.me) {
      session.me = null;
      flash = "Your session has ended. Sign in again to continue.";
      const next = location.pathname + location.search;
      navigate(`/sign-in?next=${encodeURIComponent(next)}`, { replace: true });
      throw new SignedOut();
    }
    throw error;
  }
}

/** Loads who is signed in; false when nobody is. */
async function loadSession() {
  try {
    session.me = await call("WhoAmI", {}, { read: true });
    return true;
  } catch (error) {
    session.me = null;
    if (error instanceof ConnectError && error.code === "unauthenticated") return false;
    throw error;
  }
}

/** Says `text` to screen readers (and shows it briefly when `visible`). */
export function announce(text, { visible = false } = {}) {
  const status = document.getElementById("status");
  status.textContent = "";
  requestAnimationFrame(() => { status.textContent = text; });
  if (visible) {
    const toast = document.getElementById("toast");
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(announce.timer);
    announce.timer = setTimeout(() => { toast.hidden = true; }, 6000);
  }
}

/** Goes to `url` in the app (a new history entry unless `replace`), then renders it. */
export function navigate(url, { replace = false, state = null, focus } = {}) {
  if (replace) history.replaceState(state, "", url);
  else history.pushState(state, "", url);
  render({ focus });
}

/** Updates the header and navigation for the session and the current screen. */
function updateChrome(route) {
  const signedIn = Boolean(session.me) && !route.public;
  const nav = document.getElementById("primary-nav");
  nav.hidden = !signedIn;
  for (const item of nav.querySelectorAll("[data-admin]")) item.hidden = !isAdmin();
  for (const link of nav.querySelectorAll("a[data-screen]")) {
    if (link.dataset.screen === route.screen) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  // On a narrow screen the navigation scrolls sideways: keep the current screen's link in sight.
  const current = signedIn ? nav.querySelector("a[aria-current=page]") : null;
  if (current) {
    const box = current.getBoundingClientRect();
    const frame = nav.getBoundingClientRect();
    if (box.left < frame.left || box.right > frame.right) nav.scrollLeft += box.left - frame.left - 16;
  }
  const account = document.getElementById("account");
  account.replaceChildren(signedIn ? accountMenu(session.me, { api, navigate, signOut, announce, reloadSession }) : "");
}

/** Ends the session and goes to sign-in. */
async function signOut() {
  try {
    await call("Logout");
  } catch {
    // Signed out here either way: the cookie is cleared by the server or already gone.
  }
  session.me = null;
  flash = "You are signed out.";
  navigate("/sign-in", { replace: false });
}

/** Reloads WhoAmI after signing in or switching organization. */
async function reloadSession() {
  await loadSession();
}

/** The content shown for an address that names no screen, or a screen this role does not have. */
function notFound(text) {
  return h("section", {}, h("h1", { tabindex: "-1" }, "Page not found"), h("p", {}, text), h("p", {}, h("a", { href: "/" }, "Go to the dashboard")));
}

/** Renders the screen the current URL names. Later navigations win over slower earlier ones. */
export async function render({ focus } = {}) {
  const ticket = ++renderCount;
  const url = new URL(location.href);
  const found = match(url.pathname);
  if (found.redirect) {
    history.replaceState(history.state, "", found.redirect + url.search);
    return render({ focus });
  }
  const route = found;
  const view = main();
  const samePath = view.dataset.path === url.pathname;
  // On the page's first screen focus stays at the top of the document, so the first Tab reaches the skip link.
  const firstScreen = view.dataset.path === undefined;
  view.dataset.state = "loading";
  view.setAttribute("aria-busy", "true");
  const slow = setTimeout(() => { if (ticket === renderCount) announce("Loading…"); }, 400);
  try {
    if (!route.public && !session.me && !(await loadSession())) {
      const next = url.pathname + url.search;
      history.replaceState(null, "", next === "/" ? "/sign-in" : `/sign-in?next=${encodeURIComponent(next)}`);
      return render();
    }
    if (ticket !== renderCount) return;
    let content;
    if (route.screen === "not-found") {
      content = notFound("There is no page at this address.");
    } else if (route.admin && !isAdmin()) {
      content = notFound("This page is for Admins of your organization.");
    } else {
      const ctx = {
        route, path: url.pathname, params: url.searchParams, history: history.state ?? {},
        session, isAdmin: isAdmin(), api, navigate, announce, render, reloadSession, signOut,
        takeFlash: () => { const text = flash; flash = ""; return text; },
        next: safeReturn(url.searchParams.get("next")),
      };
      content = await screens[route.screen].render(ctx);
    }
    if (ticket !== renderCount) return;
    const active = document.activeElement;
    const keep = samePath && active && active.id && view.contains(active) ? active.id : null;
    const selection = keep && typeof active.selectionStart === "number" ? [active.selectionStart, active.selectionEnd] : null;
    view.replaceChildren(content);
    view.dataset.path = url.pathname;
    shownSearch = url.search;
    document.title = `${route.title} · End Customer Portal`;
    updateChrome(route);
    placeFocus(focus ?? keep, samePath || firstScreen, selection);
    view.dataset.state = "ready";
  } catch (error) {
    if (error instanceof SignedOut || ticket !== renderCount) return;
    view.replaceChildren(h("section", {}, h("h1", { tabindex: "-1" }, route.title ?? "Error"),
      h("p", { class: "problem", role: "alert" }, "The portal could not load this page. Check your connection and reload the page.")));
    view.dataset.state = "error";
  } finally {
    clearTimeout(slow);
    if (ticket === renderCount) view.removeAttribute("aria-busy");
  }
}

/** Puts focus where a person expects it: on the control they used, else on the new page's heading. */
function placeFocus(id, samePath, selection) {
  const target = id ? document.getElementById(id) : null;
  if (target) {
    target.focus({ preventScroll: samePath });
    if (selection && typeof target.setSelectionRange === "function") {
      try { target.setSelectionRange(...selection); } catch { /* not a text field */ }
    }
    return;
  }
  if (samePath) return;
  const heading = main().querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
    window.scrollTo(0, 0);
  }
}

/** Starts the app: theme, link handling, Back and Forward, the first render. */
export function start() {
  applyTheme();
  document.addEventListener("click", (event) => {
    closeDisclosuresOutside(event.target);
    const anchor = event.target.closest?.("a[href]");
    if (anchor && isAppNavigation(event, anchor, location.origin)) {
      event.preventDefault();
      const url = new URL(anchor.href);
      navigate(url.pathname + url.search, { focus: anchor.dataset.focus });
    }
  });
  window.addEventListener("popstate", () => {
    // The skip link (an in-page #fragment) changes only the hash: the screen stays as it is.
    if (location.hash && location.pathname === main().dataset.path && location.search === shownSearch) return;
    render();
  });
  render();
}
