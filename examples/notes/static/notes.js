// The notes page: logs in through citylogin's web SDK, loaded from citylogin's own origin (which
// must list this page's origin in CITYLOGIN_CORS_ORIGINS), and calls this app's API with the token.
import { drawNotes, unreachable, wireNoteForm } from "./notes_list.js";

const citylogin = document.querySelector('meta[name="citylogin-url"]').content;
const { Citylogin, ConcurrentLogin } = await import(`${citylogin}/sdk/citylogin.js`);

const cl = new Citylogin({ baseUrl: citylogin });
const $ = (selector) => document.querySelector(selector);
let pendingLogin = null;     // a ConcurrentLogin waiting for the user's answer

/** A call to this app's own API (a full URL, so the SDK sends the token to it and not to citylogin). */
async function api(method, path, body) {
  const init = { method, headers: body ? { "Content-Type": "application/json" } : {} };
  if (body) init.body = JSON.stringify(body);
  const response = await cl.fetch(new URL(path, location.origin).href, init);
  const answer = response.status === 204 ? null : await response.json();
  if (!response.ok) throw Object.assign(new Error(answer?.detail || response.statusText), answer);
  return answer;
}

function show(state, message = "") {
  document.body.dataset.state = state;
  for (const id of ["signed-out", "confirm", "signed-in"]) $(`#${id}`).hidden = id !== state;
  $("#status").textContent = message;
}

function explain(error) {
  if (error.status === 503 && error.code === "session_unverifiable") return unreachable(error);
  return error.code ? `${error.code}: ${error.message}` : String(error);
}

async function showNotes() {
  await drawNotes(api, run);
}

async function signedIn() {
  $("#who").textContent = `${cl.session.username} (${cl.session.deviceName})`;
  show("signed-in");
  await showNotes();
}

async function signedOut(message = "") {
  const last = await cl.lastUsedDevice();
  if (last) $("#login-form").username.value = last.username;
  show("signed-out", message);
}

/** Runs an action; an error is shown, unless it ended the session (onSessionEnded shows that). */
async function run(action) {
  try {
    await action();
  } catch (error) {
    if (cl.session) $("#status").textContent = explain(error);
    else if (!document.body.dataset.ended) await signedOut(explain(error));
  }
}

async function logIn(username, password) {
  const result = await cl.login({ username, password });
  if (result instanceof ConcurrentLogin) {
    pendingLogin = result;
    $("#other-devices").textContent = result.activeDevices.map((device) => device.device_name).join(", ");
    show("confirm");
    return;
  }
  await signedIn();
}

cl.onSessionEnded((reason) => {
  document.body.dataset.ended = reason || "ended";
  signedOut(`Your session has ended${reason ? ` (${reason})` : ""}. Log in again.`);
});

$("#login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  delete document.body.dataset.ended;
  run(() => logIn(form.username.value, form.password.value));
});

$("#register-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  delete document.body.dataset.ended;
  run(async () => {
    await cl.register({ username: form.username.value, email: form.email.value, password: form.password.value,
                        deviceName: "Notes page" });
    await logIn(form.username.value, form.password.value);
  });
});

$("#confirm-login").addEventListener("click", () => run(async () => {
  const login = pendingLogin;
  pendingLogin = null;
  await login.confirm();
  await signedIn();
}));

$("#cancel-login").addEventListener("click", () => {
  pendingLogin = null;
  signedOut();
});

wireNoteForm(api, run);

$("#logout").addEventListener("click", () => run(async () => {
  await cl.logout();
  await signedOut("Logged out.");
}));

await run(() => (cl.session ? signedIn() : signedOut()));
