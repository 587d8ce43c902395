// "Your data" (GET /account/export): everything citylogin stores about the person, shown in words on the
// "See my data" page (the readable copy, ?format=readable, its dates in this browser's time zone), and
// saved as a file: the JSON document for other programs, or the readable copy as a printable HTML page
// (?format=html). The console's "Export data" saves the one it makes for them the same way. Imported when
// first asked for: the login screen's cold load carries none of it. Every value goes in as text.

import { authCall, citylogin } from "./api.js";
import { readJson } from "../sdk/http.js";
import { currentLocale, t } from "./i18n.js";
import { $, busy, clearMessage, showError } from "./ui.js";

let shows = 0;             // only the latest load draws the page: an earlier answer may arrive after it

/** Fetches the export (the form is busy meanwhile; a refusal shows in its .error) and saves it as a file
 * named as the server names it: <product>-data-<day>.json (the product as the brand names it). */
export async function downloadMyData(form) {
  const data = await busy(form, () => authCall("GET", "/account/export"));
  if (data) saveExport(data);
}

/** Saves the readable copy as the HTML file the server makes (<product>-data-<day>.html). */
export async function downloadPrintable(form) {
  const file = await busy(form, () => readable("html", async (response) => {
    if (!response.ok) await readJson(response);          // throws the problem the server answered
    return { blob: await response.blob(), name: attachmentName(response) };
  }));
  if (file) save(file.blob, file.name);
}

/** Draws the readable copy into the "See my data" page. */
export async function showMyData() {
  const show = ++shows;
  const panel = $("#my-data-panel");
  const errorNode = $("#my-data-form .error");
  clearMessage(errorNode);
  $("#my-data").replaceChildren();
  panel.setAttribute("aria-busy", "true");
  try {
    const copy = await readable("readable", readJson);
    if (show === shows) $("#my-data").replaceChildren(...drawn(copy));
  } catch (error) {
    if (show === shows) showError(errorNode, error, "export");
  } finally {
    if (show === shows) panel.removeAttribute("aria-busy");
  }
}

/** The export in `format`, its dates in this browser's time zone; a zone the server does not know
 * (an older time zone database than the browser's) is left out, and the copy says it shows UTC. */
async function readable(format, read) {
  const zone = browserTimeZone();
  const path = `/account/export?format=${format}&locale=${currentLocale()}`;  // the page's language
  if (zone) {
    const response = await citylogin.fetch(`${path}&time_zone=${encodeURIComponent(zone)}`);
    const problem = response.status === 400 ? await response.clone().json().catch(() => ({})) : {};
    if (!(problem.code === "invalid_field" && problem.field === "time_zone")) return read(response);
  }
  return read(await citylogin.fetch(path));
}

function browserTimeZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

function drawn(copy) {
  const intro = [node("p", copy.intro), node("p", `${copy.exported_at}. ${copy.time_zone_note}`, "muted")];
  return [...intro, ...copy.sections.map((section) => drawnSection(section, copy.words))];
}

function drawnSection(section, words) {
  const part = node("section", null, "readable-section");
  part.dataset.source = section.source;
  part.append(node("h2", section.title), node("p", section.about),
    labelled(words.why, section.why), labelled(words.kept, section.kept));
  if (!section.entries.length) part.append(node("p", words.none, "muted"));
  for (const entry of section.entries) part.append(drawnEntry(entry, words, "readable-entry"));
  return part;
}

function drawnEntry(entry, words, kind) {
  const box = node("div", null, kind);
  const list = node("dl", null, "meta");
  for (const field of entry.fields) {
    const value = node("dd", field.value);
    if (field.about) value.append(node("small", field.about));
    list.append(node("dt", field.label), value);
  }
  box.append(node("h3", entry.heading), list);
  for (const part of entry.parts) box.append(drawnEntry(part, words, "readable-part"));
  if (entry.also_stored.length) {
    box.append(node("p", `${words.also_stored}: ${entry.also_stored.join(words.separator)}`, "muted"));
  }
  return box;
}

function labelled(label, text) {
  const paragraph = node("p");
  paragraph.append(node("strong", `${label}: `), text);
  return paragraph;
}

function node(tag, text = null, className = "") {
  const element = document.createElement(tag);
  if (text !== null) element.textContent = text;
  if (className) element.className = className;
  return element;
}

/** Saves an export (the person's own, or one an operator made for them in the console) as a file. */
export function saveExport(data) {
  save(new Blob([JSON.stringify(data, null, 1)], { type: "application/json" }), fileName(data.exported_at.slice(0, 10)));
}

function save(file, name) {
  const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(file), download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href));
}

// The server's name for the file (Content-Disposition: attachment; filename="..."), else one made here.
function attachmentName(response) {
  const named = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
  return named ? named[1] : fileName(new Date().toISOString().slice(0, 10), "html");
}

// As common.brand's file_stem: "Acme ID" -> "acme-id"; a name without ASCII letters or digits is left out.
function fileName(day, suffix = "json") {
  const stem = t("web.app.name").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `${[stem, "data", day].filter(Boolean).join("-")}.${suffix}`;
}
