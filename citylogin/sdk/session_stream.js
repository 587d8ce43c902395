// Live revocation over Server-Sent Events (GET /session/events), read with fetch() rather than
// EventSource: fetch sends the Authorization and DPoP headers, so no token ever rides in a URL, and
// every (re)connect is a new request with a fresh proof. The stream is parsed here (text/event-stream);
// the server's `retry:` is not followed: errors reconnect here with backoff. The server sends no
// event ids, so there is no Last-Event-ID to resume from: each connect starts the watch afresh.

const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30000;

/**
 * Watches one session until the returned stop() is called or the session ends.
 * - open(signal): the authenticated GET of the stream, aborted through `signal`; resolves with
 *   {response, ended} (ended: the answer itself ended the session, e.g. a 401 session_revoked);
 * - refresh(): rotates the tokens (rejects with `sessionEnded` when the session is over);
 * - ended(ending): the server said on the stream that the session is over (the event's data:
 *   {reason, by_device?, by_app?, by_app_name?, admin_action?}, or {} if it could not be read).
 */
export function watchSession({ open, refresh, ended }) {
  let connection = null;   // the AbortController of the current request
  let timer = null;
  let delay = FIRST_RETRY_MS;
  let stopped = false;

  function close() {
    connection?.abort();
    connection = null;
    clearTimeout(timer);
  }

  function stop() {
    stopped = true;
    close();
  }

  const handlers = {
    session_revoked(data) {
      stop();
      ended(parseEnding(data));
    },
    // A newer stream of this session or user took this one's place (the server caps them):
    // reconnecting would only replace that one in turn.
    stream_replaced: stop,
    // The server ends the stream when the token it was opened with expires.
    token_expired() {
      close();
      refresh().then(connect, (error) => { if (!error.sessionEnded) retryLater(); });
    },
  };

  function onEvent(type, data) {
    if (Object.hasOwn(handlers, type)) handlers[type](data);
  }

  async function connect() {
    if (stopped) return;
    const current = connection = new AbortController();
    try {
      const { response, ended: over } = await open(current.signal);
      if (over) {
        stop();       // the SDK has ended the session and told the handlers
        return;
      }
      if (response.ok && response.body) {
        delay = FIRST_RETRY_MS;
        await readEvents(response.body, onEvent, () => connection === current);
      } else {
        await response.body?.cancel();
      }
    } catch {
      // no answer, or the stream broke: retried below unless this connection was closed on purpose
    }
    if (connection === current) {
      connection = null;
      retryLater();
    }
  }

  function retryLater() {
    if (stopped) return;
    timer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, MAX_RETRY_MS);
  }

  connect();
  return stop;
}

/** Reads a text/event-stream body while `current()` holds, calling onEvent(type, data) for each event
 * (the WHATWG rules for `event`, `data` and comments; `id` and `retry` are not used here). */
async function readEvents(body, onEvent, current) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let pending = "";
  let type = "";
  let data = [];
  try {
    while (current()) {
      const { value, done } = await reader.read();
      if (done) return;
      // A "\r" at the very end may be the first half of "\r\n": it waits for the next chunk.
      const lines = (pending + decoder.decode(value, { stream: true })).split(/\r\n|\r(?!$)|\n/);
      pending = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (data.length && current()) onEvent(type || "message", data.join("\n"));
          type = "";
          data = [];
        } else if (!line.startsWith(":")) {
          const [field, value] = splitField(line);
          if (field === "event") type = value;
          else if (field === "data") data.push(value);
        }
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}

/** "field: value" → [field, value]; a line without a colon is a field with an empty value. */
function splitField(line) {
  const colon = line.indexOf(":");
  if (colon < 0) return [line, ""];
  const value = line.slice(colon + 1);
  return [line.slice(0, colon), value.startsWith(" ") ? value.slice(1) : value];
}

function parseEnding(data) {
  try {
    const ending = JSON.parse(data);
    return ending && typeof ending === "object" ? ending : {};
  } catch {
    return {};
  }
}
