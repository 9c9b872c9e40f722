// Accepting an invitation from the mail's link: name and password make the member, who is then
// signed in to the organization that invited them.

import { call } from "/app/connect.js";
import { h } from "/app/dom.js";
import { explain } from "/app/widgets.js";
import { inputField } from "/app/dialog.js";

/** The accept-invite page for `/accept-invite?code=…`. */
export async function render(ctx) {
  const code = ctx.params.get("code") ?? "";
  const error = h("p", { id: "accept-error", class: "problem", role: "alert", hidden: true });
  const form = h("form", { id: "accept-form", novalidate: true },
    code ? null : inputField("invite-code", "Invite code", { required: true, autocomplete: "off", hint: "The code in your invitation mail." }),
    inputField("first-name", "First name", { required: true, autocomplete: "given-name", maxlength: "100" }),
    inputField("last-name", "Last name", { required: true, autocomplete: "family-name", maxlength: "100" }),
    inputField("new-password", "Password", { type: "password", required: true, autocomplete: "new-password", minlength: "12", maxlength: "1024", hint: "At least 12 characters." }),
    inputField("confirm-password", "Repeat the password", { type: "password", required: true, autocomplete: "new-password" }),
    h("button", { type: "submit", class: "primary" }, "Accept and sign in"));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    const fields = form.elements;
    const secret = code || fields["invite-code"].value.trim();
    const problem =
      !secret ? ["invite-code", "Enter the invite code from your mail."]
      : !fields["first-name"].value.trim() ? ["first-name", "Enter your first name."]
      : !fields["last-name"].value.trim() ? ["last-name", "Enter your last name."]
      : fields["new-password"].value.length < 12 ? ["new-password", "Choose a password of at least 12 characters."]
      : fields["new-password"].value !== fields["confirm-password"].value ? ["confirm-password", "The two passwords differ."]
      : null;
    if (problem) {
      error.textContent = problem[1];
      error.hidden = false;
      fields[problem[0]]?.focus();
      return;
    }
    form.setAttribute("aria-busy", "true");
    try {
      await call("AcceptInvite", {
        inviteSecret: secret, firstName: fields["first-name"].value.trim(), lastName: fields["last-name"].value.trim(),
        password: fields["new-password"].value,
      });
      await ctx.reloadSession();
      ctx.navigate("/", { replace: true });
      ctx.announce("Welcome! Your invitation is accepted and you are signed in.", { visible: true });
    } catch (failure) {
      error.textContent = ["unauthenticated", "not_found", "failed_precondition"].includes(failure.code)
        ? "This invitation is no longer valid: it was used, revoked, resent or has expired. Ask an Admin to send a new one."
        : explain(failure);
      error.hidden = false;
    } finally {
      form.removeAttribute("aria-busy");
    }
  });

  return h("section", { class: "narrow" },
    h("h1", {}, "Accept your invitation"),
    h("p", {}, "Choose your name and a password to join your organization in the End Customer Portal."),
    error,
    form);
}
