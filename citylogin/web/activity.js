// The Sessions and History panels (SPEC §4 /session/list, /session/history).

import { authCall } from "./api.js";
import { deviceNames } from "./devices.js";
import { $, clearMessage, el, showError, timeEl } from "./ui.js";

const HISTORY_PAGE = 20;
const RESULTS = {
  success: "Signed in",
  invalid_credentials: "Wrong username or password",
  certificate_mismatch: "Certificate mismatch",
  invalid_proof: "Key proof failed",
  rejected_concurrent: "Refused: in use elsewhere",
  locked_out: "Locked out",
};
const END_REASONS = {
  logged_out: "logged out", displaced: "signed in elsewhere", remote_logout: "logged out remotely",
  device_unbound: "device removed", idle_timeout: "idle", max_lifetime: "timed out",
  refresh_reuse: "ended for security", admin: "ended by an administrator",
};

let nextCursor = null;

export function initActivity() {
  $("#sessions-refresh").addEventListener("click", loadSessions);
  $("#history-refresh").addEventListener("click", () => loadHistory());
  $("#history-more").addEventListener("click", () => loadHistory({ more: true }));
  $("#session-rows").addEventListener("click", endOtherSession);
}

export function resetActivity() {
  $("#session-rows").replaceChildren();
  $("#history-rows").replaceChildren();
  $("#history-more").hidden = true;
  nextCursor = null;
}

/** A table cell that also carries its column name, shown as a label on narrow screens. */
function cell(label, ...content) {
  const filled = content.filter((part) => part !== null && part !== undefined);
  return el("td", { dataset: { label } }, filled.length ? el("span", {}, ...filled) : null);
}

export async function loadSessions() {
  const errorNode = $("#sessions-panel .error");
  clearMessage(errorNode);
  try {
    const { sessions } = await authCall("GET", "/session/list");
    $("#session-rows").replaceChildren(...sessions.map(sessionRow));
  } catch (error) {
    showError(errorNode, error);
  }
}

function sessionRow(session) {
  const active = session.status === "active";
  const status = active ? "Active" : `Ended${session.revoked_reason ? `: ${END_REASONS[session.revoked_reason] ||
    session.revoked_reason}` : ""}`;
  const end = active && !session.current
    ? el("button", { type: "button", className: "secondary small", dataset: { sessionId: session.session_id },
                     ariaLabel: `End the session of ${session.device_name}` }, "End")
    : null;
  return el("tr", { className: session.current ? "current" : "" },
    cell("Device", session.device_name, session.current ? el("span", { className: "badge current" }, "This session") : null),
    cell("Started", timeEl(session.created_at)),
    cell("Last seen", timeEl(session.last_seen_at)),
    cell("IP address", session.ip || "—"),
    cell("Status", status),
    cell("Actions", end));
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

function historyRow(item, names) {
  const device = item.device_id ? names.get(item.device_id) || `${item.device_id.slice(0, 8)}…` : "—";
  const evicted = (item.evicted || []).map((e) => e.device_name || names.get(e.device_id) || e.device_id);
  return el("tr", { className: item.result === "success" ? "" : "failed" },
    cell("When", timeEl(item.at)),
    cell("Result", RESULTS[item.result] || item.result),
    cell("Device", device),
    cell("IP address", item.ip || "—"),
    cell("Logged out", evicted.length ? evicted.join(", ") : "—"));
}
