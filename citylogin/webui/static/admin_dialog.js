// The console's confirm dialog: every action says why (a required reason, kept in the audit trail), and
// a destructive one asks for the operator's own password or a passkey once their sign-in is older than
// CITYLOGIN_ADMIN_REAUTH_SECONDS: up front when the window the server told (admin_reauth.js) has lapsed,
// else when the server answers 401 reauthentication_required; the same call is then sent again with it.
// Errors show the server's detail, in the page's language. Focus goes back to the button that opened
// the dialog when it closes without the action; the caller moves it to the result when it was done.

import { citylogin } from "./api.js";
import { lapse, readWindow, windowLapsed, windowMinutes } from "./admin_reauth.js";
import { setPlainText, setText } from "./i18n.js";
import { $, clearMessage, say, showError } from "./ui.js";

let open = null;            // {send, fields, destructive, failed, resolve} of the action the dialog asks about
let returnTo = null;        // where focus goes when the dialog closes without the action
let onSessionEnded = () => {};

const form = () => $("#action-form");

export function initActionDialog({ sessionEnded }) {
  onSessionEnded = sessionEnded;
  form().addEventListener("submit", (event) => {
    event.preventDefault();
    submit({ password: form().password.value });
  });
  $("#action-passkey").addEventListener("click", () => submit(null));
  $("[data-close]", form()).addEventListener("click", () => $("#action-dialog").close());
  // Escape or Cancel: what waits learns it was not done. "close" comes in a task of its own: a dialog
  // already shown again for the next action is not that one's end.
  $("#action-dialog").addEventListener("close", () => {
    if ($("#action-dialog").open) return;
    finish(null);
    if (returnTo?.isConnected) returnTo.focus();
    returnTo = null;
  });
}

/** Asks to confirm an action. title/message: catalogue keys filled from `params`; `fields` ("limit" or
 * "role") adds inputs, `values` their starting values; `destructive`: it needs a recent sign-in; `send(body)`
 * makes the call with {reason, ...}; `failed()` is told when a call failed (the page shown may be stale).
 * Resolves with its answer (true for an empty one), or null when the operator cancelled. */
export function confirmAction({ title, message, params, fields = null, values = {}, danger = true,
  destructive = false, send, failed = () => {} }) {
  finish(null);
  const dialog = $("#action-dialog");
  returnTo = document.activeElement instanceof HTMLElement && document.activeElement !== document.body
    ? document.activeElement : null;
  form().reset();
  clearMessage($(".error", form()));
  showReauth(destructive && windowLapsed());
  $("#action-limit").hidden = fields !== "limit";
  $("#action-role").hidden = fields !== "role";
  form().limit.value = values.limit ?? "";
  setText($("#action-title"), title, params);
  setText($("#action-message"), message, params);
  setText($("#action-confirm"), title, params);
  $("#action-confirm").className = danger ? "danger" : "safe";
  dialog.showModal();
  ({ limit: form().limit, role: form().role }[fields] || form().reason).focus();
  return new Promise((resolve) => { open = { send, fields, destructive, failed, resolve }; });
}

/** Shows (or hides) the password and passkey, with why they are asked. */
function showReauth(shown) {
  $("#action-reauth").hidden = !shown;
  if (shown) setText($("#action-reauth-intro"), "web.admin.reauth_window", { minutes: windowMinutes() });
}

function finish(answer) {
  const waiting = open;
  open = null;
  waiting?.resolve(answer);
}

function extraFields(fields) {
  if (fields === "limit") return { limit: form().limit.value === "" ? null : Number(form().limit.value) };
  if (fields === "role") return { role: form().role.value, grant: form().grant.value === "grant" };
  return {};
}

/** Sends the action; `proof` is {password}, or null for a passkey (asked for now). */
async function submit(proof) {
  const reason = form().reason.value.trim();
  const errorNode = $(".error", form());
  clearMessage(errorNode);
  if (!reason) {
    say(errorNode, "web.admin.reason_required");
    form().reason.focus();
    return;
  }
  const action = open;
  if (!action) return;
  if (action.destructive && $("#action-reauth").hidden && windowLapsed()) {
    askForPassword(errorNode);             // it lapsed while the dialog was open: ask before sending
    return;
  }
  const asked = !$("#action-reauth").hidden;
  if (asked && proof && !proof.password) {
    say(errorNode, "web.admin.reauth_intro");
    form().password.focus();
    return;
  }
  const controls = [...form().elements];
  let focus = null;                        // where the operator goes on, once the controls work again
  controls.forEach((control) => { control.disabled = true; });
  try {
    const proven = asked ? proof || await citylogin.confirmWithPasskey() : {};
    const answer = await action.send({ reason, ...extraFields(action.fields), ...proven });
    if (asked) readWindow();               // the server renewed the window: learn until when
    // Resolved before the dialog closes: its "close" then finds nothing waiting (a cancel during the
    // call has resolved it with null already, and this changes nothing); the caller shows the result.
    action.resolve(answer ?? true);
    if (open === action) {
      open = null;
      returnTo = null;
    }
    $("#action-dialog").close();
  } catch (error) {
    focus = failedAction(error, errorNode);
    if (error.status >= 500) action.failed();   // a failing database may have done part of it
  } finally {
    controls.forEach((control) => { control.disabled = false; });
    if ($("#action-dialog").open) (focus || $("#action-confirm")).focus();
  }
}

function askForPassword(errorNode) {
  showReauth(true);
  form().password.value = "";
  say(errorNode, "web.admin.reauth_needed");
  form().password.focus();
}

/** Shows why the action failed; returns the field to go on with, if any (else the confirm button). */
function failedAction(error, errorNode) {
  if (error.sessionEnded) {
    onSessionEnded();
    return null;
  }
  if (error.code === "reauthentication_required") {
    lapse();
    askForPassword(errorNode);
    return form().password;
  }
  if (error.code === "invalid_credentials") {   // the operator typed a password only: no username
    form().password.value = "";
    say(errorNode, "web.admin.wrong_password");
    return form().password;
  }
  if (error.code === "passkey_refused") {
    showError(errorNode, error);
    return null;
  }
  // The server's own words (it answers in the page's language): a 503 says what is down and to retry.
  if (error.status > 0 && error.problem?.detail) {
    setPlainText(errorNode, error.problem.detail);
    errorNode.hidden = false;
  } else {
    showError(errorNode, error);
  }
  return null;
}
