// The "Add a device" panel: a one-time pairing code as QR image, text and link, with a
// countdown (SPEC §4 POST /registration/request_pairing_token).

import { authCall } from "./api.js";
import { setText } from "./i18n.js";
import { $, clearMessage, showError } from "./ui.js";

let ticker = null;

export function initPairing() {
  $("#pairing-create").addEventListener("click", createPairingCode);
  $("#pairing-copy").addEventListener("click", copyPayload);
  $("#pairing-payload").addEventListener("focus", (event) => event.target.select());
}

export function resetPairing() {
  clearInterval(ticker);
  ticker = null;
  $("#pairing-output").hidden = true;
  $("#pairing-payload").value = "";
  $("#pairing-qr").removeAttribute("src");
  setText($("#pairing-create"), "web.add_device.show_code");
}

/** The link a new browser opens to get the pairing form prefilled (read by app.js). */
export function pairingLink(payload) {
  return `${location.origin}/#pair=${payload}`;
}

async function createPairingCode() {
  const button = $("#pairing-create");
  const errorNode = $("#add-device-panel .error");
  clearMessage(errorNode);
  button.disabled = true;
  try {
    const code = await authCall("POST", "/registration/request_pairing_token");
    show(code);
  } catch (error) {
    showError(errorNode, error);
  } finally {
    button.disabled = false;
  }
}

function show(code) {
  resetPairing();
  $("#pairing-qr").src = code.qr_png;
  $("#pairing-payload").value = code.qr_code;
  $("#pairing-link").href = pairingLink(code.qr_code);
  $("#pairing-output").hidden = false;
  setText($("#pairing-create"), "web.add_device.show_new_code");
  // Count from expires_in rather than expires_at so a skewed device clock cannot shorten the code's life.
  const deadline = Date.now() + code.expires_in * 1000;
  const tick = () => {
    const left = Math.max(0, Math.round((deadline - Date.now()) / 1000));
    const clock = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    if (left) setText($("#pairing-countdown"), "web.add_device.expires_in", { clock });
    else setText($("#pairing-countdown"), "web.add_device.expired");
    $("#pairing-output").classList.toggle("expired", !left);
    if (!left) clearInterval(ticker);
  };
  tick();
  ticker = setInterval(tick, 1000);
}

async function copyPayload() {
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
