// After "Continue with <provider>" on a browser that holds no device of the account the identity is linked to
// (SPEC §16): the provider's answer stands in for the password, so the person makes this browser one of the
// account's devices as anyone would after typing it — with the code "Add a device" shows on one of their devices
// (scanned with the camera where the browser reads QR codes, or its link pasted: POST /federation/pair) or, every
// device lost, with a recovery code (POST /federation/recover) — and this browser then signs in with its new key
// (POST /federation/login), meeting the in-use question at the limit as any sign-in does. An account with no device
// at all (an imported one, SPEC §17) may make this browser its first with the provider's answer alone (POST
// /federation/enrol). Loaded on that step only.

import { citylogin } from "./api.js";
import { draw, field } from "./federation_steps.js";
import { $, busy, el, guessDeviceName, say, tx } from "./ui.js";

/** "Scan the code shown by one of your devices": the code (or its link) and this browser's name. */
export function drawPair(form, ticket) {
  const params = { provider: ticket.display_name, username: ticket.username };
  const code = el("textarea", { id: "federation-pair-code", name: "qr_code", rows: 3, required: true,
    spellcheck: false, autocomplete: "off" });
  code.setAttribute("aria-describedby", "federation-pair-code-hint");
  const filled = el("p", { className: "note", hidden: true });
  filled.setAttribute("role", "status");
  const scan = el("div", { hidden: true },
    tx("button", { type: "button", className: "secondary" }, "web.pair.scan"),
    el("video", { className: "scan-video", muted: true, playsInline: true, hidden: true }),
    el("p", { className: "note", hidden: true }));
  const enrol = () => citylogin.pairWithTicket({ qrCode: form.qr_code.value.trim(), username: ticket.username,
    deviceName: form.device_name.value.trim() || undefined });
  draw(form, () => enrolAndSignIn(form, ticket, enrol), { title: "web.federation.pair_title", params,
    submit: "web.federation.pair_submit", links: [other("web.federation.recover_choice", params,
      () => drawRecover(form, ticket))],
    body: [tx("p", { className: "muted" }, "web.federation.pair_intro", params), filled,
      tx("label", { htmlFor: code.id }, "web.common.pairing_code"), code,
      tx("small", { id: "federation-pair-code-hint", className: "hint" }, "web.pair.code_hint"), scan,
      ...deviceName()] });
  offerScan(form, scan, (text) => {
    code.value = text;
    say(filled, "web.federation.pair_scanned");
  });
}

/** The pair step with `code` (the one the pair form kept through the provider) filled in and sent at once; a code
 * that expired or was used meanwhile is refused on the step, where another can be scanned or pasted. */
export async function pairWithCode(form, ticket, code) {
  drawPair(form, ticket);
  form.qr_code.value = code;
  say($(".note", form), "web.federation.pair_kept");
  await form.onStep();
}

/** "Lost all your devices? Use a recovery code": the code, this browser's name, and whether the lost devices go. */
export function drawRecover(form, ticket) {
  const params = { provider: ticket.display_name, username: ticket.username };
  const unbind = el("input", { type: "checkbox", name: "unbind_other_devices", id: "federation-recover-unbind" });
  const enrol = () => citylogin.recoverWithTicket({ recoveryCode: form.recovery_code.value.trim(),
    username: ticket.username, unbindOtherDevices: unbind.checked,
    deviceName: form.device_name.value.trim() || undefined });
  draw(form, () => enrolAndSignIn(form, ticket, enrol), { title: "web.recover.title", params,
    submit: "web.recover.submit", links: [other("web.federation.pair_choice", params, () => drawPair(form, ticket))],
    body: [tx("p", { className: "muted" }, "web.federation.recover_intro", params),
      ...field({ id: "federation-recover-code", name: "recovery_code", label: "web.recover.code",
        hint: "web.recover.code_hint", spellcheck: false }),
      ...deviceName(),
      el("label", { className: "check" }, unbind, tx("span", {}, "web.recover.unbind_others"))] });
}

/** "Set up this device": the account has no device yet (one an import brought, SPEC §17), so the provider's answer
 * alone makes this browser its first (POST /federation/enrol). An account with a device: 409 device_exists, said on
 * the step, with the two other ways beside it. */
export function drawEnrol(form, ticket) {
  const params = { provider: ticket.display_name, username: ticket.username };
  const enrol = () => citylogin.enrolWithTicket({ username: ticket.username,
    deviceName: form.device_name.value.trim() || undefined });
  draw(form, () => enrolAndSignIn(form, ticket, enrol), { title: "web.enrol.title", params,
    submit: "web.enrol.title", links: [other("web.federation.pair_choice", params, () => drawPair(form, ticket)),
      other("web.federation.recover_choice", params, () => drawRecover(form, ticket))],
    body: [tx("p", { className: "muted" }, "web.federation.enrol_intro", params), ...deviceName()] });
}

function deviceName() {
  return field({ id: "federation-new-device", name: "device_name", label: "web.common.device_name",
    value: guessDeviceName(), maxLength: 64 });
}

function other(key, params, action) {
  const button = tx("button", { type: "button", className: "link" }, key, params);
  button.addEventListener("click", action);
  return button;
}

/** This browser made a device of the account by `enrol()`, then signed in with it as after a sign-up; once made,
 * sending the form again only tries the sign-in again. */
async function enrolAndSignIn(form, ticket, enrol) {
  form.leaving?.();
  const issued = await busy(form, enrol);
  if (!issued) return;
  const signIn = () => form.app.signIn(form, () => citylogin.loginWithTicket({ username: ticket.username,
    replacing: form.app.confirmReplacing }));
  form.onStep = signIn;
  await signIn();
}

/** The camera's QR reader in `area`, where the browser has one (camera_scan.js); its text goes to `found`. */
async function offerScan(form, area, found) {
  if (!("BarcodeDetector" in window)) return;
  const { cameraScanner } = await import("./camera_scan.js");
  const scanner = await cameraScanner({ button: $("button", area), area, video: $("video", area),
    note: $(".note", area), found });
  if (area.isConnected) form.leaving = () => scanner.stop();
  else scanner.stop();                       // the person went on to another step meanwhile
}
