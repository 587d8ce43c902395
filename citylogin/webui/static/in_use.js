// The in-use dialog (#concurrent-dialog, SPEC §5 "the person chooses which device goes"): the account is at its
// device limit while a login here (also an app's sign-in and a pairing, which log in) or a screen's approval
// waits. The dialog names what waits ("Sign in on this device?", "Sign in on the TV “Den”?"), says which device
// goes by default (this very device, when it is the one), lists every device that could go (a radio each when
// one must go, a checkbox each when more must) with the default ones chosen and this device marked, and lets
// the person choose others before continuing. Arrow keys move between the devices, Enter continues, Escape
// cancels.

import { currentLocale, has, setText, t } from "./i18n.js";
import { $, clearMessage, describeAgent, el, modal, say, timeEl, tx } from "./ui.js";

let wired = false;

/** The person's answer to `asking` (the SDK's ConcurrentLogin: action, needed, activeDevices, defaults): null
 * when they cancel; else the session ids they chose, empty when they kept the default ones (the server's
 * eviction order then decides, as it always did). `note`: a catalogue key said first (why it asks again). */
export async function confirmInUse(asking, { note = null } = {}) {
  const dialog = $("#concurrent-dialog");
  wire(dialog);
  draw(dialog, asking, note);
  const answer = modal(dialog);
  (dialog.querySelector("input[name=displace]:checked") || dialog.querySelector("input[name=displace]"))?.focus();
  if ((await answer) !== "continue") return null;
  const picked = choice(dialog).filter(Boolean);      // a server that lists no session ids: the default
  const defaults = new Set(asking.defaults);
  return !picked.length || (picked.length === defaults.size && picked.every((id) => defaults.has(id))) ? [] : picked;
}

/** What the dialog says when the answer to a choice was no success: a fresh 409 (a chosen device ended
 * meanwhile: the new question comes with the devices as they are now) or a 400 naming `displace`; null
 * for any other error, which is not the dialog's to show. */
export function askAgainNote(error) {
  if (error?.code === "concurrent_login" && error.problem?.active_devices) return "web.concurrent.changed";
  if (error?.code === "invalid_field" && error.problem?.field === "displace") return "web.concurrent.invalid";
  return null;
}

function choice(dialog) {
  return [...dialog.querySelectorAll("input[name=displace]:checked")].map((input) => input.value);
}

/** Once: Continue with too few devices chosen says so instead of closing; Enter on a device continues (the
 * form's first button, which implicit submission would press, is Cancel); arrows move between checkboxes
 * as they do between radios. */
function wire(dialog) {
  if (wired) return;
  wired = true;
  const form = $("form", dialog);
  form.addEventListener("submit", (event) => {
    if (event.submitter?.value !== "continue") return;
    const needed = Number(dialog.dataset.needed);
    if (choice(dialog).length >= needed) return;
    event.preventDefault();
    say($("#concurrent-error"), "web.concurrent.too_few", { needed });
  });
  form.addEventListener("keydown", (event) => {
    const input = event.target.closest?.("input[name=displace]");
    if (!input) return;
    if (event.key === "Enter") {
      event.preventDefault();
      $("button[value=continue]", form).click();
      return;
    }
    const step = { ArrowDown: 1, ArrowRight: 1, ArrowUp: -1, ArrowLeft: -1 }[event.key];
    if (input.type !== "checkbox" || !step) return;
    event.preventDefault();
    const inputs = [...form.querySelectorAll("input[name=displace]")];
    inputs[(inputs.indexOf(input) + step + inputs.length) % inputs.length].focus();
  });
}

function draw(dialog, asking, note) {
  const { needed, activeDevices: devices } = asking;
  dialog.dataset.needed = String(needed);
  describe(asking);
  $("#concurrent-devices").replaceChildren(...devices.map((device, index) => row(device, index, needed > 1)));
  if (note) say($("#concurrent-error"), note);
  else clearMessage($("#concurrent-error"));
}

/** The title, what goes by default and what may be chosen instead. */
function describe({ action, needed, activeDevices: devices }) {
  setText($("#concurrent-title"), ...title(action));
  const going = devices.filter((device) => device.default);
  const selfGoes = going.some((device) => device.current);
  setText($("#concurrent-message"), selfGoes ? "web.concurrent.message_self" : "web.concurrent.message");
  const names = listed(going.filter((device) => !device.current).map((device) => device.device_name));
  if (!selfGoes) setText($("#concurrent-default"), "web.concurrent.default", { names });
  else setText($("#concurrent-default"), names ? "web.concurrent.default_self_and" : "web.concurrent.default_self",
    { names });
  const choose = devices.length <= needed ? "web.concurrent.listed"
    : needed > 1 ? "web.concurrent.choose_many" : "web.concurrent.choose_other";
  setText($("#concurrent-choose"), choose, { needed });
}

/** The title's key and params: a login here, or the screen being approved, named with its kind's word. */
function title(action) {
  if (action?.kind !== "screen") return ["web.concurrent.title"];
  const kind = has(`web.concurrent.class.${action.device_class}`) ? action.device_class : "other";
  return ["web.concurrent.title_screen", { device: t(`web.concurrent.class.${kind}`), name: action.device_name }];
}

/** “A”, “B” and “C” in the page's language; "" for none. */
function listed(names) {
  const quoted = names.map((name) => t("web.concurrent.quoted", { name }));
  return new Intl.ListFormat(currentLocale(), { type: "conjunction" }).format(quoted);
}

/** One device to choose: its name, kind, "This device", when it signed in and was last seen, its browser and
 * the apps signed in on it (they go with it). */
function row(device, index, multiple) {
  const id = `concurrent-choice-${index}`;
  const input = el("input", { type: multiple ? "checkbox" : "radio", name: "displace", id,
    value: device.session_id || "", checked: Boolean(device.default) });
  const kind = device.device_class || "other";
  const apps = (device.apps || []).map((app) => app.name).filter(Boolean);
  const text = el("span", { className: "choice-text" },
    el("span", { className: "choice-head" },
      el("strong", { className: "device-name" }, device.device_name),
      el("span", { className: "badges" },
        tx("span", { className: "badge kind" }, has(`web.devices.class.${kind}`) ? `web.devices.class.${kind}`
          : "web.devices.class.other"),
        device.current && tx("span", { className: "badge current" }, "web.devices.this_device"))),
    el("span", { className: "choice-facts muted" },
      tx("span", {}, "web.concurrent.since"), " ", timeEl(device.login_at),
      device.last_seen_at && " · ", device.last_seen_at && tx("span", {}, "web.concurrent.seen"),
      device.last_seen_at && " ", device.last_seen_at && timeEl(device.last_seen_at)),
    device.user_agent && el("span", { className: "choice-facts muted" }, describeAgent(device.user_agent)),
    apps.length > 0 && tx("span", { className: "choice-facts muted" }, "web.concurrent.apps",
      { apps: apps.join(", ") }));
  return el("li", { dataset: { sessionId: device.session_id || "" } },
    el("label", { htmlFor: id, className: "choice" }, input, text));
}
