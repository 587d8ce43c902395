// Live revocation over Server-Sent Events (GET /session/events). EventSource cannot set headers,
// so the access token rides in the query string, and every (re)connect takes the newest token.
// Its own retry would reuse a stale URL, so errors reconnect here with backoff.

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;

/**
 * Watches one session until the returned stop() is called or the session ends.
 * - streamUrl(token): the stream's URL for an access token;
 * - accessToken(): the current access token, or null once the session is over;
 * - refresh(): rotates the tokens (rejects with `sessionEnded` when the session is over);
 * - check(): one authenticated call, which refreshes an expired token or ends an ended session;
 * - ended(reason): the server said the session is over.
 */
export function watchSession({ streamUrl, accessToken, refresh, check, ended }) {
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
    const token = accessToken();
    if (stopped || !token) return;
    source = new EventSource(streamUrl(token));
    source.onopen = () => { delay = FIRST_RETRY_MS; };
    source.onerror = () => { close(); retryLater(); };
    source.addEventListener("session_revoked", (event) => {
      stop();
      ended(parseReason(event.data));
    });
    // A newer stream of this session or user took this one's place (the server caps them):
    // reconnecting would only replace that one in turn.
    source.addEventListener("stream_replaced", stop);
    // The server ends the stream when the token it was opened with expires.
    source.addEventListener("token_expired", () => {
      close();
      refresh().then(connect, (error) => { if (!error.sessionEnded) retryLater(); });
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
      await check();
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
