// Passkeys (WebAuthn) for the SDK: the browser's ceremonies on the options citylogin sends as JSON,
// their results as JSON again. citylogin.js imports this module with import() the first time a
// passkey is used, so a page that never uses one never loads it.

import { CityloginError } from "./http.js";

/** PublicKeyCredential with its JSON methods, or a CityloginError passkeys_unsupported. */
function webauthn() {
  const api = globalThis.PublicKeyCredential;
  if (!api?.parseRequestOptionsFromJSON || !api.parseCreationOptionsFromJSON || !navigator.credentials) {
    throw new CityloginError(0, { code: "passkeys_unsupported",
      detail: "This browser cannot use passkeys (WebAuthn with JSON options is missing)" });
  }
  return api;
}

/** The browser asks the person for a passkey of theirs (request options from POST /login/passkey/options);
 * resolves with the assertion as PublicKeyCredential.toJSON() gives it. */
export async function getAssertion(options) {
  const publicKey = webauthn().parseRequestOptionsFromJSON(options);
  return ceremony(() => navigator.credentials.get({ publicKey }));
}

/** The browser makes a new passkey (creation options from POST /account/passkeys/options); resolves with
 * the attestation as PublicKeyCredential.toJSON() gives it. */
export async function createCredential(options) {
  const publicKey = webauthn().parseCreationOptionsFromJSON(options);
  return ceremony(() => navigator.credentials.create({ publicKey }));
}

async function ceremony(run) {
  let credential;
  try {
    credential = await run();
  } catch (error) {
    throw refusal(error);
  }
  if (!credential) throw refusal({ name: "NotAllowedError" });
  return credential.toJSON();
}

/** A ceremony's DOMException as a CityloginError (status 0): the person cancelled or the prompt timed
 * out (NotAllowedError, which the browser also says for a passkey it does not have), this authenticator
 * already holds a passkey of the account (InvalidStateError), or anything else by its name. */
function refusal(error) {
  if (error?.name === "NotAllowedError") {
    return new CityloginError(0, { code: "passkey_cancelled", detail: "No passkey was given (cancelled or timed out)" });
  }
  if (error?.name === "InvalidStateError") {
    return new CityloginError(0, { code: "passkey_exists", detail: "This authenticator already holds a passkey of the account" });
  }
  return new CityloginError(0, { code: "passkey_failed", detail: `The passkey could not be used (${error?.name || "error"})` });
}

/** The account a discoverable passkey belongs to: its userHandle (base64url of the user_uuid's 16
 * bytes) as the uuid's 32 hex digits. */
export function userHex(userHandle) {
  const binary = atob((userHandle || "").replace(/-/g, "+").replace(/_/g, "/"));
  return [...binary].map((c) => c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
}
