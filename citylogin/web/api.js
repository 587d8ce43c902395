// HTTP calls to the citylogin API (SPEC §3, §4): JSON in and out, problem+json errors,
// Bearer tokens with one silent refresh on 401 token_expired.
//
// Token storage: the access token lives only in memory. The refresh token is kept in
// sessionStorage so that reloading this tab keeps the session; sessionStorage is per tab
// and is dropped when the tab closes, and it is cleared on logout and on any revocation.

import { currentLocale, t } from "./i18n.js";

const REFRESH_KEY = "citylogin.refresh_token";

let accessToken = null;
let generation = 0;          // bumps on every login/logout, so late answers of an old session are ignored
let refreshing = null;       // one refresh at a time: the server rotates refresh tokens
let sessionEndedHandler = () => {};

// 401s about what the person typed or signed (a password asked again, a renewal proof), not the session.
const NOT_ABOUT_THE_SESSION = new Set(["invalid_credentials", "invalid_proof", "invalid_recovery_code"]);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || t("web.error.http", { status }));
    this.status = status;
    this.code = problem.code || "";
    this.problem = problem;
    this.sessionEnded = false;
  }
}

/** `handler(reason)` runs once when the server says the session is over (401 or the event stream). */
export function onSessionEnded(handler) {
  sessionEndedHandler = handler;
}

export function startSession({ access_token, refresh_token }) {
  generation += 1;
  accessToken = access_token;
  sessionStorage.setItem(REFRESH_KEY, refresh_token);
}

export function clearSession() {
  generation += 1;
  accessToken = null;
  refreshing = null;
  sessionStorage.removeItem(REFRESH_KEY);
}

export function hasSession() {
  return accessToken !== null || sessionStorage.getItem(REFRESH_KEY) !== null;
}

export function currentAccessToken() {
  return accessToken;
}

/** Ends the session on the client and tells the app why (a SPEC §4 revocation reason or null). */
export function endSession(reason) {
  if (!hasSession()) return;
  clearSession();
  sessionEndedHandler(reason || null);
}

async function send(method, path, body, token) {
  // The server words a problem's `detail` in the language the page is shown in.
  const headers = { Accept: "application/json, application/problem+json", "Accept-Language": currentLocale() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, { method, headers, cache: "no-store", credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, { code: "network_error", detail: t("web.error.network_error") });
  }
  const isJson = (response.headers.get("Content-Type") || "").includes("json");
  const data = isJson ? await response.json().catch(() => ({})) : {};
  if (!response.ok) throw new ApiError(response.status, data);
  return response.status === 204 ? null : data;
}

/** An unauthenticated call (registration, challenge, login). */
export function call(method, path, body) {
  return send(method, path, body, null);
}

/** A Bearer call: refreshes once on token_expired; any other 401 about the token ends the session. */
export async function authCall(method, path, body) {
  const started = generation;
  try {
    if (!accessToken) await refreshTokens();
    return await send(method, path, body, accessToken);
  } catch (error) {
    if (error.code !== "token_expired" || started !== generation) throw sessionCheck(error, started);
    await refreshTokens();
    try {
      return await send(method, path, body, accessToken);
    } catch (retryError) {
      throw sessionCheck(retryError, started);
    }
  }
}

/** Rotates the token pair (SPEC §4 /session/refresh); concurrent callers share one request. */
export function refreshTokens() {
  if (!refreshing) {
    const started = generation;
    const attempt = rotate(started).catch((error) => { throw sessionCheck(error, started); });
    const release = () => { if (refreshing === attempt) refreshing = null; };
    attempt.then(release, release);
    refreshing = attempt;
  }
  return refreshing;
}

async function rotate(started) {
  const refresh_token = sessionStorage.getItem(REFRESH_KEY);
  if (!refresh_token) throw new ApiError(401, { code: "session_revoked", detail: t("web.error.session_revoked") });
  const pair = await send("POST", "/session/refresh", { refresh_token });
  if (started !== generation) return;
  accessToken = pair.access_token;
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
}

function sessionCheck(error, started) {
  if (error.status !== 401 || error.sessionEnded || NOT_ABOUT_THE_SESSION.has(error.code)) return error;
  error.sessionEnded = true;
  if (started !== generation) return error;   // an answer for a session that is already over
  const reason = error.problem.reason || (error.code === "refresh_token_reused" ? "refresh_reuse" : null);
  endSession(reason);
  return error;
}
