// The session as this tab holds it, behind citylogin.js's Citylogin: the access token in memory, the
// refresh token in `storage`, the device key that signs the DPoP proofs (SPEC §12); every authenticated
// call, the tokens' refresh, and the session's end however it is learnt (a 401, a 403 account_locked,
// the live event stream), told to the onSessionEnded handlers.

import { CityloginError, asksForNonce, expiresAt, jsonInit, networkError, problemOf, readJson } from "./http.js";
import { RESUME_PURPOSE, dpopProof, findDevice, signChallenge } from "./keystore.js";
import { watchSession } from "./session_stream.js";

const REFRESH_KEY = "citylogin.refresh_token";
const SESSION_KEY = "citylogin.session";
const DPOP = "DPoP";
// 401s about what the person typed or signed (a password asked again, a renewal proof, a fresh login an
// app asked for, an operator's action that wants the password first), not the session.
const NOT_ABOUT_THE_SESSION = new Set(["invalid_credentials", "invalid_proof", "invalid_recovery_code",
  "login_required", "reauthentication_required"]);
// An app's own API may not say token_expired: its calls refresh a token this close to its end first.
const EARLY_REFRESH_MS = 10000;

export class TabSession {
  #baseUrl;
  #storage;
  #locale;
  #accessToken = null;
  #tokenType = "Bearer";    // "DPoP" once the server bound the session to the device key
  #device = null;           // the keystore record of the session's device (its key signs the proofs)
  #nonces = new Map();      // origin → its latest DPoP-Nonce, kept once that server asked for one
  #generation = 0;          // bumps on every login/logout, so late answers of an old session are ignored
  #refreshing = null;       // one refresh at a time: the server rotates refresh tokens
  #listeners = new Set();
  #stopStream = null;
  #quiet = false;           // no stream while this session ends itself everywhere
  #lent = false;            // resumed: the device's live session lent this tab its access token, no refresh token

  /** baseUrl: where citylogin answers; storage: where the refresh token is kept; locale: a function giving
   * the language tag to ask for. */
  constructor({ baseUrl, storage, locale }) {
    this.#baseUrl = baseUrl;
    this.#storage = storage;
    this.#locale = locale;
  }

  get baseUrl() {
    return this.#baseUrl;
  }

  locale() {
    return this.#locale();
  }

  get session() {
    if (!this.hasSession()) return null;
    const stored = JSON.parse(this.#storage.getItem(SESSION_KEY) || "null");
    const tokenType = this.#accessToken && this.#tokenType;
    return stored && { ...stored, accessToken: this.#accessToken, tokenType };
  }

  hasSession() {
    return this.#accessToken !== null || this.#storage.getItem(REFRESH_KEY) !== null;
  }

  /** A device's live session lends this tab its access token (POST /session/resume's `answer`). */
  lend(answer, device) {
    const session = this.#hold(answer, device, { deviceName: answer.device_name, refreshToken: null });
    this.watch();
    return { ...session, apps: answer.apps || [] };
  }

  /** A login's tokens: this tab holds the session now (the caller starts the stream: watch()). */
  begin(tokens, device) {
    return this.#hold(tokens, device, { deviceName: device.deviceName, refreshToken: tokens.refresh_token });
  }

  /** A new session in this tab, or a new loan of one (no refresh token: the tab that logged in keeps it),
   * kept in `storage`; answers of the one before are ignored from now. */
  #hold(tokens, device, { deviceName, refreshToken }) {
    this.#generation += 1;
    this.#take(tokens);
    this.#device = device;
    this.#lent = refreshToken === null;
    if (this.#lent) this.#storage.removeItem(REFRESH_KEY);
    else this.#storage.setItem(REFRESH_KEY, refreshToken);
    const session = { username: device.username, deviceId: tokens.device_id, deviceName };
    this.#storage.setItem(SESSION_KEY, JSON.stringify(session));
    return session;
  }

  /** The access token of a login, a refresh or a loan, and its type ("DPoP" once the session is bound). */
  #take(tokens) {
    this.#accessToken = tokens.access_token;
    this.#tokenType = tokens.token_type || "Bearer";
  }

  /** A call with no token but a DPoP proof by the device key: login, confirm and refresh bind the session. */
  async bind(device, method, path, body) {
    return readJson(await this.#send(this.url(path), jsonInit(method, body, this.#locale()), { device }));
  }

  /** The live session of `device`, lent to this tab (POST /session/resume, a fresh challenge signed). */
  async resumeWith(device) {
    const { challenge } = await this.request("POST", "/login/challenge", { auth: false, body: {} });
    const signature = await signChallenge(device.keyPair.privateKey, challenge, RESUME_PURPOSE);
    return this.bind(device, "POST", "/session/resume", { client_cert: device.clientCert, challenge, signature });
  }

  /** Runs a call that ends this session among others: its own revocation event is not news from elsewhere. */
  async endHere(call) {
    this.#unwatch();
    this.#quiet = true;
    try {
      await call();
    } catch (error) {
      this.#quiet = false;
      if (!error.sessionEnded) this.watch();
      throw error;
    }
    this.#quiet = false;
    this.clear();
  }

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
    if (!refresh_token && this.#lent) return this.#resumeAgain(started);
    if (!refresh_token) throw new CityloginError(401, { code: "session_revoked" });
    const pair = await this.bind(await this.deviceOfSession(), "POST", "/session/refresh", { refresh_token });
    if (started !== this.#generation) return;
    this.#take(pair);
    this.#storage.setItem(REFRESH_KEY, pair.refresh_token);
    this.watch();
  }

  /** A resumed tab's access token ran out: the device's live session lends it another; a device with none
   * left means the session is over here too. */
  async #resumeAgain(started) {
    let answer;
    try {
      answer = await this.resumeWith(await this.deviceOfSession());
    } catch (error) {
      if (error.code === "login_required") throw new CityloginError(401, { code: "session_revoked" });
      throw error;
    }
    if (started !== this.#generation) return;
    this.#take(answer);
    this.watch();
  }

  onSessionEnded(handler) {
    this.#listeners.add(handler);
    this.watch();
    return () => {
      this.#listeners.delete(handler);
      if (!this.#listeners.size) this.#unwatch();
    };
  }

  async fetch(input, init = {}) {
    return (await this.#authorized(this.url(input), init)).response;
  }

  async authHeaders(method, url) {
    if (!this.#accessToken) await this.refresh();
    const headers = new Headers();
    await this.#sign(headers, method.toUpperCase(), this.url(url), await this.#credentials());
    return Object.fromEntries(headers);
  }

  async request(method, path, { body, auth = true } = {}) {
    const init = jsonInit(method, body, this.#locale());
    if (!auth) return readJson(await this.#send(this.url(path), init));
    const { response, ended } = await this.#authorized(this.url(path), init);
    try {
      return await readJson(response);
    } catch (error) {
      error.sessionEnded = ended;
      throw error;
    }
  }

  url(input) {
    return /^[a-z][a-z0-9+.-]*:/i.test(String(input)) ? String(input) : this.#baseUrl + input;
  }

  #isCitylogin(url) {
    return url.startsWith(`${this.#baseUrl}/`);
  }

  /** The device whose key signs this session's proofs (after a reload: read from IndexedDB again). */
  async deviceOfSession() {
    const username = this.session?.username;
    if (!this.#device && username) this.#device = await findDevice(username);
    if (!this.#device) throw noDeviceKey(username);
    return this.#device;
  }

  /** Sets `token` (as DPoP when `device` signs, else Bearer) and, when `device` is given, a proof by
   * its key for `method url` (with the nonce of that server, once it asked for one). */
  async #sign(headers, method, url, { token = null, device = null }) {
    if (token) headers.set("Authorization", `${device ? DPOP : "Bearer"} ${token}`);
    if (!device) return;
    const nonce = this.#nonces.get(new URL(url).origin);
    headers.set("DPoP", await dpopProof(device.keyPair, { method, url, accessToken: token, nonce }));
  }

  /** One request, signed by #sign. A 401 use_dpop_nonce is answered once with a proof carrying the
   * nonce the server sent; from then on that server's latest DPoP-Nonce goes into every proof to it. */
  async #send(url, init, { token = null, device = null } = {}) {
    const method = (init.method || "GET").toUpperCase();
    const origin = new URL(url).origin;
    for (let attempt = 1; ; attempt += 1) {
      const headers = new Headers(init.headers);
      await this.#sign(headers, method, url, { token, device });
      let response;
      try {
        response = await fetch(url, { cache: "no-store", ...init, headers });
      } catch {
        throw networkError();
      }
      if (!device) return response;
      const nonce = response.headers.get("DPoP-Nonce");
      const asked = attempt === 1 && nonce !== null && await asksForNonce(response);
      if (nonce && (asked || this.#nonces.has(origin))) this.#nonces.set(origin, nonce);
      if (!asked) return response;
    }
  }

  /** The token and the key for an authenticated call: the device signs only for a bound session. */
  async #credentials() {
    const token = this.#accessToken;
    return { token, device: this.#tokenType === DPOP ? await this.deviceOfSession() : null };
  }

  /** {response, ended}: the call with the token, one refresh and retry on token_expired. */
  async #authorized(url, init) {
    const started = this.#generation;
    const own = this.#isCitylogin(url);
    const early = this.#accessToken && expiresAt(this.#accessToken) * 1000 - Date.now() < EARLY_REFRESH_MS;
    if (!this.#accessToken || (!own && early)) await this.refresh();
    let response = await this.#send(url, init, await this.#credentials());
    let problem = response.status === 401 ? await problemOf(response) : {};
    if (problem.code === "token_expired" && started === this.#generation) {
      await this.refresh();
      response = await this.#send(url, init, await this.#credentials());
      problem = response.status === 401 ? await problemOf(response) : {};
    }
    if (own && response.status === 403) problem = await problemOf(response);
    // Another server's 401 may be about anything; only its word that the session ended counts.
    const over = (response.status === 401 && (own || problem.code === "session_revoked")) || locked(problem);
    return { response, ended: over && this.#endIfOver(problem, started) };
  }

  #sessionCheck(error, started) {
    if ((error.status !== 401 && !locked(error.problem)) || error.sessionEnded) return error;
    error.sessionEnded = this.#endIfOver(error.problem, started);
    return error;
  }

  /** Whether a 401's problem says the session is over; if so and it is still this session, ends it. */
  #endIfOver(problem, started) {
    if (NOT_ABOUT_THE_SESSION.has(problem.code)) return false;
    if (started === this.#generation) {
      this.#end(endingOf(problem));
    }
    return true;
  }

  /** `ending`: what the server said of it ({reason, ...}, see onSessionEnded), or null. */
  #end(ending) {
    if (!this.hasSession()) return;
    this.clear();
    const whole = completeEnding(ending);
    for (const handler of [...this.#listeners]) handler(whole.reason, whole);
  }

  clear() {
    this.#generation += 1;
    this.#accessToken = null;
    this.#tokenType = "Bearer";
    this.#device = null;
    this.#lent = false;
    this.#refreshing = null;
    this.#unwatch();
    this.#storage.removeItem(REFRESH_KEY);
    this.#storage.removeItem(SESSION_KEY);
  }

  /** Opens the live event stream, if a handler listens and the session has a token. */
  watch() {
    if (this.#stopStream || this.#quiet || !this.#listeners.size || !this.#accessToken) return;
    const init = { method: "GET", headers: { Accept: "text/event-stream" } };
    this.#stopStream = watchSession({
      open: (signal) => this.#authorized(`${this.#baseUrl}/session/events`, { ...init, signal }),
      refresh: () => this.refresh(),
      ended: (ending) => { this.#stopStream = null; this.#end(ending); },
    });
  }

  #unwatch() {
    this.#stopStream?.();
    this.#stopStream = null;
  }
}

/** This browser holds no key for the account (`username` is "" when only a passkey named the account). */
export function noDeviceKey(username) {
  return new CityloginError(0, { code: "no_device_key", username });
}

/** The ending a 401 or 403 gives: session_revoked's `reason` with who ended it (an invalid_dpop_proof's
 * `reason` says what is wrong with the proof, not why a session ended), refresh_reuse for a reused refresh
 * token, and for a locked account what its event stream says: an operator's lock. */
function endingOf(problem) {
  if (problem.code === "session_revoked") return problem;
  if (locked(problem)) return { reason: "admin", admin_action: "locked" };
  return { reason: problem.code === "refresh_token_reused" ? "refresh_reuse" : null };
}

/** Whether a problem says the account is locked by an operator: its sessions are over (SPEC §4). */
function locked(problem) {
  return problem?.code === "account_locked";
}

const ENDING_MEMBERS = ["reason", "by_device", "by_app", "by_app_name", "admin_action"];

/** Every member of an ending, null where the server said nothing. */
function completeEnding(said) {
  return Object.fromEntries(ENDING_MEMBERS.map((name) => [name, said?.[name] || null]));
}
