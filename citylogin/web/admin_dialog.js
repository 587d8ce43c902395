// The console's confirm dialog: every action says why (a required reason, kept in the audit trail), and
// a destructive one asks for the operator's own password or a passkey when the server answers 401
// reauthentication_required (a sign-in older than CITYLOGIN_ADMIN_REAUTH_SECONDS); the same call is then
// sent again with it. Errors show the server's detail, in the page's language.

import { citylogin } from "./api.js";
import { setPlainText, setText } from "./i18n.js";
import { $, clearMessage, say, showError } from "./ui.js";

let open = null;            // {send, extra, resolve} of the action the dialog asks about
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
  $("#action-dialog").addEventListener("close", () => { if (!$("#action-dialog").open) finish(null); });
}

/** Asks to confirm an action. title/message: catalogue keys filled from `params`; `fields` ("limit" or
 * "role") adds inputs, `values` their starting values; `send(body)` makes the call with {reason, ...}.
 * Resolves with its answer (true for an empty one), or null when the operator cancelled. */
export function confirmAction({ title, message, params, fields = null, values = {}, danger = true, send }) {
  finish(null);
  const dialog = $("#action-dialog");
  form().reset();
  clearMessage($(".error", form()));
  $("#action-reauth").hidden = true;
  $("#action-limit").hidden = fields !== "limit";
  $("#action-role").hidden = fields !== "role";
  form().limit.value = values.limit ?? "";
  setText($("#action-title"), title, params);
  setText($("#action-message"), message, params);
  setText($("#action-confirm"), title, params);
  $("#action-confirm").className = danger ? "danger" : "safe";
  dialog.showModal();
  ({ limit: form().limit, role: form().role }[fields] || form().reason).focus();
  return new Promise((resolve) => { open = { send, fields, resolve }; });
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
  const asked = !$("#action-reauth").hidden;
  if (asked && proof && !proof.password) {
    say(errorNode, "web.admin.reauth_intro");
    form().password.focus();
    return;
  }
  const action = open;
  if (!action) return;
  const controls = [...form().elements];
  let focus = null;                        // where the operator goes on, once the controls work again
  controls.forEach((control) => { control.disabled = true; });
  try {
    const proven = asked ? proof || await citylogin.confirmWithPasskey() : {};
    const answer = await action.send({ reason, ...extraFields(action.fields), ...proven });
    // Resolved before the dialog closes: its "close" then finds nothing waiting (a cancel during the
    // call has resolved it with null already, and this changes nothing).
    action.resolve(answer ?? true);
    if (open === action) open = null;
    $("#action-dialog").close();
  } catch (error) {
    focus = failedAction(error, errorNode);
  } finally {
    controls.forEach((control) => { control.disabled = false; });
    focus?.focus();
  }
}

/** Shows why the action failed; returns the field to go on with, if any. */
function failedAction(error, errorNode) {
  if (error.sessionEnded) {
    onSessionEnded();
    return null;
  }
  if (error.code === "reauthentication_required") {
    $("#action-reauth").hidden = false;
    form().password.value = "";
    say(errorNode, "web.admin.reauth_needed");
    return form().password;
  }
  if (error.code === "invalid_credentials") form().password.value = "";
  // The server's own words (it answers in the page's language); the catalogue's for what it did not say.
  if (error.status > 0 && error.problem?.detail) {
    setPlainText(errorNode, error.problem.detail);
    errorNode.hidden = false;
  } else {
    showError(errorNode, error);
  }
  return error.code === "invalid_credentials" ? form().password : null;
}
