// The citylogin web app: the signed-out screen (log in, create account, pair this browser, forgot
// password, recover), the signed-in screen (devices, sessions, history, add a device, account) and
// the moves between them.

import { initAccount, loadAccount, resetAccount } from "./account.js";
import { initActivity, loadHistory, loadSessions, resetActivity } from "./activity.js";
import * as api from "./api.js";
import * as auth from "./auth.js";
import { initCodes, showRecoveryCodes } from "./codes.js";
import { initDevices, loadDevices, resetDevices } from "./devices.js";
import { watchSession } from "./events.js";
import { lastUsedDevice } from "./keystore.js";
import { initLinks, takeAccountLink } from "./links.js";
import { initPairing, resetPairing } from "./pairing.js";
import { $, busy, clearMessage, el, guessDeviceName, modal, timeEl } from "./ui.js";

const ACCOUNT_KEY = "citylogin.account";   // who is signed in in this tab, kept next to the refresh token

// SPEC §4 revocation reasons, as the person should read them.
const ENDED_MESSAGES = {
  displaced: "Signed in on another device",
  remote_logout: "Logged out from another device",
  logged_out: "Logged out from another device",
  device_unbound: "This device was removed",
  idle_timeout: "Session timed out",
  max_lifetime: "Session timed out",
  refresh_reuse: "Session ended for security",
  password_changed: "The password was changed",
  password_reset: "The password was reset",
  account_deleted: "This account was deleted",
};

// Codes whose server detail gets a hint of what to do next (recovery, SPEC §4 POST /device/recover).
const HINTS = {
  device_revoked: " This browser was removed from the account; pair it again with a code from another device.",
  invalid_recovery_code: " Check the code, or try another one: each code works only once.",
  device_limit_reached: " Tick “Remove my other devices” to make room, or remove one from a device that still works.",
};

const LOADERS = { devices: loadDevices, sessions: loadSessions, history: () => loadHistory(), account: loadAccount };

let stopWatching = () => {};

function selectTab(screen, name) {
  for (const button of screen.querySelectorAll(".tabs button")) {
    if (button.dataset.tab === name) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
  for (const panel of screen.querySelectorAll("[data-panel]")) panel.hidden = panel.dataset.panel !== name;
  LOADERS[name]?.();
}

function setBanner(banner) {
  const node = $("#banner");
  node.replaceChildren();
  node.hidden = !banner;
  if (!banner) return;
  node.className = `banner ${banner.kind}`;
  node.append(el("strong", {}, banner.text), banner.more ? ` ${banner.more}` : "");
}

function showAuth({ tab = "login", banner = null } = {}) {
  $("#home-screen").hidden = true;
  $("#whoami").hidden = true;
  $("#auth-screen").hidden = false;
  setBanner(banner);
  selectTab($("#auth-screen"), tab);
}

function storedAccount() {
  return JSON.parse(sessionStorage.getItem(ACCOUNT_KEY) || "null");
}

function rememberAccount(account) {
  sessionStorage.setItem(ACCOUNT_KEY, JSON.stringify(account));
  $("#whoami-text").textContent = `${account.username} · ${account.deviceName}`;
  $("#whoami").hidden = false;
}

function enterHome(account) {
  for (const input of document.querySelectorAll("input[type=password]")) input.value = "";
  rememberAccount(account);
  $("#auth-screen").hidden = true;
  $("#home-screen").hidden = false;
  selectTab($("#home-screen"), "devices");
  stopWatching();
  stopWatching = watchSession();
}

function leaveHome(banner) {
  const account = storedAccount();
  stopWatching();
  stopWatching = () => {};
  sessionStorage.removeItem(ACCOUNT_KEY);
  for (const dialog of document.querySelectorAll("dialog[open]")) dialog.close();
  resetDevices();
  resetActivity();
  resetPairing();
  resetAccount();
  showAuth({ banner });
  if (account) $("#login-username").value = account.username;
}

function sessionEnded(reason) {
  leaveHome({ kind: "alert", text: ENDED_MESSAGES[reason] || "Session ended", more: "Log in again to continue." });
}

/** Logs in; a 409 concurrent_login asks whether to log the other device out (SPEC §5). */
async function logIn(username, password) {
  const form = $("#login-form");
  form.username.value = username;
  clearMessage($(".note", form));
  await busy(form, async () => {
    try {
      enterHome(await auth.login({ username, password }));
    } catch (error) {
      if (error.code !== "concurrent_login") throw withHint(error);
      await resolveConflict(username, error.problem);
    }
  });
}

async function resolveConflict(username, problem) {
  $("#concurrent-devices").replaceChildren(...(problem.active_devices || []).map((device) =>
    el("li", {}, el("strong", {}, device.device_name), el("span", { className: "muted" }, " · signed in "),
      timeEl(device.login_at))));
  if ((await modal($("#concurrent-dialog"))) !== "continue") {
    const note = $("#login-form .note");
    note.textContent = "Not logged in. The other device stays signed in.";
    note.hidden = false;
    return;
  }
  enterHome(await auth.confirmLogin({ username, confirmToken: problem.confirm_token }));
}

function withHint(error) {
  if (HINTS[error.code]) error.message += HINTS[error.code];
  return error;
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
  const issued = await busy(form, () => auth.register({
    username: v.username, email: v.email, password: v.password, deviceName: v.device_name }));
  if (!issued) return;
  form.reset();
  if (issued.recovery_codes?.length) await showRecoveryCodes(issued.recovery_codes);
  form.device_name.value = guessDeviceName();
  selectTab($("#auth-screen"), "login");
  await logIn(v.username, v.password);
}

async function submitPair(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const v = formValues(form);
  const issued = await busy(form, () => auth.pair({
    qrCode: v.qr_code, username: v.username, password: v.password, deviceName: v.device_name }));
  if (!issued) return;
  form.reset();
  form.device_name.value = guessDeviceName();
  selectTab($("#auth-screen"), "login");
  await logIn(v.username, v.password);
}

async function submitRecover(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const v = formValues(form);
  const issued = await busy(form, async () => {
    try {
      return await auth.recover({ username: v.username, password: v.password, recoveryCode: v.recovery_code,
        deviceName: v.device_name, unbindOtherDevices: form.unbind_other_devices.checked });
    } catch (error) {
      throw withHint(error);
    }
  });
  if (!issued) return;
  form.reset();
  form.device_name.value = guessDeviceName();
  selectTab($("#auth-screen"), "login");
  await logIn(v.username, v.password);
}

async function logOut() {
  try {
    await auth.logout();
  } catch (error) {
    if (error.sessionEnded) return;       // the banner already says why
  }
  leaveHome({ kind: "info", text: "You have logged out." });
}

/** A `#pair=<payload>` link prefills the pair form; the one-time payload then leaves the address bar. */
function takePairingLink() {
  const match = /^#pair=(.+)$/.exec(location.hash);
  if (!match) return false;
  history.replaceState(null, "", location.pathname + location.search);
  $("#pair-code").value = decodeURIComponent(match[1]);
  return true;
}

function wire() {
  for (const screen of [$("#auth-screen"), $("#home-screen")]) {
    screen.querySelector(".tabs").addEventListener("click", (event) => {
      const tab = event.target.closest("button[data-tab]");
      if (tab) selectTab(screen, tab.dataset.tab);
    });
  }
  $("#login-form").addEventListener("submit", submitLogin);
  $("#register-form").addEventListener("submit", submitRegister);
  $("#pair-form").addEventListener("submit", submitPair);
  $("#recover-form").addEventListener("submit", submitRecover);
  // "Forgot password?", "Lost all my devices?" and "Back to log in" open panels that have no tab.
  $("#auth-screen").addEventListener("click", (event) => {
    const link = event.target.closest("button[data-show]");
    if (link) selectTab($("#auth-screen"), link.dataset.show);
  });
  $("#logout-button").addEventListener("click", logOut);
  window.addEventListener("hashchange", () => {
    if (takePairingLink() && !$("#auth-screen").hidden) selectTab($("#auth-screen"), "pair");
    takeAccountLink();
  });
  // The device list knows this device's current name, also after a rename.
  initDevices({ onCurrent: (device) => {
    const account = storedAccount();
    if (account) rememberAccount({ ...account, deviceName: device.device_name });
  } });
  initActivity();
  initPairing();
  initCodes();
  initAccount({ onDeleted: () => leaveHome({ kind: "info", text: "Your account was deleted.",
    more: "This browser no longer holds its key." }) });
  // A verified address shows on the Account panel at once when it is open.
  initLinks({ verified: () => { if (!$("#account-panel").hidden && !$("#home-screen").hidden) loadAccount(); } });
  api.onSessionEnded(sessionEnded);
}

async function boot() {
  if (!window.isSecureContext || !window.crypto?.subtle || !window.indexedDB) {
    $("#insecure-origin").textContent = location.origin;
    $("#insecure").hidden = false;
    return;
  }
  wire();
  const paired = takePairingLink();
  takeAccountLink();
  $("#register-device").value = guessDeviceName();
  $("#pair-device").value = guessDeviceName();
  $("#recover-device").value = guessDeviceName();
  const account = storedAccount();
  if (account && api.hasSession()) {
    // A reload of a signed-in tab: the refresh token in sessionStorage resumes the session.
    try {
      await api.refreshTokens();
      enterHome(account);
      return;
    } catch (error) {
      if (error.sessionEnded) return;      // sessionEnded() has shown the login screen and why
      api.clearSession();
      sessionStorage.removeItem(ACCOUNT_KEY);
    }
  }
  showAuth({ tab: paired ? "pair" : "login" });
  const last = await lastUsedDevice().catch(() => null);
  if (last && !$("#login-username").value) $("#login-username").value = last.username;
}

boot();
