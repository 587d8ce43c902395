// The Account panel's "Apps you allowed" (SPEC §14): every app that asked for consent and was allowed,
// with what it may do; removing one takes its access back at once (it asks again next time). account.js
// imports this module with import() when the panel first opens: the login screen's cold load does not
// carry it.

import { authCall } from "./api.js";
import { t } from "./i18n.js";
import { $, busy, clearMessage, el, say, showError, timeEl, tx } from "./ui.js";

const KNOWN_SCOPES = ["openid", "profile", "email", "offline_access"];
const form = () => $("#consents-form");
let loads = 0;             // only the latest load draws the list: an earlier answer may arrive after it

$("#consent-list").addEventListener("click", withdraw);

/** Draws the apps the person allowed; the list is aria-busy until it is drawn. */
export async function loadConsents() {
  const load = ++loads;
  const list = $("#consent-list");
  clearMessage($(".error", form()));
  try {
    const { consents } = await authCall("GET", "/account/consents");
    if (load !== loads) return;
    list.replaceChildren(...consents.map(item));
    $("#consents-none").hidden = consents.length > 0;
  } catch (error) {
    showError($(".error", form()), error);
  } finally {
    if (load === loads) list.removeAttribute("aria-busy");
  }
}

function item(consent) {
  const remove = tx("button", { type: "button", className: "danger small" }, "web.consents.remove");
  remove.setAttribute("aria-label", t("web.consents.remove_label", { app: consent.client_name }));
  const scopes = consent.scopes.filter((scope) => KNOWN_SCOPES.includes(scope));
  return el("li", { className: "device", dataset: { id: consent.client_id, name: consent.client_name } },
    el("div", { className: "device-head" }, el("strong", { className: "device-name" }, consent.client_name)),
    el("ul", { className: "scopes" }, ...scopes.map((scope) => tx("li", {}, `web.oidc.scope.${scope}`))),
    el("dl", { className: "meta" }, tx("dt", {}, "web.consents.allowed_at"), el("dd", {}, timeEl(consent.granted_at))),
    el("div", { className: "actions" }, remove));
}

async function withdraw(event) {
  const button = event.target.closest("button");
  if (!button) return;
  const { id, name } = button.closest("li[data-id]").dataset;
  clearMessage($(".note", form()));
  const done = await busy(form(), () => authCall("DELETE", `/account/consents/${encodeURIComponent(id)}`)
    .then(() => true));
  if (!done) return;
  await loadConsents();
  say($(".note", form()), "web.consents.removed", { app: name });
}
