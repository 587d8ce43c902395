// The Account panel (SPEC §4 /account): e-mail and its verification, password, passkeys, the accounts from
// elsewhere linked to it, the apps the person allowed, recovery codes, language and deleting the account. The
// forms that ask for the password again take a passkey instead, or for an account with no password a fresh
// sign-in with its provider (account_reauth.js); the passkeys section lives in passkeys.js, the linked accounts in
// identities.js and the allowed apps in consents.js, all imported when the panel first opens.

import { authCall, citylogin, refused } from "./api.js";
import { showRecoveryCodes } from "./codes.js";
import { setText } from "./i18n.js";
import { $, busy, clearMessage, say, showError, showFieldError } from "./ui.js";

let onAccountDeleted = () => {};
let onLocaleSaved = async () => {};
let loads = 0;             // only the latest load draws the panel: an earlier answer may arrive after it

export function initAccount({ onDeleted, onLocaleSaved: localeSaved }) {
  onAccountDeleted = onDeleted;
  onLocaleSaved = localeSaved;
  $("#account-refresh").addEventListener("click", () => loadAccount());
  $("#account-resend").addEventListener("click", resendVerification);
  $("#locale-form").addEventListener("submit", saveLocale);
  for (const [selector, action] of Object.entries(CONFIRMED)) {
    const form = $(selector);
    const password = $("input[autocomplete=current-password]", form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (password.hidden) (await reauth()).confirmFirst(form, (proof) => action(form, proof));
      else action(form, { [password.name]: password.value });
    });
    $("[data-passkey]", form).addEventListener("click", () => action(form, null));
  }
  for (const form of [$("#export-form"), $("#my-data-form")]) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      (await dataExport()).downloadMyData(form);
    });
  }
  $("#export-html").addEventListener("click", async () => (await dataExport()).downloadPrintable($("#export-form")));
  $("#my-data-html").addEventListener("click", async () => (await dataExport()).downloadPrintable($("#my-data-form")));
  $("#passkeys-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    (await passkeys()).addPasskey();
  });
}

const passkeys = () => import("./passkeys.js");
const dataExport = () => import("./data_export.js");
const consents = () => import("./consents.js");
const identities = () => import("./identities.js");
const reauth = () => import("./account_reauth.js");
let passwordLess = false;  // the forms show "Confirm with <provider>" in the password's place

/** What an action sends to confirm it is the person: the password as the form's field names it, or
 * (`proof` null, its "Confirm with a passkey instead" button) an assertion by a passkey of the account. */
async function confirmation(proof) {
  return proof || citylogin.confirmWithPasskey();
}

export function resetAccount() {
  loads += 1;                       // an answer still on its way is for the session that has ended
  $("#account-panel").removeAttribute("aria-busy");
  for (const form of $("#account-panel").querySelectorAll("form")) {
    form.reset();
    for (const message of form.querySelectorAll(".error, .note, .field-error")) clearMessage(message);
  }
  clearMessage($("#account-resend-note"));
  $("#account-username").textContent = "—";
  $("#account-email").textContent = "—";
  $("#account-console").hidden = true;
  $("#passkey-list").replaceChildren();
  $("#passkey-list").setAttribute("aria-busy", "true");
  for (const button of document.querySelectorAll("[data-passkey]")) button.hidden = true;
  $("#consent-list").replaceChildren();
  $("#consent-list").setAttribute("aria-busy", "true");
  $("#consents-none").hidden = true;
  if ($("#identities-form")) identities().then((module) => module.resetIdentities());
}

/** Reads the account, its passkeys and the apps it allowed; the panel is aria-busy until both are drawn. `before`, when given,
 * is awaited first: the language a login is telling the account, so the answer already carries it. */
export async function loadAccount(before) {
  const load = ++loads;
  const panel = $("#account-panel");
  const errorNode = $("#account-panel > .error");
  panel.setAttribute("aria-busy", "true");
  try {
    await before;
    clearMessage(errorNode);
    const account = await authCall("GET", "/account");
    if (load !== loads) return;
    show(account);
    await Promise.all([passkeys().then((module) => module.loadPasskeys()),
      consents().then((module) => module.loadConsents()), identities().then((module) => module.loadIdentities()),
      confirmations(account)]);
  } catch (error) {
    if (load === loads) showError(errorNode, error);
  } finally {
    if (load === loads) panel.removeAttribute("aria-busy");
  }
}

/** The forms as the account needs them: with a password field, or (none set yet) "Confirm with <provider>";
 * back from the provider, the action the person started is done. */
async function confirmations(account) {
  if (account.has_password !== false && !passwordLess) return;
  passwordLess = account.has_password === false;
  await (await reauth()).setUpConfirmations(account, async (selector, proof, fields) => {
    if (selector === "#passkeys-form") return (await passkeys()).resumePasskeyAction(fields, proof);
    return CONFIRMED[selector]($(selector), proof);
  });
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
  $("#account-console").hidden = !account.roles?.length;     // an operator's way to /admin/
}

async function resendVerification() {
  const button = $("#account-resend");
  const note = $("#account-resend-note");
  clearMessage(note);
  button.disabled = true;
  try {
    const answer = await authCall("POST", "/account/verify_email/resend");
    say(note, answer?.mail_delayed ? "web.account.resend_delayed" : "web.account.resend_sent");
  } catch (error) {
    showError(note, error);
  } finally {
    button.disabled = false;
  }
}

async function changeEmail(form, proof) {
  const newEmail = form.new_email.value.trim();
  clearMessage($(".note", form));
  const done = await busy(form, async () => authCall("POST", "/account/email",
    { ...await confirmation(proof), new_email: newEmail }).then(() => true));
  if (!done) return;
  form.reset();
  say($(".note", form), "web.account.email_sent", { email: newEmail });
}

async function changePassword(form, proof) {
  clearMessage($(".note", form));
  const body = { new_password: form.new_password.value, logout_other_sessions: form.logout_other_sessions.checked };
  const done = await busy(form, async () => {
    try {
      await authCall("POST", "/account/password", { ...await confirmation(proof), ...body });
      return true;
    } catch (error) {
      if (error.code !== "invalid_credentials" || form.current_password.hidden) throw error;
      // Next to the field it is about; busy() has re-enabled the form when the focus moves there.
      showFieldError(form, "current_password", "web.field.current_password.wrong");
      setTimeout(() => form.current_password.focus());
      return false;
    }
  });
  if (!done) return;
  form.reset();
  if (passwordLess) await loadAccount();             // a first password: the forms ask for it from now on
  say($(".note", form), body.logout_other_sessions ? "web.account.password_changed_others"
    : "web.account.password_changed");
}

async function makeNewCodes(form, proof) {
  const issued = await busy(form, async () => authCall("POST", "/account/recovery_codes", await confirmation(proof)));
  if (!issued) return;
  form.reset();
  // The panel reads the account again (the codes left) once the dialog is closed, and is busy until then;
  // the focus goes back to where the person asked for the codes.
  await loadAccount(showRecoveryCodes(issued.recovery_codes).then(() => $("#codes-submit").focus()));
}

// The forms that ask for the password again, and what each does once it is confirmed.
const CONFIRMED = { "#email-form": changeEmail, "#password-form": changePassword, "#codes-form": makeNewCodes,
                    "#delete-form": deleteAccount };

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

async function deleteAccount(form, proof) {
  if (!form.confirm.checked) {
    say($(".error", form), "web.account.delete_tick");
    return;
  }
  // The SDK forgets this device's key for the account: it can never log in again.
  const done = await busy(form, async () => {
    const body = await confirmation(proof);
    return refused(citylogin.deleteAccount(body), body).then(() => true);
  });
  if (!done) return;
  onAccountDeleted();
}
