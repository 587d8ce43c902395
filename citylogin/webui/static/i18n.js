// Japanese and English: one flat catalogue per language (common/locales/<lang>.json, served at
// /web/locales/<lang>.json; the page's import map points that at its fingerprinted, cached address),
// t(key, params) with {name} placeholders, dates in the current locale, and the page's data-i18n
// attributes. Nodes given a key through setText() follow a language switch.

export const LOCALES = ["en", "ja"];
const CHOICE_KEY = "citylogin.locale";        // the language this browser showed last: picked in the header or the account's
const ATTRIBUTES = { i18nAriaLabel: "aria-label", i18nTitle: "title", i18nAlt: "alt", i18nPlaceholder: "placeholder" };

const catalogues = new Map();
let locale = "en";
let wanted = null;     // the language last asked for: a catalogue that arrives after another was asked for is not shown
let messages = {};
const listeners = [];

export function currentLocale() {
  return locale;
}

export function supported(tag) {
  return LOCALES.includes(tag) ? tag : null;
}

/** The language before anyone logs in: the one picked here earlier, else the browser's, else English. */
export function initialLocale() {
  const picked = rememberedChoice();
  if (picked) return picked;
  for (const tag of navigator.languages?.length ? navigator.languages : [navigator.language || ""]) {
    const base = tag.toLowerCase().split("-")[0];
    if (supported(base)) return base;
  }
  return "en";
}

/** The language this browser showed last (see CHOICE_KEY), or null before any. */
export function rememberedChoice() {
  return supported(localStorage.getItem(CHOICE_KEY));
}

export function rememberChoice(tag) {
  localStorage.setItem(CHOICE_KEY, tag);
}

async function catalogue(tag) {
  if (!catalogues.has(tag)) {
    const plain = `/web/locales/${tag}.json`;
    const response = await fetch(import.meta.resolve?.(plain) ?? plain, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`the ${tag} catalogue did not load (HTTP ${response.status})`);
    catalogues.set(tag, await response.json());
  }
  return catalogues.get(tag);
}

/** The language last asked for (setLocale), shown or on its way. */
export function wantedLocale() {
  return wanted ?? locale;
}

/** Loads `tag`'s catalogue, then translates the page and tells every onLocaleChange listener; resolves
 * false, showing nothing, when another language was asked for meanwhile (its catalogue may come first). */
export async function setLocale(tag) {
  const next = supported(tag) || "en";
  wanted = next;
  const loaded = await catalogue(next);
  if (wanted !== next) return false;
  messages = loaded;
  locale = next;
  document.documentElement.lang = next;
  translatePage();
  for (const listener of listeners) listener(next);
  return true;
}

export function onLocaleChange(listener) {
  listeners.push(listener);
}

export function has(key) {
  return Object.hasOwn(messages, key);
}

/** The text of `key` with its {placeholders} filled from `params`; the key itself if the catalogue lacks it.
 * A text that depends on a number has a form per plural category (`key.one`, `key.other`, as common/i18n.py):
 * the one the language's rules choose for `params.count` (Intl.PluralRules: "1 app", "2 apps"; Japanese has
 * one form). */
export function t(key, params = {}) {
  const form = pluralForm(key, params.count);
  const text = has(form) ? messages[form] : key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (params[name] ?? whole).toString());
}

function pluralForm(key, count) {
  if (typeof count !== "number" || has(key) || !has(`${key}.one`)) return key;
  const chosen = `${key}.${new Intl.PluralRules(locale).select(count)}`;
  return has(chosen) ? chosen : `${key}.other`;
}

/** Shows `key`'s text in `node` and keeps the key on it, so a language switch re-translates it. */
export function setText(node, key, params) {
  node.dataset.i18n = key;
  if (params) node.dataset.i18nParams = JSON.stringify(params);
  else delete node.dataset.i18nParams;
  node.textContent = t(key, params);
}

/** Shows text that is not in the catalogue (a server's detail, a name); a switch leaves it alone. */
export function setPlainText(node, text) {
  delete node.dataset.i18n;
  delete node.dataset.i18nParams;
  node.textContent = text;
}

export function translatePage(root = document) {
  for (const node of root.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n, node.dataset.i18nParams ? JSON.parse(node.dataset.i18nParams) : {});
  }
  for (const [data, attribute] of Object.entries(ATTRIBUTES)) {
    const selector = `[data-${data.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}]`;
    for (const node of root.querySelectorAll(selector)) node.setAttribute(attribute, t(node.dataset[data]));
  }
  for (const node of root.querySelectorAll("time[datetime]")) node.textContent = formatDateTime(node.dateTime);
}

const formats = new Map();

function format(options) {
  const id = `${locale} ${JSON.stringify(options)}`;
  if (!formats.has(id)) formats.set(id, new Intl.DateTimeFormat(locale, options));
  return formats.get(id);
}

export function formatDateTime(value) {
  return format({ dateStyle: "medium", timeStyle: "short" }).format(new Date(value));
}

export function formatDate(value) {
  return format({ dateStyle: "medium" }).format(new Date(value));
}
