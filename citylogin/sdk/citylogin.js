// The citylogin web SDK: everything a browser front end does with citylogin, as one ES module
// (documented in docs/guides/web-sdk.md, typed by citylogin.d.ts next to it). The device key lives in IndexedDB,
// the access token only in memory, the refresh token in `storage` (sessionStorage by default: per
// tab, dropped when the tab closes) so that a reload keeps the session; both are dropped on logout
// and on any revocation. Sessions are bound to the device key (DPoP, SPEC §12): login, confirm and
// refresh carry a proof by it, and so does every call with a bound token; no token is ever put in a URL.
// A passkey may stand in for the password at login and wherever the password is asked again; the
// WebAuthn code (webauthn.js) is imported only when a passkey is first used. The session as this tab
// holds it (tokens, proofs, refresh, its end) is tab_session.js's; this module is the public API.

import { CityloginError } from "./http.js";
import {
  DEVICE_FLOW_PURPOSE, LOGIN_PURPOSE, RENEW_PURPOSE, SIGN_OUT_PURPOSE, SSO_PURPOSE, createDeviceKey, deviceOfUser, devicesByUse,
  findDevice, forgetDevice, lastUsedDevice, markUsed, publicKeyPem, replaceCertificate, saveDevice, signChallenge,
} from "./keystore.js";
import { TabSession, noDeviceKey } from "./tab_session.js";

export { CityloginError };

// Single sign-on for an app: this device key cannot (no live session, or a key the server no longer
// knows): the next one may.
const NOT_THIS_DEVICE = new Set(["login_required", "invalid_proof", "device_revoked", "device_not_found",
  "certificate_mismatch", "certificate_expired", "invalid_field"]);
// Approving a TV's code with this device key: as NOT_THIS_DEVICE, where a field that cannot pass is the key's
// (its certificate, the signature); a bad device_name or user_code is the caller's, said as it is.
const KEY_FIELDS = new Set(["client_cert", "challenge", "signature"]);
// Resuming a session in this tab: as NOT_THIS_DEVICE, and a key the session is no longer bound to.
const NOT_RESUMABLE = new Set([...NOT_THIS_DEVICE, "invalid_dpop_proof"]);

/** A login (or a screen's approval) refused with 409 concurrent_login: the account is at its device limit.
 * `action` says what waits: {kind: "login"} (also an app's sign-in and a pairing, which log in), or {kind:
 * "screen", device_name, device_class, client_name} (a TV's code approved here). `activeDevices` lists every
 * device that could be signed out to make room, each with its `session_id`, `current` (the device asking: a
 * phone approving a TV when its own seat could go) and `default` (one the eviction order picks); `needed` of
 * them must go. `confirm(displace)` continues: with no ids the default ones are signed out, as before; with
 * session ids of `activeDevices` (at least `needed`), exactly those. It resolves as the login does, or rejects
 * with CityloginError: `invalid_field` naming `displace` (too few, or one not listed: nothing changed, and
 * this question may be answered again), or `concurrent_login` when a chosen device ended meanwhile, whose
 * `concurrentLogin` is the question asked anew with the devices as they are now. */
export class ConcurrentLogin {
  constructor(problem, confirm) {
    this.problem = problem;
    this.action = problem.action || { kind: "login" };
    this.needed = Math.max(1, Number(problem.needed) || 1);
    this.activeDevices = withDefaults(problem.active_devices || [], this.needed);
    this.confirm = confirm;
  }

  /** The session ids that go when the person keeps the default choice. */
  get defaults() {
    return this.activeDevices.filter((device) => device.default).map((device) => device.session_id);
  }
}

/** The devices as listed, each marked `default` and `current`: a server that marks none lists the devices
 * in its eviction order, so the first `needed` are the ones it would pick. */
function withDefaults(devices, needed) {
  const marked = devices.some((device) => device.default);
  return devices.map((device, index) => ({ ...device, current: Boolean(device.current),
    default: marked ? Boolean(device.default) : index < needed }));
}

/** The body's `displace` for a choice of session ids: none when the person kept the default. */
function chosen(displace) {
  return Array.isArray(displace) && displace.length ? { displace: [...displace] } : {};
}

export class Citylogin {
  #tab;  // the session as this tab holds it

  /** baseUrl: where citylogin answers (by default the origin this module was loaded from);
   * storage: where the refresh token is kept; locale: a language tag, or a function giving one. */
  constructor({ baseUrl, storage, locale } = {}) {
    this.#tab = new TabSession({
      baseUrl: (baseUrl || new URL("..", import.meta.url).href).replace(/\/+$/, ""),
      storage: storage || globalThis.sessionStorage,
      locale: typeof locale === "function" ? locale : () => locale || "",
    });
  }

  get baseUrl() {
    return this.#tab.baseUrl;
  }

  /** The signed-in session {username, deviceId, deviceName, accessToken, tokenType}, or null. After a
   * reload the access token (and its type) is null until the first call or refresh(). */
  get session() {
    return this.#tab.session;
  }

  /** A new account with this browser as its first device (POST /registration/); resolves with the
   * 201 body (`uuid`, `device_id`, `recovery_codes`, ...). */
  async register({ username, email, password, deviceName, deviceClass, locale }) {
    return this.#enrol("/registration/", username, {
      username, email, password, locale: locale || this.#tab.locale() || undefined,
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

  /** The first device of an account that has none (one an import brought, SPEC §17), with its password and the
   * code POST /device/enrol/code mailed to its address (POST /device/enrol); sign in next with login(). */
  async enrolWithCode({ username, password, emailCode, deviceName, deviceClass }) {
    return this.#enrol("/device/enrol", username, { username, password, email_code: emailCode },
      { deviceName, deviceClass });
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
   * ConcurrentLogin when the account is at its device limit (`confirm: true` continues at once).
   * `replacing(live)`, if given, is asked first when this device already has a live session (a login
   * replaces it, and every app signed in on it is signed out): `live` is {sessionId, apps: [{client_id,
   * name}]}; unless it resolves true, nothing is done and login resolves with null. */
  async login({ username, password, confirm = false, replacing = null }) {
    const device = await findDevice(username);
    if (!device) throw noDeviceKey(username);
    return this.#logIn(device, { username, password }, confirm, replacing);
  }

  /** A passkey in place of the password (POST /login/passkey/options, then the browser asks for the
   * passkey), with the same signature by this browser's device key, DPoP proof and ConcurrentLogin as
   * login(). With a username the browser offers that account's passkeys; without, any passkey, and the
   * account it belongs to picks this browser's device key. `replacing` as for login(). */
  async loginWithPasskey({ username, confirm = false, replacing = null } = {}) {
    const named = username ? await findDevice(username) : null;
    if (username && !named) throw noDeviceKey(username);
    const { getAssertion, userHex } = await import("./webauthn.js");
    const passkey = await getAssertion(await this.request("POST", "/login/passkey/options",
      { auth: false, body: { username } }));
    const device = named || await deviceOfUser(userHex(passkey.response.userHandle));
    if (!device) throw noDeviceKey("");
    return this.#logIn(device, { username: device.username, passkey }, confirm, replacing);
  }

  /** An account from elsewhere (SPEC §16): the provider's answer, held by this browser as the ticket cookie,
   * stands in for the password, and this browser's device key for `username` (the account the identity is linked
   * to, or the one signUpWithTicket just made) signs the challenge as login() does (POST /federation/login). The
   * device limit, `confirm` and `replacing` are login()'s; no key for that username here: `no_device_key`. */
  async loginWithTicket({ username, confirm = false, replacing = null }) {
    const device = await findDevice(username);
    if (!device) throw noDeviceKey(username);
    return this.#logIn(device, {}, confirm, replacing, "/federation/login");
  }

  /** A new account for the provider's identity the ticket holds, with this browser as its first device (POST
   * /federation/signup: the person's `username`, no password); sign in next with loginWithTicket(). */
  async signUpWithTicket({ username, deviceName, deviceClass, locale }) {
    return this.#enrol("/federation/signup", username, {
      username, locale: locale || this.#tab.locale() || undefined }, { deviceName, deviceClass });
  }

  /** This browser as a further device of `username`, the account the ticket's identity is linked to, with the
   * pairing link or payload one of its devices showed (POST /federation/pair); sign in next with loginWithTicket(). */
  async pairWithTicket({ qrCode, username, deviceName, deviceClass }) {
    return this.#enrol("/federation/pair", username, { qr_code: qrCode }, { deviceName, deviceClass });
  }

  /** A new key for `username`, the account the ticket's identity is linked to, whose devices are all lost, with
   * one recovery code (POST /federation/recover); sign in next with loginWithTicket(). */
  async recoverWithTicket({ username, recoveryCode, unbindOtherDevices = false, deviceName, deviceClass }) {
    return this.#enrol("/federation/recover", username, {
      recovery_code: recoveryCode, unbind_other_devices: unbindOtherDevices }, { deviceName, deviceClass });
  }

  /** The first device of `username`, the account the ticket's identity is linked to, which has none yet (POST
   * /federation/enrol); sign in next with loginWithTicket(). */
  async enrolWithTicket({ username, deviceName, deviceClass }) {
    return this.#enrol("/federation/enrol", username, {}, { deviceName, deviceClass });
  }

  /** Links the ticket's identity to the account `username` proves with its password and this browser's device
   * key for it, and signs in as login() does (POST /federation/link). */
  async linkWithTicket({ username, password, confirm = false, replacing = null }) {
    const device = await findDevice(username);
    if (!device) throw noDeviceKey(username);
    return this.#logIn(device, { username, password }, confirm, replacing, "/federation/link");
  }

  async #logIn(device, credential, confirm, replacing = null, path = "/login/") {
    if (replacing && !(await this.#mayReplace(device, replacing))) return null;
    const { challenge } = await this.request("POST", "/login/challenge", { auth: false, body: {} });
    const signature = await signChallenge(device.keyPair.privateKey, challenge, LOGIN_PURPOSE);
    let tokens;
    try {
      tokens = await this.#tab.bind(device, "POST", path, {
        ...credential, client_cert: device.clientCert, challenge, signature });
    } catch (error) {
      if (error.code !== "concurrent_login") throw error;
      const pending = this.#pendingLogin(device, error.problem);
      return confirm ? pending.confirm() : pending;
    }
    return this.#begin(tokens, device);
  }

  /** The question of a 409 concurrent_login: confirming sends its confirm_token (POST /login/confirm) with the
   * person's choice, and a fresh 409 (a chosen device ended meanwhile) carries the question asked anew. */
  #pendingLogin(device, problem) {
    return new ConcurrentLogin(problem, async (displace) => {
      let tokens;
      try {
        tokens = await this.#tab.bind(device, "POST", "/login/confirm",
          { confirm_token: problem.confirm_token, ...chosen(displace) });
      } catch (error) {
        if (error.code === "concurrent_login") error.concurrentLogin = this.#pendingLogin(device, error.problem);
        throw error;
      }
      return this.#begin(tokens, device);
    });
  }

  /** Whether a login of `device` may go on: it has no live session, or `replacing` said yes to ending it. */
  async #mayReplace(device, replacing) {
    let live;
    try {
      live = await this.#tab.resumeWith(device);
    } catch (error) {
      if (NOT_RESUMABLE.has(error.code)) return true;
      throw error;
    }
    return (await replacing({ sessionId: live.session_id, apps: live.apps || [] })) === true;
  }

  /** One device, one session, in any tab (POST /session/resume): the live session of this browser's
   * device (each device key here, the last used first) goes on in this tab, without a login that would
   * replace it. The device key signs a fresh challenge and a DPoP proof; the session lends this tab a
   * bound access token and no refresh token (the tab that logged in keeps the session's one rotating
   * refresh token), and this tab resumes again when that token runs out. Resolves with the session
   * {username, deviceId, deviceName, apps}, or null when no device here has a live session. */
  async resume() {
    for (const device of await devicesByUse()) {
      let answer;
      try {
        answer = await this.#tab.resumeWith(device);
      } catch (error) {
        if (NOT_RESUMABLE.has(error.code)) continue;
        throw error;
      }
      return this.#tab.lend(answer, device);
    }
    return null;
  }

  async #begin(tokens, device) {
    const session = this.#tab.begin(tokens, device);
    await markUsed(device);
    if (tokens.renew_certificate) this.#renewInBackground();
    this.#tab.watch();
    return session;
  }

  /** Ends this session on the server, then here (even if the server call fails). */
  async logout() {
    try {
      await this.request("POST", "/session/logout");
    } finally {
      this.#tab.clear();
    }
  }

  /** Ends every session of the account, this one too (POST /session/logout_all). */
  async logoutAll() {
    await this.#tab.endHere(() => this.request("POST", "/session/logout_all", { body: { include_current: true } }));
  }

  /** Deletes the account (DELETE /account, the password asked again, confirmWithPasskey()'s passkey, or a
   * provider's reauth_token);
   * this browser forgets the account's device key and the session ends. The live stream may tell the
   * onSessionEnded handlers (reason account_deleted) before this resolves. */
  async deleteAccount({ password, passkey, reauth_token }) {
    const username = this.session?.username;
    await this.request("DELETE", "/account", { body: { password, passkey, reauth_token } });
    if (username) await forgetDevice(username).catch(() => {});
    this.#tab.clear();
  }

  /** `{passkey}`: an assertion by a passkey of the signed-in account, which an account call (change
   * e-mail or password, new recovery codes, delete the account, add or remove a passkey) takes once
   * in place of the password. */
  async confirmWithPasskey() {
    const { getAssertion } = await import("./webauthn.js");
    const options = await this.request("POST", "/login/passkey/options",
      { auth: false, body: { username: this.session?.username } });
    return { passkey: await getAssertion(options) };
  }

  /** The account's passkeys: [{id, name, created_at, last_used_at, backed_up}]. */
  async passkeys() {
    return (await this.request("GET", "/account/passkeys")).passkeys;
  }

  /** A new passkey for the account, the password (`{password}`) or a passkey (confirmWithPasskey())
   * asked first: creation options, the browser makes the passkey, the server keeps it; resolves with {id, name}. */
  async addPasskey({ password, passkey, reauth_token, name } = {}) {
    const { createCredential } = await import("./webauthn.js");
    const options = await this.request("POST", "/account/passkeys/options",
      { body: { password, passkey, reauth_token } });
    const credential = await createCredential(options);
    return this.request("POST", "/account/passkeys", { body: { credential, name: name || undefined } });
  }

  renamePasskey(id, name) {
    return this.request("PATCH", `/account/passkeys/${encodeURIComponent(id)}`, { body: { name } });
  }

  /** Removes a passkey, the password or a passkey asked first (`{password}` or `{passkey}`). */
  async removePasskey(id, { password, passkey, reauth_token }) {
    await this.request("DELETE", `/account/passkeys/${encodeURIComponent(id)}`,
      { body: { password, passkey, reauth_token } });
  }

  /** Rotates the token pair (POST /session/refresh); concurrent callers share one request. */
  refresh() {
    return this.#tab.refresh();
  }

  /** `handler(reason, ending)` runs when the server says the session is over: on the live event stream
   * (GET /session/events, open while a handler is registered), in a 401, or in a 403 account_locked.
   * `ending` is the whole of what the server said: {reason, by_device, by_app, by_app_name, admin_action}
   * (null where it said nothing). Returns a function that removes the handler. */
  onSessionEnded(handler) {
    return this.#tab.onSessionEnded(handler);
  }

  /** window.fetch with the session's token: a path is citylogin's, a full URL may be an app's own API.
   * A bound session sends `Authorization: DPoP <token>` and a fresh `DPoP` proof for this very request
   * (method and URL, `ath` of the token, the server's nonce once it asked for one); else the Bearer
   * token. Refreshes and retries once on 401 token_expired; a 401 that says the session is over ends
   * it here. Rejects with CityloginError when there is no session or no answer. */
  async fetch(input, init = {}) {
    return this.#tab.fetch(input, init);
  }

  /** The headers that authenticate one request `method url` for a transport other than fetch():
   * `Authorization` and, for a bound session, a `DPoP` proof for exactly that request (single use).
   * Refreshes first when there is no access token yet. */
  async authHeaders(method, url) {
    return this.#tab.authHeaders(method, url);
  }

  /** A JSON call to citylogin: resolves with the answer's JSON (null for 204), rejects with
   * CityloginError. `auth: false` sends no token (registration, e-mailed links). */
  async request(method, path, { body, auth = true } = {}) {
    return this.#tab.request(method, path, { body, auth });
  }

  /** Certifies this device's current key again (POST /device/renew, a signature over a fresh
   * challenge) and keeps the new certificate; login does it by itself when the server asks. */
  async renewCertificate() {
    const device = await findDevice(this.session?.username || "");
    if (!device) throw noDeviceKey(this.session?.username || "");
    const { challenge } = await this.request("POST", "/login/challenge", { auth: false, body: {} });
    const signature = await signChallenge(device.keyPair.privateKey, challenge, RENEW_PURPOSE);
    const renewed = await this.request("POST", "/device/renew", { body: { challenge, signature } });
    await replaceCertificate(device, renewed);
    return renewed;
  }

  /** Single sign-on for an app's waiting OpenID Connect request (SPEC §14): each device key of this
   * browser, the last used first, signs a fresh challenge, and the first whose device has a live
   * citylogin session (opened in another tab, say) finishes the request with it, without a password.
   * Resolves with {redirect_to} (back to the app), or null when no device here has a live session, or
   * the app asks for a fresh sign-in (prompt=login, max_age). Rejects with consent_required when the
   * app asks the person first (call again with `consent: true` once they allow it). */
  async signInForApp(request, { consent = false } = {}) {
    for (const device of await devicesByUse()) {
      const { challenge } = await this.request("POST", "/login/challenge", { auth: false, body: {} });
      const signature = await signChallenge(device.keyPair.privateKey, challenge, SSO_PURPOSE);
      try {
        return await this.request("POST", "/oidc/authorize/device", { auth: false, body: {
          request, client_cert: device.clientCert, challenge, signature, consent } });
      } catch (error) {
        if (!NOT_THIS_DEVICE.has(error.code)) throw error;
      }
    }
    return null;
  }

  /** A TV's or command line's code (RFC 8628's user code, SPEC §14) approved with this browser's single sign-on:
   * each device key here, the last used first, signs a fresh challenge (purpose "citylogin-device-flow:"), and the
   * first whose device has a live citylogin session approves the code as that session's account (POST
   * /oidc/device/approve/device). The screen takes a seat of its own named `deviceName`. Resolves with
   * {status: "approved", session_id, device_name, evicted: [{device_id, device_name}]}, or null when no device
   * here has a live session (the person signs in first). Rejects with concurrent_login (the account is at its
   * device limit): its `concurrentLogin` is the question (`action`, `needed`, `activeDevices` marked `current`
   * and `default`), and its `confirm(displace)` approves again with `force` and the person's choice (no ids: the
   * default ones go); with invalid_field naming `displace` (a choice too small, or of devices not listed),
   * concurrent_login_rejected, invalid_user_code (wrong, used or expired) or rate_limited. `displace` (session
   * ids of the listed devices) names the devices that go instead of the default ones, and is itself the
   * person's go-ahead (as `force`). */
  async approveDeviceWithDevice(userCode, { deviceName, force = false, displace } = {}) {
    for (const device of await devicesByUse()) {
      const { challenge } = await this.request("POST", "/login/challenge", { auth: false, body: {} });
      const signature = await signChallenge(device.keyPair.privateKey, challenge, DEVICE_FLOW_PURPOSE);
      try {
        return await this.request("POST", "/oidc/device/approve/device", { auth: false, body: {
          user_code: userCode, device_name: deviceName, force, ...chosen(displace), client_cert: device.clientCert,
          challenge, signature } });
      } catch (error) {
        if (error.code === "concurrent_login") {
          error.concurrentLogin = new ConcurrentLogin(error.problem, (choice) =>
            this.approveDeviceWithDevice(userCode, { deviceName, force: true, displace: choice }));
        }
        const keysOwn = error.code !== "invalid_field" || KEY_FIELDS.has(error.problem?.field);
        if (!NOT_THIS_DEVICE.has(error.code) || !keysOwn) throw error;
      }
    }
    return null;
  }

  /** An app's logout request (the id of `#oidc-logout=`) answered by this browser's device keys (SPEC §14):
   * resolves with `{redirect_to}` (null: no way back to the app) once a device's live session here has
   * ended — the one the app named, or, with `confirm` (the person said yes), that of the first device here
   * that has one; null when no device here has a live session. Rejects with `logout_confirmation_required`
   * when a device here has a live session the app did not name: ask the person, then call with `confirm`. */
  async signOutForApp(request, { confirm = false } = {}) {
    let asked = null;
    for (const device of await devicesByUse()) {
      const { challenge } = await this.request("POST", "/login/challenge", { auth: false, body: {} });
      const signature = await signChallenge(device.keyPair.privateKey, challenge, SIGN_OUT_PURPOSE);
      try {
        const answer = await this.request("POST", "/oidc/logout/device", { auth: false, body: {
          request, client_cert: device.clientCert, challenge, signature, confirm } });
        if (this.session?.deviceId === device.deviceId) this.#tab.clear();   // a device has one session: this tab's
        return answer;
      } catch (error) {
        if (error.code === "logout_confirmation_required") asked = error;
        else if (!NOT_THIS_DEVICE.has(error.code)) throw error;
      }
    }
    if (asked) throw asked;
    return null;
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
