// The Account panel (SPEC §4 /account): e-mail and its verification, password, recovery
// codes, language and deleting the account.

import { authCall } from "./api.js";
import { showRecoveryCodes } from "./codes.js";
import { forgetDevice } from "./keystore.js";
import { $, busy, clearMessage, showError } from "./ui.js";

let onAccountDeleted = () => {};
let shownUsername = null;          // the account on screen, whose key this device forgets once it is deleted

export function initAccount({ onDeleted }) {
  onAccountDeleted = onDeleted;
  $("#account-refresh").addEventListener("click", loadAccount);
  $("#account-resend").addEventListener("click", resendVerification);
  $("#email-form").addEventListener("submit", changeEmail);
  $("#password-form").addEventListener("submit", changePassword);
  $("#codes-form").addEventListener("submit", makeNewCodes);
  $("#locale-form").addEventListener("submit", saveLocale);
  $("#delete-form").addEventListener("submit", deleteAccount);
}

export function resetAccount() {
  for (const form of $("#account-panel").querySelectorAll("form")) {
    form.reset();
    for (const message of form.querySelectorAll(".error, .note, .field-error")) clearMessage(message);
  }
  clearMessage($("#account-resend-note"));
  $("#account-username").textContent = "—";
  $("#account-email").textContent = "—";
  shownUsername = null;
}

export async function loadAccount() {
  const errorNode = $("#account-panel > .error");
  clearMessage(errorNode);
  try {
    show(await authCall("GET", "/account"));
  } catch (error) {
    showError(errorNode, error);
  }
}

function show(account) {
  shownUsername = account.username;
  $("#account-username").textContent = account.username;
  $("#account-email").textContent = account.email;
  const status = $("#account-email-status");
  status.textContent = account.email_verified ? "Verified" : "Not verified";
  status.className = account.email_verified ? "badge active" : "badge removed";
  $("#account-unverified").hidden = account.email_verified;
  const left = account.recovery_codes_left;
  $("#codes-left").textContent = `${left} of 10 recovery codes left.${left < 3 ? " Make new ones soon." : ""}`;
  $("#locale-select").value = account.locale === "ja" ? "ja" : "en";
}

function say(node, text) {
  node.textContent = text;
  node.hidden = false;
}

async function resendVerification() {
  const button = $("#account-resend");
  const note = $("#account-resend-note");
  clearMessage(note);
  button.disabled = true;
  try {
    await authCall("POST", "/account/verify_email/resend");
    say(note, "A new link is on its way. Open it from your mailbox.");
  } catch (error) {
    showError(note, error);
  } finally {
    button.disabled = false;
  }
}

async function changeEmail(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const newEmail = form.new_email.value.trim();
  clearMessage($(".note", form));
  const done = await busy(form, () => authCall("POST", "/account/email",
    { password: form.password.value, new_email: newEmail }).then(() => true));
  if (!done) return;
  form.reset();
  say($(".note", form), `A link was sent to ${newEmail}. The address changes when you open it.`);
}

async function changePassword(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const fieldError = $("#password-current-error");
  clearMessage(fieldError);
  clearMessage($(".note", form));
  const body = { current_password: form.current_password.value, new_password: form.new_password.value,
                 logout_other_sessions: form.logout_other_sessions.checked };
  const done = await busy(form, async () => {
    try {
      await authCall("POST", "/account/password", body);
      return true;
    } catch (error) {
      if (error.code !== "invalid_credentials") throw error;
      showError(fieldError, error);         // next to the field it is about
      form.current_password.focus();
      return false;
    }
  });
  if (!done) return;
  form.reset();
  say($(".note", form), body.logout_other_sessions
    ? "Your password was changed, and your other devices were logged out."
    : "Your password was changed.");
}

async function makeNewCodes(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const issued = await busy(form, () => authCall("POST", "/account/recovery_codes", { password: form.password.value }));
  if (!issued) return;
  form.reset();
  await showRecoveryCodes(issued.recovery_codes);
  await loadAccount();
}

async function saveLocale(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearMessage($(".note", form));
  const account = await busy(form, () => authCall("PATCH", "/account", { locale: form.locale.value }));
  if (!account) return;
  show(account);
  say($(".note", form), "Saved. Our messages to you now use this language.");
}

async function deleteAccount(event) {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.confirm.checked) {
    say($(".error", form), "Tick the box to confirm that the account is to be deleted.");
    return;
  }
  const username = shownUsername;
  const done = await busy(form, () => authCall("DELETE", "/account", { password: form.password.value })
    .then(() => true));
  if (!done) return;
  // The account is gone: its key on this device can never log in again.
  if (username) await forgetDevice(username).catch(() => {});
  onAccountDeleted();
}
