// Automatic certificate renewal (SPEC §4 POST /device/renew): when a login answer says
// `renew_certificate: true`, the same key is certified again in the background. A failure
// leaves the session alone; the next login asks again.

import { authCall, call } from "./api.js";
import { RENEW_PURPOSE, replaceCertificate, signChallenge } from "./keystore.js";

/** Renews `device`'s certificate on its current key and stores the new one; resolves with the 201 body. */
export async function renewCertificate(device) {
  const { challenge } = await call("POST", "/login/challenge", {});
  const signature = await signChallenge(device.keyPair.privateKey, challenge, RENEW_PURPOSE);
  const renewed = await authCall("POST", "/device/renew", { challenge, signature });
  await replaceCertificate(device, renewed);
  return renewed;
}

/** Fire and forget: only a warning with the error's code reaches the console, never a token or key. */
export function renewInBackground(device) {
  renewCertificate(device).catch((error) => {
    console.warn(`citylogin: the device certificate could not be renewed (${error?.code || error?.name ||
      "error"}); the next login tries again.`);
  });
}
