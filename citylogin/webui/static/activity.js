// The Sessions and History panels (SPEC §4 /session/list, /session/logout_all, /session/history).

import { authCall } from "./api.js";
import { deviceNames } from "./devices.js";
import { has, setText, t } from "./i18n.js";
import { $, ask, clearMessage, describeAgent, el, showError, timeEl, tx } from "./ui.js";

const HISTORY_PAGE = 20;
const SESSIONS_PAGE = 20;
// What a history row did to the account, for its colour: a sign-in and an operator's unlock are good news,
// a refusal is not, nor an operator's lock, ended sessions or removed device; other operator actions are neither.
const OPERATOR_ACTION_EFFECTS = { unlock: "good", lock: "bad", revoke_sessions: "bad", unbind: "bad" };
const END_REASONS = {
  logged_out: "web.sessions.ended_logged_out",
  displaced: "web.sessions.ended_displaced",
  remote_logout: "web.sessions.ended_remote_logout",
  device_unbound: "web.sessions.ended_device_unbound",
  idle_timeout: "web.sessions.ended_idle_timeout",
  max_lifetime: "web.sessions.ended_max_lifetime",
  refresh_reuse: "web.sessions.ended_refresh_reuse",
  admin: "web.sessions.ended_admin",
  password_changed: "web.sessions.ended_password_changed",
  password_reset: "web.sessions.ended_password_reset",
  account_deleted: "web.sessions.ended_account_deleted",
  app_removed: "web.sessions.ended_app_removed",
  approval_expired: "web.sessions.ended_approval_expired",
};

let nextCursor = null;
let sessionsCursor = null;   // next_cursor of the last page of sessions shown
let sessionsLoads = 0;       // a toggle while a page loads: only the newest request's answer is shown
let onLogoutAll = async () => {};

export function initActivity({ onLogoutAll: logoutAll }) {
  onLogoutAll = logoutAll;
  setText($("#sessions-show-ended-label"), "web.sessions.include_ended");
  $("#sessions-refresh").addEventListener("click", () => loadSessions());
  $("#sessions-show-ended").addEventListener("change", () => loadSessions());
  sessionsMoreButton().addEventListener("click", () => loadSessions({ more: true }));
  $("#sessions-logout-all").addEventListener("click", logOutEverywhere);
  $("#history-refresh").addEventListener("click", () => loadHistory());
  $("#history-more").addEventListener("click", () => loadHistory({ more: true }));
  $("#session-rows").addEventListener("click", endOtherSession);
  $("#session-rows").addEventListener("click", signAppOut);
}

export function resetActivity() {
  sessionsLoads += 1;               // an answer still on its way is for the session that has ended
  $("#sessions-show-ended").checked = false;
  $("#session-rows").replaceChildren();
  sessionsMoreButton().hidden = true;
  sessionsCursor = null;
  $("#history-rows").replaceChildren();
  $("#history-more").hidden = true;
  nextCursor = null;
}

/** A table cell that also carries its column name, shown as a label on narrow screens. */
function cell(labelKey, ...content) {
  const filled = content.filter((part) => part !== null && part !== undefined);
  return el("td", { dataset: { column: labelKey, label: t(labelKey) } },
    filled.length ? el("span", {}, ...filled) : null);
}

/** The panel's "More" button; made here when the page does not have one. */
function sessionsMoreButton() {
  let button = $("#sessions-more");
  if (!button) {
    button = tx("button", { type: "button", id: "sessions-more", className: "secondary", hidden: true },
      "web.sessions.more");
    $("#session-rows").closest("table").after(button);
  }
  return button;
}

/** The first page of sessions (the live ones, or all with the toggle), or with `more` the next one. */
export async function loadSessions({ more = false } = {}) {
  const errorNode = $("#sessions-panel .error");
  const moreButton = sessionsMoreButton();
  clearMessage(errorNode);
  const query = new URLSearchParams({ limit: String(SESSIONS_PAGE),
    include_ended: String($("#sessions-show-ended").checked) });
  if (more && sessionsCursor) query.set("cursor", sessionsCursor);
  const load = ++sessionsLoads;
  moreButton.disabled = true;
  try {
    const page = await authCall("GET", `/session/list?${query}`);
    if (load !== sessionsLoads) return;
    const rows = page.sessions.sort((a, b) => b.current - a.current).map(sessionRow);   // this one first
    if (more) $("#session-rows").append(...rows);
    else $("#session-rows").replaceChildren(...rows);
    sessionsCursor = page.next_cursor || null;
    moreButton.hidden = !sessionsCursor;
  } catch (error) {
    showError(errorNode, error);
  } finally {
    moreButton.disabled = false;
  }
}

function statusText(session) {
  if (session.status === "active") return tx("span", {}, "web.sessions.active");
  const reason = session.revoked_reason;
  if (!reason) return tx("span", {}, "web.sessions.ended");
  return END_REASONS[reason] ? tx("span", {}, END_REASONS[reason])
    : tx("span", {}, "web.sessions.ended_other", { reason });
}

function sessionRow(session) {
  const end = session.status === "active" && !session.current
    ? tx("button", { type: "button", className: "secondary small", dataset: { sessionId: session.session_id } },
      "web.sessions.end")
    : null;
  end?.setAttribute("aria-label", t("web.sessions.end_label", { name: session.device_name }));
  const agent = session.screen_app ? screenClient(session)
    : session.user_agent ? el("span", { title: session.user_agent }, describeAgent(session.user_agent)) : "—";
  return el("tr", { className: session.current ? "current" : "" },
    cell("web.sessions.col_device", session.device_name, classBadge(session),
      session.current ? tx("span", { className: "badge current" }, "web.sessions.this_session") : null,
      appsOf(session)),
    cell("web.sessions.col_browser", agent),
    cell("web.sessions.col_started", timeEl(session.created_at)),
    cell("web.sessions.col_last_seen", timeEl(session.last_seen_at)),
    cell("web.common.ip_address", session.ip || "—"),
    cell("web.sessions.col_status", statusText(session)),
    cell("web.sessions.col_actions", end));
}

/** The kind of device the session counts under (SPEC §5): a TV signed in by its code shows "TV". A class this
 * page has no word for shows nothing rather than a raw code. */
/** A screen's client (the device grant): its app by name, and its kind ("Living-room TV app · TV"), never the
 * browser of the phone that approved it. */
function screenClient(session) {
  const key = `web.devices.class.${session.device_class}`;
  return el("span", {}, session.screen_app, has(key) ? ` · ${t(key)}` : "");
}

function classBadge(session) {
  const key = `web.devices.class.${session.device_class}`;
  return session.device_class && has(key) ? tx("span", { className: "badge kind" }, key) : null;
}

/** The apps signed in on a session (SPEC §14), each with its own "Sign out" while it is live. */
function appsOf(session) {
  if (!session.apps?.length) return null;
  const items = session.apps.map((app) => {
    const button = session.status === "active" && tx("button", { type: "button", className: "secondary small",
      dataset: { appSession: session.session_id, clientId: app.client_id, appName: app.name } },
    "web.sessions.app_sign_out");
    if (button) button.setAttribute("aria-label", t("web.sessions.app_sign_out_label", { app: app.name }));
    return el("li", {}, el("span", { className: "session-app-name" }, app.name), button);
  });
  return el("div", { className: "session-apps" }, tx("span", { className: "muted" }, "web.sessions.apps"),
    el("ul", {}, ...items));
}

/** Sessions → an app's "Sign out": that app's sign-in on that session ends, and the app is told at once;
 * the session and its other apps stay. */
async function signAppOut(event) {
  const button = event.target.closest("button[data-client-id]");
  if (!button) return;
  const { appSession, clientId, appName } = button.dataset;
  const sure = await ask({ title: "web.sessions.app_sign_out_title", message: "web.sessions.app_sign_out_message",
    confirm: "web.sessions.app_sign_out", params: { app: appName } });
  if (!sure) return;
  button.disabled = true;
  try {
    await authCall("DELETE", `/session/${encodeURIComponent(appSession)}/apps/${encodeURIComponent(clientId)}`);
  } catch (error) {
    button.disabled = false;
    if (error.code !== "app_not_found") {      // signed out already (elsewhere, or the session ended): redraw
      showError($("#sessions-panel .error"), error);
      return;
    }
  }
  await loadSessions();
}

async function endOtherSession(event) {
  const button = event.target.closest("button[data-session-id]");
  if (!button) return;
  button.disabled = true;
  try {
    await authCall("DELETE", `/session/${encodeURIComponent(button.dataset.sessionId)}`);
    await loadSessions();
  } catch (error) {
    button.disabled = false;
    showError($("#sessions-panel .error"), error);
  }
}

async function logOutEverywhere() {
  const sure = await ask({ title: "web.sessions.logout_all_title", message: "web.sessions.logout_all_message",
    confirm: "web.sessions.logout_all" });
  if (!sure) return;
  const button = $("#sessions-logout-all");
  button.disabled = true;
  try {
    await onLogoutAll();
  } catch (error) {
    showError($("#sessions-panel .error"), error);
  } finally {
    button.disabled = false;
  }
}

/** The first page, or with `more` the next one after `next_cursor`. */
export async function loadHistory({ more = false } = {}) {
  const errorNode = $("#history-panel .error");
  const moreButton = $("#history-more");
  clearMessage(errorNode);
  const query = new URLSearchParams({ limit: String(HISTORY_PAGE) });
  if (more && nextCursor) query.set("cursor", nextCursor);
  moreButton.disabled = true;
  try {
    const [page, names] = await Promise.all([authCall("GET", `/session/history?${query}`), deviceNames()]);
    const rows = page.items.map((item) => historyRow(item, names));
    if (more) $("#history-rows").append(...rows);
    else $("#history-rows").replaceChildren(...rows);
    nextCursor = page.next_cursor || null;
    moreButton.hidden = !nextCursor;
  } catch (error) {
    showError(errorNode, error);
  } finally {
    moreButton.disabled = false;
  }
}

/** A row's words: web.history.result_<result>, an operator's action as web.history.action_<action> (what
 * was done, never who or why), and a general label for a value this page does not know: never a raw code. */
function historyLabel(item) {
  const action = `web.history.action_${item.action}`;
  if (item.result === "admin_action") return has(action) ? action : "web.history.result_admin_action";
  if (item.continued) return "web.history.result_continued";
  const result = `web.history.result_${item.result}`;
  return has(result) ? result : "web.history.result_other";
}

function historyEffect(item) {
  if (item.result === "admin_action") return OPERATOR_ACTION_EFFECTS[item.action] || "neutral";
  if (item.continued) return "neutral";
  return item.result === "success" ? "good" : "bad";
}

function historyRow(item, names) {
  const device = item.device_id ? names.get(item.device_id) || `${item.device_id.slice(0, 8)}…` : "—";
  const evicted = (item.evicted || []).map((e) => e.device_name || names.get(e.device_id) || e.device_id);
  const dataset = { effect: historyEffect(item), ...(evicted.length ? { evicted: "true" } : {}) };
  return el("tr", { dataset },
    cell("web.history.col_when", timeEl(item.at)),
    cell("web.history.col_result", tx("span", {}, historyLabel(item))),
    cell("web.history.col_device", device),
    cell("web.common.ip_address", item.ip || "—"),
    cell("web.history.col_logged_out", evicted.length ? evicted.join(", ") : "—"));
}
