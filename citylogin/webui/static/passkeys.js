// Passkeys in the web app: login with a passkey, and the Account panel's list of them (add, rename,
// remove, adding and removing confirmed first by the password or a passkey). app.js and account.js
// import this module with import() when it is first needed, so the login screen's cold load does
// not carry it; the WebAuthn calls are the SDK's (/sdk/webauthn.js, loaded the same way).

import { citylogin, refused } from "./api.js";
import { setText, t } from "./i18n.js";
import { $, busy, clearMessage, el, guessDeviceName, modal, say, showError, timeEl, tx } from "./ui.js";

const form = () => $("#passkeys-form");
let loads = 0;             // only the latest load draws the list: an earlier answer may arrive after it

$("#passkey-list").addEventListener("click", act);

/** The login form's passkey: this browser's key for `username` (or, with none typed, for the account
 * the chosen passkey belongs to) signs as in a password login; resolves as citylogin.login() does. */
export async function logInWithPasskey(username, { replacing = null } = {}) {
  try {
    return await refused(citylogin.loginWithPasskey({ username: username || undefined, replacing }),
      { passkey: true });
  } catch (error) {
    if (error.code === "no_device_key" && !username) error.code = "passkey_no_device";
    throw error;
  }
}

/** Draws the account's passkeys; the account forms offer "Confirm with a passkey" only when there is
 * one. The form stays usable meanwhile; the list is aria-busy until it is first drawn. */
export async function loadPasskeys() {
  const load = ++loads;
  const list = $("#passkey-list");
  clearMessage($(".error", form()));
  try {
    const passkeys = await citylogin.passkeys();
    if (load !== loads) return;
    list.replaceChildren(...passkeys.map(item));
    for (const button of document.querySelectorAll("[data-passkey]")) button.hidden = !passkeys.length;
  } catch (error) {
    showError($(".error", form()), error);
  } finally {
    if (load === loads) list.removeAttribute("aria-busy");
  }
}

/** "Add a passkey": the password or a passkey first, then the browser makes the new passkey, named
 * after where it was made ("Chrome on Linux") until the person renames it. */
export async function addPasskey(held = null) {
  clearMessage($(".note", form()));
  const added = await busy(form(), async () => {
    const proof = held || await reauthenticate("web.passkeys.add", {}, { action: "add" });
    return proof && refused(citylogin.addPasskey({ ...proof, name: guessDeviceName() }), proof);
  });
  if (!added) return;
  await loadPasskeys();
  say($(".note", form()), "web.passkeys.added", { name: added.name });
}

/** Back from confirming with the provider (account_reauth.js): the passkey added or removed with its token. */
export async function resumePasskeyAction(fields, proof) {
  if (fields.action === "add") return addPasskey(proof);
  if (fields.action !== "remove" || !fields.id) return undefined;
  const removed = await busy(form(), () => refused(citylogin.removePasskey(fields.id, proof), proof).then(() => true));
  if (removed) await loadPasskeys();
  return removed;
}

function item(passkey) {
  const action = (name, key, style) => {
    const button = tx("button", { type: "button", className: `${style} small`, dataset: { action: name } }, key);
    button.setAttribute("aria-label", t(`${key}_label`, { name: passkey.name }));
    return button;
  };
  return el("li", { className: "device", dataset: { id: passkey.id, name: passkey.name } },
    el("div", { className: "device-head" },
      el("strong", { className: "device-name" }, passkey.name),
      passkey.backed_up ? tx("span", { className: "badge active" }, "web.passkeys.synced")
        : tx("span", { className: "badge" }, "web.passkeys.not_synced")),
    el("dl", { className: "meta" },
      tx("dt", {}, "web.devices.registered"), el("dd", {}, timeEl(passkey.created_at)),
      tx("dt", {}, "web.passkeys.last_used"), el("dd", {}, timeEl(passkey.last_used_at))),
    el("div", { className: "actions" },
      action("rename", "web.devices.rename", "secondary"), action("remove", "web.devices.remove", "danger")));
}

const ACTIONS = {
  async rename(id, name) {
    const box = dialog("passkey-name-dialog", () => [
      tx("label", { htmlFor: "passkey-name" }, "web.passkeys.name"),
      el("input", { id: "passkey-name", required: true, autocomplete: "off" })], [["save", "web.common.save"]]);
    setText($("h2", box), "web.passkeys.rename_title");
    const input = $("#passkey-name", box);
    input.value = name;
    const wanted = (await modal(box)) === "save" && input.value.trim();
    return Boolean(wanted && wanted !== name) && citylogin.renamePasskey(id, wanted);
  },
  async remove(id, name) {
    const proof = await reauthenticate("web.passkeys.remove_title", { name }, { action: "remove", id });
    return Boolean(proof) && refused(citylogin.removePasskey(id, proof), proof).then(() => true);
  },
};

async function act(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  clearMessage($(".note", form()));
  const { id, name } = button.closest("li").dataset;
  if (await busy(form(), () => ACTIONS[button.dataset.action](id, name))) await loadPasskeys();
}

/** {password} or {passkey} (null when cancelled), asked in a dialog titled by the catalogue key `title`;
 * a passkey is offered once the account has one. An account with no password confirms with its provider
 * instead: the browser goes there, and `pending` (what to do, no secret) is done on the way back. */
async function reauthenticate(title, params, pending) {
  const box = dialog("reauth-dialog", () => [
    tx("p", { className: "muted" }, "web.passkeys.confirm_intro"),
    tx("label", { htmlFor: "reauth-password" }, "web.common.password"),
    el("input", { id: "reauth-password", type: "password", autocomplete: "current-password" }),
  ], [["password", "web.passkeys.with_password"], ["passkey", "web.passkeys.with_passkey", "secondary"]]);
  setText($("h2", box), title, params);
  $("button[value=passkey]", box).hidden = !$("#passkey-list").children.length;
  const providers = await confirmingProviders();
  for (const node of [$("label", box), $("#reauth-password", box), $("button[value=password]", box)]) {
    node.hidden = providers.length > 0;
  }
  for (const old of box.querySelectorAll("button[data-provider]")) old.remove();
  $("button[value=password]", box).before(...providers.map(([name, displayName]) => tx("button",
    { value: `provider:${name}`, className: "secondary", dataset: { provider: name } },
    "web.federation.confirm_with", { name: displayName })));
  const input = $("#reauth-password", box);
  input.value = "";
  const choice = await modal(box);
  if (choice.startsWith("provider:")) {
    await (await import("./account_reauth.js")).leaveFor(form(), pending, choice.slice("provider:".length));
    return null;
  }
  if (choice === "passkey") return citylogin.confirmWithPasskey();
  return choice === "password" ? { password: input.value } : null;
}

/** The providers an account with no password confirms with; none (and no module loaded) for the others. */
async function confirmingProviders() {
  const drawn = $("#codes-form .reauth-providers");
  return drawn && !drawn.hidden ? (await import("./account_reauth.js")).confirmingProviders() : [];
}

/** A dialog made the first time it is needed: a title, `fields()`, then buttons [value, key, class?] and
 * Cancel. The first button is the form's default: Enter in a field presses it. */
function dialog(id, fields, buttons) {
  let box = document.getElementById(id);
  if (box) return box;
  box = el("dialog", { id }, el("form", { method: "dialog" }, el("h2", { id: `${id}-title` }), ...fields(),
    el("div", { className: "buttons" },
      ...buttons.map(([value, key, className = ""]) => tx("button", { value, className }, key)),
      tx("button", { value: "cancel", className: "secondary", formNoValidate: true }, "web.common.cancel"))));
  box.setAttribute("aria-labelledby", `${id}-title`);
  document.body.append(box);
  return box;
}
