// An app's logout (SPEC §14, RP-initiated): /oidc/logout kept the app's request and sent the browser here
// as `#oidc-logout=<request>`. Nothing has ended yet: this browser's device keys now prove which live
// session they hold. The one the app named (by its ID token) ends without a question and the browser goes
// back to the app; any other is asked about first ("Sign out of citylogin?"), and only a yes ends it. The
// page then says which app the person signed out of.

import { call, citylogin } from "./api.js";
import { ask } from "./ui.js";

const REQUEST = /^#oidc-logout=([A-Za-z0-9_-]{16,128})$/;

/** Takes `#oidc-logout=<request>` out of the address bar and answers it. Resolves with null when there is
 * none or the person kept their session; else with {banner, redirectTo}: what the page says (the app
 * named) and where the browser goes next (null: it stays, signed out). Rejects (CityloginError) when the
 * request is unknown or over. */
export async function takeAppLogout() {
  if (!location.hash.startsWith("#oidc-logout")) return null;
  const match = REQUEST.exec(location.hash);
  history.replaceState(null, "", location.pathname + location.search);
  if (!match) return null;
  const request = match[1];
  const shown = await call("POST", "/oidc/logout/interaction", { request });
  const app = shown.client_name;
  let answer;
  try {
    answer = await citylogin.signOutForApp(request);
  } catch (error) {
    if (error.code !== "logout_confirmation_required") throw error;
    if (!(await askFirst(app))) return null;
    answer = await citylogin.signOutForApp(request, { confirm: true });
  }
  // answer null: no device here has a live session, so there was nothing to end in this browser.
  const redirectTo = answer ? answer.redirect_to : shown.redirect_to;
  const text = redirectTo ? "web.oidc.returning" : answer ? "web.oidc.signed_out_here" : null;
  const title = app ? "web.oidc.signed_out_of" : "web.banner.logged_out";
  return { banner: { kind: "info", title, text, params: { app } }, redirectTo };
}

function askFirst(app) {
  return ask({ title: "web.oidc.logout_title", message: app ? "web.oidc.logout_message_app" : "web.oidc.logout_message",
               confirm: "web.oidc.logout_confirm", params: { app } });
}
