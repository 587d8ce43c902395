// Signing in for an app (SPEC §14): an app's OpenID Connect request arrives as `#oidc=<request>`.
// The person signs in on this browser's device as on any visit (the device key with the password or a
// passkey, the in-use dialog, or registering or pairing this browser first), or is signed in already, in
// this tab or, on this browser's device, in another (single sign-on: the device key signs for it); the
// request is then finished and the browser goes back to the app with its code, or with its error when
// the person declines. An app that asks for consent asks once per person
// and scopes (remembered; withdrawn on the Account page). `prompt=none` never shows a page.

import { authCall, call, citylogin } from "./api.js";
import { showLinks, showLogo, showSelfRegistered } from "./app_identity.js";
import { setText } from "./i18n.js";
// REQUEST_KEY: kept through a reload, registering, pairing
import { ADDRESS_CONFIRMED, APP_REQUEST_KEY as REQUEST_KEY } from "./links.js";
import { $, clearMessage, el, modal, say, showError, tx } from "./ui.js";
const REQUEST_ID = /^[A-Za-z0-9_-]{16,64}$/;
const KNOWN_SCOPES = ["openid", "profile", "email", "offline_access"];
const NOT_FOR_THIS_TAB = new Set(["oidc_request_unknown", "oidc_request_other_browser"]);

let pending = null;    // {id, interaction: POST /oidc/interaction's answer} while an app waits

/** Takes `#oidc=<request>` out of the address bar and reads what the app asks; resolves with the
 * interaction, or null when no app waits. Rejects (CityloginError) when the request is unknown or over. */
export async function takeAppRequest() {
  const match = /^#oidc=(.+)$/.exec(location.hash);
  if (match) {
    history.replaceState(null, "", location.pathname + location.search);
    if (REQUEST_ID.test(match[1])) sessionStorage.setItem(REQUEST_KEY, match[1]);
  }
  const id = sessionStorage.getItem(REQUEST_KEY);
  if (!id) return null;
  try {
    pending = { id, interaction: await call("POST", "/oidc/interaction", { request: id }) };
  } catch (error) {
    forget();
    throw error;
  }
  showAppBanner();
  return pending.interaction;
}

/** Whether an app waits for this sign-in. */
export function appWaiting() {
  return pending !== null;
}

/** prompt=none: the app wants an answer without a page. */
export function silent() {
  return Boolean(pending?.interaction.prompt.includes("none"));
}

export function initAppSignIn() {
  $("#oidc-cancel").addEventListener("click", () => declineForApp("access_denied"));
}

/** Single sign-on: a device key of this browser whose device has a live citylogin session (opened in
 * another tab) finishes the request without a password. Resolves true when the browser is on its way
 * back to the app; false when no device here has a live session (or the app wants a fresh sign-in),
 * and the person signs in as on any visit. */
export async function signInWithDevice() {
  const answer = await answered(() => withConsent((consent) => citylogin.signInForApp(pending.id, { consent })));
  if (answer === null) return false;
  if (answer !== DECLINED) leaveFor(answer);
  return true;
}

/** Finishes the waiting request with this tab's session and sends the browser to the app. Resolves
 * false when the app wants a fresh sign-in (prompt=login, max_age) and the person must log in again. */
export async function finishForApp() {
  let answer;
  try {
    answer = await answered(() => withConsent((consent) => authCall("POST", "/oidc/authorize/complete",
      { request: pending.id, consent })));
  } catch (error) {
    if (error.code !== "login_required") throw error;
    if (silent()) return declineForApp("login_required");
    say($("#oidc-again"), "web.oidc.sign_in_again");
    return false;
  }
  if (answer !== DECLINED) leaveFor(answer);
  return true;
}

/** A new account signing in for an app that asked for `email`: apps are told an address only once it
 * is verified (SPEC §14 Userinfo), and an app that keys its people by e-mail (mozilla-django-oidc)
 * refuses one without it, saying nothing. So the person is asked first to open the link just mailed;
 * the question closes by itself when the link is opened, in this tab or another of this browser
 * (links.js tells them), and the person may go on without it. */
export async function confirmAddressFirst() {
  if (!pending.interaction.scopes.includes("email")) return;
  let account;
  try {
    account = await authCall("GET", "/account");
  } catch {
    return;                                       // unknown: the sign-in goes on, as it would without asking
  }
  if (account.email_verified) return;
  const dialog = verifyFirstDialog();
  const note = $("#verify-first-note");
  setText($("#verify-first-message"), "web.oidc.verify_message",
    { app: pending.interaction.client_name, email: account.email });
  clearMessage(note);
  const confirmed = new BroadcastChannel(ADDRESS_CONFIRMED);
  let heard = false;                              // also while the dialog is closed for a moment (resending)
  confirmed.onmessage = () => { heard = true; dialog.close("confirmed"); };
  try {
    while (!heard) {
      const choice = await modal(dialog);
      if (choice !== "resend" && choice !== "check") return;      // confirmed, or going on without it
      try {
        if (choice === "resend") {
          await authCall("POST", "/account/verify_email/resend");
          say(note, "web.oidc.verify_sent");
        } else if ((await authCall("GET", "/account")).email_verified) {
          return;
        } else {
          say(note, "web.oidc.verify_not_yet");
        }
      } catch (error) {
        showError(note, error);                   // a refusal (too many links) says its own code
      }
    }
  } finally {
    confirmed.close();
  }
}

/** The address question's dialog, made the first time a sign-in asks it: only an app's sign-in of a new
 * account needs it, so it is not in the page, whose first load stays small. */
function verifyFirstDialog() {
  const made = document.getElementById("verify-first-dialog");
  if (made) return made;
  const note = el("p", { className: "note", id: "verify-first-note", hidden: true });
  note.setAttribute("role", "status");
  const dialog = el("dialog", { id: "verify-first-dialog" }, el("form", { method: "dialog" },
    tx("h2", { id: "verify-first-title" }, "web.oidc.verify_title"), el("p", { id: "verify-first-message" }), note,
    el("div", { className: "buttons" },
      tx("button", { value: "skip", className: "secondary" }, "web.oidc.verify_skip"),
      tx("button", { value: "resend", className: "secondary" }, "web.oidc.verify_resend"),
      tx("button", { value: "check", id: "verify-first-check", autofocus: true }, "web.oidc.verify_check"))));
  dialog.setAttribute("aria-labelledby", "verify-first-title");
  document.body.append(dialog);
  return dialog;
}

const DECLINED = Symbol("declined");

/** `finish(consent)` without consent first; an app that asks for it (not allowed these scopes before, or
 * prompt=consent) answers consent_required, and the person is asked: allowed, `finish(true)`; denied,
 * the app hears access_denied and DECLINED is the answer. */
async function withConsent(finish) {
  try {
    return await finish(false);
  } catch (error) {
    if (error.code !== "consent_required") throw error;
  }
  if (!(await askConsent(pending.interaction))) {
    await declineForApp("access_denied");
    return DECLINED;
  }
  return finish(true);
}

/** A request that is over (finished in another tab, expired), or that another browser started (its id
 * came here by a link: only that browser, which holds the request's cookie, may finish it), is forgotten
 * here too. */
async function answered(work) {
  try {
    return await work();
  } catch (error) {
    if (NOT_FOR_THIS_TAB.has(error.code)) forget();
    throw error;
  }
}

/** The app hears `error` (access_denied, login_required, ...) and the browser goes back to it. */
export async function declineForApp(error) {
  const answer = await call("POST", "/oidc/authorize/cancel", { request: pending.id, error });
  leaveFor(answer);
  return true;
}

/** Back to the app: to its redirect URI with the answer in the query, or, for response_mode=form_post
 * (`answer.form_post`, the response sealed), through a form to /oidc/authorize/respond, whose page POSTs
 * it to the app (this page's policy lets its forms go to citylogin alone). */
function leaveFor(answer) {
  forget();
  $("#oidc-leaving").hidden = false;
  if (!answer.form_post) {
    location.assign(answer.redirect_to);
    return;
  }
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/oidc/authorize/respond";
  form.hidden = true;
  const field = document.createElement("input");
  field.type = "hidden";
  field.name = "response";
  field.value = answer.form_post;
  form.append(field);
  document.body.append(form);
  form.submit();
}

function forget() {
  pending = null;
  sessionStorage.removeItem(REQUEST_KEY);
  $("#oidc-banner").hidden = true;
}

function showAppBanner() {
  setText($("#oidc-for"), "web.oidc.continue_to", { app: pending.interaction.client_name });
  showSelfRegistered($("#oidc-for"), pending.interaction);
  showLogo($("#oidc-logo"), pending.interaction);
  showLinks($("#oidc-links"), pending.interaction);
  $("#oidc-again").hidden = true;
  $("#oidc-banner").hidden = false;
}

async function askConsent(interaction) {
  const dialog = $("#consent-dialog");
  setText($("#consent-title"), "web.oidc.consent_title", { app: interaction.client_name });
  showSelfRegistered($("#consent-title"), interaction);
  const scopes = interaction.scopes.filter((scope) => KNOWN_SCOPES.includes(scope));
  $("#consent-scopes").replaceChildren(...scopes.map((scope) => tx("li", {}, `web.oidc.scope.${scope}`)));
  showLogo($("#consent-logo"), interaction);
  showLinks($("#consent-links"), interaction);
  return (await modal(dialog)) === "allow";
}
