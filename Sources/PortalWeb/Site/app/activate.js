// The Activate dialog: quantity and project of one product line of one entitlement. The request carries
// an idempotency key made when the dialog opens, so submitting again after a failure (or a lost answer)
// never activates twice.

import { count } from "/app/format.js";
import { formDialog, inputField } from "/app/dialog.js";

/** A fresh idempotency key. */
function newKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/**
 * Opens the dialog for `line` (`entitlementId`, `productId`, `productName`, `unactivated`); resolves to
 * the activation, or null when cancelled. The outcome is announced.
 */
export function activateDialog(ctx, line) {
  const key = newKey();
  const most = Number(line.unactivated ?? 0);
  return formDialog({
    id: "activate-dialog",
    title: `Activate ${line.productName}`,
    intro: `Entitlement ${line.entitlementId}: ${count(most)} unactivated ${most === 1 ? "license" : "licenses"}.`,
    fields: [
      inputField("activate-quantity", "Quantity", { type: "number", required: true, min: "1", max: String(most), step: "1", value: "1", inputmode: "numeric" }),
      inputField("activate-project", "Project Name", { required: true, maxlength: "200", autocomplete: "off" }),
      inputField("activate-manager", "Project Manager", { required: true, maxlength: "200", autocomplete: "off" }),
      inputField("activate-serial", "Serial Number", { maxlength: "200", autocomplete: "off" }),
    ],
    submitLabel: "Activate",
    onSubmit: async (form) => {
      const fields = form.elements;
      const request = {
        entitlementId: line.entitlementId, productId: line.productId, quantity: String(Number(fields["activate-quantity"].value)),
        projectName: fields["activate-project"].value.trim(), projectManager: fields["activate-manager"].value.trim(),
        idempotencyKey: key,
      };
      const serial = fields["activate-serial"].value.trim();
      if (serial) request.serialNumber = serial;
      const { activation } = await ctx.api("Activate", request);
      const quantity = Number(activation?.quantity ?? request.quantity);
      ctx.announce(`Activated ${count(quantity)} ${quantity === 1 ? "license" : "licenses"} of ${line.productName} for ${request.projectName}.`, { visible: true });
      return activation ?? {};
    },
  });
}
