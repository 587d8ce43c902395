// The web UI's one Citylogin (the web SDK, /sdk/citylogin.js), asking for answers in the language the
// page is shown in, and the two JSON calls the panels make through it.

import { Citylogin } from "../sdk/citylogin.js";
import { currentLocale } from "./i18n.js";

export const citylogin = new Citylogin({ locale: currentLocale });

/** An unauthenticated call (e-mailed links, password reset). */
export function call(method, path, body) {
  return citylogin.request(method, path, { body, auth: false });
}

/** An authenticated call (the token with a DPoP proof): refreshes once on token_expired; any other
 * 401 about the token ends the session. */
export function authCall(method, path, body) {
  return citylogin.request(method, path, { body });
}
