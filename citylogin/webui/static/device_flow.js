// Approving a TV's or a command line's code at `/device` (SPEC §14, RFC 8628's device authorization grant):
// the person types the code the screen shows, or arrives with it from the screen's QR code (`?user_code=`,
// taken out of the address bar at once), sees which app asks and for what, and approves or denies. Denying
// needs no sign-in. Approving signs in as for any app: this tab's session, else single sign-on with this
// browser's device key (a device with a live session elsewhere), else the login screen (the device key
// with the password or a passkey; registering or pairing this browser first), after which the approval
// goes on by itself. The screen takes a seat of its own under the device limit: over it, the person is
// asked as at a login (SPEC §5). The code waits in sessionStorage through the sign-in and a reload.

import { ConcurrentLogin } from "../sdk/citylogin.js";
import { authCall, call, citylogin } from "./api.js";
import { showSelfRegistered } from "./app_identity.js";
import { has, setText } from "./i18n.js";
import { askAgainNote, confirmInUse } from "./in_use.js";
import { $, busy, clearMessage, el, say, showError, showFieldError, tx } from "./ui.js";

const PENDING_KEY = "citylogin.device_flow";   // {user_code, device_name, approving} of the code shown here
const CODE_LENGTH = 32;                        // what the field takes: the server normalises and judges the rest
const NAME_LENGTH = 64;                        // a device name's length (SPEC §4)

let hooks = null;      // app.js: signedIn(), signIn() (the login screen)
let pending = null;    // the code being approved here, as kept in sessionStorage
let looked = null;     // POST /oidc/device/lookup's answer for it: the app, its scopes
let started = false;

/** Takes `?user_code=` out of the address bar (a newer code replaces one that waited in this tab). */
export function takeUserCode() {
  const query = new URLSearchParams(location.search);
  const code = query.get("user_code");
  if (query.has("user_code")) {
    query.delete("user_code");
    const rest = query.toString();
    history.replaceState(null, "", `${location.pathname}${rest ? `?${rest}` : ""}${location.hash}`);
  }
  pending = code?.trim() ? { user_code: code.trim().slice(0, CODE_LENGTH) } : stored();
  save();
}

function stored() {
  try {
    const kept = JSON.parse(sessionStorage.getItem(PENDING_KEY) || "null");
    return typeof kept?.user_code === "string" ? kept : null;
  } catch {
    return null;
  }
}

function save() {
  if (pending) sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  else sessionStorage.removeItem(PENDING_KEY);
}

/** signedIn(): whether this tab holds a session; signIn(): shows the login screen. */
export function initDeviceFlow(appHooks) {
  hooks = appHooks;
  const card = page();
  $("main").append(card);
  $("#auth-screen").prepend(signInBanner());
  $("#device-code-form").addEventListener("submit", (event) => {
    event.preventDefault();
    lookUp(event.currentTarget.user_code.value.trim());
  });
  $("#device-approve-form").addEventListener("submit", (event) => {
    event.preventDefault();
    approve();
  });
  $("#device-deny").addEventListener("click", deny);
  $("#device-other-code").addEventListener("click", () => {
    forget();
    showCodeForm("");
  });
  $("#device-back").addEventListener("click", () => {
    if (pending) pending.approving = false;
    save();
    show();
    $("#device-approve").focus();
  });
}

/** Shows the page as it stands, or, the first time, the code that waits here (its app and scopes) or the
 * code field; an approval the person asked for before signing in goes on. */
export async function open() {
  show();
  if (!started) {
    started = true;
    if (pending) await lookUp(pending.user_code, { typed: false });
    else showCodeForm("");
  }
  if (looked && pending?.approving) await approve();
}

/** This tab's session ended (logged out, displaced: perhaps by the very screen approved here): the page stays,
 * the notice says why, and the next approval signs in again. */
export function sessionEnded(banner) {
  $("#whoami").hidden = true;
  show();
  if (!banner) return;
  $("#notice").className = `banner ${banner.kind}`;
  setText($("#notice-text"), banner.title, banner.params);
  $("#notice").hidden = false;
}

/** The login screen, the account last used here filled in. */
async function signIn() {
  hooks.signIn();
  const last = await citylogin.lastUsedDevice().catch(() => null);
  if (last && !$("#login-username").value) $("#login-username").value = last.username;
  $(last ? "#login-password" : "#login-username").focus();
}

/** The page over the login screen and the signed-in screen. */
export function show() {
  $("#auth-screen").hidden = true;
  $("#home-screen").hidden = true;
  $("#device-flow").hidden = false;
}

function showCodeForm(code) {
  looked = null;
  $("#device-approve-form").hidden = true;
  $("#device-outcome").hidden = true;
  const form = $("#device-code-form");
  form.hidden = false;
  form.user_code.value = code;
  form.user_code.focus();
}

async function lookUp(code, { typed = true } = {}) {
  const form = $("#device-code-form");
  if (!code) {
    clearMessage($(".error", form));
    showFieldError(form, "user_code", "web.field.required")?.focus();
    return;
  }
  if (!typed) showCodeForm(code);
  const answer = await busy(form, () => alive(call("POST", "/oidc/device/lookup", { user_code: code })));
  if (answer === DEAD) return codeIsDead(code);
  if (!answer) {
    form.user_code.focus();
    return;
  }
  // The same code again (typed anew, or after a sign-in or a reload): the name given to it stays.
  const kept = pending?.user_code === code || pending?.user_code === answer.user_code ? pending : null;
  pending = { user_code: answer.user_code, device_name: kept?.device_name || "", approving: Boolean(kept?.approving) };
  save();
  looked = answer;
  showApproveForm();
}

const DEAD = Symbol("wrong, used or expired");

/** `answer`, or DEAD for a code that is wrong, used or expired (the server never says which). */
async function alive(answer) {
  try {
    return await answer;
  } catch (error) {
    if (error.code === "invalid_user_code") return DEAD;
    throw error;
  }
}

/** Back to the code field, the dead code in it, saying so. */
function codeIsDead(code) {
  forget();
  showCodeForm(code);
  say($("#device-code-form .error"), "web.error.invalid_user_code");
  $("#device-code-form").user_code.select();
}

function showApproveForm() {
  const form = $("#device-approve-form");
  $("#device-code-form").hidden = true;
  $("#device-outcome").hidden = true;
  form.hidden = false;
  clearMessage($(".note", form));
  setText($("#device-app"), "web.device_flow.request", { app: looked.client_name });
  showSelfRegistered($("#device-app"), looked);
  $("#device-shown-code").textContent = looked.user_code;
  const scopes = looked.scopes.filter((scope) => has(`web.oidc.scope.${scope}`));
  $("#device-scopes").replaceChildren(...scopes.map((scope) => tx("li", {}, `web.oidc.scope.${scope}`)));
  $("#device-scopes-intro").hidden = !scopes.length;
  // A name the person recognises in Sessions: the app's own, until they give another.
  form.device_name.value = pending.device_name || looked.client_name.slice(0, NAME_LENGTH);
  if (!pending.approving) form.device_name.focus();
}

/** Approve: with this tab's session, else this browser's single sign-on, else after a sign-in. */
async function approve() {
  const form = $("#device-approve-form");
  const name = form.device_name.value.trim();
  if (!name) {
    stopApproving();
    showFieldError(form, "device_name", "web.field.required")?.focus();
    return;
  }
  pending = { ...pending, device_name: name, approving: true };
  save();
  clearMessage($(".note", form));
  const answer = await busy(form, () => alive(approveAs()));
  if (answer === DEAD) return codeIsDead(pending.user_code);
  if (answer === undefined) return stopApproving();           // refused: the form says why
  if (answer === SIGN_IN) {
    setText($("#device-for"), "web.device_flow.sign_in", { app: looked.client_name });
    $("#device-flow").hidden = true;
    $("#device-banner").hidden = false;
    await signIn();
    return;
  }
  if (answer === CANCELLED) {
    stopApproving();
    say($(".note", form), "web.device_flow.cancelled");
    return;
  }
  const said = looked.device_class === "tv" ? "web.device_flow.approved_tv" : "web.device_flow.approved";
  showOutcome(said, { name: answer.device_name || name }, answer.evicted || []);
}

function stopApproving() {
  pending.approving = false;
  save();
}

const SIGN_IN = Symbol("sign in first");
const CANCELLED = Symbol("cancelled");

/** One approval; at the account's limit the in-use dialog asks which device goes (SPEC §5), and the approval
 * is asked again with force and the person's choice, and the dialog again (saying why) when a chosen device
 * ended meanwhile or the server did not take the choice. */
async function approveAs() {
  let asking = null;       // the question (the SDK's ConcurrentLogin), once the account was found at its limit
  let choice = null;       // {displace: [session id, ...]}: the person's answer to it
  let note = null;
  for (;;) {
    try {
      return (await approveOnce(choice)) ?? SIGN_IN;
    } catch (error) {
      note = choice ? askAgainNote(error) : null;
      if (error.code === "concurrent_login") asking = new ConcurrentLogin(error.problem);
      else if (!note) throw error;
    }
    const displace = await confirmInUse(asking, { note });
    if (displace === null) return CANCELLED;
    choice = { displace };
  }
}

/** The approval, with this tab's session, else with this browser's device key; `choice`: the person's answer
 * to the in-use dialog (it goes with force, and the chosen session ids when they are not the default ones). */
async function approveOnce(choice) {
  const body = { user_code: pending.user_code, device_name: pending.device_name, force: Boolean(choice),
    ...(choice?.displace.length ? { displace: choice.displace } : {}) };
  if (hooks.signedIn()) {
    try {
      return await authCall("POST", "/oidc/device/approve", body);
    } catch (error) {
      if (!error.sessionEnded) throw error;      // this tab's session is over: the device key may still sign in
    }
  }
  return citylogin.approveDeviceWithDevice(body.user_code, { deviceName: body.device_name, force: body.force,
    displace: body.displace });
}

async function deny() {
  const form = $("#device-approve-form");
  clearMessage($(".note", form));
  const done = await busy(form, () => alive(call("POST", "/oidc/device/deny", { user_code: pending.user_code })));
  if (done === DEAD) codeIsDead(pending.user_code);
  else if (done) showOutcome("web.device_flow.denied");
}

function showOutcome(key, params, evicted = []) {
  forget();
  $("#device-code-form").hidden = true;
  $("#device-approve-form").hidden = true;
  $("#device-banner").hidden = true;
  show();
  const outcome = $("#device-outcome");
  outcome.hidden = false;
  setText($("#device-outcome-text"), key, params);
  const names = evicted.map((device) => device.device_name).filter(Boolean);
  $("#device-evicted").hidden = !names.length;
  if (names.length) setText($("#device-evicted"), "web.device_flow.evicted", { names: names.join(", ") });
  $("#device-outcome-text").focus();
}

function forget() {
  pending = null;
  looked = null;
  save();
}

/** The card: the code field; the app, its scopes, the warning, the screen's name, Approve / Deny; the outcome. */
function page() {
  const errorSlot = () => {
    const node = el("p", { className: "error", hidden: true });
    node.setAttribute("role", "alert");
    return node;
  };
  const codeInput = el("input", { id: "device-code", name: "user_code", autocomplete: "off", spellcheck: false,
    maxLength: CODE_LENGTH, required: true, className: "user-code" });
  codeInput.setAttribute("autocapitalize", "characters");
  codeInput.setAttribute("aria-describedby", "device-code-hint");
  const codeForm = el("form", { id: "device-code-form", noValidate: true, hidden: true },
    tx("p", { className: "muted" }, "web.device_flow.code_intro"),
    tx("label", { htmlFor: "device-code" }, "web.device_flow.code_label"),
    codeInput,
    tx("small", { id: "device-code-hint", className: "hint" }, "web.device_flow.code_hint"),
    errorSlot(),
    tx("button", { type: "submit" }, "web.device_flow.code_submit"));

  const nameInput = el("input", { id: "device-name", name: "device_name", maxLength: NAME_LENGTH, required: true });
  nameInput.setAttribute("aria-describedby", "device-name-hint");
  const note = el("p", { className: "note", hidden: true });
  note.setAttribute("role", "status");
  const warning = tx("p", { id: "device-warning", className: "device-warning" }, "web.device_flow.warning");
  warning.setAttribute("role", "note");
  const approveForm = el("form", { id: "device-approve-form", noValidate: true, hidden: true },
    el("p", { id: "device-app", className: "device-app" }),
    el("p", { className: "muted" }, tx("span", {}, "web.device_flow.code_shown"), " ",
      el("code", { id: "device-shown-code", className: "user-code" })),
    tx("p", { id: "device-scopes-intro" }, "web.oidc.consent_intro"),
    el("ul", { id: "device-scopes", className: "scopes" }),
    warning,
    tx("label", { htmlFor: "device-name" }, "web.device_flow.name_label"),
    nameInput,
    tx("small", { id: "device-name-hint", className: "hint" }, "web.device_flow.name_hint"),
    errorSlot(),
    note,
    el("div", { className: "buttons" },
      tx("button", { type: "button", id: "device-deny", className: "secondary" }, "web.device_flow.deny"),
      tx("button", { type: "submit", id: "device-approve" }, "web.device_flow.approve")),
    el("div", { className: "more-links" },
      tx("button", { type: "button", id: "device-other-code", className: "link" }, "web.device_flow.other_code")));

  const outcomeText = el("p", { id: "device-outcome-text", className: "device-outcome-text", tabIndex: -1 });
  const outcome = el("div", { id: "device-outcome", hidden: true }, outcomeText,
    el("p", { id: "device-evicted", className: "muted", hidden: true }),
    el("p", {}, tx("a", { href: "/" }, "web.device_flow.to_account")));
  outcome.setAttribute("role", "status");

  const card = el("section", { id: "device-flow", className: "card device-flow", hidden: true },
    tx("h1", { id: "device-flow-title" }, "web.device_flow.title"), codeForm, approveForm, outcome);
  card.setAttribute("aria-labelledby", "device-flow-title");
  return card;
}

/** Over the login screen while the approval waits for a sign-in: for which app, and the way back. */
function signInBanner() {
  const banner = el("div", { id: "device-banner", className: "banner info", hidden: true },
    el("strong", { id: "device-for" }),
    tx("button", { type: "button", id: "device-back", className: "secondary small" }, "web.device_flow.back"));
  banner.setAttribute("role", "status");
  return banner;
}
