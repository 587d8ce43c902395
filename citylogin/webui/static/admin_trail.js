// An account's history (logins, failures, operator actions) and its audit trail (the operator actions
// alone, with who acted and why) on the console, a page at a time: "More" follows next_cursor. The
// trail says who acted by username and role, and what the action did in words, in the language shown.

import { authCall } from "./api.js";
import { cell, emptyRow, failed } from "./admin_view.js";
import { has, t } from "./i18n.js";
import { latestOnly } from "./latest.js";
import { $, el, timeEl, tx } from "./ui.js";

const PAGE = 20;
// What an audit row says beyond who, what and why: the action's own details (a device, a limit, a role),
// not the columns already shown nor the store's keeping of the row (its key and expiry).
const NOT_DETAILS = new Set(["at", "result", "action", "reason", "operator", "operator_uuid", "operator_username",
  "operator_session", "operator_client", "operator_role", "user_uuid", "event_key", "expires_ttl"]);

// `reads`: only the latest read of a trail draws it (its first page again after an action, or "More").
const trails = {
  history: { row: historyRow, cursor: null, reads: latestOnly({ busy: $("#history-rows") }), columns: 4,
    none: "web.admin.history_none" },
  audit: { row: auditRow, cursor: null, reads: latestOnly({ busy: $("#audit-rows") }), columns: 5,
    none: "web.admin.audit_none" },
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
  const button = $(`#${kind}-more`);
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (more && trail.cursor) query.set("cursor", trail.cursor);
  const focused = document.activeElement === button;
  let rows = [];
  button.disabled = true;
  const latest = await trail.reads.read(
    () => authCall("GET", `/admin/accounts/${encodeURIComponent(account.user_uuid)}/${kind}?${query}`), {
      draw: (page) => {
        rows = page.items.map((item) => trail.row(item));
        if (more) $(`#${kind}-rows`).append(...rows);
        else $(`#${kind}-rows`).replaceChildren(...(rows.length ? rows : [emptyRow(trail.none, trail.columns)]));
        trail.cursor = page.next_cursor || null;
        button.hidden = !trail.cursor;
      },
      failed: (error) => failed($("#account-view > .error"), error),
    });
  if (!latest) return;                     // the newer read sets the button
  button.disabled = false;
  // "More" kept the focus, or hands it to the first row it brought when there is no more
  if (focused) focusAfterMore(button, rows[0]);
}

function focusAfterMore(button, firstNew) {
  if (!button.hidden) {
    button.focus();
  } else if (firstNew) {
    firstNew.tabIndex = -1;
    firstNew.focus();
  }
}

function actionText(action) {
  return has(`web.admin.action.${action}`) ? tx("span", {}, `web.admin.action.${action}`) : action;
}

function resultText(item) {
  if (item.result === "admin_action") return tx("span", {}, "web.admin.result_admin_action");
  if (item.continued) return tx("span", {}, "web.history.result_continued");
  const key = `web.history.result_${item.result}`;
  return has(key) ? tx("span", {}, key) : item.result;
}

function deviceName(deviceId) {
  if (!deviceId) return "—";
  return account.devices.find((d) => d.device_id === deviceId)?.device_name || `${deviceId.slice(0, 8)}…`;
}

function historyRow(item) {
  const refused = !(item.result === "success" || item.result === "admin_action" || item.continued);
  return el("tr", { className: refused ? "failed" : "" },
    cell("web.history.col_when", timeEl(item.at)),
    cell("web.history.col_result", resultText(item), item.action ? " · " : null,
      item.action ? actionText(item.action) : null),
    cell("web.admin.col_device", deviceName(item.device_id)),
    cell("web.common.ip_address", item.ip));
}

/** Who acted: the operator's username (an app by its client ID), with the role in words. */
function operatorText(item) {
  const who = item.operator_username
    || (item.operator_client ? t("web.admin.operator_app", { app: item.operator_client }) : item.operator);
  if (!item.operator_role) return who;
  const role = has(`web.admin.role.${item.operator_role}`) ? t(`web.admin.role.${item.operator_role}`)
    : item.operator_role;
  return t("web.admin.operator_with_role", { operator: who, role });
}

// The details each action keeps (flows/operators.py), said in words; any other is shown as it is.
const DETAIL_TEXTS = {
  sessions_ended: (value) => t("web.admin.detail.sessions_ended", { count: value }),
  device_id: (value) => t("web.admin.detail.device", { device: deviceName(value) }),
  limit: (value) => (value === "default" ? t("web.admin.detail.limit_default")
    : value === 0 ? t("web.admin.detail.limit_unlimited") : t("web.admin.detail.limit", { limit: value })),
  sent: (value) => t(value ? "web.admin.detail.sent" : "web.admin.detail.not_sent"),
  role: (value, item) => t(item.granted === false ? "web.admin.detail.role_taken" : "web.admin.detail.role_granted",
    { role: has(`web.admin.role.${value}`) ? t(`web.admin.role.${value}`) : value }),
  granted: () => null,                 // said with the role
  items: (value) => t("web.admin.detail.items", { count: value }),   // a data export: how many items it held
};

function detailsText(item) {
  return Object.entries(item).filter(([key]) => !NOT_DETAILS.has(key))
    .map(([key, value]) => (DETAIL_TEXTS[key] ? DETAIL_TEXTS[key](value, item)
      : `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`))
    .filter(Boolean).join(t("web.admin.detail.separator"));
}

function auditRow(item) {
  return el("tr", {},
    cell("web.history.col_when", timeEl(item.at)),
    cell("web.admin.col_action", actionText(item.action)),
    cell("web.admin.col_operator", operatorText(item)),
    cell("web.admin.col_reason", item.reason),
    cell("web.admin.col_details", detailsText(item)));
}
