// The links the service e-mails (SPEC §4 /account): `#verify=`, `#reset=` and `#not-me=`, each
// acted on once and then taken out of the address bar, and the form that asks for a reset link.

import { call } from "./api.js";
import { setText } from "./i18n.js";
import { $, busy, clearMessage, modal, say, showError } from "./ui.js";

const LINK = /^#(verify|reset|not-me)=([^\s&]+)$/;
// An app's sign-in waiting in this tab (oidc.js keeps its request here through a reload).
export const APP_REQUEST_KEY = "citylogin.oidc_request";
// Where a verified address is announced to this browser's other tabs: an app's sign-in waits on it (oidc.js).
export const ADDRESS_CONFIRMED = "citylogin.address_confirmed";

let onVerified = () => {};
const pendingTokens = new Map();   // dialog -> the token of the reset or not-me link it acts on

export function initLinks({ verified }) {
  onVerified = verified;
  $("#notice-close").addEventListener("click", () => { $("#notice").hidden = true; });
  $("#forgot-form").addEventListener("submit", askForResetLink);
  $("#reset-form").addEventListener("submit", setNewPassword);
  $("#not-me-form").addEventListener("submit", removeThatDevice);
  for (const button of document.querySelectorAll("dialog [data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close("cancel"));
  }
}

/** Whether an app's sign-in request is in the address bar, or waits in this tab. */
export function appRequestInView() {
  return location.hash.startsWith("#oidc=") || sessionStorage.getItem(APP_REQUEST_KEY) !== null;
}

/** A catalogue message at the top of the page, on either screen: kind "info" or "alert". */
export function notify(key, kind = "info") {
  $("#notice").className = `banner ${kind}`;
  setText($("#notice-text"), key);
  $("#notice").hidden = false;
}

export function notifyError(error) {
  $("#notice").className = "banner alert";
  showError($("#notice-text"), error);
  $("#notice").hidden = false;
}

/** Acts on an e-mailed link in the address bar; false when the hash is none of them. */
export function takeAccountLink() {
  const match = LINK.exec(location.hash);
  if (!match) return false;
  // A reload or a Back must not submit a single-use token again.
  history.replaceState(null, "", location.pathname + location.search);
  const [, kind, encoded] = match;
  const token = decodeURIComponent(encoded);
  ({ verify: verifyEmail, reset: openReset, "not-me": openNotMe })[kind](token);
  return true;
}

async function verifyEmail(token) {
  try {
    await call("POST", "/account/verify_email", { token });
    notify("web.notice.email_verified");
    announce(ADDRESS_CONFIRMED);
    onVerified();
  } catch (error) {
    notifyError(error);
  }
}

function announce(name) {
  const channel = new BroadcastChannel(name);
  channel.postMessage(true);
  channel.close();
}

function openDialog(dialog, token) {
  pendingTokens.set(dialog, token);
  clearMessage($(".error", dialog));
  if (dialog.open) return;            // a second link while the dialog is up: it now acts on the newer token
  for (const other of document.querySelectorAll("#reset-dialog[open], #not-me-dialog[open]")) other.close("cancel");
  modal(dialog).then(() => {
    pendingTokens.delete(dialog);
    $("form", dialog).reset();
  });
}

function openReset(token) {
  openDialog($("#reset-dialog"), token);
}

function openNotMe(token) {
  openDialog($("#not-me-dialog"), token);
}

async function setNewPassword(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const token = pendingTokens.get($("#reset-dialog"));
  const done = await busy(form, async () => {
    await call("POST", "/account/password_reset/confirm", { token, new_password: form.new_password.value });
    return true;
  });
  if (!done) return;
  $("#reset-dialog").close("done");
  notify("web.notice.password_reset");
}

async function removeThatDevice(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const token = pendingTokens.get($("#not-me-dialog"));
  const done = await busy(form, async () => {
    try {
      await call("POST", "/account/not_me", { token });
      return true;
    } catch (error) {
      // 404: a server without this route (an older release); any other refusal says its own code.
      if (error.status === 404 && error.code === "not_found") error.code = "not_me_unavailable";
      throw error;
    }
  });
  if (!done) return;
  $("#not-me-dialog").close("done");
  notify("web.notice.not_me_done");
}

async function askForResetLink(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const note = $(".note", form);
  clearMessage(note);
  const done = await busy(form, () => call("POST", "/account/password_reset", { email: form.email.value.trim() }));
  if (!done) return;
  // mail_delayed tells of mail in general, never of this address's (the answer is the same for any address)
  say(note, done.mail_delayed ? "web.forgot.delayed" : "web.forgot.sent");
}
