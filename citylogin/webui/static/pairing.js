// The "Add a device" panel: a one-time pairing code as QR image and link (`<public URL>/#pair=…`,
// SPEC §4 POST /registration/request_pairing_token), a countdown to its expiry, and a watch on the
// device list that says when a new device used it; and, on the device being paired, the pair form
// filled from that link or a scan of the code.

import { authCall } from "./api.js";
import { setText } from "./i18n.js";
import { $, clearFieldErrors, clearMessage, say, showError } from "./ui.js";

const POLL_MS = 3000;        // GET /device/list is one query; a few seconds is quick enough for a person

let ticker = null;
let poller = null;

export function initPairing() {
  $("#pairing-create").addEventListener("click", createPairingCode);
  $("#pairing-renew").addEventListener("click", createPairingCode);
  $("#pairing-copy").addEventListener("click", copyLink);
  $("#pairing-payload").addEventListener("focus", (event) => event.target.select());
}

function stopTimers() {
  clearInterval(ticker);
  clearInterval(poller);
  ticker = null;
  poller = null;
}

export function resetPairing() {
  stopTimers();
  $("#pairing-output").hidden = true;
  $("#pairing-output").className = "pairing";
  $("#pairing-qr").hidden = false;
  $("#pairing-live").hidden = false;
  $("#pairing-payload").value = "";
  $("#pairing-qr").removeAttribute("src");
  $("#pairing-link").href = "/";
  clearMessage($("#pairing-state-text"));
  $("#pairing-state").hidden = true;
  $("#pairing-create").hidden = false;
  setText($("#pairing-create"), "web.add_device.show_code");
}

async function createPairingCode() {
  const buttons = [$("#pairing-create"), $("#pairing-renew")];
  const errorNode = $("#add-device-panel .error");
  clearMessage(errorNode);
  buttons.forEach((button) => { button.disabled = true; });
  try {
    show(await authCall("POST", "/registration/request_pairing_token"));
  } catch (error) {
    showError(errorNode, error);
  } finally {
    buttons.forEach((button) => { button.disabled = false; });
  }
}

function show(code) {
  resetPairing();
  $("#pairing-qr").src = code.qr_png;
  $("#pairing-payload").value = code.qr_code;        // the link: pasted whole, the pair form takes it
  $("#pairing-link").href = code.qr_code;
  $("#pairing-output").hidden = false;
  setText($("#pairing-create"), "web.add_device.show_new_code");
  // Count from expires_in rather than expires_at so a skewed device clock cannot shorten the code's life.
  const deadline = Date.now() + code.expires_in * 1000;
  const tick = () => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    setText($("#pairing-countdown"), "web.add_device.expires_in", { clock: clock(left) });
    if (!left) finish("expired", "web.add_device.expired");
  };
  tick();
  ticker = setInterval(tick, 1000);
  // A device the server registered after it made this code (both server times) is the one that used it.
  const createdAt = Date.parse(code.expires_at) - code.expires_in * 1000;
  poller = setInterval(() => watchForNewDevice(createdAt), POLL_MS);
}

/** mm:ss */
function clock(seconds) {
  return `${String(Math.floor(seconds / 60)).padStart(2, "0")}:${String(seconds % 60).padStart(2, "0")}`;
}

/** The code is over: `state` "expired" or "used"; the QR and link go, the message and a new-code button stay. */
function finish(state, key, params) {
  stopTimers();
  $("#pairing-output").classList.add(state);
  $("#pairing-qr").hidden = true;
  $("#pairing-live").hidden = true;
  say($("#pairing-state-text"), key, params);
  $("#pairing-state").hidden = false;
  $("#pairing-create").hidden = true;          // the message's own button makes the next code
}

async function watchForNewDevice(createdAt) {
  // Only while someone can see the panel; a hidden tab or another panel asks nothing.
  if (document.hidden || $("#add-device-panel").hidden) return;
  const running = poller;
  let devices;
  try {
    ({ devices } = await authCall("GET", "/device/list"));
  } catch (error) {
    if (error.sessionEnded) stopTimers();
    return;                                  // a failed look is retried at the next tick
  }
  if (poller !== running) return;           // the code expired, or a new one was made, meanwhile
  const added = devices.find((device) => !device.current && Date.parse(device.registered_at) >= createdAt);
  if (added) finish("used", "web.add_device.paired", { name: added.device_name });
}

async function copyLink() {
  const input = $("#pairing-payload");
  const button = $("#pairing-copy");
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    setText(button, "web.common.copied");
  } catch {
    setText(button, "web.add_device.press_copy");   // the text is selected; the clipboard API was refused
  }
  setTimeout(() => setText(button, "web.common.copy"), 2000);
}

/** A `#pair=<payload>` link (the QR code a phone's camera opened) prefills the pair form; the
 * one-time payload then leaves the address bar. */
export function takePairingLink() {
  const match = /^#pair=(.+)$/.exec(location.hash);
  if (!match) return false;
  history.replaceState(null, "", location.pathname + location.search);
  let payload = match[1];
  try {
    payload = decodeURIComponent(payload);
  } catch {
    // not percent-encoded after all: the server judges the payload as it is
  }
  fillPairingCode(payload, "web.pair.code_filled");
  return true;
}

/** Puts a pairing link or payload into the pair form and says where it came from. */
export function fillPairingCode(code, key) {
  const form = $("#pair-form");
  form.qr_code.value = code;
  clearFieldErrors(form);
  clearMessage($(".error", form));
  say($("#pair-filled"), key);
}
