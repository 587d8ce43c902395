// The web UI's one Citylogin (the web SDK, /sdk/citylogin.js), asking for answers in the language the
// page is shown in, and the JSON calls the panels make through it.

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
  return refused(citylogin.request(method, path, { body }), body);
}

/** `call`, whose 401 invalid_credentials reads passkey_refused when `body` confirmed it by a passkey:
 * the person is told about the passkey, not about a wrong password. */
export async function refused(call, body) {
  try {
    return await call;
  } catch (error) {
    if (body?.passkey && error.code === "invalid_credentials") error.code = "passkey_refused";
    throw error;
  }
}
