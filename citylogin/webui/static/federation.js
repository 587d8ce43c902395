// Accounts from elsewhere, the person's side (SPEC §16): "Continue with <provider>" on the login and register
// forms; the way back from the provider (`#federation`), where the ticket the provider's answer left in this
// browser says whether the identity is linked (sign in), new (choose a username) or has the e-mail of another
// account (prove that account, or make a separate one); and the e-mailed link that proves an account
// (`#federation-link=`). The upstream account replaces the password only: this browser's device key still signs
// in, and the in-use dialog still asks at the device limit. Loaded only when the service offers providers or a
// provider's answer arrives; the panel's steps are federation_steps.js.

import { authCall, call } from "./api.js";
import { providerMark } from "./federation_marks.js";
import { currentLocale } from "./i18n.js";
import { confirmLink, drawReading, drawStep, keepPairingCode } from "./federation_steps.js";
import { $, busy, el, tx } from "./ui.js";

/** One button per provider on the login, register and pair forms, below their own way in. On the pair form (an
 * account made with a provider has no password to type there) the pairing code goes through the provider with the
 * person, kept in this tab's sessionStorage, and pairs this browser on the way back (federation_steps.js). */
export function showProviders(providers) {
  for (const form of [$("#login-form"), $("#register-form"), $("#pair-form")]) {
    $(".federation", form)?.remove();
    const pairing = form.id === "pair-form";
    const box = el("div", { className: "federation" },
      tx("p", { className: "federation-or" }, pairing ? "web.federation.pair_or" : "web.federation.or"),
      ...providers.map((provider) => providerButton(provider, "web.federation.continue_with", () => {
        keepPairingCode(pairing ? form.qr_code.value : "");   // none from another form: a stale one goes
        return start(provider.name, "sign_in", form);
      })));
    if (form.id === "login-form") form.lastElementChild.before(box);    // above "Forgot password?"
    else form.append(box);
  }
}

/** A provider's button: its mark and `key`'s text naming it. */
export function providerButton(provider, key, onClick) {
  const button = el("button", { type: "button", className: "secondary provider", dataset: { provider: provider.name } },
    providerMark(provider.preset), tx("span", {}, key, { name: provider.display_name }));
  button.addEventListener("click", onClick);
  return button;
}

/** Off to the provider (POST /federation/<name>/start): "sign_in", or "link" or "reauth" (a fresh sign-in that
 * confirms an action, account_reauth.js) with this tab's session; its answer comes back to `/#federation` (a
 * sign-in; at `/device`, to `/device#federation`, where the code being approved waits) or `/#account`. A refusal (the provider cannot be reached) shows in `form`, whose controls wait
 * meanwhile. Whether the browser is on its way. */
export async function start(name, purpose, form) {
  const send = purpose === "sign_in" ? call : authCall;
  return Boolean(await busy(form, async () => {
    const { authorization_url: url } = await send("POST", `/federation/${encodeURIComponent(name)}/start`,
      { purpose, locale: currentLocale(), ...returnTo(purpose) });  // a refusal's page speaks the page's language
    location.assign(url);
    return true;
  }));
}

/** A sign-in begun at `/device` comes back there (the landing runs on any page app.js serves). */
function returnTo(purpose) {
  return purpose === "sign_in" && location.pathname === "/device" ? { return_to: "/device#federation" } : {};
}

/** The provider's answer (`#federation`) or a mailed link (`#federation-link=<token>`) in the address bar: taken
 * out of it and answered on the federation panel. `app`: the screen's {showAuth(tab), signIn(form, attempt,
 * options), confirmReplacing}. Whether there was one. */
export async function takeLanding(app) {
  const link = /^#federation-link=([A-Za-z0-9_-]{16,200})$/.exec(location.hash);
  if (!link && location.hash !== "#federation") return false;
  history.replaceState(null, "", location.pathname + location.search);
  const form = panel(app);
  app.showAuth("federation");
  if (link) await confirmLink(form, link[1]);
  else await readTicket(form);
  return true;
}

/** The panel the steps draw in, made once, beside the login form. */
function panel(app) {
  const made = $("#federation-form");
  if (made) return made;
  const form = el("form", { id: "federation-form", className: "card", noValidate: true, hidden: true,
    dataset: { panel: "federation" } });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    form.onStep?.(event);
  });
  form.app = app;                 // the steps sign in through the screen's own login (app.js)
  $("#pair-form").after(form);
  return form;
}

/** GET /federation/ticket: what the provider said and what it means here, drawn as the step it calls for; a
 * ticket that expired or was used is said on the panel, with the way back to the login form. */
async function readTicket(form) {
  drawReading(form);
  const ticket = await busy(form, () => call("GET", "/federation/ticket"));
  if (ticket) await drawStep(form, ticket);
}
