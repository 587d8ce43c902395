// The console's apps (SPEC §15, role admin): the OpenID Connect clients citylogin knows, one added
// (its client secret shown once, here, and never again), a secret rotated, an app removed; each
// confirmed with a reason in the dialog, its result (the secret, or the line saying it was done) then
// taking the focus.

import { authCall } from "./api.js";
import { confirmAction } from "./admin_dialog.js";
import { initRegistrationTokens, loadRegistrationTokens } from "./admin_registration.js";
import { cell, failed, sayDone } from "./admin_view.js";
import { onLocaleChange, setPlainText, setText, t } from "./i18n.js";
import { latestOnly } from "./latest.js";
import { $, clearMessage, el, showFieldError, timeEl, tx } from "./ui.js";

let apps = [];
// Which PKCE rule an app signs in under (SPEC §14), as the admin API names it.
const PKCE_RULES = { public_client: "web.admin.pkce_public_client", fapi2_profile: "web.admin.pkce_fapi2_profile",
  require_pkce: "web.admin.pkce_require_pkce",
  operator_setting: "web.admin.pkce_operator_setting", when_sent: "web.admin.pkce_when_sent" };
// The list: the latest read's answer (the tab opened, Reload, after an action). A module runs once the
// page is parsed: the panel is there.
const reads = latestOnly({ busy: $("#apps-panel") });

export function initApps() {
  $("#apps-reload").addEventListener("click", () => loadApps());
  $("#app-form").addEventListener("submit", addApp);
  $("#app-device-flow").addEventListener("change", showDeviceClass);
  $("#app-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-app-action]");
    if (button) (button.dataset.appAction === "rotate" ? rotateSecret : removeApp)(button.dataset.clientId);
  });
  onLocaleChange(() => drawApps());
  initRegistrationTokens();
}

export async function loadApps() {
  clearMessage($("#apps-panel > .error"));
  loadRegistrationTokens();
  await reads.read(() => authCall("GET", "/admin/apps"), {
    draw: (answer) => {
      apps = answer.apps;
      drawApps();
    },
    failed: (error) => failed($("#apps-panel > .error"), error),
  });
}

function drawApps() {
  $("#app-rows").replaceChildren(...apps.map(appRow));
  $("#apps-none").hidden = apps.length > 0;
}

function appRow(app) {
  // PKCE is a rule of sign-ins through the browser: an app without a redirect URI (a device-flow app's
  // alone) makes none. A language switch draws the rows again, the class's name with them.
  const kind = [tx("span", {}, app.public ? "web.admin.app_kind_public" : "web.admin.app_kind_confidential"),
    app.consent ? tx("span", {}, "web.admin.app_kind_consent") : null,
    app.profile === "fapi2" ? tx("span", {}, "web.admin.app_kind_fapi2") : null,
    app.redirect_uris.length ? tx("span", {}, PKCE_RULES[app.pkce]) : null,
    app.require_signed_request_object ? tx("span", {}, "web.admin.app_kind_signed_requests") : null,
    app.allow_unsigned_request_objects || app.request_object_signing_alg === "none"
      ? tx("span", {}, "web.admin.app_kind_unsigned_requests") : null,
    app.device_flow ? tx("span", {}, "web.admin.app_kind_device_flow",
      { class: t(`web.devices.class.${app.device_class}`) }) : null,
    app.registered_with ? tx("span", {}, "web.admin.app_kind_registered") : null].filter(Boolean);
  const rotate = app.public ? null : tx("button", { type: "button", className: "secondary small",
    dataset: { appAction: "rotate", clientId: app.client_id } }, "web.admin.action.app_rotate");
  const remove = tx("button", { type: "button", className: "danger small",
    dataset: { appAction: "remove", clientId: app.client_id } }, "web.admin.action.app_remove");
  return el("tr", { dataset: { clientId: app.client_id } },
    cell("web.admin.col_app", el("strong", {}, app.name)),
    cell("web.admin.col_client_id", el("code", {}, app.client_id)),
    cell("web.admin.col_redirect_uris", ...app.redirect_uris.flatMap((uri, i) => [i ? el("br") : null, uri])),
    cell("web.admin.col_kind", ...kind.flatMap((node, i) => [i ? ", " : null, node])),
    cell("web.admin.col_secret_rotated", timeEl(app.secret_rotated_at || app.created_at)),
    cell("web.admin.col_actions", el("span", { className: "actions" }, rotate, remove)));
}

async function addApp(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearMessage($(".error", form));
  const name = form.name.value.trim();
  const lines = (field) => field.value.split("\n").map((line) => line.trim()).filter(Boolean);
  const redirectUris = lines(form.redirect_uris);
  if (!name) {
    showFieldError(form, "name", "web.admin.app_name_required")?.focus();
    return;
  }
  const jwks = publicKeys(form);
  if (jwks === undefined) return;
  // Consent, PKCE and request objects are of sign-ins through the browser: sent for an app with redirect URIs alone
  // (as `apps add` refuses them to a device-flow app without one).
  const browser = redirectUris.length > 0;
  const fields = { name, redirect_uris: redirectUris, public: form.public.checked,
    consent: browser && form.consent.checked, require_pkce: browser && form.require_pkce.checked,
    ...(browser ? requestObjectFields(form, lines(form.request_uris)) : {}),
    device_flow: form.device_flow.checked,
    ...(form.device_flow.checked ? { device_class: form.device_class.value } : {}),
    ...(jwks ? { jwks } : {}), id_token_alg: form.id_token_alg.value,
    // the FAPI 2.0 Security Profile: the server refuses an app that cannot comply, naming the field
    ...(form.profile.checked ? { profile: "fapi2" } : {}) };
  const created = await confirmAction({ title: "web.admin.action.app_add", message: "web.admin.action.app_add_message",
    params: { app: name }, danger: false, send: (body) => authCall("POST", "/admin/apps", { ...fields, ...body }) });
  if (!created) return;
  form.reset();
  showDeviceClass();
  clearMessage($("#apps-done"));
  showSecret(created);
  await loadApps();
}

/** How the app may send request objects (RFC 9101): a sign-in through the browser's option alone. */
function requestObjectFields(form, requestUris) {
  return { request_uris: requestUris, request_object_signing_alg: form.request_object_signing_alg.value || null,
    allow_unsigned_request_objects: form.allow_unsigned_request_objects.checked,
    require_signed_request_object: form.require_signed_request_object.checked };
}

/** The JWK Set pasted (its public keys: the app signs in with private_key_jwt), null for none, or undefined
 * when it is no JSON object (the field says so, and nothing is sent). */
function publicKeys(form) {
  const text = form.jwks.value.trim();
  if (!text) return null;
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed;
  } catch { /* shown at the field below */ }
  showFieldError(form, "jwks", "web.admin.app_jwks_invalid")?.focus();
  return undefined;
}

/** The class select, shown while "device flow" is ticked: only a device-flow app's screens have a class. */
function showDeviceClass() {
  $("#app-device-class-field").hidden = !$("#app-device-flow").checked;
}

async function rotateSecret(clientId) {
  const app = apps.find((a) => a.client_id === clientId);
  const rotated = await confirmAction({ title: "web.admin.action.app_rotate", message: "web.admin.action.app_rotate_message",
    params: { app: app?.name || clientId },
    send: (body) => authCall("POST", `/admin/apps/${encodeURIComponent(clientId)}/rotate-secret`, body) });
  if (!rotated) return;
  clearMessage($("#apps-done"));
  showSecret({ name: app?.name, ...rotated, client_id: clientId });
  await loadApps();
}

async function removeApp(clientId) {
  const app = apps.find((a) => a.client_id === clientId);
  const removed = await confirmAction({ title: "web.admin.action.app_remove", message: "web.admin.action.app_remove_message",
    params: { app: app?.name || clientId },
    send: (body) => authCall("DELETE", `/admin/apps/${encodeURIComponent(clientId)}`, body) });
  if (!removed) return;
  $("#app-secret").hidden = true;
  sayDone($("#apps-done"), "app_remove", app?.name || clientId);
  await loadApps();
}

/** The client secret, shown this once: the server keeps only its hash. A public client has none. */
function showSecret(app) {
  const box = $("#app-secret");
  setText($("#app-secret-title"), "web.admin.secret_for", { app: app.name || app.client_id });
  const value = $("#app-secret-value");
  if (app.client_secret) setPlainText(value, app.client_secret);
  else setText(value, "web.admin.secret_none");
  box.hidden = false;
  box.scrollIntoView({ block: "nearest" });
  box.focus();
}
