// The account menu in the header: who is signed in and where, switching organization, the theme, and
// signing out.

import { call } from "/app/connect.js";
import { h } from "/app/dom.js";
import { roleName } from "/app/format.js";
import { disclosure, explain } from "/app/widgets.js";
import { formDialog, inputField } from "/app/dialog.js";
import { applyTheme, chosenTheme } from "/app/theme.js";

/** The menu for `me` (WhoAmI's answer). `app` supplies api, navigate, signOut, announce, reloadSession. */
export function accountMenu(me, app) {
  const principal = me.principal ?? {};
  const organizations = me.organizations ?? [];
  const current = organizations.find((organization) => organization.current);
  const organizationName = current?.organizationName || principal.organizationId || "";
  const name = principal.displayName || principal.email || "Account";
  const others = organizations.filter((organization) => !organization.current);

  const theme = h("select", { id: "theme-choice" },
    [["system", "Same as the system"], ["light", "Light"], ["dark", "Dark"]].map(([value, text]) =>
      h("option", { value, selected: chosenTheme() === value }, text)));
  theme.addEventListener("change", () => applyTheme(theme.value));

  const content = h("div", { class: "account-menu" },
    h("p", { class: "who" }, h("strong", {}, name), h("br"), principal.email ?? ""),
    h("p", {}, `${roleName(principal.role)} of ${organizationName}`),
    others.length ? h("div", { class: "switch" }, h("h2", { class: "menu-heading" }, "Switch organization"),
      h("ul", {}, others.map((organization) => h("li", {},
        h("button", { type: "button", class: "link", onclick: () => switchTo(organization, principal.email, app) },
          `${organization.organizationName} (${roleName(organization.role)})`))))) : null,
    h("div", { class: "field" }, h("label", { for: "theme-choice" }, "Theme"), theme),
    h("button", { type: "button", id: "sign-out", class: "secondary", onclick: () => app.signOut() }, "Sign out"));

  return h("div", { class: "account-bar" },
    h("span", { class: "organization", id: "current-organization" }, organizationName),
    disclosure("account-button", h("span", {}, h("span", { class: "visually-hidden" }, "Account: "), name), content, { buttonClass: "account-button", align: "end" }));
}

/** Signs in to `organization` with the member's password (a session belongs to one organization). */
async function switchTo(organization, email, app) {
  const done = await formDialog({
    id: "switch-dialog",
    title: `Switch to ${organization.organizationName}`,
    intro: `Enter your password to continue in ${organization.organizationName} as ${roleName(organization.role)}.`,
    fields: [inputField("switch-password", "Password", { type: "password", required: true, autocomplete: "current-password" })],
    submitLabel: "Switch organization",
    describeError: (error) => (error.code === "unauthenticated" ? "The password is incorrect." : explain(error)),
    onSubmit: async (form) => {
      // Not through app.api: a wrong password must not read as an ended session.
      await call("Login", { organizationId: organization.organizationId, email, password: form.elements["switch-password"].value });
      await app.reloadSession();
      return true;
    },
  });
  if (done) {
    app.navigate("/");
    app.announce(`You are now in ${organization.organizationName} as ${roleName(organization.role)}.`, { visible: true });
  }
}
