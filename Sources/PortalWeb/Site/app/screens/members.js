// Members (Admins only): active members and pending invites, each with role filter, search and a
// column chooser; inviting, editing, deleting, resending and revoking.

import { h } from "/app/dom.js";
import { date, dateTime, personName, roleName } from "/app/format.js";
import { invitesRequest, membersRequest } from "/app/query.js";
import { withParams } from "/app/router.js";
import { columnChooser, listResults, settle } from "/app/table.js";
import { explain, linkTabs, searchForm, selectField, toolbar } from "/app/widgets.js";
import { confirmDialog, formDialog, inputField, radioGroup } from "/app/dialog.js";
import { inviteButton } from "/app/invites.js";

const roleOptions = [["", "All roles"], ["admin", "Admin"], ["viewer", "Viewer"]];

/** The members page: the Active or Invites tab. */
export async function render(ctx) {
  const tabs = linkTabs("Member lists", [
    { label: "Active", href: "/members/active", current: ctx.route.tab === "active" },
    { label: "Invites", href: "/members/invites", current: ctx.route.tab === "invites" },
  ]);
  const body = ctx.route.tab === "invites" ? await invitesTab(ctx) : await activeTab(ctx);
  return h("div", {},
    h("div", { class: "page-head" }, h("h1", {}, "Members"), inviteButton(ctx, () => ctx.navigate("/members/invites", { focus: "invite-member" }))),
    tabs, body);
}

// MARK: Active members

async function activeTab(ctx) {
  const { params, path } = ctx;
  const set = (changes) => ctx.navigate(withParams(path, params, changes));
  const request = membersRequest(params);
  const list = await settle(ctx.api("ListMembers", request, { read: true }));
  const self = ctx.session.me?.principal?.memberId;
  const spec = {
    id: "members", caption: "Active members", order: request.orderBy, emptyText: "No members match these filters.",
    columns: [
      { key: "first_name", label: "First Name", sort: "first_name", cell: (row) => row.firstName },
      { key: "last_name", label: "Last Name", sort: "last_name", cell: (row) => row.lastName },
      { key: "email", label: "Email", sort: "email", cell: (row) => row.email },
      { key: "role", label: "Role", sort: "role", cell: (row) => roleName(row.role) },
      { key: "phone", label: "Phone", sort: "phone", cell: (row) => row.phone },
      { key: "created_at", label: "Member Since", sort: "created_at", shown: false, cell: (row) => date(row.createdAt) },
      { key: "actions", label: "Actions", fixed: true, cell: (row) => h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary small", id: `edit-${row.memberId}`, "aria-label": `Edit ${personName(row)}`, onclick: () => editMember(ctx, row) }, "Edit"),
        h("button", { type: "button", class: "danger small", id: `delete-${row.memberId}`, "aria-label": `Delete ${personName(row)}`, onclick: () => deleteMember(ctx, row, row.memberId === self) }, "Delete")) },
    ],
  };
  const searchBy = selectField("search-by", "Search by", [["name", "First/Last Name"], ["email", "Email"], ["phone", "Phone"]], params.get("by") ?? "name");
  const filters = toolbar("Filters",
    selectField("role", "Role", roleOptions, params.get("role"), (value) => set({ role: value })),
    searchForm("search", "Search members", params.get("q"), (text) => {
      const by = searchBy.querySelector("select").value;
      set({ q: text, by: by === "name" ? "" : by });
    }, searchBy),
    columnChooser(spec));
  return h("div", {}, filters, listResults(spec, list, ctx, { rows: "members", noun: ["member", "members"] }));
}

async function editMember(ctx, member) {
  const name = personName(member);
  const done = await formDialog({
    id: "edit-dialog",
    title: `Edit ${name}`,
    intro: member.email,
    fields: [
      inputField("edit-first-name", "First name", { required: true, value: member.firstName ?? "", maxlength: "100" }),
      inputField("edit-last-name", "Last name", { required: true, value: member.lastName ?? "", maxlength: "100" }),
      inputField("edit-phone", "Phone", { type: "tel", value: member.phone ?? "", maxlength: "16", hint: "International format, for example +14155550123; empty removes it." }),
      radioGroup("edit-role", "Role", [["ROLE_ADMIN", "Admin – full access"], ["ROLE_VIEWER", "Viewer – view only access"]], member.role),
    ],
    submitLabel: "Save changes",
    onSubmit: async (form) => {
      const fields = form.elements;
      const { member: updated } = await ctx.api("UpdateMember", {
        memberId: member.memberId, firstName: fields["edit-first-name"].value.trim(), lastName: fields["edit-last-name"].value.trim(),
        phone: fields["edit-phone"].value.trim(), role: fields["edit-role"].value,
      });
      ctx.announce(`Saved the changes to ${personName(updated ?? member)}.`, { visible: true });
      return true;
    },
  });
  if (done) refresh(ctx, member.memberId === ctx.session.me?.principal?.memberId);
}

async function deleteMember(ctx, member, isSelf) {
  const name = personName(member);
  const done = await confirmDialog({
    id: "delete-dialog",
    title: `Delete ${name}?`,
    message: isSelf
      ? "You are deleting yourself: you lose access to this organization at once."
      : `${name} (${member.email}) loses access to this organization at once. This cannot be undone.`,
    confirmLabel: "Delete member",
    action: async () => {
      await ctx.api("DeleteMember", { memberId: member.memberId });
      ctx.announce(`${name} was deleted.`, { visible: true });
    },
  });
  if (done) refresh(ctx, isSelf);
}

/** Shows the list again after a change; a change to oneself reloads the session (role, access). */
async function refresh(ctx, self) {
  if (self) {
    await ctx.reloadSession().catch(() => {});
    ctx.navigate("/", { replace: true });
    return;
  }
  ctx.render({ focus: "members-count" });
}

// MARK: Invites

async function invitesTab(ctx) {
  const { params, path } = ctx;
  const set = (changes) => ctx.navigate(withParams(path, params, changes));
  const request = invitesRequest(params);
  const list = await settle(ctx.api("ListInvites", request, { read: true }));
  const spec = {
    id: "invites", caption: "Pending invites", order: request.orderBy, emptyText: "No pending invites match these filters.",
    columns: [
      { key: "added_on", label: "Added On", sort: "added_on", firstDirection: "desc", cell: (row) => dateTime(row.addedOn) },
      { key: "email", label: "Email", sort: "email", cell: (row) => row.email },
      { key: "role", label: "Role", sort: "role", cell: (row) => roleName(row.role) },
      { key: "phone", label: "Phone", shown: false, cell: (row) => row.phone },
      { key: "expires_at", label: "Expires", shown: false, cell: (row) => dateTime(row.expiresAt) },
      { key: "invited_by", label: "Invited By", shown: false, cell: (row) => row.invitedBy },
      { key: "actions", label: "Actions", fixed: true, cell: (row) => h("div", { class: "row-actions" },
        h("button", { type: "button", class: "secondary small", id: `resend-${row.inviteId}`, "aria-label": `Resend the invite to ${row.email}`, onclick: () => resend(ctx, row) }, "Resend"),
        h("button", { type: "button", class: "danger small", id: `revoke-${row.inviteId}`, "aria-label": `Revoke the invite to ${row.email}`, onclick: () => revoke(ctx, row) }, "Revoke")) },
    ],
  };
  const filters = toolbar("Filters",
    selectField("role", "Role", roleOptions, params.get("role"), (value) => set({ role: value })),
    searchForm("search", "Search by email", params.get("q"), (text) => set({ q: text })),
    columnChooser(spec));
  return h("div", {}, filters, listResults(spec, list, ctx, { rows: "invites", noun: ["invite", "invites"] }));
}

async function resend(ctx, invite) {
  try {
    const { invite: renewed } = await ctx.api("ResendInvite", { inviteId: invite.inviteId });
    ctx.announce(`A new invitation was sent to ${invite.email}; it is valid until ${dateTime(renewed?.expiresAt)}. The earlier link no longer works.`, { visible: true });
    ctx.render({ focus: `resend-${invite.inviteId}` });
  } catch (error) {
    ctx.announce(`The invitation to ${invite.email} was not resent. ${explain(error)}`, { visible: true });
  }
}

async function revoke(ctx, invite) {
  const done = await confirmDialog({
    id: "revoke-dialog",
    title: `Revoke the invite to ${invite.email}?`,
    message: "The invitation link stops working at once.",
    confirmLabel: "Revoke invite",
    action: async () => {
      await ctx.api("RevokeInvite", { inviteId: invite.inviteId });
      ctx.announce(`The invite to ${invite.email} was revoked.`, { visible: true });
    },
  });
  if (done) ctx.render({ focus: "invites-count" });
}
