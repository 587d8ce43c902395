// The wire: JSON in and out, problem+json (RFC 9457) errors as CityloginError.

/** An answer that is not 2xx (`status`, the problem's `code` and the whole `problem`), or no answer at
 * all (`status` 0, `code` "network_error"). `sessionEnded` is true when the error ended the session. */
export class CityloginError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || (status ? `citylogin answered HTTP ${status}` : "citylogin error"));
    this.name = "CityloginError";
    this.status = status;
    this.code = problem.code || "";
    this.problem = problem;
    this.sessionEnded = false;
  }
}

export function networkError() {
  return new CityloginError(0, { code: "network_error", detail: "citylogin could not be reached" });
}

/** The parsed JSON of an answer (null for 204); a non-2xx answer throws CityloginError. */
export async function readJson(response) {
  const isJson = (response.headers.get("Content-Type") || "").includes("json");
  const data = isJson ? await response.json().catch(() => ({})) : {};
  if (!response.ok) throw new CityloginError(response.status, data);
  return response.status === 204 ? null : data;
}

/** The problem+json body of an answer ({} if it has none), read without consuming the answer. */
export async function problemOf(response) {
  if (!(response.headers.get("Content-Type") || "").includes("json")) return {};
  return response.clone().json().catch(() => ({}));
}

/** Whether a 400/401 says the proof needs the server's nonce (RFC 9449 §8: `use_dpop_nonce`, in
 * WWW-Authenticate or as the problem's code). */
export async function asksForNonce(response) {
  if (response.status !== 400 && response.status !== 401) return false;
  if (/error="use_dpop_nonce"/.test(response.headers.get("WWW-Authenticate") || "")) return true;
  return (await problemOf(response)).code === "use_dpop_nonce";
}

/** A fetch init for a JSON call: the body as JSON, Accept for problem+json, the caller's language. */
export function jsonInit(method, body, language) {
  const headers = { Accept: "application/json, application/problem+json" };
  if (language) headers["Accept-Language"] = language;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
}

/** The `exp` of a JWT, in epoch seconds, read without verifying it (to refresh before it runs out). */
export function expiresAt(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp || 0;
  } catch {
    return 0;
  }
}
