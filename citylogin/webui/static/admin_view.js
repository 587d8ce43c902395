// Pieces the console's views share: which screen shows (the console, "sign in first", "no operator
// role"), the one place a failed read is judged (any call may find the session ended or the role taken
// away), table cells labelled by their column, the row of an empty list, and the line saying an action
// was done (in the language shown, also after a switch), which takes the focus.

import { onLocaleChange, setPlainText, t } from "./i18n.js";
import { $, el, say, showError, tx } from "./ui.js";

const SCREENS = ["console", "signed-out", "no-role"];

export function showGate(name) {
  for (const id of SCREENS) $(`#${id}`).hidden = id !== name;
  $("#operator").hidden = name !== "console";
  if (name === "console") return;
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
}

/** Shows a failed read in `node`; an ended session (401) or a role taken away (403 forbidden) changes
 * the whole screen instead, since nothing on this one works any more. */
export function failed(node, error) {
  if (error?.sessionEnded || error?.status === 401) showGate("signed-out");
  else if (error?.code === "forbidden") showGate("no-role");
  else if (error?.status >= 500 && error.problem?.detail) {
    // The server's own words, in the page's language: what is down (the database, say) and to retry
    setPlainText(node, error.problem.detail);
    node.hidden = false;
  } else showError(node, error);
}

/** The one row of a table with nothing to list: `key` says so. */
export function emptyRow(key, columns) {
  return el("tr", { className: "empty" }, tx("td", { colSpan: columns, className: "muted empty-list" }, key));
}

const doneLines = new Map();     // node -> {action, subject} of the last action it reports

/** Says in `node` that `action` (a web.admin.action.* name) was done for `subject`, and moves the
 * focus there: the button that started it may be gone from the page drawn again. */
export function sayDone(node, action, subject) {
  doneLines.set(node, { action, subject });
  drawDone(node);
  node.focus();
}

function drawDone(node) {
  const { action, subject } = doneLines.get(node);
  say(node, "web.admin.done", { action: t(`web.admin.action.${action}`), username: subject });
}

onLocaleChange(() => {
  for (const node of doneLines.keys()) if (!node.hidden) drawDone(node);
});

/** A table cell that also carries its column name, shown as a label on narrow screens. */
export function cell(labelKey, ...content) {
  const filled = content.filter((part) => part !== null && part !== undefined && part !== "");
  return el("td", { dataset: { column: labelKey, label: t(labelKey) } },
    filled.length ? el("span", {}, ...filled) : el("span", { className: "muted" }, "—"));
}

export function yesNo(value) {
  return tx("span", { className: value ? "badge active" : "badge" }, value ? "web.admin.yes" : "web.admin.no");
}
