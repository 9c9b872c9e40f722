// Sign in with email and password; a member of several organizations chooses one next. Afterwards the
// portal returns to the address that asked for sign-in.

import { call } from "/app/connect.js";
import { h } from "/app/dom.js";
import { explain } from "/app/widgets.js";
import { inputField } from "/app/dialog.js";

/** The sign-in page. */
export async function render(ctx) {
  if (ctx.session.me) {
    queueMicrotask(() => ctx.navigate(ctx.next, { replace: true }));
    return h("p", {}, "You are signed in.");
  }
  const flash = ctx.takeFlash();
  const message = h("p", { id: "sign-in-message", class: flash ? "notice" : "", role: "status" }, flash);
  const error = h("p", { id: "sign-in-error", class: "problem", role: "alert", hidden: true });
  const showError = (text) => {
    error.textContent = text;
    error.hidden = false;
  };
  const finish = async () => {
    await ctx.reloadSession();
    ctx.navigate(ctx.next, { replace: true });
  };

  const chooser = h("form", { id: "choose-form", hidden: true, novalidate: true });
  const credentials = h("form", { id: "sign-in-form", novalidate: true },
    inputField("email", "Email", { type: "email", required: true, autocomplete: "username", maxlength: "320" }),
    inputField("password", "Password", { type: "password", required: true, autocomplete: "current-password", maxlength: "1024" }),
    h("button", { type: "submit", class: "primary" }, "Sign in"));

  credentials.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const email = credentials.elements.email.value.trim();
    const password = credentials.elements.password.value;
    if (!email || !password) {
      showError(!email ? "Enter your email." : "Enter your password.");
      (email ? credentials.elements.password : credentials.elements.email).focus();
      return;
    }
    credentials.setAttribute("aria-busy", "true");
    try {
      const result = await call("Login", { email, password });
      credentials.elements.password.value = "";
      if (result.choiceToken) {
        showChoices(result);
        return;
      }
      await finish();
    } catch (failure) {
      showError(failure.code === "unauthenticated" ? "The email or password is incorrect." : explain(failure));
      credentials.elements.password.focus();
    } finally {
      credentials.removeAttribute("aria-busy");
    }
  });

  function showChoices(result) {
    const choices = result.organizationChoices ?? [];
    chooser.replaceChildren(
      h("fieldset", { class: "radios" },
        h("legend", {}, "Your email opens several organizations. Choose one:"),
        choices.map((organization, index) => {
          const id = `organization-${index}`;
          return h("div", { class: "check" },
            h("input", { type: "radio", name: "organization", id, value: organization.organizationId, checked: index === 0 }),
            h("label", { for: id }, organization.name || organization.organizationId));
        })),
      h("button", { type: "submit", class: "primary" }, "Continue"));
    chooser.onsubmit = async (event) => {
      event.preventDefault();
      const selected = chooser.querySelector("input[name=organization]:checked");
      if (!selected) return;
      try {
        await call("Login", { choiceToken: result.choiceToken, organizationId: selected.value });
        await finish();
      } catch (failure) {
        if (failure.code === "unauthenticated") {
          chooser.hidden = true;
          credentials.hidden = false;
          showError("The choice took too long. Sign in again.");
          credentials.elements.email.focus();
        } else {
          showError(explain(failure));
        }
      }
    };
    credentials.hidden = true;
    chooser.hidden = false;
    chooser.querySelector("input")?.focus();
  }

  return h("section", { class: "narrow" },
    h("h1", {}, "Sign in"),
    message,
    error,
    credentials,
    chooser,
    h("p", { class: "hint" }, "Invited to the portal? Open the link in your invitation mail to set your password."));
}
