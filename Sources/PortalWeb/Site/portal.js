// The minimal portal page: sign in with email and password (choosing an organization when the
// credentials open several), show who is signed in and the dashboard's figures, sign out.
// The session lives in an HttpOnly cookie the page never sees; calls use the Connect protocol.

import { call } from "/app/connect.js";
import { h } from "/app/dom.js";
import { count } from "/app/format.js";

const $ = (id) => document.getElementById(id);

function say(text) {
  $("status").textContent = text;
}

function show(section) {
  $("sign-in").hidden = section !== "sign-in";
  $("signed-in").hidden = section !== "signed-in";
}

function row(list, term, value) {
  list.append(h("dt", {}, term), h("dd", {}, value));
}

async function showSignedIn() {
  const me = await call("WhoAmI", {}, { read: true });
  const dashboard = await call("GetDashboard", {}, { read: true });
  const principal = me.principal || {};
  $("greeting").textContent = `Signed in as ${principal.displayName || principal.email || "you"}`;
  const summary = $("summary");
  summary.replaceChildren();
  row(summary, "Organization", principal.organizationId || "");
  row(summary, "Role", principal.role || "");
  row(summary, "Available licenses", count(dashboard.availableLicenses));
  row(summary, "Activated licenses", count(dashboard.activatedLicenses));
  row(summary, "Unactivated licenses", count(dashboard.unactivatedLicenses));
  if (dashboard.totalMembers !== undefined) row(summary, "Total members", count(dashboard.totalMembers));
  show("signed-in");
  say("");
}

let pendingChoice = null;

async function signIn(event) {
  event.preventDefault();
  say("Signing in…");
  try {
    const result = await call("Login", { email: $("email").value, password: $("password").value });
    if (result.choiceToken) {
      pendingChoice = result.choiceToken;
      const choices = $("choices");
      choices.replaceChildren();
      (result.organizationChoices || []).forEach((organization, index) => {
        const id = `organization-${index}`;
        choices.append(
          h("input", { type: "radio", name: "organization", id, value: organization.organizationId, checked: index === 0 }),
          h("label", { for: id }, organization.name || organization.organizationId),
        );
      });
      $("sign-in-form").hidden = true;
      $("choose-form").hidden = false;
      say("Your email opens several organizations: choose one.");
      return;
    }
    $("password").value = "";
    await showSignedIn();
  } catch (error) {
    say(error.code === "unauthenticated" ? "The email or password is incorrect." : error.message);
  }
}

async function choose(event) {
  event.preventDefault();
  const selected = document.querySelector("input[name=organization]:checked");
  if (!selected || !pendingChoice) return;
  try {
    await call("Login", { choiceToken: pendingChoice, organizationId: selected.value });
    pendingChoice = null;
    $("choose-form").hidden = true;
    $("sign-in-form").hidden = false;
    await showSignedIn();
  } catch (error) {
    say(error.message);
  }
}

async function signOut() {
  try {
    await call("Logout");
  } finally {
    show("sign-in");
    say("You are signed out.");
  }
}

async function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("choose-form").addEventListener("submit", choose);
  $("sign-out").addEventListener("click", signOut);
  try {
    await showSignedIn();
  } catch {
    show("sign-in");
  }
}

start();
