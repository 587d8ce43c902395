// Small DOM pieces shared by the screens: element building, times, errors, dialogs.

export const $ = (selector, root = document) => root.querySelector(selector);

/** el("td", {className: "x", dataset: {id}}, "text", child) — children are text or nodes. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  const { dataset, ...rest } = props;
  Object.assign(node, rest);
  Object.assign(node.dataset, dataset || {});
  node.append(...children.filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A <time> element for an ISO 8601 instant, or a dash when there is none. */
export function timeEl(iso) {
  if (!iso) return el("span", { className: "muted" }, "—");
  return el("time", { dateTime: iso, title: iso }, dateTime.format(new Date(iso)));
}

/** Shows an error's problem+json detail in `node`; errors that ended the session are shown by the banner. */
export function showError(node, error) {
  if (error?.sessionEnded) return;
  if (!(error?.status >= 0)) console.error(error);
  node.textContent = error?.message || "Something went wrong. Please try again.";
  node.hidden = false;
}

export function clearMessage(node) {
  node.textContent = "";
  node.hidden = true;
}

/** Runs `work` with the form's controls disabled; its error lands in the form's .error slot. */
export async function busy(form, work) {
  const controls = [...form.elements];
  const errorNode = $(".error", form);
  clearMessage(errorNode);
  controls.forEach((c) => { c.disabled = true; });
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    showError(errorNode, error);
    return undefined;
  } finally {
    controls.forEach((c) => { c.disabled = false; });
    form.removeAttribute("aria-busy");
  }
}

/** Opens a modal <dialog> whose form uses method="dialog"; resolves with the button value ("" on Escape). */
export function modal(dialog) {
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue), { once: true });
  });
}

/** Yes/no question in the shared confirm dialog. */
export async function ask({ title, message, confirmLabel }) {
  const dialog = $("#confirm-dialog");
  $("#confirm-title", dialog).textContent = title;
  $("#confirm-message", dialog).textContent = message;
  $("#confirm-ok", dialog).textContent = confirmLabel;
  return (await modal(dialog)) === "confirm";
}

/** Asks for a device name; resolves with the trimmed name or null when cancelled. */
export async function askName(current) {
  const dialog = $("#rename-dialog");
  const input = $("#rename-input", dialog);
  input.value = current;
  const answer = await modal(dialog);
  return answer === "save" && input.value.trim() ? input.value.trim() : null;
}

/** A default device name such as "Chrome on Linux", from what the browser says about itself. */
export function guessDeviceName() {
  const ua = navigator.userAgent;
  const browser = [["Edg/", "Edge"], ["Firefox/", "Firefox"], ["Chrome/", "Chrome"], ["Safari/", "Safari"]]
    .find(([token]) => ua.includes(token))?.[1] || "Browser";
  const platform = [["Android", "Android"], ["iPhone", "iPhone"], ["iPad", "iPad"], ["Windows", "Windows"],
    ["Mac OS", "macOS"], ["Linux", "Linux"]].find(([token]) => ua.includes(token))?.[1];
  return platform ? `${browser} on ${platform}` : browser;
}
