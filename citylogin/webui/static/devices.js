// The Devices panel: the account's devices with rename, log out and remove (SPEC §4 /device).

import { authCall } from "./api.js";
import { t } from "./i18n.js";
import { $, ask, askName, clearMessage, el, showError, timeEl, tx } from "./ui.js";

let names = new Map();              // device_id -> device_name, also for the history table
let onCurrentDevice = () => {};
let currentId = null;
let removingThisDevice = false;     // this device removed itself: its banner must not say "from another device"
let loads = 0;                      // only the latest load draws the list: an earlier answer may arrive after it

export function initDevices({ onCurrent }) {
  onCurrentDevice = onCurrent;
  $("#devices-refresh").addEventListener("click", () => loadDevices());
  $("#device-list").addEventListener("click", runAction);
}

/** Reads the account's devices and draws them; the panel is aria-busy until the latest read is drawn. */
export async function loadDevices() {
  const load = ++loads;
  const panel = $("#devices-panel");
  const errorNode = $("#devices-panel .error");
  clearMessage(errorNode);
  panel.setAttribute("aria-busy", "true");
  try {
    const { devices } = await authCall("GET", "/device/list");
    if (load !== loads) return;
    names = new Map(devices.map((d) => [d.device_id, d.device_name]));
    $("#device-list").replaceChildren(...devices.map(deviceItem));
    const current = devices.find((d) => d.current);
    currentId = current?.device_id || null;
    if (current) onCurrentDevice(current);
  } catch (error) {
    if (load === loads) showError(errorNode, error);
  } finally {
    if (load === loads) panel.removeAttribute("aria-busy");
  }
}

export async function deviceNames() {
  if (!names.size) await loadDevices();
  return names;
}

/** True when the session ended because this device removed itself. */
export function removedThisDevice() {
  return removingThisDevice;
}

export function resetDevices() {
  names = new Map();
  currentId = null;
  removingThisDevice = false;
  loads += 1;                       // an answer still on its way is for the session that has ended
  $("#devices-panel").removeAttribute("aria-busy");
  $("#device-list").replaceChildren();
}

function deviceItem(device) {
  const removed = device.status === "revoked";
  const badges = [
    device.current && tx("span", { className: "badge current" }, "web.devices.this_device"),
    device.active && !removed && tx("span", { className: "badge active" }, "web.devices.signed_in"),
    device.is_primary && tx("span", { className: "badge" }, "web.devices.primary"),
    tx("span", { className: "badge kind" }, `web.devices.class.${device.device_class || "other"}`),
    removed && tx("span", { className: "badge removed" }, "web.devices.removed"),
  ];
  const actions = removed ? [] : [
    actionButton("rename", "web.devices.rename", "web.devices.rename_label", device),
    device.active && !device.current
      && actionButton("logout", "web.devices.logout", "web.devices.logout_label", device),
    actionButton("unbind", "web.devices.remove", "web.devices.remove_label", device, "danger"),
  ];
  return el("li", { className: removed ? "device removed" : "device",
                    dataset: { deviceId: device.device_id, deviceName: device.device_name,
                               deviceClass: device.device_class || "other" } },
    el("div", { className: "device-head" },
      el("strong", { className: "device-name" }, device.device_name),
      el("span", { className: "badges" }, ...badges.filter(Boolean))),
    el("dl", { className: "meta" },
      tx("dt", {}, "web.devices.registered"), el("dd", {}, timeEl(device.registered_at)),
      tx("dt", {}, "web.devices.last_login"), el("dd", {}, timeEl(device.last_login_at)),
      tx("dt", {}, "web.devices.fingerprint"),
      el("dd", {}, el("code", { title: device.fingerprint }, `${device.fingerprint.slice(0, 16)}…`))),
    actions.length ? el("div", { className: "actions" }, ...actions.filter(Boolean)) : null);
}

function actionButton(action, labelKey, ariaKey, device, style = "secondary") {
  const button = tx("button", { type: "button", className: `${style} small`, dataset: { action } }, labelKey);
  button.setAttribute("aria-label", t(ariaKey, { name: device.device_name }));
  return button;
}

const ACTIONS = {
  async rename(deviceId, deviceName, deviceClass) {
    const answer = await askName(deviceName, deviceClass);
    if (answer && (answer.name !== deviceName || answer.deviceClass !== deviceClass)) {
      await authCall("PATCH", `/device/${encodeURIComponent(deviceId)}`,
        { device_name: answer.name, device_class: answer.deviceClass });
    }
  },
  async logout(deviceId) {
    await authCall("POST", "/device/force_logout", { device_id: deviceId });
  },
  async unbind(deviceId, deviceName) {
    const sure = await ask({ title: "web.devices.remove_title", message: "web.devices.remove_message",
      confirm: "web.devices.remove", params: { name: deviceName } });
    if (!sure) return;
    removingThisDevice = deviceId === currentId;
    try {
      await authCall("POST", "/device/unbind", { device_id: deviceId });
    } catch (error) {
      const isLast = error.code === "last_device";
      const really = isLast && await ask({ title: "web.devices.remove_last_title",
        message: "web.devices.remove_last_message", confirm: "web.devices.remove_anyway" });
      if (really) await authCall("POST", "/device/unbind", { device_id: deviceId, confirm_last: true });
      else removingThisDevice = false;
      if (!isLast) throw error;
    }
  },
};

async function runAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { deviceId, deviceName, deviceClass } = button.closest("li").dataset;
  const errorNode = $("#devices-panel .error");
  clearMessage(errorNode);
  button.disabled = true;
  try {
    await ACTIONS[button.dataset.action](deviceId, deviceName, deviceClass);
    await loadDevices();
    restoreFocus(deviceId, button.dataset.action);
  } catch (error) {
    showError(errorNode, error);
  } finally {
    button.disabled = false;
  }
}

// The list is redrawn after an action; keep keyboard users where they were.
function restoreFocus(deviceId, action) {
  const item = [...$("#device-list").children].find((li) => li.dataset.deviceId === deviceId);
  const target = item?.querySelector(`button[data-action="${action}"]`) || $("#devices-refresh");
  if (!$("#home-screen").hidden) target.focus();
}
