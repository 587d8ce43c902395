// Pieces the console's views share: which screen shows (the console, "sign in first", "no operator
// role"), the one place a failed read is judged (any call may find the session ended or the role taken
// away), and table cells labelled by their column.

import { t } from "./i18n.js";
import { $, el, showError, tx } from "./ui.js";

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
  else showError(node, error);
}

/** A table cell that also carries its column name, shown as a label on narrow screens. */
export function cell(labelKey, ...content) {
  const filled = content.filter((part) => part !== null && part !== undefined && part !== "");
  return el("td", { dataset: { column: labelKey, label: t(labelKey) } },
    filled.length ? el("span", {}, ...filled) : el("span", { className: "muted" }, "—"));
}

export function yesNo(value) {
  return tx("span", { className: value ? "badge active" : "badge" }, value ? "web.admin.yes" : "web.admin.no");
}
