// The citylogin web app: the signed-out screen (log in, create account, pair this browser, forgot
// password, recover), the signed-in screen (devices, sessions, history, add a device, account),
// the moves between them and the language they speak. An app's OpenID Connect sign-in (`#oidc=`,
// oidc.js, loaded only then) goes through the same screens and returns to the app instead of the
// signed-in screen; an app's logout (`#oidc-logout=`, oidc_logout.js, loaded only then) ends this device's
// session when the device proves it is the one the app named, and asks first otherwise. At `/device`
// (device_flow.js, loaded only there) a TV's or command line's code is approved, signing in first as for an app.

import { initAccount, loadAccount, resetAccount } from "./account.js";
import { initActivity, loadHistory, loadSessions, resetActivity } from "./activity.js";
import { ConcurrentLogin } from "../sdk/citylogin.js";
import { authCall, citylogin } from "./api.js";
import { initCodes, showRecoveryCodes } from "./codes.js";
import { initDevices, loadDevices, resetDevices } from "./devices.js";
import { REMOVED_HERE, endingBanner } from "./endings.js";
import { appRequestInView, initLinks, notifyError, takeAccountLink } from "./links.js";
import { fillPairingCode, initPairing, resetPairing, takePairingLink } from "./pairing.js";
import { currentLocale, initialLocale, onLocaleChange, setLocale, setText } from "./i18n.js";
import { DEVICE_NAME_FIELDS, accountLocaleRead, accountLocaleSaved, forgetAccountLocale, initLanguages,
  syncAfterLogin } from "./languages.js";
import { $, busy, clearMessage, el, guessDeviceName, modal, say, tx } from "./ui.js";
// The camera's QR reader is fetched only where the browser can read QR codes (see camera_scan.js):
// elsewhere, as on most desktops, the login screen's cold load does not carry it.
const cameraScan = "BarcodeDetector" in window ? import("./camera_scan.js") : null;
const stopCameraScan = () => cameraScan?.then((scan) => scan.stopCameraScan());

const ACCOUNT_KEY = "citylogin.account";   // who is signed in in this tab, kept next to the refresh token

const LOADERS = { devices: loadDevices, sessions: loadSessions, history: () => loadHistory(),
  account: () => loadAccount(accountLocaleRead()),
  "my-data": async () => (await import("./data_export.js")).showMyData() };

let appSignIn = null;            // oidc.js while an app's sign-in waits in this tab (SPEC §14)
let deviceFlow = null;           // device_flow.js at /device: a screen's code is approved here (SPEC §14)

function selectTab(screen, name) {
  for (const button of screen.querySelectorAll(".tabs button")) {
    if (button.dataset.tab === name) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  for (const panel of screen.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
  if (name !== "pair") stopCameraScan();
  LOADERS[name]?.();
}

function currentTab(screen) {
  return screen.querySelector(".tabs button[aria-current]");
}

/** banner: {kind: "alert" | "info", title: key, text: key or null, params?: {name: value}} or null. */
function setBanner(banner) {
  const node = $("#banner");
  node.hidden = !banner;
  if (!banner) return;
  node.className = `banner ${banner.kind}`;
  setText($("#banner-title"), banner.title, banner.params);
  if (banner.text) setText($("#banner-text"), banner.text, banner.params);
  else clearMessage($("#banner-text"));
  $("#banner-text").hidden = !banner.text;
}

function showAuth({ tab = "login", banner = null } = {}) {
  $("#home-screen").hidden = true;
  $("#whoami").hidden = true;
  $("#auth-screen").hidden = false;
  setBanner(banner);
  selectTab($("#auth-screen"), tab);
}

function signedIn() {
  return Boolean(storedAccount()) && citylogin.session !== null;
}

function storedAccount() {
  return JSON.parse(sessionStorage.getItem(ACCOUNT_KEY) || "null");
}

function rememberAccount(account) {
  sessionStorage.setItem(ACCOUNT_KEY, JSON.stringify(account));
  $("#whoami-user").textContent = account.username;
  $("#whoami-device").textContent = account.deviceName;
  $("#whoami").hidden = false;
}

function enterHome(account, { registered = false, resumed = false } = {}) {
  for (const input of document.querySelectorAll("input[type=password]")) input.value = "";
  rememberAccount(account);
  $("#auth-screen").hidden = true;
  $("#home-screen").hidden = false;
  const linked = location.hash === "#account";     // back from linking an account from elsewhere (SPEC §16)
  if (linked) history.replaceState(null, "", location.pathname + location.search);
  selectTab($("#home-screen"), linked ? "account" : "devices");
  currentTab($("#home-screen")).focus();        // keyboard users start on the screen they now see
  syncAfterLogin({ registered, resumed });
}

function showLocale(tag) {
  for (const button of $("#language-switch").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.locale === tag));
  }
  // Rows drawn from API answers are drawn again in the new language.
  if (!$("#home-screen").hidden) LOADERS[currentTab($("#home-screen"))?.dataset.tab]?.();
}

function leaveHome(banner) {
  const account = storedAccount();
  sessionStorage.removeItem(ACCOUNT_KEY);
  forgetAccountLocale();
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  resetDevices();
  resetActivity();
  resetPairing();
  resetAccount();
  if (deviceFlow) deviceFlow.sessionEnded(banner);     // the approval page stays; its next approval signs in
  else showAuth({ banner });
  if (account) $("#login-username").value = account.username;
}

async function sessionEnded(reason, ending = { reason }) {
  // A deleted account's key can never log in again: it is gone from IndexedDB before the login
  // screen shows, whichever comes first, the stream's news of the deletion or DELETE's answer.
  const account = storedAccount();
  if (reason === "account_deleted" && account) await citylogin.forgetDevice(account.username).catch(() => {});
  const [title, text, params] = endingBanner(ending, account);
  leaveHome({ kind: "alert", title, text, params });
}

/** A browser with no device key for the account: the ways on (pair it, or a recovery code) next to the
 * error, and "Lost all my devices?" there only, not a second time below the form. */
function showNewDeviceLinks(shown) {
  $("#login-new-device").hidden = !shown;
  $("#login-lost-devices").hidden = shown;
}

/** Logs in with the password, or (`password` null) a passkey in its place; a 409 concurrent_login asks
 * whether to log the other device out (SPEC §5). A new account's recovery `codes` show once the login has
 * answered: signed in first, a person who closes the browser on the codes is still signed in. */
async function logIn(username, password, options = {}) {
  const form = $("#login-form");
  form.username.value = username;
  await signIn(form, async () => (password === null
    ? (await import("./passkeys.js")).logInWithPasskey(username, { replacing: confirmReplacing })
    : citylogin.login({ username, password, replacing: confirmReplacing })), options);
}

/** `attempt()` (a login of some kind) on `form`, whose controls wait and whose .error and .note say what came of
 * it: signed in, the in-use question, or refused. An account from elsewhere (federation.js) signs in here too. */
async function signIn(form, attempt, { registered = false, codes = [] } = {}) {
  clearMessage($(".note", form));
  showNewDeviceLinks(false);
  await busy(form, async () => {
    let result;
    try {
      result = await attempt();
    } catch (error) {
      await showRecoveryCodes(codes);        // shown once, whatever became of the login
      showNewDeviceLinks(error.code === "no_device_key");
      if (error.code !== "device_revoked") throw error;
      // This browser's certificate was revoked (by whom, the refusal does not say): the banner says what
      // happened and what to do.
      setBanner({ kind: "alert", title: REMOVED_HERE[0], text: REMOVED_HERE[1] });
      return;
    }
    await showRecoveryCodes(codes);
    if (result === null) say($(".note", form), "web.relogin.cancelled");
    else if (result instanceof ConcurrentLogin) await resolveConflict(result, $(".note", form));
    else await arrive(result, { registered });
  });
}

/** Signed in: back to the app that asked for the sign-in, if one waits, or to the screen's code being
 * approved at /device; else the signed-in screen. */
async function arrive(account, options = {}) {
  if (deviceFlow) {
    rememberAccount(account);
    syncAfterLogin(options);
    await deviceFlow.open();
    return;
  }
  if (appSignIn?.appWaiting()) {
    rememberAccount(account);
    syncAfterLogin(options);
    if (options.registered) await appSignIn.confirmAddressFirst();
    if (await appSignIn.finishForApp()) return;
    showAuth();                               // the app wants a fresh sign-in on this device
    $("#login-username").value = account.username;
    return;
  }
  enterHome(account, options);
}

/** A login on a device that holds a live session replaces that session (SPEC §5: one per device), and
 * every app signed in on it is signed out: the person hears first what it ends, the apps by name. */
async function confirmReplacing(live) {
  setText($("#relogin-message"), live.apps.length ? "web.relogin.message_apps" : "web.relogin.message");
  $("#relogin-apps").replaceChildren(...live.apps.map((app) => el("li", {}, el("strong", {}, app.name))));
  $("#relogin-apps").hidden = !live.apps.length;
  return (await modal($("#relogin-dialog"))) === "continue";
}

/** The account is at its device limit: the in-use dialog asks which device goes (SPEC §5), and the login goes
 * on with the person's choice; asked again, saying why, when a chosen device ended meanwhile (the new list)
 * or the server did not take the choice. */
async function resolveConflict(pending, noteNode = $("#login-form .note")) {
  setBanner(null);           // an earlier ending's banner ("Signed in on another device") is not this question
  const { askAgainNote, confirmInUse } = await import("./in_use.js");   // the dialog's code: only when asked
  let asking = pending;
  let note = null;
  for (;;) {
    const displace = await confirmInUse(asking, { note });
    if (displace === null) {
      say(noteNode, "web.concurrent.cancelled");
      return;
    }
    let session;
    try {
      session = await asking.confirm(displace);
    } catch (error) {
      note = askAgainNote(error);
      if (!note) throw error;
      asking = error.concurrentLogin || asking;
      continue;
    }
    await arrive(session);
    return;
  }
}

function formValues(form) {
  const values = Object.fromEntries(new FormData(form));
  for (const name of ["username", "email", "device_name", "qr_code", "recovery_code"]) {
    if (typeof values[name] === "string") values[name] = values[name].trim();
  }
  return values;
}

async function submitLogin(event) {
  event.preventDefault();
  const { username, password } = formValues(event.currentTarget);
  await logIn(username, password);
}

async function submitRegister(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const v = formValues(form);
  const issued = await busy(form, () => citylogin.register({
    username: v.username, email: v.email, password: v.password, deviceName: v.device_name }));
  if (!issued) return;
  form.reset();
  form.device_name.value = guessDeviceName();
  selectTab($("#auth-screen"), "login");
  await logIn(v.username, v.password, { registered: true, codes: issued.recovery_codes || [] });
}

async function submitPair(event) {
  event.preventDefault();
  stopCameraScan();
  const form = event.currentTarget;
  const v = formValues(form);
  const issued = await busy(form, () => citylogin.pairWithToken({
    qrCode: v.qr_code, username: v.username, password: v.password, deviceName: v.device_name }));
  if (!issued) return;
  form.reset();
  clearMessage($("#pair-filled"));
  form.device_name.value = guessDeviceName();
  selectTab($("#auth-screen"), "login");
  await logIn(v.username, v.password);
}

async function submitRecover(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const v = formValues(form);
  const issued = await busy(form, () => citylogin.recover({ username: v.username, password: v.password,
    recoveryCode: v.recovery_code, deviceName: v.device_name, unbindOtherDevices: form.unbind_other_devices.checked }));
  if (!issued) return;
  form.reset();
  form.device_name.value = guessDeviceName();
  selectTab($("#auth-screen"), "login");
  await logIn(v.username, v.password);
}

async function logOut() {
  try {
    await citylogin.logout();
  } catch (error) {
    if (error.sessionEnded) return;       // the banner already says why
  }
  leaveHome({ kind: "info", title: "web.banner.logged_out", text: null });
}

/** Sessions → "Log out everywhere": every session of the account ends, this one too (SPEC §4). */
async function logOutEverywhere() {
  try {
    await citylogin.logoutAll();
  } catch (error) {
    if (error.sessionEnded) return;
    throw error;
  }
  leaveHome({ kind: "info", title: "web.banner.logged_out_everywhere", text: null });
}

function wire() {
  for (const screen of [$("#auth-screen"), $("#home-screen")]) {
    screen.querySelector(".tabs").addEventListener("click", (event) => {
      const tab = event.target.closest("button[data-tab]");
      if (tab) selectTab(screen, tab.dataset.tab);
    });
  }
  $("#login-form").addEventListener("submit", submitLogin);
  $("#login-passkey").addEventListener("click", () => logIn(formValues($("#login-form")).username, null));
  $("#register-form").addEventListener("submit", submitRegister);
  $("#pair-form").addEventListener("submit", submitPair);
  $("#recover-form").addEventListener("submit", submitRecover);
  // "Forgot password?", "Lost all my devices?" and "Back to log in" open panels that have no tab.
  $("#auth-screen").addEventListener("click", (event) => {
    const link = event.target.closest("button[data-show]");
    if (link) selectTab($("#auth-screen"), link.dataset.show);
  });
  // "See my data" opens the readable copy on a page of its own, with no tab; "Back to Account" leaves it.
  $("#export-view").addEventListener("click", () => selectTab($("#home-screen"), "my-data"));
  $("#my-data-back").addEventListener("click", () => selectTab($("#home-screen"), "account"));
  $("#logout-button").addEventListener("click", logOut);
  initLanguages({ signedIn });
  onLocaleChange(showLocale);
  window.addEventListener("hashchange", () => {
    if (takePairingLink() && !$("#auth-screen").hidden) selectTab($("#auth-screen"), "pair");
    takeAccountLink();
  });
  // The device list knows this device's current name, also after a rename.
  initDevices({ onCurrent: (device) => {
    const account = storedAccount();
    if (account) rememberAccount({ ...account, deviceName: device.device_name });
  } });
  initActivity({ onLogoutAll: logOutEverywhere });
  initPairing();
  cameraScan?.then((scan) => scan.initCameraScan({ found: (text) => {
    fillPairingCode(text, "web.pair.scanned");
    $("#pair-username").focus();
  } }));
  initCodes();
  offerEnrol();
  initAccount({
    onDeleted: () => leaveHome({ kind: "info", title: "web.banner.account_deleted_here",
      text: "web.banner.key_forgotten" }),
    onLocaleSaved: accountLocaleSaved,
  });
  // A verified address shows on the Account panel at once when it is open.
  initLinks({ verified: () => { if (!$("#account-panel").hidden && !$("#home-screen").hidden) loadAccount(); } });
  citylogin.onSessionEnded(sessionEnded);
}

// What an account from elsewhere (SPEC §16, federation.js: loaded only when the service offers providers or a
// provider's answer arrives) does through this screen: the same sign-in, in-use question and arrival.
const FEDERATION = { showAuth: (tab) => showAuth({ tab }), signIn, confirmReplacing };

/** "Continue with <provider>" on the login and register forms, when the service has providers. */
async function offerProviders() {
  const answer = await citylogin.request("GET", "/federation/providers", { auth: false }).catch(() => null);
  if (answer?.providers?.length) (await import("./federation.js")).showProviders(answer.providers);
}

// An account an import brought, with no device yet (SPEC §17, enrol.js: loaded when asked for), makes this browser
// its first with a mailed code, then signs in here as after registering.
const ENROL = { showPanel: (name) => selectTab($("#auth-screen"), name), logIn: (username, password, options) => {
  selectTab($("#auth-screen"), "login");
  return logIn(username, password, options);
} };

/** "First time on citylogin? We'll e-mail you a code" below the login form. */
function offerEnrol() {
  const link = tx("button", { type: "button", id: "login-first-time", className: "link" }, "web.enrol.first_time");
  link.addEventListener("click", async () => (await import("./enrol.js")).startEnrol(ENROL,
    formValues($("#login-form")).username));
  $("#login-form").lastElementChild.append(link);
}

/** The provider's answer (`#federation`) or a link mailed to prove an account (`#federation-link=`): whether
 * federation.js took the page. */
async function takeFederation() {
  return location.hash.startsWith("#federation") && (await import("./federation.js")).takeLanding(FEDERATION);
}

/** A reload of a signed-in tab, or an app's sign-in in a tab signed in before (single sign-on): the
 * refresh token in sessionStorage resumes the session. */
async function resumed() {
  try {
    await citylogin.refresh();
    return true;
  } catch (error) {
    if (!error.sessionEnded) {
      await citylogin.logout().catch(() => {});
      sessionStorage.removeItem(ACCOUNT_KEY);
    }
    return false;
  }
}

/** One device, one session, in any tab: this browser's device may have a live session, opened in another
 * tab; this tab goes on with it instead of a login that would replace it. Whether it did. */
async function resumedFromDevice() {
  let session;
  try {
    session = await citylogin.resume();
  } catch (error) {
    notifyError(error);
    return false;
  }
  if (!session) return false;
  enterHome({ username: session.username, deviceId: session.deviceId, deviceName: session.deviceName },
    { resumed: true });
  return true;
}

/** An app's sign-in request (`#oidc=`, or one this tab was signing in for before a reload); not at /device,
 * whose sign-in is for the screen's code. */
async function takeAppRequest() {
  if (deviceFlow || !appRequestInView()) return;
  appSignIn = await import("./oidc.js");
  appSignIn.initAppSignIn();
  await appSignIn.takeAppRequest().catch((error) => notifyError(error));
}

/** At /device: the screen's code (`?user_code=`, or one this tab was approving before a sign-in or a reload). */
async function takeDeviceCode() {
  if (location.pathname !== "/device") return;
  deviceFlow = await import("./device_flow.js");
  deviceFlow.takeUserCode();
  deviceFlow.initDeviceFlow({ signedIn, signIn: () => showAuth() });
}

/** An app's logout (`#oidc-logout=`, SPEC §14, RP-initiated), answered before wire(): a session that ends
 * here for the app is no news from elsewhere. {banner, redirectTo}, {error}, or null (none, or kept). */
async function takeAppLogout() {
  if (!location.hash.startsWith("#oidc-logout")) return null;
  try {
    const outcome = await (await import("./oidc_logout.js")).takeAppLogout();
    if (outcome && !citylogin.session) sessionStorage.removeItem(ACCOUNT_KEY);
    return outcome;
  } catch (error) {
    return { error };
  }
}

async function boot() {
  await setLocale(initialLocale()).catch(() => setLocale("en"));
  if (!window.isSecureContext || !window.crypto?.subtle || !window.indexedDB) {
    $("#insecure-origin").textContent = location.origin;
    $("#insecure").hidden = false;
    return;
  }
  const appLogout = await takeAppLogout();
  if (appLogout?.redirectTo) {
    showAuth({ banner: appLogout.banner });     // "You signed out of <app>", on the way back to it
    location.assign(appLogout.redirectTo);
    return;
  }
  wire();
  if (appLogout?.error) notifyError(appLogout.error);
  showLocale(currentLocale());
  const paired = takePairingLink();
  takeAccountLink();
  await takeDeviceCode();
  await takeAppRequest();
  for (const field of DEVICE_NAME_FIELDS) $(field).value = guessDeviceName();
  offerProviders();
  if (await takeFederation().catch((error) => notifyError(error))) return;
  const account = storedAccount();
  if (account && citylogin.session && await resumed()) {
    await arrive(account, { resumed: true }).catch((error) => {
      notifyError(error);
      enterHome(account, { resumed: true });
    });
    return;
  }
  if (deviceFlow) {
    await deviceFlow.open();    // signed in here or not: the approval signs in when the person approves
    return;
  }
  // Single sign-on: this browser's device may have a live session in another tab
  if (appSignIn?.appWaiting() && await appSignIn.signInWithDevice().catch((error) => {
    notifyError(error);
    return false;
  })) return;
  if (appSignIn?.appWaiting() && appSignIn.silent()) {
    await appSignIn.declineForApp("login_required");   // prompt=none and nobody signed in here: no page
    return;
  }
  // A pairing link is for a browser that joins an account: it stays on the pair form.
  if (!appSignIn?.appWaiting() && !paired && await resumedFromDevice()) return;
  if (!$("#auth-screen").hidden) return;   // sessionEnded() has shown the login screen and why
  showAuth({ tab: paired ? "pair" : "login",
             banner: appLogout?.banner || null });
  const last = await citylogin.lastUsedDevice().catch(() => null);
  if (last && !$("#login-username").value) $("#login-username").value = last.username;
}

boot();
