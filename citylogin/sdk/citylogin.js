// The citylogin web SDK: everything a browser front end does with citylogin, as one ES module
// (documented in docs/sdk.md, typed by citylogin.d.ts next to it). The device key lives in IndexedDB,
// the access token only in memory, the refresh token in `storage` (sessionStorage by default: per
// tab, dropped when the tab closes) so that a reload keeps the session; both are dropped on logout
// and on any revocation.

import { CityloginError, expiresAt, jsonInit, networkError, problemOf, readJson } from "./http.js";
import {
  LOGIN_PURPOSE, RENEW_PURPOSE, createDeviceKey, findDevice, forgetDevice, lastUsedDevice, markUsed,
  publicKeyPem, replaceCertificate, saveDevice, signChallenge,
} from "./keystore.js";
import { watchSession } from "./session_stream.js";

export { CityloginError };

const REFRESH_KEY = "citylogin.refresh_token";
const SESSION_KEY = "citylogin.session";
// 401s about what the person typed or signed (a password asked again, a renewal proof), not the session.
const NOT_ABOUT_THE_SESSION = new Set(["invalid_credentials", "invalid_proof", "invalid_recovery_code"]);
// An app's own API may not say token_expired: its calls refresh a token this close to its end first.
const EARLY_REFRESH_MS = 10000;

/** A login refused with 409 concurrent_login: the account is at its device limit. `confirm()` logs in
 * anyway and logs the devices in `activeDevices` out (as the concurrency policy decides). */
export class ConcurrentLogin {
  constructor(problem, confirm) {
    this.activeDevices = problem.active_devices || [];
    this.problem = problem;
    this.confirm = confirm;
  }
}

export class Citylogin {
  #baseUrl;
  #storage;
  #locale;
  #accessToken = null;
  #generation = 0;          // bumps on every login/logout, so late answers of an old session are ignored
  #refreshing = null;       // one refresh at a time: the server rotates refresh tokens
  #listeners = new Set();
  #stopStream = null;
  #quiet = false;           // no stream while this session ends itself everywhere

  /** baseUrl: where citylogin answers (by default the origin this module was loaded from);
   * storage: where the refresh token is kept; locale: a language tag, or a function giving one. */
  constructor({ baseUrl, storage, locale } = {}) {
    this.#baseUrl = (baseUrl || new URL("..", import.meta.url).href).replace(/\/+$/, "");
    this.#storage = storage || globalThis.sessionStorage;
    this.#locale = typeof locale === "function" ? locale : () => locale || "";
  }

  get baseUrl() {
    return this.#baseUrl;
  }

  /** The signed-in session {username, deviceId, deviceName, accessToken}, or null. After a reload the
   * access token is null until the first call or refresh(). */
  get session() {
    if (!this.#hasSession()) return null;
    const stored = JSON.parse(this.#storage.getItem(SESSION_KEY) || "null");
    return stored && { ...stored, accessToken: this.#accessToken };
  }

  /** A new account with this browser as its first device (POST /registration/); resolves with the
   * 201 body (`uuid`, `device_id`, `recovery_codes`, ...). */
  #hasSession() {
    return this.#accessToken !== null || this.#storage.getItem(REFRESH_KEY) !== null;
  }

  async register({ username, email, password, deviceName, deviceClass, locale }) {
    return this.#enrol("/registration/", username, {
      username, email, password, locale: locale || this.#locale() || undefined,
    }, { deviceName, deviceClass });
  }

  /** This browser as a further device of an account, with the pairing link or payload a signed-in
   * device showed (POST /device/register). */
  async pairWithToken({ qrCode, username, password, deviceName, deviceClass }) {
    return this.#enrol("/device/register", username, { qr_code: qrCode, username, password },
      { deviceName, deviceClass });
  }

  /** A new key for an account whose devices are all lost, with one recovery code (POST /device/recover). */
  async recover({ username, password, recoveryCode, unbindOtherDevices = false, deviceName, deviceClass }) {
    return this.#enrol("/device/recover", username, {
      username, password, recovery_code: recoveryCode, unbind_other_devices: unbindOtherDevices,
    }, { deviceName, deviceClass });
  }

  async #enrol(path, username, fields, { deviceName, deviceClass }) {
    const keyPair = await createDeviceKey();
    const issued = await this.request("POST", path, { auth: false, body: {
      ...fields, device_name: deviceName || undefined, device_class: deviceClass || guessDeviceClass(),
      public_key: await publicKeyPem(keyPair),
    } });
    await saveDevice(username, keyPair, issued);
    return issued;
  }

  /** Password plus a signature by this browser's device key. Resolves with the session, or with a
   * ConcurrentLogin when the account is at its device limit (`confirm: true` continues at once). */
  async login({ username, password, confirm = false }) {
    const device = await findDevice(username);
    if (!device) throw new CityloginError(0, { code: "no_device_key", username });
    const { challenge } = await this.request("POST", "/login/challenge", { auth: false, body: {} });
    const signature = await signChallenge(device.keyPair.privateKey, challenge, LOGIN_PURPOSE);
    let tokens;
    try {
      tokens = await this.request("POST", "/login/", { auth: false, body: {
        username, password, client_cert: device.clientCert, challenge, signature } });
    } catch (error) {
      if (error.code !== "concurrent_login") throw error;
      const pending = new ConcurrentLogin(error.problem, async () => this.#begin(await this.request(
        "POST", "/login/confirm", { auth: false, body: { confirm_token: error.problem.confirm_token } }), device));
      return confirm ? pending.confirm() : pending;
    }
    return this.#begin(tokens, device);
  }

  async #begin(tokens, device) {
    this.#generation += 1;
    this.#accessToken = tokens.access_token;
    const session = { username: device.username, deviceId: tokens.device_id, deviceName: device.deviceName };
    this.#storage.setItem(REFRESH_KEY, tokens.refresh_token);
    this.#storage.setItem(SESSION_KEY, JSON.stringify(session));
    await markUsed(device);
    if (tokens.renew_certificate) this.#renewInBackground();
    this.#watch();
    return session;
  }

  /** Ends this session on the server, then here (even if the server call fails). */
  async logout() {
    try {
      await this.request("POST", "/session/logout");
    } finally {
      this.#clear();
    }
  }

  /** Ends every session of the account, this one too (POST /session/logout_all). */
  async logoutAll() {
    await this.#endHere(() => this.request("POST", "/session/logout_all", { body: { include_current: true } }));
  }

  /** Deletes the account (DELETE /account, the password asked again); this browser forgets the
   * account's device key and the session ends. The live stream may tell the onSessionEnded handlers
   * (reason account_deleted) before this resolves. */
  async deleteAccount({ password }) {
    const username = this.session?.username;
    await this.request("DELETE", "/account", { body: { password } });
    if (username) await forgetDevice(username).catch(() => {});
    this.#clear();
  }

  /** Runs a call that ends this session among others: its own revocation event is not news from elsewhere. */
  async #endHere(call) {
    this.#unwatch();
    this.#quiet = true;
    try {
      await call();
    } catch (error) {
      this.#quiet = false;
      if (!error.sessionEnded) this.#watch();
      throw error;
    }
    this.#quiet = false;
    this.#clear();
  }

  /** Rotates the token pair (POST /session/refresh); concurrent callers share one request. */
  refresh() {
    if (!this.#refreshing) {
      const started = this.#generation;
      const attempt = this.#rotate(started).catch((error) => { throw this.#sessionCheck(error, started); });
      const release = () => { if (this.#refreshing === attempt) this.#refreshing = null; };
      attempt.then(release, release);
      this.#refreshing = attempt;
    }
    return this.#refreshing;
  }

  async #rotate(started) {
    const refresh_token = this.#storage.getItem(REFRESH_KEY);
    if (!refresh_token) throw new CityloginError(401, { code: "session_revoked" });
    const pair = await this.request("POST", "/session/refresh", { auth: false, body: { refresh_token } });
    if (started !== this.#generation) return;
    this.#accessToken = pair.access_token;
    this.#storage.setItem(REFRESH_KEY, pair.refresh_token);
    this.#watch();
  }

  /** `handler(reason)` runs when the server says the session is over: on the live event stream
   * (GET /session/events, open while a handler is registered) or in a 401. Returns a function that
   * removes the handler. */
  onSessionEnded(handler) {
    this.#listeners.add(handler);
    this.#watch();
    return () => {
      this.#listeners.delete(handler);
      if (!this.#listeners.size) this.#unwatch();
    };
  }

  /** window.fetch with the session's Bearer token: a path is citylogin's, a full URL may be an app's
   * own API. Refreshes and retries once on 401 token_expired; a 401 that says the session is over
   * ends it here. Rejects with CityloginError when there is no session or no answer. */
  async fetch(input, init = {}) {
    return (await this.#authorized(this.#url(input), init)).response;
  }

  /** A JSON call to citylogin: resolves with the answer's JSON (null for 204), rejects with
   * CityloginError. `auth: false` sends no token (registration, login, e-mailed links). */
  async request(method, path, { body, auth = true } = {}) {
    const init = jsonInit(method, body, this.#locale());
    if (!auth) return readJson(await this.#send(this.#url(path), init, null));
    const { response, ended } = await this.#authorized(this.#url(path), init);
    try {
      return await readJson(response);
    } catch (error) {
      error.sessionEnded = ended;
      throw error;
    }
  }

  /** Certifies this device's current key again (POST /device/renew, a signature over a fresh
   * challenge) and keeps the new certificate; login does it by itself when the server asks. */
  async renewCertificate() {
    const device = await findDevice(this.session?.username || "");
    if (!device) throw new CityloginError(0, { code: "no_device_key" });
    const { challenge } = await this.request("POST", "/login/challenge", { auth: false, body: {} });
    const signature = await signChallenge(device.keyPair.privateKey, challenge, RENEW_PURPOSE);
    const renewed = await this.request("POST", "/device/renew", { body: { challenge, signature } });
    await replaceCertificate(device, renewed);
    return renewed;
  }

  /** The account this browser logged in with last ({username, deviceId, deviceName}), or null. */
  async lastUsedDevice() {
    const record = await lastUsedDevice();
    return record && { username: record.username, deviceId: record.deviceId, deviceName: record.deviceName };
  }

  /** Forgets this browser's device key for `username` (after the account was deleted). */
  forgetDevice(username) {
    return forgetDevice(username);
  }

  #url(input) {
    return /^[a-z][a-z0-9+.-]*:/i.test(String(input)) ? String(input) : this.#baseUrl + input;
  }

  #isCitylogin(url) {
    return url.startsWith(`${this.#baseUrl}/`);
  }

  async #send(url, init, token) {
    const headers = new Headers(init.headers);
    if (token) headers.set("Authorization", `Bearer ${token}`);
    try {
      return await fetch(url, { cache: "no-store", ...init, headers });
    } catch {
      throw networkError();
    }
  }

  /** {response, ended}: the call with the token, one refresh and retry on token_expired. */
  async #authorized(url, init) {
    const started = this.#generation;
    const own = this.#isCitylogin(url);
    const early = this.#accessToken && expiresAt(this.#accessToken) * 1000 - Date.now() < EARLY_REFRESH_MS;
    if (!this.#accessToken || (!own && early)) await this.refresh();
    let response = await this.#send(url, init, this.#accessToken);
    let problem = response.status === 401 ? await problemOf(response) : {};
    if (problem.code === "token_expired" && started === this.#generation) {
      await this.refresh();
      response = await this.#send(url, init, this.#accessToken);
      problem = response.status === 401 ? await problemOf(response) : {};
    }
    // Another server's 401 may be about anything; only its word that the session ended counts.
    const over = response.status === 401 && (own || problem.code === "session_revoked");
    return { response, ended: over && this.#endIfOver(problem, started) };
  }

  #sessionCheck(error, started) {
    if (error.status !== 401 || error.sessionEnded) return error;
    error.sessionEnded = this.#endIfOver(error.problem, started);
    return error;
  }

  /** Whether a 401's problem says the session is over; if so and it is still this session, ends it. */
  #endIfOver(problem, started) {
    if (NOT_ABOUT_THE_SESSION.has(problem.code)) return false;
    if (started === this.#generation) {
      this.#end(problem.reason || (problem.code === "refresh_token_reused" ? "refresh_reuse" : null));
    }
    return true;
  }

  #end(reason) {
    if (!this.#hasSession()) return;
    this.#clear();
    for (const handler of [...this.#listeners]) handler(reason || null);
  }

  #clear() {
    this.#generation += 1;
    this.#accessToken = null;
    this.#refreshing = null;
    this.#unwatch();
    this.#storage.removeItem(REFRESH_KEY);
    this.#storage.removeItem(SESSION_KEY);
  }

  #watch() {
    if (this.#stopStream || this.#quiet || !this.#listeners.size || !this.#accessToken) return;
    if (!globalThis.EventSource) return;
    this.#stopStream = watchSession({
      streamUrl: (token) => `${this.#baseUrl}/session/events?access_token=${encodeURIComponent(token)}`,
      accessToken: () => this.#accessToken,
      refresh: () => this.refresh(),
      check: () => this.request("GET", "/session/me"),
      ended: (reason) => { this.#stopStream = null; this.#end(reason); },
    });
  }

  #unwatch() {
    this.#stopStream?.();
    this.#stopStream = null;
  }

  #renewInBackground() {
    // Only a warning with the error's code reaches the console, never a token or key; the next login asks again.
    this.renewCertificate().catch((error) => {
      console.warn(`citylogin: the device certificate could not be renewed (${error?.code || error?.name ||
        "error"}); the next login tries again.`);
    });
  }
}

/** What kind of device this browser runs on (a concurrency policy's device classes). */
function guessDeviceClass() {
  const ua = navigator.userAgent;
  if (/iPad|Tablet/.test(ua) || (/Android/.test(ua) && !/Mobile/.test(ua))) return "tablet";
  if (navigator.userAgentData?.mobile || /Mobi|iPhone|Android/.test(ua)) return "mobile";
  return "desktop";
}
