// The notes page signed in with citylogin by OpenID Connect (NOTES_PROTECTION=oidc): "Sign in with
// citylogin" is a plain link to this app's /signin, which sends the browser to citylogin's sign-in page;
// afterwards the page holds only this app's cookie, and the server calls citylogin with the tokens.
import { drawNotes, unreachable, wireNoteForm } from "./notes_list.js";

const $ = (selector) => document.querySelector(selector);

async function api(method, path, body) {
  const init = { method, headers: body ? { "Content-Type": "application/json" } : {} };
  if (body) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const answer = response.status === 204 ? null : await response.json();
  if (!response.ok) throw Object.assign(new Error(answer?.detail || response.statusText), answer);
  return answer;
}

function show(state, message = "") {
  document.body.dataset.state = state;
  for (const id of ["signed-out", "signed-in"]) $(`#${id}`).hidden = id !== state;
  $("#status").textContent = message;
}

/** Runs an action; a 401 means the citylogin session is over, so the page is signed out. */
async function run(action) {
  try {
    await action();
  } catch (error) {
    if (error.status === 401) {
      document.body.dataset.ended = error.code || "ended";
      show("signed-out", error.code === "session_revoked" ? "Your citylogin session has ended. Sign in again." : "");
    } else if (error.status === 503 && error.code === "session_unverifiable") {
      $("#status").textContent = unreachable(error);       // an outage: the sign-in is kept
    } else {
      $("#status").textContent = error.code ? `${error.code}: ${error.message}` : String(error);
    }
  }
}

async function signedIn() {
  const me = await api("GET", "/api/me");
  $("#who").textContent = me.preferred_username || me.sub;
  show("signed-in");
  await drawNotes(api, run);
}

wireNoteForm(api, run);

// Log out of notes and of citylogin: a form post to /signout, which sends the browser to citylogin's
// logout and back here with ?state=signed-out.
$("#logout").addEventListener("click", () => {
  const form = Object.assign(document.createElement("form"), { method: "post", action: "/signout" });
  document.body.append(form);
  form.submit();
});

const query = new URLSearchParams(location.search);
const declined = query.get("signin_error");
const signedOut = query.get("state") === "signed-out";
if (declined || signedOut) history.replaceState(null, "", location.pathname);
await run(async () => {
  try {
    await signedIn();
  } catch (error) {
    if (error.status !== 401 || error.code === "session_revoked") throw error;
    show("signed-out", declined ? `Not signed in (${declined}).` : signedOut ? "Signed out of notes and citylogin." : "");
  }
});
