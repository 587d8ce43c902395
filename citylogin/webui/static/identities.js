// The Account panel's "Sign-in methods" (SPEC §16): the accounts from elsewhere (Google, Apple, a company's
// provider) linked to this one, each with its e-mail and when it was linked; "Link <provider>" for each provider
// the service offers (off to the provider with this tab's session, back at `/#account`); and "Unlink", asked
// first, refused (409 last_way_in) when it would leave the account no password, passkey or other identity.
// account.js imports this module with import() when the panel opens; the card is made then, not in the page.

import { authCall, call } from "./api.js";
import { providerButton, start } from "./federation.js";
import { t } from "./i18n.js";
import { $, ask, busy, clearMessage, el, say, showError, timeEl, tx } from "./ui.js";

let loads = 0;             // only the latest load draws the card: an earlier answer may arrive after it

/** Draws the linked identities and the providers to link; a service with no provider and an account with no
 * identity show no card. The list is aria-busy until it is drawn. */
export async function loadIdentities() {
  const load = ++loads;
  const form = card();
  const list = $("#identity-list");
  clearMessage($(".error", form));
  try {
    const [{ identities }, { providers }] = await Promise.all([authCall("GET", "/federation/identities"),
      call("GET", "/federation/providers")]);
    if (load !== loads) return;
    form.hidden = !identities.length && !providers.length;
    list.replaceChildren(...identities.map(item));
    $("#identities-none").hidden = identities.length > 0;
    $("#identities-link").replaceChildren(...providers.map((provider) =>
      providerButton(provider, "web.federation.link_with", () => start(provider.name, "link", form))));
  } catch (error) {
    showError($(".error", form), error);
  } finally {
    if (load === loads) list.removeAttribute("aria-busy");
  }
}

/** Empties the card when the session ends. */
export function resetIdentities() {
  loads += 1;
  $("#identity-list")?.replaceChildren();
  $("#identity-list")?.setAttribute("aria-busy", "true");
}

/** The card, made the first time, after the passkeys. */
function card() {
  const made = $("#identities-form");
  if (made) return made;
  const list = el("ul", { id: "identity-list", className: "devices" });
  list.setAttribute("aria-busy", "true");
  list.addEventListener("click", unlink);
  const error = el("p", { className: "error", hidden: true });
  error.setAttribute("role", "alert");
  const note = el("p", { className: "note", hidden: true });
  note.setAttribute("role", "status");
  const form = el("form", { id: "identities-form", className: "subform", noValidate: true, hidden: true },
    tx("h2", {}, "web.federation.methods_title"), tx("p", { className: "muted" }, "web.federation.methods_intro"),
    list, tx("p", { id: "identities-none", className: "muted", hidden: true }, "web.federation.none"), error, note,
    el("div", { id: "identities-link", className: "federation" }));
  form.addEventListener("submit", (event) => event.preventDefault());
  $("#passkeys-form").after(form);
  return form;
}

function item(identity) {
  const remove = tx("button", { type: "button", className: "danger small" }, "web.federation.unlink");
  remove.setAttribute("aria-label", t("web.federation.unlink_label", { provider: identity.display_name }));
  return el("li", { className: "device", dataset: { id: identity.link_id, name: identity.display_name } },
    el("div", { className: "device-head" }, el("strong", { className: "device-name" }, identity.display_name)),
    el("dl", { className: "meta" },
      identity.email && tx("dt", {}, "web.common.email"), identity.email && el("dd", {}, identity.email),
      tx("dt", {}, "web.federation.linked_at"), el("dd", {}, timeEl(identity.linked_at))),
    el("div", { className: "actions" }, remove));
}

/** "Unlink", asked first (DELETE /federation/identities/<link_id>); last_way_in says its own text. */
async function unlink(event) {
  const button = event.target.closest("button");
  if (!button) return;
  const { id, name } = button.closest("li[data-id]").dataset;
  const form = $("#identities-form");
  clearMessage($(".note", form));
  if (!(await ask({ title: "web.federation.unlink_title", message: "web.federation.unlink_message",
    confirm: "web.federation.unlink", params: { provider: name } }))) return;
  const done = await busy(form, () => authCall("DELETE", `/federation/identities/${encodeURIComponent(id)}`)
    .then(() => true));
  if (!done) return;
  await loadIdentities();
  say($(".note", form), "web.federation.unlinked", { provider: name });
}
