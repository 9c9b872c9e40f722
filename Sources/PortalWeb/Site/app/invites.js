// The Invite Member dialog, opened from the dashboard's Invite My Team and from Members.

import { h } from "/app/dom.js";
import { formDialog, inputField, radioGroup } from "/app/dialog.js";

/** Opens the dialog; resolves to the new invite, or null when cancelled. */
export function inviteMemberDialog(ctx) {
  return formDialog({
    id: "invite-dialog",
    title: "Invite Member",
    intro: "We mail an invitation link that is valid for 7 days.",
    fields: [
      inputField("invite-email", "Email", { type: "email", required: true, autocomplete: "off", maxlength: "254" }),
      inputField("invite-phone", "Phone", { type: "tel", autocomplete: "off", maxlength: "16", hint: "International format, for example +14155550123." }),
      radioGroup("invite-role", "Role", [["ROLE_ADMIN", "Admin – full access"], ["ROLE_VIEWER", "Viewer – view only access"]], "ROLE_VIEWER"),
    ],
    submitLabel: "Send invite",
    onSubmit: async (form) => {
      const request = { email: form.elements["invite-email"].value.trim(), role: form.elements["invite-role"].value };
      const phone = form.elements["invite-phone"].value.trim();
      if (phone) request.phone = phone;
      const { invite } = await ctx.api("InviteMember", request);
      ctx.announce(`Invitation sent to ${invite?.email ?? request.email}.`, { visible: true });
      return invite ?? {};
    },
  });
}

/** The Invite Member button; `after` runs once an invite was sent. */
export function inviteButton(ctx, after) {
  return h("button", {
    type: "button", id: "invite-member", class: "primary",
    onclick: async () => {
      const invite = await inviteMemberDialog(ctx);
      if (invite && after) after(invite);
    },
  }, "+ Invite Member");
}
