// The support actions on an account's page (SPEC §15), as buttons only where the operator's role allows
// them (the server checks again on every call): each opens the confirm dialog (admin_dialog.js) and,
// once done, the page is drawn again from the account the server answers with, and the line saying
// so takes the focus.

import { authCall } from "./api.js";
import { confirmAction } from "./admin_dialog.js";
import { sayDone } from "./admin_view.js";
import { t } from "./i18n.js";
import { $, tx } from "./ui.js";

export const RANKS = { viewer: 1, support: 2, admin: 3 };

// name -> the role it needs, its path under the account, the dialog's extra inputs, whether it is
// harmless enough for a plain (not red) button, and whether it is destructive (SPEC §15: it needs a
// recent sign-in, else the operator's password).
const ACTIONS = {
  lock: { role: "support", path: () => "lock", destructive: true },
  unlock: { role: "support", path: () => "unlock", safe: true },
  revoke_sessions: { role: "support", path: () => "revoke-sessions", destructive: true },
  unbind: { role: "support", path: (deviceId) => `devices/${encodeURIComponent(deviceId)}/unbind`, destructive: true },
  limit: { role: "support", path: () => "limit", fields: "limit", safe: true },
  resend_verification: { role: "support", path: () => "resend-verification", safe: true },
  password_reset: { role: "support", path: () => "password-reset", destructive: true },
  roles: { role: "admin", path: () => "roles", fields: "role", destructive: true },
  // the person's data export (their "Download my data"), to hand them: answered with the document, saved as a file
  export: { role: "support", path: () => "export", safe: true, download: true },
};

let role = null;
let shownPage = () => null;
let drawn = () => {};
let reread = () => {};

/** role: the operator's highest; page(): the account drawn now; done(account): draws the answer;
 * reload(): reads the account again. */
export function initActions({ role: operatorRole, page, done, reload }) {
  role = operatorRole;
  shownPage = page;
  drawn = done;
  reread = reload;
  $("#account-view").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (button) act(button.dataset.action, button.dataset.deviceId);
  });
}

export function allowed(name) {
  return (RANKS[role] || 0) >= RANKS[ACTIONS[name].role];
}

/** The button of an action the operator may take, else null (a viewer sees none). */
export function actionButton(name, { deviceId, deviceName } = {}) {
  if (!allowed(name)) return null;
  const button = tx("button", { type: "button", className: ACTIONS[name].safe ? "secondary small" : "danger small",
    dataset: { action: name, ...(deviceId ? { deviceId } : {}) } }, `web.admin.action.${name}`);
  if (deviceName) button.setAttribute("aria-label", t("web.admin.action.unbind_label", { device: deviceName }));
  return button;
}

/** The account-wide actions that make sense for this account now. */
export function accountActions(account) {
  const paused = account.locked || Boolean(account.password_locked_until);
  return [paused ? "unlock" : "lock", account.locked ? null : "revoke_sessions", "limit",
    account.email_verified ? null : "resend_verification", "password_reset", "roles", "export"]
    .filter(Boolean).map((name) => actionButton(name)).filter(Boolean);
}

async function act(name, deviceId) {
  const account = shownPage();
  if (!account || !ACTIONS[name]) return;
  const action = ACTIONS[name];
  const device = account.devices.find((d) => d.device_id === deviceId);
  const path = `/admin/accounts/${encodeURIComponent(account.user_uuid)}/${action.path(deviceId)}`;
  let stale = false;
  const answer = await confirmAction({
    title: `web.admin.action.${name}`, message: `web.admin.action.${name}_message`,
    params: { username: account.username, device: device?.device_name || "" },
    fields: action.fields, values: { limit: account.limit }, danger: !action.safe,
    destructive: Boolean(action.destructive), send: (body) => authCall("POST", path, body),
    failed: () => { stale = true; },
  });
  if (!answer) {
    if (stale) reread();                  // given up after a 503: show what is true now
    return;
  }
  if (action.download) {
    await (await import("./data_export.js")).saveExport(answer);
    reread();                             // its audit row
  } else {
    drawn(answer);
  }
  sayDone($("#action-done"), name, account.username);
}
