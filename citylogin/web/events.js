// Live revocation over Server-Sent Events (SPEC §4 GET /session/events). EventSource cannot
// set headers, so the access token rides in the query string, and every (re)connect takes the
// newest token. Its own retry would reuse a stale URL, so errors reconnect here with backoff.

import { authCall, currentAccessToken, endSession, refreshTokens } from "./api.js";

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;

/** Watches the current session until the returned stop() is called or the session ends. */
export function watchSession() {
  let source = null;
  let timer = null;
  let delay = FIRST_RETRY_MS;
  let stopped = false;

  function close() {
    source?.close();
    source = null;
    clearTimeout(timer);
  }

  function stop() {
    stopped = true;
    close();
  }

  function connect() {
    const token = currentAccessToken();
    if (stopped || !token) return;
    source = new EventSource(`/session/events?access_token=${encodeURIComponent(token)}`);
    source.onopen = () => { delay = FIRST_RETRY_MS; };
    source.onerror = () => { close(); retryLater(); };
    source.addEventListener("session_revoked", (event) => {
      stop();
      endSession(parseReason(event.data));
    });
    // A newer stream of this session or user took this one's place (the server caps them):
    // reconnecting would only replace that one in turn.
    source.addEventListener("stream_replaced", stop);
    // The server ends the stream when the token it was opened with expires.
    source.addEventListener("token_expired", () => {
      close();
      refreshTokens().then(connect, (error) => { if (!error.sessionEnded) retryLater(); });
    });
  }

  function retryLater() {
    if (stopped) return;
    timer = setTimeout(reconnect, delay);
    delay = Math.min(delay * 2, MAX_RETRY_MS);
  }

  // A broken stream may hide an expired token or a revocation sent while it was down: one
  // authenticated call refreshes the token or ends the session before the next connect.
  async function reconnect() {
    try {
      await authCall("GET", "/session/me");
    } catch (error) {
      if (error.sessionEnded) return;
    }
    connect();
  }

  connect();
  return stop;
}

function parseReason(data) {
  try {
    return JSON.parse(data).reason || null;
  } catch {
    return null;
  }
}
