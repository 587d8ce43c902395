// An account's history (logins, failures, operator actions) and its audit trail (the operator actions
// alone, with who acted and why) on the console, a page at a time: "More" follows next_cursor.

import { authCall } from "./api.js";
import { cell, failed } from "./admin_view.js";
import { has } from "./i18n.js";
import { $, el, timeEl, tx } from "./ui.js";

const PAGE = 20;
// What an audit row says beyond who, what and why: the action's own details (a device, a limit, a role),
// not the columns already shown nor the store's keeping of the row (its key and expiry).
const NOT_DETAILS = new Set(["at", "result", "action", "reason", "operator", "operator_uuid", "operator_session",
  "operator_client", "operator_role", "user_uuid", "event_key", "expires_ttl"]);

const trails = {
  history: { row: historyRow, cursor: null, loads: 0 },
  audit: { row: auditRow, cursor: null, loads: 0 },
};
let account = null;

export function initTrails() {
  for (const kind of Object.keys(trails)) {
    $(`#${kind}-more`).addEventListener("click", () => loadTrail(kind, { more: true }));
  }
}

/** The first page of both, for `page` (the account drawn now). */
export function loadTrails(page) {
  account = page;
  return Promise.all(Object.keys(trails).map((kind) => loadTrail(kind)));
}

async function loadTrail(kind, { more = false } = {}) {
  const trail = trails[kind];
  const load = ++trail.loads;              // only the newest request draws: an older answer may come later
  const button = $(`#${kind}-more`);
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (more && trail.cursor) query.set("cursor", trail.cursor);
  button.disabled = true;
  try {
    const page = await authCall("GET", `/admin/accounts/${encodeURIComponent(account.user_uuid)}/${kind}?${query}`);
    if (load !== trail.loads) return;
    const rows = page.items.map((item) => trail.row(item));
    if (more) $(`#${kind}-rows`).append(...rows);
    else $(`#${kind}-rows`).replaceChildren(...rows);
    trail.cursor = page.next_cursor || null;
    button.hidden = !trail.cursor;
  } catch (error) {
    failed($("#account-view > .error"), error);
  } finally {
    button.disabled = false;
  }
}

function actionText(action) {
  return has(`web.admin.action.${action}`) ? tx("span", {}, `web.admin.action.${action}`) : action;
}

function resultText(item) {
  if (item.result === "admin_action") return tx("span", {}, "web.admin.result_admin_action");
  const key = `web.history.result_${item.result}`;
  return has(key) ? tx("span", {}, key) : item.result;
}

function deviceName(deviceId) {
  if (!deviceId) return "—";
  return account.devices.find((d) => d.device_id === deviceId)?.device_name || `${deviceId.slice(0, 8)}…`;
}

function historyRow(item) {
  return el("tr", { className: item.result === "success" || item.result === "admin_action" ? "" : "failed" },
    cell("web.history.col_when", timeEl(item.at)),
    cell("web.history.col_result", resultText(item), item.action ? " · " : null,
      item.action ? actionText(item.action) : null),
    cell("web.admin.col_device", deviceName(item.device_id)),
    cell("web.common.ip_address", item.ip));
}

function auditRow(item) {
  const details = Object.entries(item).filter(([key]) => !NOT_DETAILS.has(key))
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`).join(", ");
  const operator = [item.operator, item.operator_role && `(${item.operator_role})`].filter(Boolean).join(" ");
  return el("tr", {},
    cell("web.history.col_when", timeEl(item.at)),
    cell("web.admin.col_action", actionText(item.action)),
    cell("web.admin.col_operator", operator),
    cell("web.admin.col_reason", item.reason),
    cell("web.admin.col_details", details));
}
