// The minimal portal page: sign in with email and password (choosing an organization when the
// credentials open several), show who is signed in and the dashboard's figures, sign out.
// The session lives in an HttpOnly cookie the page never sees; calls use the Connect protocol.

const service = "/portal.gateway.v1.PortalService/";

/** Calls a unary method with a JSON request; resolves to the JSON response or throws its Connect error. */
async function call(method, request = {}) {
  const response = await fetch(service + method, {
    method: "POST",
    headers: { "Content-Type": "application/json", "Connect-Protocol-Version": "1" },
    body: JSON.stringify(request),
    credentials: "same-origin",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(body.message || `the request failed (${response.status})`);
    error.code = body.code || "unknown";
    throw error;
  }
  return body;
}

const $ = (id) => document.getElementById(id);

function say(text) {
  $("status").textContent = text;
}

function show(section) {
  $("sign-in").hidden = section !== "sign-in";
  $("signed-in").hidden = section !== "signed-in";
}

function row(list, term, value) {
  const dt = document.createElement("dt");
  dt.textContent = term;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

async function showSignedIn() {
  const me = await call("WhoAmI");
  const dashboard = await call("GetDashboard");
  const principal = me.principal || {};
  $("greeting").textContent = `Signed in as ${principal.displayName || principal.email || "you"}`;
  const summary = $("summary");
  summary.replaceChildren();
  row(summary, "Organization", principal.organizationId || "");
  row(summary, "Role", principal.role || "");
  row(summary, "Available licenses", dashboard.availableLicenses || "0");
  row(summary, "Activated licenses", dashboard.activatedLicenses || "0");
  row(summary, "Unactivated licenses", dashboard.unactivatedLicenses || "0");
  if (dashboard.totalMembers !== undefined) row(summary, "Total members", dashboard.totalMembers);
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
        const input = document.createElement("input");
        input.type = "radio";
        input.name = "organization";
        input.id = `organization-${index}`;
        input.value = organization.organizationId;
        input.checked = index === 0;
        const label = document.createElement("label");
        label.htmlFor = input.id;
        label.textContent = organization.name || organization.organizationId;
        choices.append(input, label);
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
