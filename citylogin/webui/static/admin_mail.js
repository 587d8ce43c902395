// The console's mail (role admin): the mail waiting to go, the longest waiting first (since when it is tried,
// its tries, its next try or that a sender is trying it now, its last error), then the undelivered mail:
// what the outbox gave up on (not sent within
// CITYLOGIN_MAIL_GIVE_UP_HOURS, or refused for good), listed by id, event, account, when it was given up,
// its tries and last error (never its address or contents: they stay sealed), and re-sent or dropped,
// each confirmed with a reason in the dialog.

import { authCall } from "./api.js";
import { confirmAction } from "./admin_dialog.js";
import { cell, failed, sayDone } from "./admin_view.js";
import { onLocaleChange } from "./i18n.js";
import { latestOnly } from "./latest.js";
import { $, clearMessage, el, timeEl, tx } from "./ui.js";

let mails = [];
let waiting = [];
const reads = latestOnly({ busy: $("#mail-panel") });

export function initMail() {
  $("#mail-reload").addEventListener("click", () => loadMail());
  $("#mail-rows").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-mail-action]");
    if (button) act(button.dataset.mailAction, button.dataset.mailId);
  });
  onLocaleChange(() => drawMail());
}

export async function loadMail() {
  clearMessage($("#mail-panel > .error"));
  await reads.read(() => authCall("GET", "/admin/mail"), {
    draw: (answer) => {
      mails = answer.mails;
      waiting = answer.waiting;
      drawMail();
    },
    failed: (error) => failed($("#mail-panel > .error"), error),
  });
}

function drawMail() {
  $("#mail-waiting-rows").replaceChildren(...waiting.map(waitingRow));
  $("#mail-waiting-none").hidden = waiting.length > 0;
  $("#mail-rows").replaceChildren(...mails.map(mailRow));
  $("#mail-none").hidden = mails.length > 0;
}

function waitingRow(mail) {
  return el("tr", { dataset: { mailId: mail.mail_id } },
    cell("web.admin.col_mail", el("code", {}, mail.mail_id)),
    cell("web.admin.col_mail_event", mail.event),
    cell("web.admin.col_mail_account", el("code", {}, mail.user_uuid)),
    cell("web.admin.col_mail_since", mail.since ? timeEl(mail.since) : ""),
    cell("web.admin.col_mail_tries", String(mail.attempts)),
    cell("web.admin.col_mail_next_try", mail.trying ? tx("span", { className: "badge active" }, "web.admin.mail_trying")
      : mail.next_try_at ? timeEl(mail.next_try_at) : ""),
    cell("web.admin.col_mail_error", mail.last_error || ""));
}

function mailRow(mail) {
  const button = (action, className) => tx("button", { type: "button", className: `${className} small`,
    dataset: { mailAction: action, mailId: mail.mail_id } }, `web.admin.action.${action}`);
  return el("tr", { dataset: { mailId: mail.mail_id } },
    cell("web.admin.col_mail", el("code", {}, mail.mail_id)),
    cell("web.admin.col_mail_event", mail.event),
    cell("web.admin.col_mail_account", el("code", {}, mail.user_uuid)),
    cell("web.admin.col_mail_given_up", mail.given_up_at ? timeEl(mail.given_up_at) : ""),
    cell("web.admin.col_mail_tries", String(mail.attempts)),
    cell("web.admin.col_mail_error", mail.last_error || ""),
    cell("web.admin.col_actions", el("span", { className: "actions" }, button("mail_resend", "secondary"),
      button("mail_drop", "danger"))));
}

async function act(action, id) {
  const verb = action === "mail_resend" ? "resend" : "drop";
  const done = await confirmAction({ title: `web.admin.action.${action}`, message: `web.admin.action.${action}_message`,
    params: { mail: id }, danger: action === "mail_drop",
    send: (body) => authCall("POST", `/admin/mail/${encodeURIComponent(id)}/${verb}`, body) });
  if (!done) return;
  sayDone($("#mail-done"), action, id);
  await loadMail();
}
