// The console's sign-in providers (SPEC §16, role admin): the upstream providers people may sign up and sign
// in with instead of a password, listed; one added or changed with the form (its secret, or Apple's .p8 key,
// typed into a password field or read from a file: sent once, stored sealed, never shown back), one removed;
// each confirmed with a reason in the dialog.

import { authCall } from "./api.js";
import { confirmAction } from "./admin_dialog.js";
import { cell, failed, sayDone } from "./admin_view.js";
import { onLocaleChange, setText } from "./i18n.js";
import { latestOnly } from "./latest.js";
import { $, clearMessage, el, showFieldError, tx } from "./ui.js";

let providers = [];
let editing = null;     // the name of the provider the form changes, null while it adds one
const reads = latestOnly({ busy: $("#idps-panel") });

export function initProviders() {
  $("#idps-reload").addEventListener("click", () => loadProviders());
  $("#idp-form").addEventListener("submit", submitProvider);
  $("#idp-form").preset.addEventListener("change", showPresetFields);
  $("#idp-cancel-edit").addEventListener("click", () => startAdding());
  $("#idp-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-idp-action]");
    if (!button) return;
    if (button.dataset.idpAction === "edit") startEditing(button.dataset.idp);
    else removeProvider(button.dataset.idp);
  });
  onLocaleChange(() => drawProviders());
  startAdding();
}

export async function loadProviders() {
  clearMessage($("#idps-panel > .error"));
  await reads.read(() => authCall("GET", "/admin/identity-providers"), {
    draw: (answer) => {
      providers = answer.providers;
      drawProviders();
    },
    failed: (error) => failed($("#idps-panel > .error"), error),
  });
}

function drawProviders() {
  $("#idp-rows").replaceChildren(...providers.map(providerRow));
  $("#idps-none").hidden = providers.length > 0;
}

function providerRow(idp) {
  const button = (action, className) => tx("button", { type: "button", className: `${className} small`,
    dataset: { idpAction: action, idp: idp.name } }, `web.admin.action.idp_${action}`);
  return el("tr", { dataset: { idp: idp.name } },
    cell("web.admin.col_idp", el("strong", {}, idp.display_name), " ", el("code", {}, idp.name)),
    cell("web.admin.col_idp_preset", tx("span", {}, `web.admin.idp_preset_${idp.preset}`)),
    cell("web.admin.col_idp_issuer", el("code", {}, idp.issuer)),
    cell("web.admin.col_idp_signup", tx("span", {}, `web.admin.idp_signup_${idp.signup}`)),
    cell("web.admin.col_idp_state", tx("span", { className: idp.enabled ? "badge active" : "badge" },
      idp.enabled ? "web.admin.idp_enabled" : "web.admin.idp_disabled")),
    cell("web.admin.col_actions", el("span", { className: "actions" }, button("edit", "secondary"),
      button("remove", "danger"))));
}

/** The form adds a provider: every field empty, the preset's fields shown. */
function startAdding() {
  editing = null;
  const form = $("#idp-form");
  form.reset();
  form.name.readOnly = false;
  form.preset.disabled = false;
  setText($("#idp-form-title"), "web.admin.idp_add_title");
  setText($("#idp-submit"), "web.admin.action.idp_add");
  $("#idp-cancel-edit").hidden = true;
  showPresetFields();
}

/** The form changes `name`: its fields as they are (never its secret: left empty, it stays). */
function startEditing(name) {
  const idp = providers.find((p) => p.name === name);
  if (!idp) return;
  editing = name;
  const form = $("#idp-form");
  form.reset();
  for (const field of ["name", "preset", "display_name", "issuer", "client_id", "scope", "signup", "apple_team_id",
    "apple_key_id"]) form[field].value = idp[field] ?? "";
  form.enabled.checked = idp.enabled;
  form.name.readOnly = true;
  form.preset.disabled = true;          // a preset never changes: add another provider
  setText($("#idp-form-title"), "web.admin.idp_change_title", { idp: idp.display_name });
  setText($("#idp-submit"), "web.admin.action.idp_change");
  $("#idp-cancel-edit").hidden = false;
  showPresetFields();
  form.display_name.focus();
}

/** Apple takes its key, team and key id instead of a client secret. */
function showPresetFields() {
  const apple = $("#idp-form").preset.value === "apple";
  $("#idp-secret-field").hidden = apple;
  $("#idp-apple-fields").hidden = !apple;
}

/** The fields to send: those filled in (a change leaves an empty one as it is); undefined when the key file
 * cannot be read (the field says so). */
async function filledFields(form) {
  const fields = {};
  for (const name of ["display_name", "issuer", "client_id", "scope", "apple_team_id", "apple_key_id"]) {
    const value = form[name].value.trim();
    if (value) fields[name] = value;
  }
  fields.signup = form.signup.value;
  fields.enabled = form.enabled.checked;
  const apple = form.preset.value === "apple";
  if (!apple && form.client_secret.value) fields.client_secret = form.client_secret.value;
  const file = apple ? form.apple_key_file.files[0] : null;
  if (file) {
    try {
      fields.apple_private_key = await file.text();
    } catch {
      showFieldError(form, "apple_key_file", "web.admin.idp_key_unreadable")?.focus();
      return undefined;
    }
  }
  return fields;
}

async function submitProvider(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearMessage($(".error", form));
  const name = form.name.value.trim();
  if (!name) {
    showFieldError(form, "name", "web.admin.idp_name_required")?.focus();
    return;
  }
  const fields = await filledFields(form);
  if (!fields) return;
  const adding = editing === null;
  const action = adding ? "idp_add" : "idp_change";
  const done = await confirmAction({ title: `web.admin.action.${action}`, message: `web.admin.action.${action}_message`,
    params: { idp: fields.display_name || name }, danger: false,
    send: (body) => adding
      ? authCall("POST", "/admin/identity-providers", { name, preset: form.preset.value, ...fields, ...body })
      : authCall("PATCH", `/admin/identity-providers/${encodeURIComponent(name)}`, { ...fields, ...body }) });
  if (!done) return;
  startAdding();
  sayDone($("#idps-done"), action, done.display_name);
  showRedirect(done);
  await loadProviders();
}

/** Where the provider sends people back: the URI the operator registers at the provider. */
function showRedirect(idp) {
  const line = $("#idp-redirect");
  line.hidden = !idp.redirect_uri;
  if (idp.redirect_uri) setText(line, "web.admin.idp_redirect", { uri: idp.redirect_uri });
}

async function removeProvider(name) {
  const idp = providers.find((p) => p.name === name);
  const removed = await confirmAction({ title: "web.admin.action.idp_remove",
    message: "web.admin.action.idp_remove_message", params: { idp: idp?.display_name || name },
    send: (body) => authCall("DELETE", `/admin/identity-providers/${encodeURIComponent(name)}`, body) });
  if (!removed) return;
  if (editing === name) startAdding();
  $("#idp-redirect").hidden = true;
  sayDone($("#idps-done"), "idp_remove", idp?.display_name || name);
  await loadProviders();
}
