// "Download my data" (GET /account/export): everything citylogin stores about the person, saved as one
// JSON file; the console's "Export data" saves the one it makes for them the same way. Imported when first
// asked for: the login screen's cold load carries none of it.

import { authCall } from "./api.js";
import { t } from "./i18n.js";
import { busy } from "./ui.js";

/** Fetches the export (the form is busy meanwhile; a refusal shows in its .error) and saves it as a file
 * named as the server names it: <product>-data-<day>.json (the product as the brand names it). */
export async function downloadMyData(form) {
  const data = await busy(form, () => authCall("GET", "/account/export"));
  if (data) saveExport(data);
}

/** Saves an export (the person's own, or one an operator made for them in the console) as a file. */
export function saveExport(data) {
  const file = new Blob([JSON.stringify(data, null, 1)], { type: "application/json" });
  const link = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(file), download: fileName(data.exported_at.slice(0, 10)), hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href));
}

// As common.brand's file_stem: "Acme ID" -> "acme-id"; a name without ASCII letters or digits is left out.
function fileName(day) {
  const stem = t("web.app.name").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "");
  return `${[stem, "data", day].filter(Boolean).join("-")}.json`;
}
