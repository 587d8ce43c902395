// The Account panel (SPEC §4 /account): e-mail and its verification, password, recovery
// codes, language and deleting the account.

import { authCall, citylogin } from "./api.js";
import { showRecoveryCodes } from "./codes.js";
import { setText } from "./i18n.js";
import { $, busy, clearMessage, say, showError, showFieldError } from "./ui.js";

let onAccountDeleted = () => {};
let onLocaleSaved = async () => {};

export function initAccount({ onDeleted, onLocaleSaved: localeSaved }) {
  onAccountDeleted = onDeleted;
  onLocaleSaved = localeSaved;
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
  $("#account-username").textContent = account.username;
  $("#account-email").textContent = account.email;
  const status = $("#account-email-status");
  setText(status, account.email_verified ? "web.account.verified" : "web.account.not_verified");
  status.className = account.email_verified ? "badge active" : "badge removed";
  $("#account-unverified").hidden = account.email_verified;
  const left = account.recovery_codes_left;
  setText($("#codes-left"), left < 3 ? "web.account.codes_left_low" : "web.account.codes_left", { left, total: 10 });
  $("#locale-select").value = account.locale === "ja" ? "ja" : "en";
}

async function resendVerification() {
  const button = $("#account-resend");
  const note = $("#account-resend-note");
  clearMessage(note);
  button.disabled = true;
  try {
    await authCall("POST", "/account/verify_email/resend");
    say(note, "web.account.resend_sent");
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
  say($(".note", form), "web.account.email_sent", { email: newEmail });
}

async function changePassword(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearMessage($(".note", form));
  const body = { current_password: form.current_password.value, new_password: form.new_password.value,
                 logout_other_sessions: form.logout_other_sessions.checked };
  const done = await busy(form, async () => {
    try {
      await authCall("POST", "/account/password", body);
      return true;
    } catch (error) {
      if (error.code !== "invalid_credentials") throw error;
      // Next to the field it is about; busy() has re-enabled the form when the focus moves there.
      showFieldError(form, "current_password", "web.field.current_password.wrong");
      setTimeout(() => form.current_password.focus());
      return false;
    }
  });
  if (!done) return;
  form.reset();
  say($(".note", form), body.logout_other_sessions ? "web.account.password_changed_others"
    : "web.account.password_changed");
}

async function makeNewCodes(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const issued = await busy(form, () => authCall("POST", "/account/recovery_codes", { password: form.password.value }));
  if (!issued) return;
  form.reset();
  await showRecoveryCodes(issued.recovery_codes);
  $("#codes-submit").focus();          // the dialog is gone: back to where the person asked for it
  await loadAccount();
}

async function saveLocale(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearMessage($(".note", form));
  const account = await busy(form, () => authCall("PATCH", "/account", { locale: form.locale.value }));
  if (!account) return;
  show(account);
  await onLocaleSaved(account.locale);
  say($(".note", form), "web.account.locale_saved");
}

async function deleteAccount(event) {
  event.preventDefault();
  const form = event.currentTarget;
  if (!form.confirm.checked) {
    say($(".error", form), "web.account.delete_tick");
    return;
  }
  // The SDK forgets this device's key for the account: it can never log in again.
  const done = await busy(form, () => citylogin.deleteAccount({ password: form.password.value }).then(() => true));
  if (!done) return;
  onAccountDeleted();
}
