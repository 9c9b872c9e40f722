// Modal dialogs on the native <dialog> element: focus moves in and stays in, Escape cancels, focus
// returns to the control that opened it. Errors show inside the dialog, which stays open to retry.

import { h } from "/app/dom.js";
import { explain } from "/app/widgets.js";

/**
 * Opens a dialog holding a form of `fields` (nodes). `onSubmit(form)` does the work and resolves to a
 * result; a rejection is shown in the dialog. Resolves to the result, or null when cancelled.
 */
export function formDialog({ id, title, intro, fields = [], submitLabel, submitClass = "primary", onSubmit, describeError = explain }) {
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const error = h("p", { class: "problem", id: `${id}-error`, role: "alert", hidden: true });
    const submit = h("button", { type: "submit", class: submitClass }, submitLabel);
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => dialog.close() }, "Cancel");
    const form = h("form", { method: "dialog", novalidate: true },
      h("h2", { id: `${id}-title` }, title),
      intro ? h("p", { id: `${id}-intro` }, intro) : null,
      fields,
      error,
      h("div", { class: "actions" }, submit, cancel));
    const dialog = h("dialog", { id, "aria-labelledby": `${id}-title`, "aria-describedby": intro ? `${id}-intro` : undefined }, form);
    let result = null;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!form.reportValidity()) {
        // The browser's bubble fades: say in the dialog which field is wrong and why, until it is fixed.
        const invalid = form.querySelector(":invalid");
        const label = invalid?.labels?.[0]?.firstChild?.textContent?.trim();
        error.textContent = invalid ? `${label ? `${label}: ` : ""}${invalid.validationMessage}` : "";
        error.hidden = !invalid;
        return;
      }
      submit.disabled = true;
      form.setAttribute("aria-busy", "true");
      error.hidden = true;
      try {
        result = (await onSubmit(form)) ?? true;
        dialog.close();
      } catch (failure) {
        error.textContent = describeError(failure);
        error.hidden = false;
        submit.disabled = false;
      } finally {
        form.removeAttribute("aria-busy");
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = form.querySelector("input, select, textarea");
    (first ?? submit).focus();
  });
}

/** Asks to confirm a change that cannot be undone; resolves to true once `action()` has succeeded. */
export async function confirmDialog({ id, title, message, confirmLabel, action }) {
  const done = await formDialog({ id, title, intro: message, submitLabel: confirmLabel, submitClass: "danger", onSubmit: action });
  return done !== null;
}

/** A labelled input for a dialog form; `hint` is read with it (aria-describedby). */
export function inputField(id, label, { type = "text", value = "", required = false, hint, ...attributes } = {}) {
  const input = h("input", { id, name: id, type, value, required, "aria-describedby": hint ? `${id}-hint` : undefined, ...attributes });
  return h("div", { class: "field" },
    h("label", { for: id }, label, required ? null : h("span", { class: "optional" }, " (optional)")),
    input,
    hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null);
}

/** A group of radio buttons: `options` of `[value, label]`. */
export function radioGroup(name, legend, options, checked) {
  return h("fieldset", { class: "radios" }, h("legend", {}, legend),
    options.map(([value, label]) => {
      const id = `${name}-${value}`;
      return h("div", { class: "check" }, h("input", { type: "radio", name, id, value, checked: value === checked, required: true }), h("label", { for: id }, label));
    }));
}
