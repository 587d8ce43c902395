// The Account panel of an account made with a provider, which has no password (SPEC §16): the forms that ask for
// the password again offer "Confirm with <provider>" in its place, for each provider the account is linked at,
// and the password form becomes "Set a password". Confirming goes to the provider for a fresh sign-in (purpose
// "reauth") and comes back to `/#account`, where POST /federation/reauth gives a reauth token that confirms the
// action the person started, once. What that action was waits in sessionStorage meanwhile: the form and its
// fields that are no secret (a new password is typed again on the way back; the token stays in memory only).
// Adding or removing a passkey (passkeys.js's dialog) waits the same way.
// account.js imports this module with import() for a password-less account only.

import { authCall } from "./api.js";
import { start } from "./federation.js";
import { setText } from "./i18n.js";
import { $, clearMessage, el, say, showError, tx } from "./ui.js";

const PENDING = "citylogin.reauth.pending";
// The forms that ask for the password again, and which of their fields wait for the way back.
const KEPT = { "#email-form": ["new_email"], "#codes-form": [], "#delete-form": ["confirm"],
               "#password-form": ["logout_other_sessions"] };
const held = new WeakMap();     // form -> the reauth token the way back gave it, for its one action
let linked = [];                // [[provider name, display name]] of the account's linked identities

/** The account's providers to confirm with ([[name, display name]]): none once it has a password. */
export function confirmingProviders() {
  return linked;
}

/** A form without its password field submitted: its action with the proof the provider's confirmation left
 * for it (once), else off to its first provider to get one. */
export function confirmFirst(form, act) {
  const token = held.get(form);
  held.delete(form);
  if (token) return act({ reauth_token: token });
  return $(".reauth-providers button", form)?.click();
}

/** Shows the forms as `account` needs them (a password field, or "Confirm with <provider>") and, back from the
 * provider, finishes the action the person started: `run(selector, proof)` does a form's action. */
export async function setUpConfirmations(account, run) {
  const { identities } = await authCall("GET", "/federation/identities");
  const providers = [...new Map(identities.map((each) => [each.provider, each.display_name]))];
  linked = account.has_password ? [] : providers;
  for (const selector of Object.keys(KEPT)) draw($(selector), account.has_password, providers);
  if (!account.has_password) await resume(run);
}

function draw(form, hasPassword, providers) {
  const input = $("input[autocomplete=current-password]", form);
  for (const node of [input, $(`label[for=${input.id}]`, form)]) node.hidden = !hasPassword;
  input.required = hasPassword;
  let box = $(".reauth-providers", form);
  if (!box) {
    box = el("div", { className: "reauth-providers federation" });
    input.after(box);
  }
  box.hidden = hasPassword;
  box.replaceChildren(...providers.map(([name, displayName]) => {
    const button = tx("button", { type: "button", className: "secondary provider", dataset: { provider: name } },
      "web.federation.confirm_with", { name: displayName });
    button.addEventListener("click", () => leave(form, name));
    return button;
  }));
  if (form.id === "password-form") {
    setText($("h2", form), hasPassword ? "web.account.password_title" : "web.account.password_set_title");
    setText($("button[type=submit]", form), hasPassword ? "web.account.password_submit"
      : "web.account.password_set_submit");
  }
}

/** Off to provider `name` for a fresh sign-in, the form's action kept for the way back. */
async function leave(form, name) {
  clearMessage($(".error", form));
  if (form.id === "delete-form" && !form.confirm.checked) {
    say($(".error", form), "web.account.delete_tick");
    return;
  }
  const fields = Object.fromEntries(KEPT[`#${form.id}`].map((field) => {
    const input = form.elements[field];
    return [field, input.type === "checkbox" ? input.checked : input.value];
  }));
  await leaveFor(form, fields, name);
}

/** Off to provider `name`, `form`'s action and its `fields` (no secret) waiting for the way back. */
export async function leaveFor(form, fields, name) {
  sessionStorage.setItem(PENDING, JSON.stringify({ form: `#${form.id}`, fields }));
  if (!(await start(name, "reauth", form))) sessionStorage.removeItem(PENDING);   // not gone: nothing waits
}

/** Back from the provider with an action waiting: its fields put back, the reauth token asked for, the action
 * done with it (the new password is asked for first: it never waited anywhere). */
async function resume(run) {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) || "null");
  sessionStorage.removeItem(PENDING);
  if (!pending || !(pending.form in KEPT || pending.form === "#passkeys-form")) return;
  const form = $(pending.form);
  for (const [field, value] of Object.entries(pending.form in KEPT ? pending.fields || {} : {})) {
    const input = form.elements[field];
    if (input?.type === "checkbox") input.checked = Boolean(value);
    else if (input) input.value = value;
  }
  form.scrollIntoView({ block: "center" });
  let answer;
  try {
    answer = await authCall("POST", "/federation/reauth");
  } catch (error) {
    showError($(".error", form), error);
    return;
  }
  if (form.id === "password-form") {
    held.set(form, answer.reauth_token);
    say($(".note", form), "web.account.password_set_confirmed");
    form.new_password.focus();
    return;
  }
  await run(pending.form, { reauth_token: answer.reauth_token }, pending.fields || {});
}
