// The page's language and the account's. The header's EN / 日本語 changes this page, in this browser (the
// session stays); the account's language, the one of the mail it is sent, changes only when the
// person says so: signed in, a switch to another language asks (#mail-locale), as does a login after a
// language picked signed out. A login otherwise brings the page the account's language; a resumed session
// (a reload, another tab) keeps the page's. The Account panel's language sets both. A language picked signed
// out is kept in this tab's sessionStorage: the login screen may be reloaded before the login (at /device the
// approval waits there through a reload), and the page must not then fall back to the account's language.

import { loadAccount } from "./account.js";
import { authCall } from "./api.js";
import { currentLocale, rememberChoice, setLocale, wantedLocale } from "./i18n.js";
import { notify } from "./links.js";
import { $, guessDeviceName } from "./ui.js";

export const DEVICE_NAME_FIELDS = ["#register-device", "#pair-device", "#recover-device"];

const PICKED_KEY = "citylogin.picked_locale";   // a language picked in the header before logging in: the page keeps it

let signedIn = () => false;
let accountLocale = null;        // the account's language (its mail's), once read after a login
let read = Promise.resolve();    // the account's language read after a login: the Account panel reads after it
let loading = 0;                 // catalogues on their way for useLocale

export function initLanguages({ signedIn: isSignedIn }) {
  signedIn = isSignedIn;
  $("#language-switch").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-locale]");
    if (button) switchLanguage(button.dataset.locale);
  });
  $("#mail-locale-yes").addEventListener("click", changeMailLocale);
  $("#mail-locale-no").addEventListener("click", () => { $("#mail-locale").hidden = true; });
}

/** Settles once the account's language has been read after the last login. */
export function accountLocaleRead() {
  return read;
}

/** After a login (`resumed`: a session this tab or another held already; `registered`: a new account). */
export function syncAfterLogin(options) {
  read = syncAccountLocale(options);
}

/** Signed out: nothing is known of an account's language, and nothing is asked. */
export function forgetAccountLocale() {
  accountLocale = null;
  $("#mail-locale").hidden = true;
}

/** The Account panel saved the account's language: the page speaks it too. */
export async function accountLocaleSaved(tag) {
  accountLocale = tag;
  $("#mail-locale").hidden = true;
  await useLocale(tag);
}

/** A new account has the page's language already (it was sent with the registration). */
async function syncAccountLocale({ registered = false, resumed = false }) {
  try {
    const account = await authCall("GET", "/account");
    accountLocale = account.locale;
    const picked = sessionStorage.getItem(PICKED_KEY) !== null;
    sessionStorage.removeItem(PICKED_KEY);
    if (registered && accountLocale !== currentLocale()) {     // a language switched while registering
      accountLocale = (await authCall("PATCH", "/account", { locale: currentLocale() })).locale;
    } else if (picked) {
      offerMailLocale();
    } else if (!resumed && accountLocale !== currentLocale()) {
      await useLocale(accountLocale);
    }
  } catch (error) {
    if (!error.sessionEnded) console.warn(`citylogin: the account's language is unknown (${error.code || error.name})`);
  }
}

/** Asks whether the account's mail should come in the page's language too, when it comes in another. */
function offerMailLocale() {
  $("#mail-locale").hidden = !signedIn() || accountLocale === null || accountLocale === currentLocale();
}

async function changeMailLocale() {
  const tag = currentLocale();
  $("#mail-locale").hidden = true;
  try {
    accountLocale = (await authCall("PATCH", "/account", { locale: tag })).locale;
  } catch (error) {
    if (!error.sessionEnded) notify("web.notice.locale_not_saved", "alert");
    return;
  }
  notify("web.mail_locale.changed");
  if (!$("#account-panel").hidden && !$("#home-screen").hidden) loadAccount();     // its language select
}

/** Shows `tag` and keeps it as this browser's choice at once: the last language picked is the one kept, even
 * when an earlier pick's catalogue arrives after it (that one is then not shown). The switch is aria-busy
 * while a catalogue is on its way. */
async function useLocale(tag) {
  const guessed = DEVICE_NAME_FIELDS.map((field) => $(field).value === guessDeviceName());
  rememberChoice(tag);
  loading += 1;
  $("#language-switch").setAttribute("aria-busy", "true");
  try {
    if (!await setLocale(tag)) return;
  } finally {
    loading -= 1;
    if (loading === 0) $("#language-switch").removeAttribute("aria-busy");
  }
  DEVICE_NAME_FIELDS.forEach((field, i) => { if (guessed[i]) $(field).value = guessDeviceName(); });
}

async function switchLanguage(tag) {
  if (tag === wantedLocale()) return;
  if (!signedIn()) sessionStorage.setItem(PICKED_KEY, tag);
  await useLocale(tag);
  if (!signedIn()) return;
  await read;                         // a login may still be reading the account's language
  offerMailLocale();
}
