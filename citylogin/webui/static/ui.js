// Small DOM pieces shared by the screens: element building, times, errors next to their fields,
// dialogs, user agents.

import { formatDateTime, has, setPlainText, setText, t } from "./i18n.js";

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

/** An element showing `key`'s text, re-translated when the language changes. */
export function tx(tag, props, key, params) {
  const node = el(tag, props);
  setText(node, key, params);
  return node;
}

/** A <time> element for an ISO 8601 instant in the current locale, or a dash when there is none. */
export function timeEl(iso) {
  if (!iso) return el("span", { className: "muted" }, "—");
  return el("time", { dateTime: iso, title: iso }, formatDateTime(iso));
}

/** The catalogue key for an error's API `code`: web.error.<code>.<context> (what the code means on
 * one form, e.g. too_many_attempts at login), else web.error.<code>; null when the catalogue has none. */
function errorKey(error, context) {
  if (!error?.code) return null;
  return [context && `web.error.${error.code}.${context}`, `web.error.${error.code}`].find((key) => key && has(key))
    || null;
}

/** Shows an error in `node`: the catalogue's text for its code (on the form `context`, if given), else
 * the server's own `detail`, which it wrote in the page's language — never a guess. An answer with
 * neither says its HTTP status; an error that is no answer at all (a bug) says something went wrong.
 * Errors that ended the session are shown by the banner. */
export function showError(node, error, context = null) {
  if (error?.sessionEnded) return;
  if (!(error?.status >= 0)) console.error(error);
  const key = errorKey(error, context);
  if (key) setText(node, key, error.problem);
  else if (!(error?.status >= 0)) setText(node, "web.error.unexpected");
  else if (error.problem?.detail) setPlainText(node, error.problem.detail);
  else if (error.status > 0) setText(node, "web.error.http", { status: error.status });
  else setText(node, "web.error.network_error");
  node.hidden = false;
}

/** Shows a catalogue text in a message slot. */
export function say(node, key, params) {
  setText(node, key, params);
  node.hidden = false;
}

export function clearMessage(node) {
  setPlainText(node, "");
  node.hidden = true;
}

// What a pydantic message says about the value, as a kind of web.field.<field>.<kind> message.
// The problem carries only the field and an English detail, so the kind is read from the detail.
// The server's `kind` of a 400 invalid_field (it never depends on the language of `detail`) ->
// the catalogue's web.field.<field>.<kind> message.
const PASSWORD_FIELDS = new Set(["password", "new_password", "current_password"]);
function uiKind(field, kind) {
  if (kind === "empty") return "required";
  if (kind === "too_common") return "common";
  if (kind === "too_short" || (kind === "too_long" && PASSWORD_FIELDS.has(field))) return "length";
  if (kind === "too_long") return "too_long";
  return "invalid";
}

/** {field, kind} of a 400 invalid_field or missing_fields problem, else null. */
function fieldProblem(error) {
  const problem = error?.problem || {};
  if (error?.code === "missing_fields" && problem.fields?.length) return { field: problem.fields[0], kind: "required" };
  if (error?.code !== "invalid_field" || !problem.field) return null;
  return { field: problem.field, kind: uiKind(problem.field, problem.kind) };
}

function fieldNode(input) {
  const id = `${input.id}-error`;
  let node = document.getElementById(id);
  if (!node) {
    node = el("p", { id, className: "field-error", hidden: true });
    node.setAttribute("role", "alert");
    const hint = input.nextElementSibling?.classList.contains("hint") ? input.nextElementSibling : null;
    (hint || input).after(node);
    input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
  }
  return node;
}

/** Shows `key`'s text next to the form's field `name`; returns the input, or null if the form lacks it. */
export function showFieldError(form, name, key, params) {
  const input = form.elements.namedItem(name);
  if (!input?.id) return null;
  say(fieldNode(input), key, params);
  input.setAttribute("aria-invalid", "true");
  return input;
}

function showAtField(form, error) {
  const found = fieldProblem(error);
  if (!found) return null;
  const key = [`web.field.${found.field}.${found.kind}`, `web.field.${found.field}.invalid`, `web.field.${found.kind}`,
    "web.field.invalid"].find(has);
  return key ? showFieldError(form, found.field, key) : null;
}

export function clearFieldErrors(form) {
  for (const node of form.querySelectorAll(".field-error")) clearMessage(node);
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

/** Runs `work` with the form's controls disabled; an error about one field is shown next to it
 * (and the field focused), any other in the form's .error slot. */
export async function busy(form, work) {
  const controls = [...form.elements];
  const errorNode = $(".error", form);
  let invalid = null;
  clearMessage(errorNode);
  clearFieldErrors(form);
  controls.forEach((c) => { c.disabled = true; });
  form.setAttribute("aria-busy", "true");
  try {
    return await work();
  } catch (error) {
    invalid = showAtField(form, error);
    if (!invalid) showError(errorNode, error, form.id.replace(/-form$/, ""));
    return undefined;
  } finally {
    controls.forEach((c) => { c.disabled = false; });
    form.removeAttribute("aria-busy");
    invalid?.focus();
  }
}

/** Opens a modal <dialog> whose form uses method="dialog"; resolves with the button value ("" on Escape). */
export function modal(dialog) {
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    // "close" is dispatched in a task of its own: when the dialog was shown again before it ran
    // (a second e-mailed link right after the first), that event ends neither opening; both end
    // with the next close.
    const closed = () => {
      if (dialog.open) return;
      dialog.removeEventListener("close", closed);
      resolve(dialog.returnValue);
    };
    dialog.addEventListener("close", closed);
  });
}

/** Yes/no question in the shared confirm dialog; the texts are catalogue keys filled from `params`. */
export async function ask({ title, message, confirm, params }) {
  const dialog = $("#confirm-dialog");
  setText($("#confirm-title", dialog), title, params);
  setText($("#confirm-message", dialog), message, params);
  setText($("#confirm-ok", dialog), confirm, params);
  return (await modal(dialog)) === "confirm";
}

/** Asks for a device name; resolves with the trimmed name or null when cancelled. */
/** The new name and class of a device, or null if the person cancelled. */
export async function askName(current, currentClass = "other") {
  const dialog = $("#rename-dialog");
  const input = $("#rename-input", dialog);
  const kind = $("#rename-class", dialog);
  input.value = current;
  kind.value = currentClass;
  const answer = await modal(dialog);
  return answer === "save" && input.value.trim() ? { name: input.value.trim(), deviceClass: kind.value } : null;
}

const BROWSERS = [["Edg/", "Edge"], ["OPR/", "Opera"], ["Firefox/", "Firefox"], ["Chrome/", "Chrome"],
  ["Safari/", "Safari"], ["citylogin-cli/", "citylogin CLI"], ["citylogin-python/", "citylogin Python"]];
const SYSTEMS = [["Android", "Android"], ["iPhone", "iPhone"], ["iPad", "iPad"], ["Windows", "Windows"],
  ["Mac OS", "macOS"], ["CrOS", "ChromeOS"], ["Linux", "Linux"]];

function agentParts(ua) {
  return { browser: BROWSERS.find(([token]) => ua.includes(token))?.[1],
           os: SYSTEMS.find(([token]) => ua.includes(token))?.[1] };
}

/** A user agent in a few words, such as "Chrome on Linux"; a non-browser client by its first token. */
export function describeAgent(ua) {
  if (!ua) return t("web.ua.unknown");
  const { browser, os } = agentParts(ua);
  if (browser && os) return t("web.ua.browser_on_os", { browser, os });
  return browser || ua.split(/[\s(]/)[0] || t("web.ua.unknown");
}

/** A default device name such as "Chrome on Linux", from what the browser says about itself. */
export function guessDeviceName() {
  const { browser, os } = agentParts(navigator.userAgent);
  const name = browser || t("web.ua.browser");
  return os ? t("web.ua.browser_on_os", { browser: name, os }) : name;
}
