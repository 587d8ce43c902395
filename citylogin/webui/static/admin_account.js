// The console's accounts: the search by one exact key (never a scan: username, e-mail, user id, device
// id or session id), the result list, and an account's page: profile, devices and their certificates,
// live and recent sessions, passkeys, then its history and audit trail (admin_trail.js). The action
// buttons come from admin_actions.js, only those the operator's role allows.

import { authCall } from "./api.js";
import { accountActions, actionButton, initActions } from "./admin_actions.js";
import { initTrails, loadTrails } from "./admin_trail.js";
import { cell, emptyRow, failed, yesNo } from "./admin_view.js";
import { formatDate, has, onLocaleChange, setPlainText, setText } from "./i18n.js";
import { latestOnly } from "./latest.js";
import { $, clearMessage, el, showFieldError, timeEl, tx } from "./ui.js";

let shown = null;          // the account page drawn last: a language switch draws it again
const searches = latestOnly({ busy: $("#search-form") });   // the result list: the latest search's answer
const pages = latestOnly({ busy: $("#account-view") });     // the account's page: the latest opening's, or an action's

export function initAccounts({ role }) {
  $("#search-form").addEventListener("submit", search);
  $("#search-results").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-user-uuid]");
    if (button) openAccount(button.dataset.userUuid);
  });
  $("#account-reload").addEventListener("click", () => openAccount(shown.user_uuid));
  // An action's answer is the newest page: an opening still on its way gives way to it, and the trails
  // are read again only now, after the action's answer, so they hold its row.
  initActions({ role, page: () => shown, done: (account) => {
    pages.drawn();
    drawAccount(account);
    loadTrails(account);
  }, reload: () => openAccount(shown.user_uuid) });
  initTrails();
  onLocaleChange(() => {
    if (!shown) return;
    drawAccount(shown);
    loadTrails(shown);
  });
}

async function search(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const value = form.value.value.trim();
  clearMessage($(".error", form));
  clearMessage($("#search-none"));
  $("#search-none").hidden = true;
  if (!value) {
    showFieldError(form, "value", "web.admin.search_empty")?.focus();
    return;
  }
  form.value.removeAttribute("aria-invalid");
  await searches.read(() => authCall("GET", `/admin/accounts?${new URLSearchParams({ [form.key.value]: value })}`), {
    draw: (found) => {
      $("#search-results").replaceChildren(...found.accounts.map(resultItem));
      if (!found.accounts.length) setText($("#search-none"), "web.admin.search_none");
      $("#search-none").hidden = found.accounts.length > 0;
    },
    failed: (error) => failed($(".error", form), error),
  });
}

function resultItem(account) {
  return el("li", {}, el("button", { type: "button", className: "secondary", dataset: { userUuid: account.user_uuid } },
    el("strong", {}, account.username), el("span", { className: "muted" }, account.email),
    account.locked ? tx("span", { className: "badge removed" }, "web.admin.locked") : null,
    ...account.roles.map((role) => tx("span", { className: "badge current" }, `web.admin.role.${role}`))));
}

/** Reads the account's page and draws it, then its trails; aria-busy until the latest opening is drawn. */
async function openAccount(userUuid) {
  const view = $("#account-view");
  clearMessage($("#account-view > .error"));
  clearMessage($("#action-done"));
  await pages.read(() => authCall("GET", `/admin/accounts/${encodeURIComponent(userUuid)}`), {
    draw: async (account) => {
      const first = view.hidden || shown?.user_uuid !== account.user_uuid;
      drawAccount(account);
      if (first) $("#account-name").focus();      // keyboard users land on what they opened
      await loadTrails(account);
    },
    failed: (error) => failed(view.hidden ? $("#search-form .error") : $("#account-view > .error"), error),
  });
}

/** The action button that has the focus, as {action, deviceId}, or null. */
function focusedAction() {
  const button = document.activeElement?.closest?.("#account-view button[data-action]");
  return button ? { action: button.dataset.action, deviceId: button.dataset.deviceId } : null;
}

/** After the page is drawn again: the same action's new button keeps the focus, else the account's name. */
function refocus(was) {
  if (!was) return;
  const same = [...$("#account-view").querySelectorAll("button[data-action]")]
    .find((b) => b.dataset.action === was.action && b.dataset.deviceId === was.deviceId);
  (same || $("#account-name")).focus();
}

function drawAccount(account) {
  const was = focusedAction();
  shown = account;
  $("#account-view").hidden = false;
  setPlainText($("#account-name"), account.username);
  $("#account-name").tabIndex = -1;
  $("#profile").replaceChildren(...profile(account).flatMap(([key, value]) => [tx("dt", {}, key), el("dd", {}, value)]));
  $("#account-actions").replaceChildren(...accountActions(account));
  $("#device-rows").replaceChildren(...(account.devices.length ? account.devices.map(deviceRow)
    : [emptyRow("web.admin.devices_none", 6)]));
  $("#session-rows").replaceChildren(...(account.sessions.length ? account.sessions.map(sessionRow)
    : [emptyRow("web.admin.sessions_none", 5)]));
  $("#passkey-rows").replaceChildren(...(account.passkeys.length ? account.passkeys.map(passkeyItem)
    : [tx("li", { className: "muted" }, "web.admin.passkeys_none")]));
  refocus(was);
}

/** [catalogue key of the label, value] of each line of the profile. */
function profile(account) {
  const verified = tx("span", { className: account.email_verified ? "badge active" : "badge removed" },
    account.email_verified ? "web.account.verified" : "web.account.not_verified");
  const roles = account.roles.length
    ? account.roles.map((role) => tx("span", { className: "badge current" }, `web.admin.role.${role}`))
    : [tx("span", { className: "muted" }, "web.admin.no_roles")];
  const limit = account.limit === null ? tx("span", {}, "web.admin.limit_default", { limit: account.default_limit })
    : tx("span", {}, account.limit === 0 ? "web.admin.limit_unlimited" : "web.admin.limit_own", { limit: account.limit });
  return [
    ["web.common.email", el("span", {}, account.email, " ", verified)],
    ["web.admin.key_user_uuid", el("code", {}, account.user_uuid)],
    ["web.admin.created", timeEl(account.created_at)],
    ["web.admin.locked", account.locked ? tx("span", { className: "badge removed" }, "web.admin.yes") : yesNo(false)],
    ["web.admin.paused_until", timeEl(account.password_locked_until)],
    ["web.admin.roles", el("span", { className: "badges" }, ...roles)],
    ["web.admin.limit", limit],
    ["web.admin.language", languageName(account.locale)],
    ...imported(account),
  ];
}

/** An account `citylogin accounts import` brought (SPEC §17): from where and when, and whether its password is
 * citylogin's own by now (its first sign-in replaced the source's hash) or still the imported hash. None else. */
function imported(account) {
  if (!account.imported_from) return [];
  const known = `web.admin.imported_from.${account.imported_from}`;
  const params = { source: account.imported_from, date: account.imported_at ? formatDate(account.imported_at) : "—" };
  const upgraded = account.password_upgraded;
  return [
    ["web.admin.imported", tx("span", { id: "profile-imported" },
      has(known) ? known : "web.admin.imported_from.elsewhere", params)],
    ["web.common.password", tx("span", { id: "profile-password", className: upgraded ? "badge active" : "badge" },
      upgraded ? "web.admin.password_upgraded" : "web.admin.password_imported")],
  ];
}

/** The account's language by its name, in the language shown (a code the catalogue lacks as it is). */
function languageName(locale) {
  return has(`web.admin.language_name.${locale}`) ? tx("span", {}, `web.admin.language_name.${locale}`) : locale;
}

function deviceRow(device) {
  const active = device.status === "active";
  const certificate = el("span", {}, tx("span", { className: active ? "badge active" : "badge removed" },
    active ? "web.admin.cert_active" : "web.admin.cert_revoked"), " ",
  active ? tx("span", { className: "muted" }, "web.admin.cert_expires", { date: formatDate(device.cert_expires_at) }) : null);
  return el("tr", { className: active ? "" : "failed", dataset: { deviceId: device.device_id } },
    cell("web.admin.col_device", el("strong", {}, device.device_name), " ", el("span", { className: "muted" },
      has(`web.devices.class.${device.device_class}`) ? tx("span", {}, `web.devices.class.${device.device_class}`)
        : device.device_class)),
    cell("web.admin.col_certificate", certificate),
    cell("web.admin.col_registered", timeEl(device.registered_at)),
    cell("web.admin.col_last_login", timeEl(device.last_login_at)),
    cell("web.admin.col_logged_in", yesNo(device.logged_in)),
    cell("web.admin.col_actions", active ? actionButton("unbind", { deviceId: device.device_id,
      deviceName: device.device_name }) : null));
}

function sessionRow(session) {
  const reason = session.revoked_reason;
  const key = session.status === "active" ? "web.sessions.active"
    : reason && has(`web.sessions.ended_${reason}`) ? `web.sessions.ended_${reason}`
      : reason ? "web.sessions.ended_other" : "web.sessions.ended";
  return el("tr", { className: session.status === "active" ? "current" : "" },
    cell("web.admin.col_device", session.device_name),
    cell("web.sessions.col_started", timeEl(session.created_at)),
    cell("web.sessions.col_last_seen", timeEl(session.last_seen_at)),
    cell("web.common.ip_address", session.ip),
    cell("web.sessions.col_status", tx("span", {}, key, { reason })));
}

function passkeyItem(passkey) {
  return el("li", {}, el("strong", {}, passkey.name), " ",
    tx("span", { className: "muted" }, "web.admin.passkey_dates", { created: formatDate(passkey.created_at),
      used: passkey.last_used_at ? formatDate(passkey.last_used_at) : "—" }));
}
