// The Devices panel: the account's devices with rename, log out and remove (SPEC §4 /device).

import { authCall } from "./api.js";
import { $, ask, askName, clearMessage, el, showError, timeEl } from "./ui.js";

let names = new Map();              // device_id -> device_name, also for the history table
let onCurrentDevice = () => {};

export function initDevices({ onCurrent }) {
  onCurrentDevice = onCurrent;
  $("#devices-refresh").addEventListener("click", loadDevices);
  $("#device-list").addEventListener("click", runAction);
}

export async function loadDevices() {
  const errorNode = $("#devices-panel .error");
  clearMessage(errorNode);
  try {
    const { devices } = await authCall("GET", "/device/list");
    names = new Map(devices.map((d) => [d.device_id, d.device_name]));
    $("#device-list").replaceChildren(...devices.map(deviceItem));
    const current = devices.find((d) => d.current);
    if (current) onCurrentDevice(current);
  } catch (error) {
    showError(errorNode, error);
  }
}

export async function deviceNames() {
  if (!names.size) await loadDevices();
  return names;
}

export function resetDevices() {
  names = new Map();
  $("#device-list").replaceChildren();
}

function deviceItem(device) {
  const removed = device.status === "revoked";
  const badges = [
    device.current && el("span", { className: "badge current" }, "This device"),
    device.active && !removed && el("span", { className: "badge active" }, "Signed in"),
    device.is_primary && el("span", { className: "badge" }, "Primary"),
    removed && el("span", { className: "badge removed" }, "Removed"),
  ];
  const actions = removed ? [] : [
    actionButton("rename", "Rename", device),
    device.active && !device.current && actionButton("logout", "Log out", device),
    actionButton("unbind", "Remove", device, "danger"),
  ];
  return el("li", { className: removed ? "device removed" : "device",
                    dataset: { deviceId: device.device_id, deviceName: device.device_name } },
    el("div", { className: "device-head" },
      el("strong", { className: "device-name" }, device.device_name),
      el("span", { className: "badges" }, ...badges.filter(Boolean))),
    el("dl", { className: "meta" },
      el("dt", {}, "Registered"), el("dd", {}, timeEl(device.registered_at)),
      el("dt", {}, "Last login"), el("dd", {}, timeEl(device.last_login_at)),
      el("dt", {}, "Fingerprint"),
      el("dd", {}, el("code", { title: device.fingerprint }, `${device.fingerprint.slice(0, 16)}…`))),
    actions.length ? el("div", { className: "actions" }, ...actions.filter(Boolean)) : null);
}

function actionButton(action, label, device, style = "secondary") {
  return el("button", { type: "button", className: `${style} small`, dataset: { action },
                        ariaLabel: `${label} ${device.device_name}` }, label);
}

const ACTIONS = {
  async rename(deviceId, deviceName) {
    const newName = await askName(deviceName);
    if (newName && newName !== deviceName) {
      await authCall("PATCH", `/device/${encodeURIComponent(deviceId)}`, { device_name: newName });
    }
  },
  async logout(deviceId) {
    await authCall("POST", "/device/force_logout", { device_id: deviceId });
  },
  async unbind(deviceId, deviceName) {
    const sure = await ask({ title: `Remove “${deviceName}”?`, confirmLabel: "Remove",
      message: "Its certificate is revoked and it is logged out at once. It can only come back by pairing again." });
    if (!sure) return;
    try {
      await authCall("POST", "/device/unbind", { device_id: deviceId });
    } catch (error) {
      if (error.code !== "last_device") throw error;
      const really = await ask({ title: "Remove the last device?", confirmLabel: "Remove anyway",
        message: "This is the account’s last device. Without it, nobody can log in to this account again." });
      if (really) await authCall("POST", "/device/unbind", { device_id: deviceId, confirm_last: true });
    }
  },
};

async function runAction(event) {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const { deviceId, deviceName } = button.closest("li").dataset;
  const errorNode = $("#devices-panel .error");
  clearMessage(errorNode);
  button.disabled = true;
  try {
    await ACTIONS[button.dataset.action](deviceId, deviceName);
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
