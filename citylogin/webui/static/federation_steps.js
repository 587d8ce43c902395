// The federation panel's steps (SPEC §16), after the provider has answered: the identity is linked (this
// browser's device key signs in to that account), new (the person chooses a username: an account with this
// browser as its first device, then the same sign-in), or its e-mail is another account's (nothing is linked on
// the e-mail's word: sign in to that account to link it, have a link mailed to it, or make a separate account);
// and an e-mailed link opened (`#federation-link=`), which links the identity to the account it was sent to.

import { call, citylogin } from "./api.js";
import { setText } from "./i18n.js";
import { $, busy, el, guessDeviceName, say, tx } from "./ui.js";

const PAIRING_KEY = "citylogin.federation.pairing";   // the pair form's code, through the provider and back

/** Draws the step the ticket calls for; a linked identity signs in at once. A pairing code kept on the way out
 * (the pair form's "Continue with …") is taken once, whatever the ticket says. */
export async function drawStep(form, ticket) {
  const kept = takePairingCode();
  if (ticket.status === "linked") await signInLinked(form, ticket, kept);
  else if (ticket.status === "email_taken") drawEmailTaken(form, ticket);
  else drawUsername(form, ticket);
}

/** The pair form's code (a `#pair=` link's payload, or one pasted) kept in this tab for the provider's answer:
 * sessionStorage, never a URL. */
export function keepPairingCode(code) {
  if (code?.trim()) sessionStorage.setItem(PAIRING_KEY, code.trim());
  else sessionStorage.removeItem(PAIRING_KEY);
}

function takePairingCode() {
  const code = sessionStorage.getItem(PAIRING_KEY);
  sessionStorage.removeItem(PAIRING_KEY);
  return code;
}

/** While the ticket is read. */
export function drawReading(form) {
  draw(form, null, { title: "web.federation.reading_title" });
}

/** The panel as one step: its title, `body`, the submit button (sending it runs `onStep`) and `links` beside "Back
 * to log in"; `form.leaving`, if a step left one (a camera on), runs first. */
export function draw(form, onStep, { title, params, body = [], submit = null, links = [] }) {
  form.leaving?.();
  form.leaving = null;
  form.onStep = onStep;
  const error = el("p", { className: "error", hidden: true });
  error.setAttribute("role", "alert");
  const note = el("p", { className: "note", hidden: true });
  note.setAttribute("role", "status");
  form.replaceChildren(...[tx("h1", {}, title, params), ...body, error, note,
    submit && tx("button", { type: "submit" }, submit, params),
    el("div", { className: "more-links" }, ...links,
      tx("button", { type: "button", className: "link", dataset: { show: "login" } }, "web.common.back_to_login"))]
    .filter(Boolean));
  form.querySelector("input:not([readonly])")?.focus();
}

export function field({ id, name, label, value = "", type = "text", autocomplete = "off", hint = null, ...rest }) {
  const input = el("input", { id, name, type, value, autocomplete, required: true, ...rest });
  const parts = [tx("label", { htmlFor: id }, label), input];
  if (hint) {
    parts.push(tx("small", { id: `${id}-hint`, className: "hint" }, hint));
    input.setAttribute("aria-describedby", `${id}-hint`);
  }
  return parts;
}

/** Linked: the account's device key here signs in (POST /federation/login); a browser that is not yet one of its
 * devices is led to become one, with the provider's answer in the password's place (federation_devices.js): a code
 * one of its devices shows, a recovery code, or for an account with no device yet (SPEC §17) nothing more; the
 * code `kept` from the pair form is used at once, with no second scan. "Sign in" tries again. */
async function signInLinked(form, ticket, kept = null) {
  const params = { provider: ticket.display_name, username: ticket.username };
  const way = (key, step) => {
    const button = tx("button", { type: "button", className: "secondary" }, key, params);
    button.addEventListener("click", async () => (await import("./federation_devices.js"))[step](form, ticket));
    return button;
  };
  const addDevice = el("div", { className: "choices-list", hidden: true },
    way("web.federation.pair_choice", "drawPair"), way("web.federation.recover_choice", "drawRecover"),
    way("web.enrol.title", "drawEnrol"));
  let pairKept = false;
  const attempt = async () => {
    try {
      return await citylogin.loginWithTicket({ username: ticket.username, replacing: form.app.confirmReplacing });
    } catch (error) {
      addDevice.hidden = error.code !== "no_device_key";
      pairKept = Boolean(kept) && error.code === "no_device_key";
      throw error;
    }
  };
  const signIn = () => form.app.signIn(form, attempt);
  draw(form, signIn, { title: "web.federation.linked_title", params, submit: "web.federation.sign_in",
    body: [tx("p", { className: "muted" }, "web.federation.linked_intro", params), addDevice] });
  await signIn();
  if (pairKept) await (await import("./federation_devices.js")).pairWithCode(form, ticket, kept);
}

/** New: the person picks a username (the provider's suggestion filled in) for an account with no password; the
 * e-mail the provider gave is shown, marked unverified unless the provider said it is verified. */
function drawUsername(form, ticket) {
  const params = { provider: ticket.display_name };
  const email = ticket.email ? el("dl", { className: "meta" }, tx("dt", {}, "web.common.email"),
    el("dd", {}, el("span", { id: "federation-email" }, ticket.email), " ",
      tx("span", { className: ticket.email_verified ? "badge active" : "badge removed" },
        ticket.email_verified ? "web.account.verified" : "web.account.not_verified"))) : null;
  draw(form, () => signUp(form, ticket), { title: "web.federation.choose_title", params, submit: "web.register.submit",
    body: [tx("p", { className: "muted" }, "web.federation.choose_intro", params), email,
      ...field({ id: "federation-username", name: "username", label: "web.common.username",
        value: ticket.suggested_username || "", autocomplete: "username", minLength: 3, maxLength: 32,
        hint: "web.register.username_hint" }),
      ...field({ id: "federation-device", name: "device_name", label: "web.common.device_name",
        value: guessDeviceName(), maxLength: 64 })] });
}

/** The account and this browser as its first device (POST /federation/signup), then the sign-in with it; the
 * recovery codes show once the sign-in has answered, as after registering. */
async function signUp(form) {
  const username = form.username.value.trim();
  const issued = await busy(form, () => citylogin.signUpWithTicket({ username,
    deviceName: form.device_name.value.trim() || undefined }));
  if (!issued) return;
  const signIn = (options) => form.app.signIn(form, () => citylogin.loginWithTicket({ username,
    replacing: form.app.confirmReplacing }), options);
  form.onStep = () => signIn();           // made: sending the form again only tries the sign-in again
  await signIn({ registered: true, codes: issued.recovery_codes || [] });
}

/** Another account holds the e-mail: the three ways on, each said plainly; "Create a separate account" only when
 * the provider may make accounts. */
function drawEmailTaken(form, ticket) {
  const params = { provider: ticket.display_name, email: ticket.email || "" };
  const choice = (key, action) => {
    const button = tx("button", { type: "button", className: "secondary" }, key, params);
    button.addEventListener("click", action);
    return button;
  };
  draw(form, null, { title: "web.federation.taken_title", params, body: [
    tx("p", {}, "web.federation.taken_intro", params),
    el("div", { className: "choices-list" },
      choice("web.federation.taken_sign_in", () => drawLinkForm(form, ticket)),
      choice("web.federation.taken_mail", () => mailLink(form, params)),
      ticket.signup !== false && choice("web.federation.taken_separate", () => drawUsername(form, ticket)))] });
}

/** "Sign in to that account to link it": its username and password on a device of that account (POST
 * /federation/link), which links the identity and signs in. */
function drawLinkForm(form, ticket) {
  const params = { provider: ticket.display_name, email: ticket.email || "" };
  const back = tx("button", { type: "button", className: "link" }, "web.federation.other_ways");
  back.addEventListener("click", () => drawEmailTaken(form, ticket));
  const link = () => form.app.signIn(form, () => citylogin.linkWithTicket({ username: form.username.value.trim(),
    password: form.password.value, replacing: form.app.confirmReplacing }));
  draw(form, link, { title: "web.federation.link_title", params, submit: "web.federation.link_submit", links: [back],
    body: [tx("p", { className: "muted" }, "web.federation.link_intro", params),
      ...field({ id: "federation-link-username", name: "username", label: "web.common.username",
        autocomplete: "username" }),
      ...field({ id: "federation-link-password", name: "password", label: "web.common.password",
        type: "password", autocomplete: "current-password" })] });
}

/** "E-mail me a link" (POST /federation/link/mail): the answer never says whether an account uses the address.
 * The provider's answer now lives in the mailed link alone (the ticket is spent): no other way is offered. */
async function mailLink(form, params) {
  const sent = await busy(form, () => call("POST", "/federation/link/mail", {}).then(() => true));
  if (!sent) return;
  $(".choices-list", form).hidden = true;
  say($(".note", form), "web.federation.mail_sent", params);
}

/** The mailed link (POST /federation/link/confirm): the identity is linked to the account it was sent to; the
 * person then signs in with the provider on a device of that account. */
export async function confirmLink(form, token) {
  draw(form, null, { title: "web.federation.confirm_title" });
  const answer = await busy(form, async () => (await call("POST", "/federation/link/confirm", { token })) || {});
  if (!answer) return;
  const provider = answer.display_name || answer.provider;
  const note = $(".note", form);
  if (provider) say(note, "web.federation.confirmed", { provider });
  else say(note, "web.federation.confirmed_any");
  setText($("h1", form), "web.federation.confirmed_title");
}
